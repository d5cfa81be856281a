"""`hostmcp connect` (the stdio bridge), `hostmcp call` and `hostmcp tools` against a real server.

The Python SDK's stdio client runs `hostmcp connect URL` as its server, as a stdio-only client
(Claude Desktop's local config) would: over Streamable HTTP (`/mcp`) and over legacy HTTP+SSE
(`/sse`, reached by the spec's fallback: the POST is refused with 405, the GET gives the
stream). Progress comes through, a cancelled call's command is killed on the server, a
restarted server is reconnected to while the call in flight fails with a clear error, and a
wrong token is a clear error. `call` and `tools` are checked by their output and exit codes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import BIN, Server, descendants, pid_alive, start_server, wait_for_port

pytestmark = pytest.mark.anyio

PATHS = ["/mcp", "/sse"]


def bridge_params(server: Server, path: str, token: str | None, *flags: str) -> StdioServerParameters:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTMCP_LOG": "info"}
    if token is not None:
        env["HOSTMCP_TOKEN"] = token
    return StdioServerParameters(command=BIN, args=["connect", server.base + path, *flags], env=env)


@asynccontextmanager
async def bridged(server: Server, path: str, errlog: Path, token: str | None = None, *flags: str):
    """A Python SDK client whose server is `hostmcp connect` (stderr to `errlog`)."""
    token = server.tokens["alice"] if token is None else token
    with open(errlog, "w") as log:
        async with Client(stdio_client(bridge_params(server, path, token, *flags), errlog=log),
                          mode="legacy") as client:
            yield client


def live_descendants(server: Server) -> list[int]:
    return [pid for pid in descendants(server.process.pid) if pid_alive(pid)]


@pytest.mark.parametrize("path", PATHS)
async def test_lists_and_calls_tools_through_the_bridge(shared_server, path, tmp_path):
    errlog = tmp_path / "connect.log"
    async with bridged(shared_server, path, errlog) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" in names and "job_start" in names
        result = await client.call_tool("run_command", {"argv": ["echo", "through connect"]})
        assert result.is_error is False
        assert result.structured_content["stdout"] == "through connect\n"
        failed = await client.call_tool("run_command", {"command": "exit 3"})
        assert failed.is_error is True and failed.structured_content["exit_code"] == 3
    log = errlog.read_text()
    if path == "/sse":
        # The fallback rule: the POST to /sse is refused (405), the GET opens the legacy stream.
        assert "trying legacy HTTP+SSE" in log and "LegacySse" in log, log
    else:
        assert "StreamableHttp" in log and "legacy" not in log, log


@pytest.mark.parametrize("path", PATHS)
async def test_progress_comes_through_the_bridge(shared_server, path, tmp_path):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, message))

    async with bridged(shared_server, path, tmp_path / "connect.log") as client:
        result = await client.call_tool(
            "run_command", {"command": "for i in 1 2 3 4; do echo line$i; sleep 0.4; done"},
            progress_callback=on_progress)
        assert result.structured_content["exit_code"] == 0
    assert len(seen) >= 2, seen
    assert any("line" in (message or "") for _, message in seen), seen


@pytest.mark.parametrize("path", PATHS)
async def test_cancelling_through_the_bridge_kills_the_command(server, path, tmp_path):
    async with bridged(server, path, tmp_path / "connect.log") as client:
        with anyio.move_on_after(1.5):
            await client.call_tool("run_command", {"command": "sleep 300", "timeout_secs": 600})
        deadline = anyio.current_time() + 10
        while (running := live_descendants(server)) and anyio.current_time() < deadline:
            await anyio.sleep(0.1)
        assert running == [], f"still running after cancel: {running}"
        # Near miss: the session is intact, the next call runs.
        result = await client.call_tool("run_command", {"argv": ["echo", "after cancel"]})
        assert result.structured_content["stdout"] == "after cancel\n"


def restart_on_same_port(server: Server) -> Server:
    """Stop `server` and start it again on its port, with its config and state."""
    workdir = server.state_dir.parent
    server.stop()
    log_path = workdir / "server-again.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
           "XDG_STATE_HOME": str(server.state_dir), "HOSTMCP_LOG": "info"}
    cmd = [BIN, "serve", "--listen", f"127.0.0.1:{server.port}", "--config", str(workdir / "config.toml")]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    again = Server(process, server.port, server.state_dir, log_path, server.tokens)
    try:
        assert wait_for_port(process, log_path) == server.port
    except BaseException:
        again.stop()
        raise
    return again


@pytest.mark.parametrize("path", PATHS)
async def test_a_server_restart_fails_the_call_in_flight_and_the_bridge_reconnects(path, tmp_path):
    first = start_server()
    again = None
    try:
        async with bridged(first, path, tmp_path / "connect.log") as client:
            before = await client.call_tool("run_command", {"argv": ["echo", "before"]})
            assert before.structured_content["stdout"] == "before\n"
            failure: list[BaseException] = []

            async def long_call():
                try:
                    await client.call_tool("run_command", {"command": "sleep 60", "timeout_secs": 120})
                except MCPError as error:
                    failure.append(error)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(long_call)
                await anyio.sleep(1.0)
                again = await anyio.to_thread.run_sync(restart_on_same_port, first)
            assert failure, "the call in flight did not fail"
            assert "hostmcp connect" in str(failure[0]), failure[0]
            # The bridge opened a new session with the client's initialize: calls work again.
            with anyio.fail_after(60):
                after = await client.call_tool("run_command", {"argv": ["echo", "after restart"]})
            assert after.structured_content["stdout"] == "after restart\n"
        log = (tmp_path / "connect.log").read_text()
        assert "reconnected: a new session" in log, log
    finally:
        first.stop()
        if again is not None:
            again.stop()


@pytest.mark.parametrize("path", PATHS)
async def test_a_wrong_token_is_a_clear_error(shared_server, path, tmp_path):
    errlog = tmp_path / "connect.log"
    with pytest.raises(Exception) as raised:
        with anyio.fail_after(60):
            async with bridged(shared_server, path, errlog, "wrong-token-0123456789") as client:
                await client.list_tools()
    text = f"{raised.value!r} {errlog.read_text()}"
    assert "refused the token (HTTP 401)" in text, text
    assert "HOSTMCP_TOKEN" in errlog.read_text()
    # Near miss: the same bridge with the right token from a file works.
    token_file = tmp_path / "token"
    token_file.write_text(shared_server.tokens["alice"] + "\n")
    async with bridged(shared_server, path, errlog, "wrong-token-0123456789",
                       "--token-file", str(token_file)) as client:
        assert "run_command" in [tool.name for tool in (await client.list_tools()).tools]


def hostmcp(*args: str, token: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if token is not None:
        env["HOSTMCP_TOKEN"] = token
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("path", PATHS)
def test_call_prints_the_result_and_exits_by_is_error(shared_server, path):
    url = shared_server.base + path
    token = shared_server.tokens["alice"]
    ok = hostmcp("call", url, "run_command", '{"command": "echo one; sleep 1.2; echo two"}', token=token)
    assert ok.returncode == 0, ok.stderr
    assert "one\ntwo\n" in ok.stdout and "exit code 0" in ok.stdout
    assert "progress:" in ok.stderr, ok.stderr
    failed = hostmcp("call", url, "run_command", '{"command": "exit 3"}', token=token)
    assert failed.returncode == 1, failed.stderr
    assert "exit code 3" in failed.stdout
    import json
    whole = hostmcp("call", url, "run_command", '{"argv": ["echo", "json"]}', "--json", token=token)
    assert whole.returncode == 0, whole.stderr
    result = json.loads(whole.stdout)
    assert result["isError"] is False and result["structuredContent"]["stdout"] == "json\n"


def test_call_and_tools_exit_2_when_the_server_refuses_or_is_not_there(shared_server):
    wrong = hostmcp("call", shared_server.mcp_url, "run_command", '{"argv": ["true"]}', token="wrong-token-x")
    assert wrong.returncode == 2 and "refused the token" in wrong.stderr, wrong.stderr
    listener = __import__("socket").socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    absent = hostmcp("tools", f"http://127.0.0.1:{port}/mcp", token=shared_server.tokens["alice"])
    assert absent.returncode == 2 and "cannot reach" in absent.stderr, absent.stderr
    unknown = hostmcp("call", shared_server.mcp_url, "no_such_tool", token=shared_server.tokens["alice"])
    assert unknown.returncode == 2, unknown.stderr
    bad_json = hostmcp("call", shared_server.mcp_url, "run_command", "[1]", token=shared_server.tokens["alice"])
    assert bad_json.returncode == 2 and "not a JSON object" in bad_json.stderr
    # A token on the command line is refused before anything is sent.
    flag = hostmcp("tools", shared_server.mcp_url, "--token", shared_server.tokens["alice"])
    assert flag.returncode == 2 and "--token is refused" in flag.stderr, flag.stderr


@pytest.mark.parametrize("path", PATHS)
def test_tools_lists_names_and_summaries(shared_server, path, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(shared_server.tokens["reader"])
    listed = hostmcp("tools", shared_server.base + path, "--token-file", str(token_file))
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    # The read role sees no command tools.
    assert "host_info" in names and "run_command" not in names, listed.stdout
    import json
    operator = hostmcp("tools", shared_server.base + path, "--json", token=shared_server.tokens["alice"])
    tools = json.loads(operator.stdout)
    assert "run_command" in [tool["name"] for tool in tools]
    assert all("inputSchema" in tool for tool in tools)


def make_ca_and_leaf(directory: Path) -> tuple[str, str, str]:
    """A CA and a certificate it signed for 127.0.0.1: (ca.pem, leaf.pem, leaf.key)."""
    ca_key, ca, key, csr, leaf = (directory / n for n in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    ext = directory / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hostmcp test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(leaf))
    return str(ca), str(leaf), str(key)


async def test_https_with_a_custom_ca(tmp_path):
    ca, cert, key = make_ca_and_leaf(tmp_path)
    server = start_server(args=["--tls-cert", cert, "--tls-key", key], ca=ca)
    try:
        token = server.tokens["alice"]
        ok = await anyio.to_thread.run_sync(lambda: hostmcp(
            "call", server.mcp_url, "run_command", '{"argv": ["echo", "tls"]}', "--ca-file", ca, token=token))
        assert ok.returncode == 0 and "tls\n" in ok.stdout, ok.stderr
        # Near miss: without the CA the server's certificate is not trusted.
        untrusted = await anyio.to_thread.run_sync(lambda: hostmcp(
            "call", server.mcp_url, "run_command", '{"argv": ["echo", "tls"]}', token=token))
        assert untrusted.returncode == 2 and "cannot reach" in untrusted.stderr, untrusted.stderr
        async with bridged(server, "/mcp", tmp_path / "connect.log", None, "--ca-file", ca) as client:
            result = await client.call_tool("run_command", {"argv": ["echo", "bridged tls"]})
            assert result.structured_content["stdout"] == "bridged tls\n"
    finally:
        server.stop()


def test_ctrl_c_cancels_the_call_on_the_server(server):
    """SIGINT to `hostmcp call` cancels the call: the command is killed, not left to its timeout."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTMCP_TOKEN": server.tokens["alice"]}
    with tempfile.TemporaryFile() as stderr:
        call = subprocess.Popen([BIN, "call", server.mcp_url, "run_command",
                                 '{"command": "sleep 300", "timeout_secs": 600}'],
                                env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 30
            while not live_descendants(server) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert live_descendants(server), "the command never started"
            call.send_signal(signal.SIGINT)
            assert call.wait(timeout=30) == 130
        finally:
            if call.poll() is None:
                call.kill()
                call.wait()
        stderr.seek(0)
        assert b"interrupted" in stderr.read()
    deadline = time.monotonic() + 10
    while (running := live_descendants(server)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running == [], f"still running after Ctrl-C: {running}"
    # Near miss: the same call left alone runs and answers.
    done = hostmcp("call", server.mcp_url, "run_command", '{"command": "sleep 0.2; echo done"}',
                   token=server.tokens["alice"])
    assert done.returncode == 0 and "done" in done.stdout
