"""Legacy HTTP+SSE at /sse: the 2024-11-05 wire, session isolation, limits and cleanup."""

from __future__ import annotations

import time

import httpx2
import pytest

from conftest import descendants, pid_alive
from sse_raw import RawSseSession


def call(session: RawSseSession, request_id: int, command: str) -> dict:
    assert session.post({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                         "params": {"name": "run_command", "arguments": {"command": command}}}).status_code == 202
    return session.next_message(timeout=30)


def test_the_stream_starts_with_the_endpoint_event_and_answers_as_message_events(shared_server):
    session = RawSseSession(shared_server.base, shared_server.headers())
    try:
        assert session.response_headers["content-type"].startswith("text/event-stream")
        assert session.endpoint.startswith("/messages?sessionId=")
        assert len(session.session_id) == 32 and all(c in "0123456789abcdef" for c in session.session_id)
        result = session.initialize()
        assert result["serverInfo"]["name"] == "hostmcp"
        reply = call(session, 7, "uname")
        assert reply["id"] == 7
        assert reply["result"]["structuredContent"]["stdout"].strip() == "Linux"
    finally:
        session.close()


def test_the_python_sdk_spelling_session_id_is_accepted(shared_server):
    session = RawSseSession(shared_server.base, shared_server.headers())
    try:
        url = f"{shared_server.base}/messages?session_id={session.session_id}"
        response = session.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, url=url)
        assert response.status_code == 202
        assert session.next_message()["id"] == 1
    finally:
        session.close()


def test_bad_posts_get_clear_errors(shared_server):
    session = RawSseSession(shared_server.base, shared_server.headers())
    try:
        headers = {"Content-Type": "application/json", **shared_server.headers()}
        missing = httpx2.post(f"{shared_server.base}/messages", content="{}", headers=headers)
        assert missing.status_code == 400 and "sessionId" in missing.json()["error"]
        unknown = httpx2.post(f"{shared_server.base}/messages?sessionId=00ff", content="{}", headers=headers)
        assert unknown.status_code == 404
        not_json = session.post(b"this is not json")
        assert not_json.status_code == 400 and "JSON-RPC" in not_json.json()["error"]
        not_rpc = session.post({"hello": "world"})
        assert not_rpc.status_code == 400
        huge = session.post(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (5 << 20) + b'"}}')
        assert huge.status_code == 413
        # The session survived all of that.
        assert session.post({"jsonrpc": "2.0", "id": 9, "method": "ping"}).status_code == 202
        assert session.next_message()["id"] == 9
    finally:
        session.close()


def test_another_principal_cannot_post_into_a_session(shared_server):
    alice = RawSseSession(shared_server.base, shared_server.headers("alice"))
    try:
        alice.initialize()
        probe = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                 "params": {"name": "run_command", "arguments": {"command": "echo injected"}}}
        assert alice.post(probe, headers=shared_server.headers("bob")).status_code == 404
        assert alice.post(probe, headers={}).status_code == 401
        assert alice.post(probe, headers={"Authorization": "Bearer wrong"}).status_code == 401
        # Nothing reached the session: the next message alice sees answers her own request.
        assert call(alice, 6, "echo mine")["id"] == 6
    finally:
        alice.close()


def test_sse_without_a_token_is_401(shared_server):
    response = httpx2.get(f"{shared_server.base}/sse", headers={"Accept": "text/event-stream"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def session_running_a_sleep(server) -> RawSseSession:
    """An initialized SSE session whose `sleep 300` is running under the server."""
    session = RawSseSession(server.base, server.headers())
    session.initialize()
    assert session.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "run_command", "arguments": {"command": "sleep 300", "timeout_secs": 600}}}).status_code == 202
    deadline = time.monotonic() + 15
    while not descendants(server.process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert descendants(server.process.pid), "the command did not start"
    return session


def test_a_closed_stream_ends_the_session_and_kills_its_commands(server):
    session = session_running_a_sleep(server)
    endpoint = server.base + session.endpoint
    session.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [p for p in descendants(server.process.pid) if pid_alive(p)]:
        time.sleep(0.1)
    assert [p for p in descendants(server.process.pid) if pid_alive(p)] == []
    after = httpx2.post(endpoint, content='{"jsonrpc":"2.0","id":1,"method":"ping"}',
                        headers={"Content-Type": "application/json", **server.headers()})
    assert after.status_code == 404


def test_many_concurrent_sessions_each_get_only_their_own_responses(shared_server):
    sessions = [RawSseSession(shared_server.base, shared_server.headers(["alice", "bob"][i % 2])) for i in range(20)]
    try:
        for session in sessions:
            session.initialize()
        for index, session in enumerate(sessions):
            assert session.post({"jsonrpc": "2.0", "id": 100, "method": "tools/call", "params": {
                "name": "run_command", "arguments": {"command": f"echo session-{index}"}}}).status_code == 202
        for index, session in enumerate(sessions):
            reply = session.next_message(timeout=30)
            assert reply["id"] == 100
            assert reply["result"].get("structuredContent", {}).get("stdout") == f"session-{index}\n", reply
        for session in sessions:
            with pytest.raises(Exception):
                session.events.get(timeout=0.05)  # nothing else arrived
    finally:
        for session in sessions:
            session.close()


def test_the_seed_tutorial_commands_run_over_sse(shared_server):
    """The seeds' journey: connect to /sse with a token, run uname, cat /etc/os-release, uptime."""
    session = RawSseSession(shared_server.base, shared_server.headers())
    try:
        session.initialize()
        for request_id, command in enumerate(["uname -a", "cat /etc/os-release", "uptime"], start=1):
            reply = call(session, request_id, command)
            assert reply["result"].get("isError") is not True, reply
            assert reply["result"]["structuredContent"]["exit_code"] == 0
    finally:
        session.close()


def test_sigterm_closes_open_streams_and_exits_promptly(server):
    session = session_running_a_sleep(server)
    children = descendants(server.process.pid)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 8, "shutdown waited on the open stream"
    assert [pid for pid in children if pid_alive(pid)] == []
    kinds = []
    while True:
        kind, _ = session.next_event(timeout=5)
        kinds.append(kind)
        if kind == "closed":
            break
    assert kinds[-1] == "closed"
    session.close()
