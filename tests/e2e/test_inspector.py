"""The MCP Inspector CLI (Node 22) calls run_command through /mcp and /sse with a header."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

NODE_BIN = os.environ.get("HOSTMCP_NODE_BIN")


def inspector(server, url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    if not NODE_BIN:
        pytest.fail("HOSTMCP_NODE_BIN is not set: run the tests through .ci/run")
    env = {**os.environ, "PATH": f"{NODE_BIN}:{os.environ['PATH']}", "HOME": tempfile.mkdtemp()}
    header = ["--header", f"Authorization: Bearer {token}"] if token else []
    return subprocess.run(
        [f"{NODE_BIN}/mcp-inspector", "--cli", url, *header, "--stored-auth-only", *args, "--format", "json"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_inspector_calls_run_command_with_a_header(shared_server, path):
    done = inspector(shared_server, shared_server.base + path, "--method", "tools/call",
                     "--tool-name", "run_command", "--tool-args-json", '{"command": "echo from-inspector"}',
                     token=shared_server.tokens["alice"])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["result"]
    assert result["structuredContent"]["stdout"] == "from-inspector\n"


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_inspector_lists_tools(shared_server, path):
    done = inspector(shared_server, shared_server.base + path, "--method", "tools/list",
                     token=shared_server.tokens["alice"])
    assert done.returncode == 0, done.stderr
    assert "run_command" in [tool["name"] for tool in json.loads(done.stdout)["result"]["tools"]]


def test_inspector_sees_a_failed_command_as_a_tool_error(shared_server):
    done = inspector(shared_server, shared_server.mcp_url, "--method", "tools/call",
                     "--tool-name", "run_command", "--tool-args-json", '{"command": "exit 4"}',
                     token=shared_server.tokens["alice"])
    assert done.returncode == 5, (done.returncode, done.stderr)
    assert json.loads(done.stdout)["result"]["isError"] is True


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_inspector_without_a_valid_token_gets_auth_required(shared_server, path):
    done = inspector(shared_server, shared_server.base + path, "--method", "tools/list", token="wrong")
    assert done.returncode == 3, (done.returncode, done.stderr)
