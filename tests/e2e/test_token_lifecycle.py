"""Tokens over time: SIGHUP reload revokes and adds tokens without dropping connections;
expired tokens stop working; a revoked or expired token's streams, calls and jobs end
(`on_revoke = "kill"`) or finish (`"finish"`), each on record."""

from __future__ import annotations

import datetime
import hashlib
import json
import signal
import threading
import time
from pathlib import Path

import httpx2
import pytest

from conftest import DEFAULT_TEST_LIMITS, RUN_AS_ROOT, TOKENS, config_text, descendants, start_server
from sse_raw import RawSseSession

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


def entry(name: str, token: str, role: str = "operator", extra: str = "") -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{extra}\n'


def status(server, token: str, session: str | None = None, body=INIT) -> int:
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    if session:
        headers["Mcp-Session-Id"] = session
    return httpx2.post(server.mcp_url, json=body, headers=headers).status_code


def wait_for_log(server, text: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        time.sleep(0.05)


def test_sighup_revokes_and_adds_tokens_without_dropping_sessions():
    server = start_server()
    try:
        alice, bob = TOKENS["alice"][0], TOKENS["bob"][0]
        opened = httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {alice}"})
        session = opened.headers["mcp-session-id"]
        assert status(server, bob) == 200
        assert status(server, "carol-token-0123456789") == 401

        config = server.state_dir.parent / "config.toml"
        config.write_text(entry("alice", alice) + entry("carol", "carol-token-0123456789"))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens reloaded")

        assert status(server, bob) == 401, "a revoked token must stop working on its next request"
        assert status(server, "carol-token-0123456789") == 200
        assert status(server, alice, session, PING) == 200, "alice's open session survives the reload"
        assert server.process.poll() is None
    finally:
        server.stop()


def test_a_broken_config_on_sighup_keeps_the_current_tokens():
    server = start_server()
    try:
        (server.state_dir.parent / "config.toml").write_text("[[tokens]]\nname = \"x\"\nsha256 = \"nope\"\n")
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "reload failed")
        assert status(server, TOKENS["alice"][0]) == 200
    finally:
        server.stop()


@pytest.mark.parametrize("expires,expected", [("2000-01-01T00:00:00Z", 401), ("2999-01-01T00:00:00Z", 200)])
def test_an_expired_token_is_refused_and_its_twin_is_not(expires, expected):
    server = start_server(config=config_text() + entry("temp", "temp-token-0123456789", extra=f"expires = {expires}"))
    try:
        assert status(server, "temp-token-0123456789") == expected
    finally:
        server.stop()


# --- revocation ends running work -------------------------------------------------------


def config_of(names, top: str = "", extra: dict[str, str] | None = None) -> str:
    """The test tokens named in `names` (with `extra` lines per name), test limits, and `top`."""
    text = RUN_AS_ROOT + top + "\n"
    for name in names:
        token, role = TOKENS[name]
        text += entry(name, token, role, (extra or {}).get(name, ""))
    limits = "".join(f"{key} = {value}\n" for key, value in DEFAULT_TEST_LIMITS.items())
    return text + "[limits]\n" + limits


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


def sse_answers(response):
    """The JSON-RPC messages of an SSE response body, as they arrive."""
    for line in response.iter_lines():
        if line.startswith("data:") and line[5:].strip():
            yield json.loads(line[5:])


class McpSession:
    """A session-era Streamable HTTP session whose standalone GET stream is read in a thread."""

    def __init__(self, server, name: str | None, token: str | None = None):
        """A session of the named configured token, or of `token` itself (an OAuth one)."""
        self.server = server
        headers = {**ACCEPT, "Authorization": f"Bearer {token or TOKENS[name][0]}"}
        opened = httpx2.post(server.mcp_url, json=INIT, headers=headers)
        assert opened.status_code == 200, opened.text
        self.id = opened.headers["mcp-session-id"]
        self.headers = {**headers, "Mcp-Session-Id": self.id, "Mcp-Protocol-Version": "2025-06-18"}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert httpx2.post(server.mcp_url, json=initialized, headers=self.headers).status_code == 202
        self.opened, self.ended = threading.Event(), threading.Event()
        threading.Thread(target=self._listen, daemon=True).start()
        assert self.opened.wait(15), "the GET stream did not open"

    def _listen(self):
        try:
            with httpx2.Client(timeout=httpx2.Timeout(15, read=None)) as http:
                with http.stream("GET", self.server.mcp_url,
                                 headers={**self.headers, "Accept": "text/event-stream"}) as response:
                    assert response.status_code == 200
                    self.opened.set()
                    for _ in response.iter_raw():
                        pass
        except Exception:  # the connection was cut: ended as well
            pass
        self.ended.set()

    def call(self, request_id: int, tool: str, arguments: dict) -> httpx2.Response | dict:
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}}
        with httpx2.Client(timeout=30) as http:
            with http.stream("POST", self.server.mcp_url, json=body, headers=self.headers) as response:
                if response.status_code != 200:
                    return response
                return next(answer for answer in sse_answers(response) if answer.get("id") == request_id)

    def call_in_background(self, request_id: int, tool: str, arguments: dict) -> threading.Thread:
        thread = threading.Thread(target=lambda: self.call(request_id, tool, arguments), daemon=True)
        thread.start()
        return thread


def start_job(session: McpSession, command: str) -> str:
    answer = session.call(10, "job_start", {"command": command})
    return answer["result"]["structuredContent"]["job_id"]


def sse_session(server, name: str) -> RawSseSession:
    session = RawSseSession(server.base, bearer(name))
    session.initialize()
    return session


def pids_of(server, command: str) -> list[int]:
    """Live processes below the server whose command line is `command` (split on spaces)."""
    found = []
    for pid in descendants(server.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b" ".join(part for part in cmdline if part).decode() == command and "\nState:\tZ" not in state:
            found.append(pid)
    return found


def wait_until(what: str, done, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def audit_records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def ended_by_revocation(server, principal: str) -> dict[str, list[str]]:
    """What the audit log says a revocation ended for `principal`: kind -> ids."""
    ended: dict[str, list[str]] = {}
    for record in audit_records(server):
        if record["event"] == "ended_by_revocation" and record["principal"] == principal:
            ended.setdefault(record["ended"], []).append(record["id"])
    return ended


def token_revocations(server) -> list[tuple[str, str, bool]]:
    return [(record["principal"], record["reason"], record["ends_work"])
            for record in audit_records(server) if record["event"] == "token_revoked"]


def sse_is_alive(session: RawSseSession, request_id: int) -> bool:
    """The SSE stream still carries answers: a job_list call comes back on it."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "job_list", "arguments": {}}}
    if session.post(body).status_code != 202:
        return False
    kind, data = session.next_event(timeout=15)
    return kind == "message" and json.loads(data)["id"] == request_id


def stateless_call_in_background(server, name: str, request_id: int, command: str) -> threading.Thread:
    """A 2026-07-28 (sessionless) run_command call, posted from a thread."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "run_command", "arguments": {"command": command, "timeout_secs": 300},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                 "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {**ACCEPT, **bearer(name), "MCP-Protocol-Version": "2026-07-28",
               "Mcp-Method": "tools/call", "Mcp-Name": "run_command"}

    def post():
        try:
            httpx2.post(server.mcp_url, json=body, headers=headers, timeout=60)
        except Exception:
            pass
    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_revoking_a_token_ends_its_streams_calls_and_jobs_and_spares_the_others():
    server = start_server(config=config_of(["alice", "bob"]))
    try:
        bob, alice = McpSession(server, "bob"), McpSession(server, "alice")
        bob_sse, alice_sse = sse_session(server, "bob"), sse_session(server, "alice")
        bob_job = start_job(bob, "sleep 300")
        alice_job = start_job(alice, "sleep 302")
        bob.call_in_background(11, "run_command", {"command": "sleep 301", "timeout_secs": 300})
        stateless_call_in_background(server, "bob", 21, "sleep 307")
        wait_until("the commands run", lambda: all(pids_of(server, f"sleep {n}") for n in (300, 301, 302, 307)))
        bob_pids = [pid for n in (300, 301, 307) for pid in pids_of(server, f"sleep {n}")]

        (server.state_dir.parent / "config.toml").write_text(config_of(["alice"]))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens reloaded")

        wait_until("bob's /mcp stream ended", bob.ended.is_set)
        assert bob_sse.next_event(timeout=20) == ("closed", ""), "bob's SSE stream ended"
        wait_until("bob's job and command are gone", lambda: not any(Path(f"/proc/{pid}").exists() for pid in bob_pids))
        assert status(server, TOKENS["bob"][0], bob.id, PING) == 401

        # The near miss: alice's stream, SSE session and job live on.
        assert not alice.ended.is_set()
        assert sse_is_alive(alice_sse, 5)
        assert pids_of(server, "sleep 302")
        read = alice.call(12, "job_output", {"job_id": alice_job})
        assert read["result"]["structuredContent"]["state"] == "running"

        assert token_revocations(server) == [("bob", "removed", True)]
        wait_until("every ending is on record",
                   lambda: sum(map(len, ended_by_revocation(server, "bob").values())) == 5)
        ended = ended_by_revocation(server, "bob")
        assert ended["job"] == [bob_job]
        assert ended["session"] == [bob.id]
        assert ended["stream"] == [bob_sse.session_id]
        assert sorted(ended["call"]) == ["11", "21"], "the session's call and the stateless one"
        assert ended_by_revocation(server, "alice") == {}
        bob_sse.close()
        alice_sse.close()
    finally:
        server.stop()


def test_rotating_a_token_is_a_revocation_of_the_old_secret():
    server = start_server(config=config_of(["alice", "bob"]))
    try:
        bob = McpSession(server, "bob")
        bob_job = start_job(bob, "sleep 306")
        wait_until("the job runs", lambda: pids_of(server, "sleep 306"))
        rotated = entry("bob", "bob-new-token-0123456789", "operator")
        (server.state_dir.parent / "config.toml").write_text(config_of(["alice"]) + rotated)
        server.process.send_signal(signal.SIGHUP)
        wait_until("bob's old stream ended", bob.ended.is_set)
        wait_until("bob's old job is gone", lambda: not pids_of(server, "sleep 306"))
        assert token_revocations(server) == [("bob", "replaced", True)]
        assert ended_by_revocation(server, "bob")["job"] == [bob_job]
        assert status(server, "bob-new-token-0123456789") == 200, "the new secret works"
    finally:
        server.stop()


def test_with_on_revoke_finish_a_revoked_tokens_job_runs_on_but_the_token_is_refused():
    server = start_server(config=config_of(["alice", "bob"], top='on_revoke = "finish"'))
    try:
        bob = McpSession(server, "bob")
        bob_job = start_job(bob, "sleep 303")
        wait_until("the job runs", lambda: pids_of(server, "sleep 303"))
        (pid,) = pids_of(server, "sleep 303")

        (server.state_dir.parent / "config.toml").write_text(config_of(["alice"], top='on_revoke = "finish"'))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens reloaded")
        wait_until("the revocation is on record", lambda: token_revocations(server) == [("bob", "removed", False)])

        refused = bob.call(13, "job_output", {"job_id": bob_job})
        assert isinstance(refused, httpx2.Response) and refused.status_code == 401, "no output for a revoked token"
        assert status(server, TOKENS["bob"][0]) == 401, "nothing new starts"
        time.sleep(1)
        assert Path(f"/proc/{pid}").exists() and pids_of(server, "sleep 303") == [pid], "the job runs on"
        assert ended_by_revocation(server, "bob") == {}
    finally:
        server.stop()


def test_an_expiring_token_is_ended_at_its_expiry_without_a_reload():
    expires = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=8)
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    server = start_server(config=config_of(["alice", "bob"], extra={"bob": f"expires = {stamp}"}))
    try:
        bob, alice = McpSession(server, "bob"), McpSession(server, "alice")
        bob_job = start_job(bob, "sleep 304")
        start_job(alice, "sleep 305")
        wait_until("the jobs run", lambda: pids_of(server, "sleep 304") and pids_of(server, "sleep 305"))
        wait_until("bob's stream ended at expiry", bob.ended.is_set, timeout=30)
        assert datetime.datetime.now(datetime.timezone.utc) >= expires
        wait_until("bob's job is gone", lambda: not pids_of(server, "sleep 304"))
        assert status(server, TOKENS["bob"][0]) == 401
        assert token_revocations(server) == [("bob", "expired", True)]
        wait_until("the ends are on record", lambda: {"job", "session"} <= set(ended_by_revocation(server, "bob")))
        assert ended_by_revocation(server, "bob")["job"] == [bob_job]
        # The near miss: a token without expiry is untouched.
        assert not alice.ended.is_set() and pids_of(server, "sleep 305")
        assert "SIGHUP" not in server.log()
    finally:
        server.stop()
