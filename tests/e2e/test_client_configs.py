"""The client snippets of docs/clients.md, run with the real clients from npm.

- `mcp-remote` 0.15.1, the stdio bridge Claude Desktop uses: started with `npx` exactly as the
  Claude Desktop snippet says (token in `${HOSTMCP_TOKEN}`, expanded by mcp-remote itself), and
  driven by the Python SDK's stdio client; also over /sse (`--transport sse-only`) and with
  `--protocol auto` (the 2026-07-28 era). A wrong token makes it exit at once: it never starts a
  browser sign-in (a trap on $BROWSER and the Linux openers checks that).
- Claude Code 2.1.330: `claude mcp add --transport http|sse ... --header` then `claude mcp list`,
  whose health check connects to the server. It needs no login and no API key.
- Codex 0.169.0: the `~/.codex/config.toml` snippet (`bearer_token_env_var`), read by
  `codex app-server`, whose JSON-RPC lists the server's tools (`mcpServerStatus/list`) and calls
  one (`mcpServer/tool/call`) with no model and no login.

Every client runs with HOME in a fresh temporary directory and no network beyond loopback.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import start_server

NODE_BIN = os.environ.get("HOSTMCP_NODE_BIN")
MCP_REMOTE_VERSION = "0.15.1"
CLAUDE_CODE_VERSION = "2.1.330"
CODEX_VERSION = "0.169.0"


def node_bin() -> Path:
    if not NODE_BIN:
        pytest.fail("HOSTMCP_NODE_BIN is not set: run the tests through .ci/run")
    return Path(NODE_BIN)


@pytest.fixture(scope="module")
def server():
    """One server for the whole module (the conftest `server` fixture starts one per test)."""
    # rmcp's own info lines (the client's name and protocol) and the stateless path's debug
    # lines are what these tests read; hostmcp keeps rmcp at warn unless HOSTMCP_LOG names it.
    srv = start_server(env={"HOSTMCP_LOG": "info,rmcp=info,hostmcp::transport::stateless=debug"})
    yield srv
    srv.stop()


@pytest.fixture
def home():
    path = Path(tempfile.mkdtemp(prefix="hostmcp-client-home-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def log_since(server, offset: int) -> str:
    return server.log()[offset:]


# ------------------------------------------------------------------------------- mcp-remote

def browser_trap(home: Path) -> tuple[dict[str, str], Path]:
    """Environment whose every browser opener only leaves a mark in `home/browser-opened`."""
    marker = home / "browser-opened"
    traps = home / "trap-bin"
    traps.mkdir()
    for name in ("xdg-open", "gio", "x-www-browser", "sensible-browser", "browser"):
        script = traps / name
        script.write_text(f'#!/bin/sh\necho "$0 $*" >> "{marker}"\nexit 0\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {
        "HOME": str(home),
        "PATH": f"{traps}:{node_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "BROWSER": str(traps / "browser"),
        "DISPLAY": "",
        "WAYLAND_DISPLAY": "",
    }
    return env, marker


def mcp_remote_env(home: Path, token: str) -> dict[str, str]:
    env, _ = browser_trap(home)
    return {
        **env,
        "HOSTMCP_TOKEN": token,
        # npx must take the pinned local install and never ask a registry.
        "npm_config_offline": "true",
        "npm_config_registry": "http://127.0.0.1:9/",
        "npm_config_update_notifier": "false",
    }


def local_mcp_remote(server, home: Path, url: str, *flags: str) -> StdioServerParameters:
    """The pinned mcp-remote bridging `url` for alice, with the docs' token header."""
    return StdioServerParameters(
        command=str(node_bin() / "mcp-remote"),
        args=[url, *flags, "--header", "Authorization: Bearer ${HOSTMCP_TOKEN}"],
        env=mcp_remote_env(home, server.tokens["alice"]),
    )


async def call_through(params: StdioServerParameters, errlog_path: Path) -> None:
    with open(errlog_path, "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            assert "run_command" in [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("run_command", {"argv": ["echo", "through mcp-remote"]})
            assert result.is_error is False
            assert result.structured_content["stdout"] == "through mcp-remote\n"
            failed = await client.call_tool("run_command", {"command": "exit 3"})
            assert failed.is_error is True


@pytest.mark.anyio
async def test_claude_desktop_snippet_mcp_remote_over_mcp(server, home):
    """The Claude Desktop snippet: npx mcp-remote URL --header "Authorization: Bearer ${HOSTMCP_TOKEN}"."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx not found (it comes with npm, which scripts/install-test-deps.sh needs)")
    offset = len(server.log())
    params = StdioServerParameters(
        command=npx,
        args=["mcp-remote", server.mcp_url, "--header", "Authorization: Bearer ${HOSTMCP_TOKEN}"],
        env=mcp_remote_env(home, server.tokens["alice"]),
        cwd=str(node_bin().parent.parent),  # the npm prefix that pins mcp-remote
    )
    await call_through(params, home / "mcp-remote.log")
    log = log_since(server, offset)
    assert f"via mcp-remote {MCP_REMOTE_VERSION}" in log
    assert 'tool call principal="alice" tool="run_command"' in log
    errors = (home / "mcp-remote.log").read_text()
    assert "StreamableHTTPClientTransport" in errors, errors
    assert not (home / "browser-opened").exists()


@pytest.mark.anyio
async def test_mcp_remote_over_sse(server, home):
    offset = len(server.log())
    params = local_mcp_remote(server, home, server.sse_url, "--transport", "sse-only")
    await call_through(params, home / "mcp-remote.log")
    log = log_since(server, offset)
    assert 'session opened principal="alice" transport="sse"' in log
    assert 'tool call principal="alice" tool="run_command"' in log
    assert "SSEClientTransport" in (home / "mcp-remote.log").read_text()


@pytest.mark.anyio
async def test_mcp_remote_protocol_auto_speaks_2026_07_28(server, home):
    """`--protocol auto` finds hostmcp's 2026-07-28 era and bridges a legacy client onto it."""
    offset = len(server.log())
    params = local_mcp_remote(server, home, server.mcp_url, "--protocol", "auto")
    await call_through(params, home / "mcp-remote.log")
    assert "speaks MCP 2026-07-28" in (home / "mcp-remote.log").read_text()
    # Answered directly (transport/stateless.rs), which logs each request at debug level.
    log = log_since(server, offset)
    assert "stateless request" in log and 'protocol_version="2026-07-28"' in log, log


INITIALIZE = (b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
              b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n')


@pytest.mark.parametrize("path,transport", [("/mcp", "http-first"), ("/sse", "sse-only")])
def test_mcp_remote_with_a_wrong_token_exits_without_a_browser(server, home, path, transport):
    env, marker = browser_trap(home)
    env["HOSTMCP_TOKEN"] = "wrong-token"
    process = subprocess.Popen(
        [str(node_bin() / "mcp-remote"), server.base + path, "--transport", transport,
         "--header", "Authorization: Bearer ${HOSTMCP_TOKEN}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=home)
    try:
        process.stdin.write(INITIALIZE)
        process.stdin.flush()  # stdin stays open: the exit must come from the refusal
        returncode = process.wait(timeout=20)
        stdout, stderr = process.stdout.read(), process.stderr.read().decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    assert returncode != 0, stderr
    assert "401" in stderr, stderr
    assert b'"result"' not in stdout
    assert not marker.exists(), marker.read_text()


# ------------------------------------------------------------------------------- Claude Code

def claude(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Claude Code's CLI with a fresh HOME, no credentials and no traffic but to the server."""
    wrapper = node_bin().parent / "@anthropic-ai/claude-code/cli-wrapper.cjs"  # runs the native binary
    env = {
        "HOME": str(home),
        "PATH": f"{node_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    return subprocess.run([str(node_bin() / "node"), str(wrapper), *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=home, stdin=subprocess.DEVNULL)


def test_claude_code_version_is_the_pinned_one(home):
    done = claude(home, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(CLAUDE_CODE_VERSION), done.stdout


@pytest.mark.parametrize("transport,path", [("http", "/mcp"), ("sse", "/sse")])
def test_claude_code_mcp_add_then_list_connects(server, home, transport, path):
    """The Claude Code snippets; `claude mcp list` checks each server by connecting to it."""
    url = server.base + path
    for name, token in (("hostmcp", server.tokens["alice"]), ("hostmcp-wrong", "wrong-token")):
        done = claude(home, "mcp", "add", "--transport", transport, name, url,
                      "--header", f"Authorization: Bearer {token}")
        assert done.returncode == 0, done.stdout + done.stderr
    offset = len(server.log())
    done = claude(home, "mcp", "list")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split(":", 1)[0]: line for line in done.stdout.splitlines() if ": http" in line}
    assert set(lines) == {"hostmcp", "hostmcp-wrong"}, done.stdout
    assert "Connected" in lines["hostmcp"] and "Failed" not in lines["hostmcp"], done.stdout
    assert "Failed to connect" in lines["hostmcp-wrong"], done.stdout
    assert "401" in lines["hostmcp-wrong"], done.stdout
    log = log_since(server, offset)
    assert "authentication failed" in log, log
    if transport == "http":
        # Over /mcp this Claude Code speaks the stateless 2026-07-28 era, answered directly
        # (no rmcp service, so no "Service initialized" line).
        assert "stateless request" in log and 'protocol_version="2026-07-28"' in log, log
    else:
        assert "Service initialized" in log, log
        assert 'session opened principal="alice" transport="sse"' in log, log
        assert f'name: "claude-code", title: Some("Claude Code"), version: "{CLAUDE_CODE_VERSION}"' in log, log

    done = claude(home, "mcp", "get", "hostmcp")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Connected" in done.stdout and f"Type: {transport}" in done.stdout, done.stdout


# ------------------------------------------------------------------------------- Codex

CODEX_CONFIG = """[mcp_servers.hostmcp]
url = "{url}"
bearer_token_env_var = "HOSTMCP_TOKEN"
"""


class CodexAppServer:
    """`codex app-server` over stdio (JSON lines), with the docs' config.toml in a fresh HOME."""

    def __init__(self, home: Path, url: str, token: str):
        (home / ".codex").mkdir()
        (home / ".codex/config.toml").write_text(CODEX_CONFIG.format(url=url))
        env = {"HOME": str(home), "PATH": f"{node_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "HOSTMCP_TOKEN": token}
        self.stderr = open(home / "codex.log", "wb")
        self.process = subprocess.Popen([str(node_bin() / "codex"), "app-server"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=home)
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.next_id = 0

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def request(self, method: str, params: dict, timeout: float = 20) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            line = self.lines.get(timeout=timeout)
            assert line is not None, f"codex app-server exited during {method}"
            message = json.loads(line)
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message
                return message["result"]

    def send(self, message: dict):
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def __enter__(self):
        self.request("initialize", {"clientInfo": {"name": "hostmcp-e2e", "version": "1"}})
        self.send({"method": "initialized"})
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.stderr.close()


def test_codex_version_is_the_pinned_one(home):
    done = subprocess.run([str(node_bin() / "codex"), "--version"], capture_output=True, text=True, timeout=30,
                          env={"HOME": str(home), "PATH": f"{node_bin()}:{os.environ.get('PATH', '')}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"codex-cli {CODEX_VERSION}", done.stdout


def test_codex_config_snippet_lists_tools_and_calls_run_command(server, home):
    offset = len(server.log())
    with CodexAppServer(home, server.mcp_url, server.tokens["alice"]) as codex:
        [status] = codex.request("mcpServerStatus/list", {"serverName": "hostmcp"})["data"]
        assert status["serverInfo"]["name"] == "hostmcp", status
        assert "run_command" in status["tools"], status
        thread = codex.request("thread/start", {})["thread"]["id"]
        result = codex.request("mcpServer/tool/call", {"server": "hostmcp", "threadId": thread,
                                                        "tool": "run_command",
                                                        "arguments": {"argv": ["echo", "from codex"]}})
    assert result["isError"] is False, result
    assert result["structuredContent"]["stdout"] == "from codex\n"
    assert 'tool call principal="alice" tool="run_command"' in log_since(server, offset)


def test_codex_with_a_wrong_token_reports_auth_required(server, home):
    with CodexAppServer(home, server.mcp_url, "wrong-token") as codex:
        [status] = codex.request("mcpServerStatus/list", {"serverName": "hostmcp"})["data"]
    assert status["tools"] == {} and status["serverInfo"] is None, status
    assert "Auth required" in status["toolsError"], status
