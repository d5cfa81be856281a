"""The audit log as a security reviewer reads it: one record per decision, no secrets,
a hash chain that `hostmcp audit verify` checks; and the limit on failed authentications."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections import Counter

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
    deadline = time.monotonic() + 30
    while sum(r["event"] == "command_finished" for r in records(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    # Stopped, the server has written every record it ever will: a late duplicate is counted too.
    server.stop()
    lines = records(server)
    # One record per decision: counted, so a decision written twice fails here.
    assert Counter(r["event"] for r in lines) == {
        "session_opened": 2, "session_closed": 2,  # one streamable HTTP session, one SSE session
        "command_started": 2, "command_finished": 2,  # run_command, and the job
        "job_action": 1,  # job_signal
        "tool_denied": 1,  # the reader's run_command
        "auth_failed": 1,  # the wrong token
    }, [(r["seq"], r["event"]) for r in lines]
    for event in ["command_started", "command_finished"]:
        assert sorted(r["command_id"] for r in lines if r["event"] == event) == ["c-1", "c-2"]
    for event in ["session_opened", "session_closed"]:
        sessions = [(r["transport"], r["session"]) for r in lines if r["event"] == event]
        assert len(set(sessions)) == 2 and {t for t, _ in sessions} == {"sse", "streamable_http"}
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


# ---- the audit file deleted, renamed (logrotate) and keyed ----------------------------------

def run_verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, "audit", "verify", *args], capture_output=True, text=True, timeout=30)


def wait_for_log(server, text: str, count: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server log:\n{server.log()}")


def make_key(path) -> None:
    done = subprocess.run([BIN, "audit", "keygen", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert os.stat(path).st_mode & 0o777 == 0o600


async def run_echo(server, word: str):
    async with connect(server, "streamable", "legacy") as client:
        return await client.call_tool("run_command", {"argv": ["echo", word]})


@pytest.mark.anyio
async def test_a_deleted_audit_log_refuses_commands_until_sighup_reopens_it(tmp_path):
    audit = tmp_path / "audit.jsonl"
    server = start_server(args=["--audit-log", str(audit)])
    try:
        # Near miss first: with the file in place the command runs.
        ok = await run_echo(server, "before")
        assert ok.is_error is not True and "before" in ok.content[0].text
        audit.unlink()
        refused = await run_echo(server, "while-gone")
        assert refused.is_error is True
        assert "deleted or renamed" in refused.content[0].text, refused.content[0].text
        assert str(audit) not in refused.content[0].text, "the path is the operator's business"
        assert not audit.exists()

        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "audit log reopened")
        again = await run_echo(server, "after")
        assert again.is_error is not True and "after" in again.content[0].text
    finally:
        server.stop()
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(r.get("argv") == ["echo", "after"] for r in lines)
    assert not any(r.get("argv") == ["echo", "while-gone"] and r["event"] == "command_started" for r in lines)
    # The new file continues the old chain: whole, it starts mid-chain.
    alone = run_verify(str(audit))
    assert alone.returncode == 1 and "does not start a chain" in alone.stdout
    part = run_verify("--mid-chain", str(audit))
    assert part.returncode == 0, part.stdout + part.stderr
    assert f"continuing after {lines[0]['seq'] - 1}:{lines[0]['prev']}" in part.stdout


@pytest.mark.anyio
async def test_a_keyed_log_renamed_then_sighup_verifies_with_the_key_across_both_files(tmp_path):
    audit = tmp_path / "audit.jsonl"
    rotated = tmp_path / "audit.jsonl.1"
    key = tmp_path / "audit.key"
    make_key(key)
    config = config_text(f'\n[audit]\npath = "{audit}"\nkey_file = "{key}"\n')
    server = start_server(config=config)
    try:
        assert (await run_echo(server, "one")).is_error is not True
        audit.rename(rotated)  # what logrotate does, then its postrotate sends SIGHUP
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "audit log reopened")
        assert (await run_echo(server, "two")).is_error is not True
    finally:
        server.stop()
    assert key.read_text().strip() not in server.log()
    anchor = tmp_path / "audit.jsonl.anchor"
    assert anchor.exists() and os.stat(anchor).st_mode & 0o777 == 0o600

    both = run_verify("--key", str(key), str(rotated), str(audit))
    assert both.returncode == 0, both.stdout + both.stderr
    assert "intact" in both.stdout
    # Near misses: the new file alone is a part of the chain; the old one cut short, or a
    # line edited and the chain recomputed, fails with the key.
    assert run_verify("--key", str(key), "--mid-chain", str(audit)).returncode == 0
    assert run_verify("--key", str(key), str(audit)).returncode == 1
    old = rotated.read_text().splitlines()
    rotated.write_text("\n".join(old[:-1]) + "\n")
    cut = run_verify("--key", str(key), str(rotated), str(audit))
    assert cut.returncode == 1 and "missing" in cut.stdout, cut.stdout
    rotated.write_text("\n".join(old) + "\n")

    lines = audit.read_text().splitlines()
    assert sum('"echo","two"' in line for line in lines) == 1
    forged = [lines[0].replace('"echo","two"', '"echo","TWO"')]
    for line in lines[1:]:
        record = json.loads(line)
        prev = hashlib.sha256(forged[-1].encode()).hexdigest()
        forged.append(line.replace('"echo","two"', '"echo","TWO"').replace(record["prev"], prev))
    assert forged != lines
    audit.write_text("\n".join(forged) + "\n")
    assert run_verify(str(rotated), str(audit)).returncode == 0  # the hashes alone accept it
    keyed = run_verify("--key", str(key), "--no-anchor-file", str(rotated), str(audit))
    assert keyed.returncode == 1 and "MAC" in keyed.stdout, keyed.stdout


@pytest.mark.anyio
async def test_a_keyed_log_emptied_or_cut_fails_verify_with_its_anchor_file(tmp_path):
    audit = tmp_path / "audit.jsonl"
    key = tmp_path / "audit.key"
    make_key(key)
    server = start_server(config=config_text(f'\n[audit]\npath = "{audit}"\nkey_file = "{key}"\n'))
    try:
        assert (await run_echo(server, "x")).is_error is not True
    finally:
        server.stop()
    assert run_verify("--key", str(key), str(audit)).returncode == 0
    lines = audit.read_text().splitlines()
    audit.write_text("\n".join(lines[:-1]) + "\n")
    assert run_verify(str(audit)).returncode == 0, "a cut at a line end is a valid chain"
    cut = run_verify("--key", str(key), str(audit))
    assert cut.returncode == 1 and "cut off the end" in cut.stdout, cut.stdout
    audit.write_text("")
    emptied = run_verify("--key", str(key), str(audit))
    assert emptied.returncode == 1 and "emptied" in emptied.stdout, emptied.stdout
    # And the server will not continue a keyed log that ends before its anchor.
    audit.write_text("\n".join(lines[:-1]) + "\n")
    (tmp_path / "c.toml").write_text(config_text(f'\n[audit]\npath = "{audit}"\nkey_file = "{key}"\n'))
    done = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(tmp_path / "c.toml")],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1 and "cut off the end" in done.stderr, done.stderr


def test_a_server_refuses_an_audit_key_other_users_may_read(tmp_path):
    key = tmp_path / "audit.key"
    make_key(key)
    os.chmod(key, 0o644)
    (tmp_path / "c.toml").write_text(config_text(f'\n[audit]\npath = "{tmp_path}/a.jsonl"\nkey_file = "{key}"\n'))
    done = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(tmp_path / "c.toml")],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1 and "mode 644" in done.stderr and "chmod 600" in done.stderr, done.stderr
    assert key.read_text().strip() not in done.stderr
    # Near miss: the same key with mode 0600 is accepted (the server starts).
    os.chmod(key, 0o600)
    server = start_server(config=(tmp_path / "c.toml").read_text())
    server.stop()
    assert "audit key" not in server.log()


@pytest.mark.anyio
async def test_a_wiped_or_rolled_back_keyed_log_is_named_and_caught_by_an_off_host_anchor(tmp_path):
    """F5: a keyed log deleted with its anchor restarts at genesis, and an anchor file rolled
    back with a cut log agrees with it: on the host both verify (said loudly for a genesis);
    the anchor kept off the host catches both."""
    audit = tmp_path / "audit.jsonl"
    anchor_file = tmp_path / "audit.jsonl.anchor"
    key = tmp_path / "audit.key"
    make_key(key)
    config = config_text(f'\n[audit]\npath = "{audit}"\nkey_file = "{key}"\n')

    async def serve_and_run(words):
        server = start_server(config=config)
        try:
            for word in words:
                assert (await run_echo(server, word)).is_error is not True
        finally:
            server.stop()
        return server

    first = await serve_and_run(["one"])
    assert "NEW AUDIT CHAIN" in first.log()
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert records[0]["seq"] == 1 and records[0]["event"] == "chain_started"
    fresh = run_verify("--key", str(key), str(audit))
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert f"starts at genesis (seq 1) at {records[0]['time']}" in fresh.stdout, fresh.stdout
    assert f"anchor file {anchor_file}: " in fresh.stdout

    old_lines, old_anchor = audit.read_text(), anchor_file.read_bytes()
    second = await serve_and_run(["two", "three"])
    assert "NEW AUDIT CHAIN" not in second.log(), "a chain that goes on is not new"
    last = json.loads(audit.read_text().splitlines()[-1])
    off_host = f"{last['seq']}:{hashlib.sha256(audit.read_text().splitlines()[-1].encode()).hexdigest()}"
    assert run_verify("--key", str(key), "--anchor", off_host, str(audit)).returncode == 0  # near miss

    # Rolled back: the log cut to what it was, the anchor file of that time put back.
    audit.write_text(old_lines)
    anchor_file.write_bytes(old_anchor)
    assert run_verify("--key", str(key), str(audit)).returncode == 0, "not visible on the host"
    caught = run_verify("--key", str(key), "--anchor", off_host, str(audit))
    assert caught.returncode == 1 and "cut off the end" in caught.stdout, caught.stdout

    # Wiped: both deleted, a server started on nothing.
    audit.unlink()
    anchor_file.unlink()
    third = await serve_and_run(["four"])
    assert "NEW AUDIT CHAIN" in third.log()
    wiped = run_verify("--key", str(key), str(audit))
    assert wiped.returncode == 0 and "NOTE: this chain starts at genesis" in wiped.stdout, wiped.stdout
    caught = run_verify("--key", str(key), "--anchor", off_host, str(audit))
    assert caught.returncode == 1, caught.stdout
    assert "before the anchor's seq" in caught.stdout or "does not match the anchor" in caught.stdout, caught.stdout
