"""Revoking an OAuth grant ends that grant's work as revoking a token ends a token's (issue 12,
`on_revoke = "kill"`): its Streamable HTTP sessions, legacy SSE streams, calls and terminals,
each ending on record with the reason `grant_revoked`, whether the grant is revoked by its
client (RFC 7009 `/oauth/revoke`) or by the operator (`hostmcp oauth grants revoke`, put on
record with the Unix user who ran it). The near misses: another grant of the same parent
token, and the parent token's own session, live on. Calls under a grant are audited with the
grant's identity (grant id, client id and name) beside the parent token's name."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import httpx2
import pytest

from conftest import BIN, TOKENS
from sse_raw import RawSseSession
from test_oauth import _b64, start_on_port, tokens_for
from test_token_lifecycle import PING, McpSession, audit_records, sse_answers, wait_until


@pytest.fixture
def server():
    srv = start_on_port()
    yield srv
    srv.stop()


class Session(McpSession):
    """A session-era /mcp session of one bearer token, its GET stream read in a thread."""

    def __init__(self, server, token: str):
        super().__init__(server, None, token)

    def call(self, request_id: int, tool: str, arguments: dict) -> dict:
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}}
        with httpx2.Client(timeout=60) as http:
            with http.stream("POST", self.server.mcp_url, json=body, headers=self.headers) as response:
                assert response.status_code == 200, response.read()
                return next(answer for answer in sse_answers(response) if answer.get("id") == request_id)

    def ping(self) -> int:
        return httpx2.post(self.server.mcp_url, json=PING, headers=self.headers).status_code


def grant_of(tokens: dict) -> str:
    return json.loads(_b64(tokens["access_token"].split(".")[1]))["gid"]


def ended_for_grant(server) -> dict[str, list[str]]:
    ended: dict[str, list[str]] = {}
    for record in audit_records(server):
        if record["event"] == "ended_by_revocation" and record["reason"] == "grant_revoked":
            ended.setdefault(record["ended"], []).append(record["id"])
    return ended


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def open_work(server, token: str, sleep: int) -> tuple[Session, RawSseSession, int]:
    """A /mcp session with a terminal running `sleep N` (its pid) and a legacy SSE stream."""
    session = Session(server, token)
    opened = session.call(3, "terminal_open", {"argv": ["sleep", str(sleep)]})
    assert not opened["result"].get("isError"), opened
    pid = opened["result"]["structuredContent"]["pid"]
    assert b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    stream = RawSseSession(server.base, {"Authorization": f"Bearer {token}"})
    stream.initialize()
    return session, stream, pid


def test_revoking_a_grant_by_rfc7009_ends_its_sessions_streams_and_terminals_only(server):
    _, victim = tokens_for(server)
    _, sibling = tokens_for(server)  # another grant of the same parent token (alice)
    victim_session, victim_stream, victim_pid = open_work(server, victim["access_token"], 311)
    sibling_session, sibling_stream, sibling_pid = open_work(server, sibling["access_token"], 312)
    parent_session = Session(server, TOKENS["alice"][0])

    revoked = httpx2.post(f"{server.base}/oauth/revoke", data={"token": victim["refresh_token"]})
    assert revoked.status_code == 200

    wait_until("the grant's /mcp stream ended", victim_session.ended.is_set)
    assert victim_stream.next_event(timeout=20) == ("closed", ""), "its SSE stream ended"
    wait_until("its terminal is gone", lambda: not alive(victim_pid))
    assert victim_session.ping() == 401

    # The near misses: the sibling grant and the parent token keep their sessions and work.
    assert not sibling_session.ended.is_set() and sibling_session.ping() == 200
    assert alive(sibling_pid)
    assert parent_session.ping() == 200 and not parent_session.ended.is_set()
    wait_until("the endings are on record", lambda: {"session", "stream"} <= ended_for_grant(server).keys())
    ended = ended_for_grant(server)
    assert ended["session"] == [victim_session.id]
    assert ended["stream"] == [victim_stream.session_id]
    # The terminal ends by the revocation or, a moment later, with its session: at most one record.
    assert len(ended.get("terminal", [])) <= 1
    for stream in (victim_stream, sibling_stream):
        stream.close()


def test_the_operator_revoking_a_grant_ends_its_work_and_is_on_record_with_the_unix_user(server):
    _, victim = tokens_for(server)
    _, sibling = tokens_for(server)
    victim_session, victim_stream, victim_pid = open_work(server, victim["access_token"], 321)
    sibling_session, sibling_stream, sibling_pid = open_work(server, sibling["access_token"], 322)
    gid = grant_of(victim)
    store = server.state_dir / "hostmcp" / "oauth.redb"
    done = subprocess.run([BIN, "oauth", "--store", str(store), "grants", "revoke", gid],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr

    # The server re-reads the store every 2 s.
    wait_until("the grant's /mcp stream ended", victim_session.ended.is_set, timeout=30)
    assert victim_stream.next_event(timeout=30) == ("closed", "")
    wait_until("its terminal is gone", lambda: not alive(victim_pid))
    assert sibling_session.ping() == 200 and alive(sibling_pid)

    user = pwd.getpwuid(os.getuid()).pw_name
    wait_until("the revocation is on record", lambda: any(
        r["event"] == "oauth" and r["step"] == "grant_revoked" for r in audit_records(server)))
    [record] = [r for r in audit_records(server) if r["event"] == "oauth" and r["step"] == "grant_revoked"]
    assert record["grant_id"] == gid and record["principal"] == "alice"
    assert record["by"] == f"{user} (uid {os.getuid()})"
    # Put on record once, however many times the server re-reads the store.
    wait_until("the endings are on record", lambda: len(ended_for_grant(server).get("session", [])) == 1)
    assert ended_for_grant(server)["session"] == [victim_session.id]
    for stream in (victim_stream, sibling_stream):
        stream.close()


def test_calls_under_a_grant_are_audited_with_the_grant_beside_the_parent_token(server):
    _, tokens = tokens_for(server)
    session = Session(server, tokens["access_token"])
    answer = session.call(4, "run_command", {"command": "echo audited"})
    assert answer["result"]["structuredContent"]["stdout"] == "audited\n"
    parent = Session(server, TOKENS["alice"][0])
    parent.call(5, "run_command", {"command": "echo parent"})
    started = [r for r in audit_records(server) if r["event"] == "command_started"]
    [under_grant] = [r for r in started if r["command"] == "echo audited"]
    assert under_grant["principal"] == "alice"
    assert under_grant["grant"] == {"grant_id": grant_of(tokens), "client_id": under_grant["grant"]["client_id"],
                                    "client_name": "e2e client"}
    opened = [r for r in audit_records(server) if r["event"] == "session_opened" and r["session"] == session.id]
    assert opened and opened[0]["grant"]["grant_id"] == grant_of(tokens)
    # Near miss: the parent token's own call names no grant (the key is left out).
    [direct] = [r for r in started if r["command"] == "echo parent"]
    assert direct["principal"] == "alice" and "grant" not in direct
