"""Streamable HTTP sessions (session era) in raw HTTP: resuming a broken call stream,
closing a session, the standalone stream."""

from __future__ import annotations

import json
import time

import httpx2

from conftest import descendants, pid_alive

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def open_session(server, version: str = "2025-06-18") -> tuple[dict[str, str], str]:
    headers = {**ACCEPT, **server.headers("alice")}
    init = {**INIT, "params": {**INIT["params"], "protocolVersion": version}}
    opened = httpx2.post(server.mcp_url, json=init, headers=headers)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    headers = {**headers, "Mcp-Session-Id": session, "Mcp-Protocol-Version": version}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx2.post(server.mcp_url, json=initialized, headers=headers).status_code == 202
    return headers, session


def run_command(request_id: int, command: str) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "run_command", "arguments": {"command": command, "timeout_secs": 60}}}


def sse_events(response: httpx2.Response):
    """(id, data) of each event of an SSE response, as they arrive."""
    event_id, data = None, []
    for line in response.iter_lines():
        if line == "":
            if event_id is not None or data:
                yield event_id, "\n".join(data)
            event_id, data = None, []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def test_a_call_whose_stream_broke_is_answered_when_the_client_reconnects(shared_server):
    # The empty priming event that names the stream is defined from 2025-11-25 on.
    headers, _ = open_session(shared_server, "2025-11-25")
    with httpx2.Client(timeout=30) as http:
        with http.stream("POST", shared_server.mcp_url, json=run_command(7, "sleep 1; echo finished"),
                         headers=headers) as response:
            assert response.status_code == 200
            first_id, first_data = next(sse_events(response))
        # The connection is gone before the answer; the priming event named the stream.
        assert first_id and first_data == "", (first_id, first_data)
        resumed_headers = {**headers, "Accept": "text/event-stream", "Last-Event-ID": first_id}
        with http.stream("GET", shared_server.mcp_url, headers=resumed_headers) as resumed:
            assert resumed.status_code == 200
            answers = [json.loads(data) for _, data in sse_events(resumed) if data]
    assert [answer["id"] for answer in answers] == [7], answers
    assert answers[0]["result"]["structuredContent"]["stdout"] == "finished\n"


def test_a_client_before_2025_11_25_gets_no_empty_priming_event(shared_server):
    """Python SDK 1.9 and TypeScript SDK 1.12 log an error for an event without data."""
    headers, _ = open_session(shared_server, "2025-06-18")
    with httpx2.Client(timeout=30) as http:
        with http.stream("POST", shared_server.mcp_url, json=run_command(8, "echo hi"),
                         headers=headers) as response:
            assert response.status_code == 200
            events = list(sse_events(response))
    assert all(data for _, data in events), events
    assert json.loads(events[-1][1])["id"] == 8


def test_an_unknown_event_id_gets_an_empty_stream_not_another_answer(shared_server):
    headers, _ = open_session(shared_server)
    resumed = httpx2.get(shared_server.mcp_url, timeout=10,
                         headers={**headers, "Accept": "text/event-stream", "Last-Event-ID": "c999"})
    assert resumed.status_code == 200
    assert [data for _, data in sse_events(resumed) if data] == []


def test_deleting_a_session_kills_its_running_commands(server):
    headers, session = open_session(server)
    with httpx2.Client(timeout=30) as http:
        with http.stream("POST", server.mcp_url, json=run_command(3, "sleep 300"), headers=headers) as response:
            assert response.status_code == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not live_descendants(server):
                time.sleep(0.05)
            assert live_descendants(server), "the command did not start"
            assert http.delete(server.mcp_url, headers=headers).status_code in (200, 202, 204)
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and live_descendants(server):
                time.sleep(0.1)
            assert live_descendants(server) == []
    ping = {"jsonrpc": "2.0", "id": 4, "method": "ping"}
    assert httpx2.post(server.mcp_url, json=ping, headers=headers).status_code == 404


def test_a_reconnected_standalone_stream_replaces_the_old_one(shared_server):
    headers, _ = open_session(shared_server)
    get_headers = {**headers, "Accept": "text/event-stream"}
    with httpx2.Client(timeout=10) as http:
        with http.stream("GET", shared_server.mcp_url, headers=get_headers) as first:
            assert first.status_code == 200
            with http.stream("GET", shared_server.mcp_url, headers=get_headers) as second:
                assert second.status_code == 200
                # The first one ends; the second stays open.
                assert list(sse_events(first)) in ([], [("0", "")])
    # The session still works.
    ping = {"jsonrpc": "2.0", "id": 5, "method": "ping"}
    assert httpx2.post(shared_server.mcp_url, json=ping, headers=headers).status_code == 200


def live_descendants(server) -> list[int]:
    return [pid for pid in descendants(server.process.pid) if pid_alive(pid)]
