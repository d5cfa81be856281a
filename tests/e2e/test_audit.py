"""The audit log as a security reviewer reads it: one record per decision, no secrets,
a hash chain that `hostmcp audit verify` checks; and the limit on failed authentications."""

from __future__ import annotations

import json
import subprocess

import httpx2
import pytest

from conftest import BIN, TOKENS, config_text, start_server
from mcp_clients import connect

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.anyio
async def test_every_decision_is_one_record_and_no_secret_is_written(server):
    async with connect(server, "streamable", "legacy") as client:
        await client.call_tool("run_command", {"command": "echo hi; exit 3", "env": {"API_KEY": "sup3r-s3cret"}})
        job = (await client.call_tool("job_start", {"argv": ["sleep", "30"]})).structured_content["job_id"]
        await client.call_tool("job_signal", {"job_id": job})
    async with connect(server, "sse", "legacy", headers=server.headers("reader")) as client:
        await client.call_tool("run_command", {"command": "id"})
    httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": "Bearer wrong-guess"})
    for _ in range(50):
        lines = records(server)
        if sum(r["event"] == "command_finished" for r in lines) == 2:
            break
        import time
        time.sleep(0.1)
    events = [r["event"] for r in lines]
    started = [r for r in lines if r["event"] == "command_started"]
    assert started[0]["command"] == "echo hi; exit 3" and started[0]["principal"] == "alice"
    assert started[0]["tool"] == "run_command" and started[0]["client"].startswith("127.0.0.1:")
    assert started[0]["env"] == [{"name": "API_KEY", "value": "[redacted]"}]
    assert started[1]["argv"] == ["sleep", "30"] and started[1]["job_id"] == job
    finished = {r["command_id"]: r for r in lines if r["event"] == "command_finished"}
    assert finished[started[0]["command_id"]]["exit_code"] == 3
    assert finished[started[1]["command_id"]]["cancelled"] is True
    assert any(r["event"] == "job_action" and r["job_id"] == job for r in lines)
    denied = [r for r in lines if r["event"] == "tool_denied"]
    assert denied and denied[0]["principal"] == "reader" and denied[0]["rule"] == "role"
    transports = {(r["event"], r["transport"]) for r in lines if r["event"].startswith("session_")}
    assert {("session_opened", "sse"), ("session_closed", "sse"),
            ("session_opened", "streamable_http"), ("session_closed", "streamable_http")} <= transports
    assert any(r["event"] == "auth_failed" for r in lines)
    text = (server.state_dir / "hostmcp" / "audit.jsonl").read_text()
    for secret in ["sup3r-s3cret", "wrong-guess", *[token for token, _ in TOKENS.values()]]:
        assert secret not in text
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))


def test_audit_verify_accepts_an_intact_log_and_names_an_edited_line(server):
    httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": "Bearer x1"})
    httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": "Bearer x2"})
    httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": "Bearer x3"})
    server.stop()
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    ok = subprocess.run([BIN, "audit", "verify", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout
    lines = path.read_text().splitlines()
    assert "invalid token" in lines[1]
    lines[1] = lines[1].replace("invalid token", "valid token")
    path.write_text("\n".join(lines) + "\n")
    bad = subprocess.run([BIN, "audit", "verify", str(path)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "line 2" in bad.stdout + bad.stderr


def test_failed_authentications_are_limited_per_address():
    server = start_server(config=config_text(limits={"auth_failures_per_minute": 3}))
    try:
        wrong = {**ACCEPT, "Authorization": "Bearer wrong"}
        assert [httpx2.post(server.mcp_url, json=INIT, headers=wrong).status_code for _ in range(3)] == [401] * 3
        limited = httpx2.post(server.mcp_url, json=INIT, headers=wrong)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        # Only failures are limited: a valid token from that address is still served.
        valid = httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, **server.headers()})
        assert valid.status_code == 200
    finally:
        server.stop()


def test_a_valid_token_is_not_limited_by_its_own_successes():
    server = start_server(config=config_text(limits={"auth_failures_per_minute": 3}))
    try:
        codes = [httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, **server.headers()}).status_code
                 for _ in range(10)]
        assert codes == [200] * 10
    finally:
        server.stop()


def test_a_server_whose_audit_log_cannot_be_opened_does_not_start(tmp_path):
    not_a_file = tmp_path / "audit.jsonl"
    not_a_file.mkdir()
    done = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--audit-log", str(not_a_file)],
                          capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HOSTMCP_TOKEN": "t"})
    assert done.returncode == 1
    assert "error:" in done.stderr and "hint:" in done.stderr
