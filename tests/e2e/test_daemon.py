"""Running like a daemon: stopping when stderr's reader is gone, config discovery, `hostmcp
check`, SIGHUP reload of policy and limits, JSON logs and W3C traceparent."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import pytest

from conftest import BIN, config_text, start_server
from mcp_clients import connect
from test_token_lifecycle import config_of


def server_env(workdir: Path, extra: dict | None = None) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "XDG_STATE_HOME": str(workdir / "state"),
        "XDG_CONFIG_HOME": str(workdir / "xdg-config"),
        "HOSTMCP_LOG": "info",
    }
    env.update(extra or {})
    return env


def read_until(stream, pattern: str, timeout: float = 20) -> re.Match:
    """Read lines of `stream` until one matches `pattern`; fail after `timeout` seconds."""
    found: list[re.Match] = []
    seen: list[str] = []

    def reader():
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                found.append(match)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    assert found, f"{pattern!r} not seen in {timeout} s:\n{''.join(seen)}"
    return found[0]


def stop_or_kill(process: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM `process`; True when it exits within `timeout` s (else it is killed)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return False


def test_sigterm_stops_the_server_when_the_reader_of_its_stderr_is_gone():
    # The bug: the "SIGTERM: shutting down" line hit EPIPE, tracing-subscriber reported that
    # with eprintln!, which panicked the signal task, and shutdown never came.
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    (workdir / "config.toml").write_text(config_text())
    process = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(workdir / "config.toml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=server_env(workdir))
    try:
        port = int(read_until(process.stderr, r"address=127\.0\.0\.1:(\d+)").group(1))
        assert httpx2.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        process.stderr.close()  # like `| head -1` exiting
        assert stop_or_kill(process, timeout=15), "hostmcp ignored SIGTERM after its stderr reader left"
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_sigterm_stops_the_server_when_stderr_is_a_file():
    # The near miss: stderr still writable, the shutdown line is logged and the server exits 0.
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    (workdir / "config.toml").write_text(config_text())
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(workdir / "config.toml")],
            stdout=subprocess.DEVNULL, stderr=log, env=server_env(workdir))
    try:
        deadline = time.monotonic() + 20
        while "listening" not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
            time.sleep(0.05)
        assert stop_or_kill(process, timeout=15)
        assert process.returncode == 0
        assert "SIGTERM: shutting down" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


ECHO_AND_TRUE = """
[policy]
default = "deny"

[[policy.allow]]
program = "/usr/bin/echo"

[[policy.allow]]
program = "/usr/bin/true"
"""

ONLY_TRUE = """
[policy]
default = "deny"

[[policy.allow]]
program = "/usr/bin/true"
"""

# A relative program path: the policy cannot be resolved.
BROKEN_POLICY = """
[policy]
default = "deny"

[[policy.allow]]
program = "true"
"""


async def run(server, argv: list[str]):
    async with connect(server, "streamable", "legacy") as client:
        return await client.call_tool("run_command", {"argv": argv})


def wait_for_log(server, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        time.sleep(0.05)


def audit_records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def verify_audit(server) -> subprocess.CompletedProcess:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return subprocess.run([BIN, "audit", "verify", str(path)], capture_output=True, text=True, timeout=30)


@pytest.mark.anyio
async def test_sighup_with_a_good_config_denies_a_newly_denied_command():
    server = start_server(config=config_text(extra=ECHO_AND_TRUE))
    try:
        before = await run(server, ["echo", "before"])
        assert before.is_error is not True, before

        (server.state_dir.parent / "config.toml").write_text(config_text(extra=ONLY_TRUE))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "policy, limits and file roots reloaded")

        after = await run(server, ["echo", "after"])
        assert after.is_error is True and "denied" in after.content[0].text, after
        # The near miss: what the new policy allows still runs.
        still = await run(server, ["true"])
        assert still.is_error is not True, still
        assert server.process.poll() is None
    finally:
        server.stop()
    reloaded = [r for r in audit_records(server) if r["event"] == "config_reloaded"]
    assert len(reloaded) == 1, reloaded
    assert reloaded[0]["allow_rules"] == 1 and reloaded[0]["tokens"] == 4, reloaded
    refused = [r for r in audit_records(server) if r["event"] == "command_refused"]
    assert [r["argv"] for r in refused] == [["echo", "after"]]
    assert verify_audit(server).returncode == 0


@pytest.mark.anyio
async def test_sighup_with_a_broken_config_keeps_the_old_one_serving():
    server = start_server(config=config_text(extra=ECHO_AND_TRUE))
    try:
        (server.state_dir.parent / "config.toml").write_text(config_text(extra=BROKEN_POLICY))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "reload failed")
        assert "not an absolute path" in server.log()

        kept = await run(server, ["echo", "kept"])
        assert kept.is_error is not True and "kept" in kept.content[0].text, kept
        assert server.process.poll() is None
    finally:
        server.stop()
    records = audit_records(server)
    assert not any(r["event"] == "config_reloaded" for r in records)
    refused = [r for r in records if r["event"] == "config_reload_refused"]
    assert len(refused) == 1 and "not an absolute path" in refused[0]["reason"], refused
    assert verify_audit(server).returncode == 0


def status_for(server, token: str) -> int:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "Authorization": f"Bearer {token}"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    return httpx2.post(server.mcp_url, json=body, headers=headers).status_code


def user_config_home(text: str | None) -> Path:
    """An XDG_CONFIG_HOME holding hostmcp/hostmcp.toml with `text` (none when None)."""
    home = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-xdg-"))
    if text is not None:
        (home / "hostmcp").mkdir()
        (home / "hostmcp" / "hostmcp.toml").write_text(text)
    return home


def test_serve_reads_the_users_config_file_and_says_so():
    home = user_config_home(config_text())
    server = start_server(use_tokens=False, env={"XDG_CONFIG_HOME": str(home)})
    try:
        server.tokens = {}
        assert status_for(server, "alice-token-0123456789abcdef") == 200
        assert f"config: {home}/hostmcp/hostmcp.toml (the user's config file)" in server.log()
        assert "generated a token" not in server.log()
    finally:
        server.stop()


def test_without_any_config_file_serve_uses_the_embedded_defaults_and_says_so():
    # The near miss of the above, and the README's fresh machine: no file anywhere.
    home = user_config_home(None)
    server = start_server(use_tokens=False, env={"XDG_CONFIG_HOME": str(home)})
    try:
        log = server.log()
        assert "using the embedded defaults" in log and f"{home}/hostmcp/hostmcp.toml" in log, log
        assert "generated a token" in log
        assert status_for(server, "alice-token-0123456789abcdef") == 401
    finally:
        server.stop()


def test_an_explicit_config_wins_over_the_users_file():
    home = user_config_home(config_of(["bob"]))
    named = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-named-")) / "named.toml"
    named.write_text(config_of(["alice"]))
    server = start_server(args=["--config", str(named)], use_tokens=False,
                          env={"XDG_CONFIG_HOME": str(home)})
    try:
        assert status_for(server, "alice-token-0123456789abcdef") == 200
        assert status_for(server, "bob-token-0123456789abcdef") == 401
        assert f"config: {named} (named by --config or HOSTMCP_CONFIG)" in server.log()
    finally:
        server.stop()


def start_logging_json(workdir: Path, args: list[str]) -> tuple[subprocess.Popen, Path]:
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(workdir / "config.toml"), *args],
            stdout=subprocess.DEVNULL, stderr=log, env=server_env(workdir))
    deadline = time.monotonic() + 20
    while "listening" not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
        time.sleep(0.05)
    return process, log_path


def test_log_format_json_writes_one_json_object_per_line():
    for args, extra in [(["--log-format", "json"], ""), ([], '\n[log]\nformat = "json"\n')]:
        workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
        (workdir / "config.toml").write_text(config_text(extra=extra))
        process, log_path = start_logging_json(workdir, args)
        try:
            assert stop_or_kill(process, timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        listening = [line for line in lines if line["fields"]["message"].startswith("listening")]
        assert listening and listening[0]["fields"]["address"].startswith("127.0.0.1:"), lines
        assert any(line["fields"]["message"] == "SIGTERM: shutting down" for line in lines), lines


def test_log_format_text_is_the_default_and_the_flag_wins_over_the_file():
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    (workdir / "config.toml").write_text(config_text(extra='\n[log]\nformat = "json"\n'))
    process, log_path = start_logging_json(workdir, ["--log-format", "text"])
    try:
        assert stop_or_kill(process, timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    text = log_path.read_text()
    assert re.search(r"INFO listening: .* address=127\.0\.0\.1:\d+", text), text
    assert not text.lstrip().startswith("{"), text


def check(config: str | None, extra_args: list[str] | None = None, mode: int = 0o600,
          env: dict | None = None) -> subprocess.CompletedProcess:
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-check-"))
    args = [BIN, "check"]
    if config is not None:
        path = workdir / "config.toml"
        path.write_text(config)
        path.chmod(mode)
        args += ["--config", str(path)]
    return subprocess.run(args + (extra_args or []), capture_output=True, text=True, timeout=60,
                          env=server_env(workdir, env))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_passes_a_good_config_and_prints_what_would_be_served():
    port = free_port()
    # Each restricted token on a user of its own: nothing of the server is exposed.
    own_users = {"alice": 'run_as = "nobody"', "bob": 'run_as = "daemon"'}
    good = config_of(["alice", "bob", "reader", "boss"], top=f'listen = ["127.0.0.1:{port}"]\n' + ECHO_AND_TRUE,
                     extra=own_users)
    result = check(good)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"listen: http://127.0.0.1:{port}: Streamable HTTP at /mcp" in out
    assert "tokens: alice (operator, run_as nobody), bob (operator, run_as daemon), reader (read), boss (admin)" in out
    assert "policy: default deny, 2 allow rules, 0 deny rules" in out
    assert "limits: default_timeout 30 s" in out
    assert "ok: no problem found" in out and "problem:" not in out


def test_check_names_tokens_that_run_commands_as_the_server():
    # The near miss of the good config: the same operators without users of their own.
    result = check(config_of(["alice", "bob", "boss"], top=f'listen = ["127.0.0.1:{free_port()}"]\n'))
    if os.geteuid() != 0:
        return  # a non-root server runs every command as itself; covered by test_hardening
    assert result.returncode == 1, result.stdout
    assert "problem: restricted tokens run commands as the server's own user: alice, bob" in result.stdout


def test_check_with_no_config_anywhere_describes_the_defaults():
    result = check(None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using the embedded defaults" in result.stdout
    assert "tokens: default (admin), generated" in result.stdout


def test_check_names_each_problem_on_one_line_and_exits_non_zero():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broken = (f'listen = ["127.0.0.1:{port}"]\n' + config_text(top='run_as = "no-such-user-xyz"\n',
                                                                   extra=BROKEN_POLICY))
        result = check(broken, mode=0o666)
    assert result.returncode == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 4, result.stdout
    assert any('"true" is not an absolute path' in line for line in problems), problems
    assert any('no user named "no-such-user-xyz"' in line for line in problems), problems
    assert any("writable by group or others" in line for line in problems), problems
    assert any(f"listen 127.0.0.1:{port}: Address already in use" in line for line in problems), problems
    assert "4 problems found" in result.stderr


def test_check_stops_at_a_config_that_does_not_parse():
    result = check(config_text() + "\nno_such_key = 1\n")
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 1 and "no_such_key" in problems[0], result.stdout


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def call_with_header(server, traceparent: str, argv: list[str]) -> str:
    """A session-era tools/call over raw HTTP with a `traceparent` header; the response text."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               **server.headers()}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    opened = httpx2.post(server.mcp_url, json=init, headers=headers)
    headers = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"],
               "Mcp-Protocol-Version": "2025-06-18"}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx2.post(server.mcp_url, json=initialized, headers=headers).status_code == 202
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "run_command", "arguments": {"argv": argv}}}
    answer = httpx2.post(server.mcp_url, json=call, headers={**headers, "traceparent": traceparent},
                         timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.text


def traced(server, trace_id: str) -> list[dict]:
    return [r for r in audit_records(server) if r.get("trace_id") == trace_id]


def test_a_traceparent_header_is_carried_into_the_calls_audit_records_and_log_lines():
    server = start_server()
    try:
        text = call_with_header(server, TRACEPARENT, ["echo", "traced"])
        assert "traced" in text
        # Near miss: an all-zero trace id is not a trace context; the call still runs.
        zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        assert "untraced" in call_with_header(server, zero, ["echo", "untraced"])
        log = server.log()
    finally:
        server.stop()
    records = traced(server, TRACE_ID)
    assert {r["event"] for r in records} >= {"command_started", "command_finished"}, records
    assert [r["argv"] for r in records if r["event"] == "command_started"] == [["echo", "traced"]]
    untraced = [r for r in audit_records(server) if r.get("argv") == ["echo", "untraced"]]
    assert untraced and all("trace_id" not in r for r in untraced), untraced
    assert not traced(server, "00000000000000000000000000000000")
    assert any(TRACE_ID in line and "tool call" in line for line in log.splitlines()), log
    assert verify_audit(server).returncode == 0


@pytest.mark.anyio
async def test_a_traceparent_in_meta_is_carried_on_the_2026_transport():
    server = start_server()
    try:
        async with connect(server, "streamable", "2026-07-28") as client:
            result = await client.call_tool("run_command", {"argv": ["echo", "meta"]},
                                            meta={"traceparent": TRACEPARENT})
            assert result.is_error is not True, result
            bad = "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"  # zero parent id
            result = await client.call_tool("run_command", {"argv": ["echo", "bad-meta"]},
                                            meta={"traceparent": bad})
            assert result.is_error is not True, result
    finally:
        server.stop()
    records = traced(server, TRACE_ID)
    assert [r["argv"] for r in records if r["event"] == "command_started"] == [["echo", "meta"]], records
    assert verify_audit(server).returncode == 0
