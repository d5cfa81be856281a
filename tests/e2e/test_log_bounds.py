"""What callers can make the server write, bounded (red-team findings F2, F3, F4, F9, F10c):
a huge Host or Origin header, a huge cancellation reason, a flood of role-denied calls, a
flood of sessions, and a body that is not JSON. Each attack has its near miss: the same
request within bounds is still served."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from conftest import config_text, start_server
from sse_raw import RawSseSession

INIT_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}}
HEADERS_2026 = {**INIT_HEADERS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}
READER2 = "reader2-token-0123456789abcdef"


def log_size(server) -> int:
    return server.log_path.stat().st_size


def records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def raw_status(server, head: str) -> int:
    """Send one request head on its own connection; the answer's status."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def call(server, tool: str, arguments: dict, token: str, http=httpx2) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": META}}
    response = http.post(server.mcp_url, content=json.dumps(body), timeout=60,
                         headers={**HEADERS_2026, "Mcp-Name": tool, "Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_fifty_requests_with_a_400_kb_host_write_under_100_kb_of_log():
    server = start_server()
    try:
        before = log_size(server)
        big_host = "a" * 400_000 + ".example"
        for _ in range(50):
            assert raw_status(server, f"POST /mcp HTTP/1.1\r\nHost: {big_host}\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n") == 403
        big_origin = "http://" + "b" * 200_000
        for _ in range(10):
            assert raw_status(server, f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                                      f"Origin: {big_origin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") == 403
        grown = log_size(server) - before
        print(f"60 refused requests with 400 KB Host / 200 KB Origin headers: {grown} bytes of log")
        assert grown < 100_000
        assert "[... 400008 bytes in all]" in server.log()
        # Near miss: a request naming this server is served.
        token = server.tokens["alice"]
        assert not call(server, "host_info", {}, token).get("isError")
    finally:
        server.stop()


def test_a_3_mb_cancellation_reason_writes_under_10_kb_of_log():
    server = start_server()
    try:
        with httpx2.Client(headers={**INIT_HEADERS, **server.headers()}, timeout=60) as http:
            opened = http.post(server.mcp_url, json=INIT)
            session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
            assert http.post(server.mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                             headers=session).status_code == 202

            def cancel_a_sleep(request_id: int, reason: str) -> int:
                tool_call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                             "params": {"name": "run_command", "arguments": {"command": f"sleep 3{request_id}"}}}
                done = threading.Event()
                thread = threading.Thread(target=lambda: (http.post(server.mcp_url, json=tool_call,
                                                                    headers=session), done.set()))
                thread.start()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not any(
                        r["event"] == "command_started" and r["command"] == f"sleep 3{request_id}"
                        for r in records(server)):
                    time.sleep(0.05)
                before = log_size(server)
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                          "params": {"requestId": request_id, "reason": reason}}
                assert http.post(server.mcp_url, json=cancel, headers=session).status_code == 202
                thread.join(timeout=30)
                assert done.is_set(), "the cancelled call ended"
                return log_size(server) - before

            grown = cancel_a_sleep(2, "r" * 3_000_000)
            print(f"a cancel with a 3 MB reason: {grown} bytes of log")
            assert grown < 10_000
            assert "[... 3000000 bytes in all]" in server.log()
            # Near miss: a short reason is logged whole.
            cancel_a_sleep(3, "the user pressed stop")
            assert "the user pressed stop" in server.log()
    finally:
        server.stop()


def test_role_denied_calls_count_against_the_tool_call_limit():
    digest = hashlib.sha256(READER2.encode()).hexdigest()
    config = config_text(extra=f'\n[[tokens]]\nname = "reader2"\nrole = "read"\nsha256 = "{digest}"\n')
    config = config.replace("tool_calls_per_minute = 1000000\n", "")
    server = start_server(config=config)
    try:
        reader = server.tokens["reader"]
        started = time.monotonic()
        with httpx2.Client() as http, ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: call(server, "run_command", {"command": "true"}, reader, http=http),
                                    range(600)))
        last = call(server, "run_command", {"command": "true"}, reader)
        elapsed = time.monotonic() - started
        print(f"601 role-denied calls in {elapsed:.1f} s")
        if elapsed >= 55:
            pytest.skip(f"the machine is too loaded to make 601 calls within one minute ({elapsed:.0f} s)")
        texts = [r["content"][0]["text"] for r in results]
        assert all(r.get("isError") and "needs the operator role" in t for r, t in zip(results, texts))
        assert last.get("isError") and "rate limited" in last["content"][0]["text"]
        denied = [r for r in records(server) if r["event"] == "tool_denied"]
        assert len(denied) == 601
        # Near miss: another read token within its limit still reads.
        assert not call(server, "host_info", {}, READER2).get("isError")
    finally:
        server.stop()


def test_sessions_per_principal_are_capped_and_name_their_client():
    server = start_server(config=config_text(extra="\n[connections]\nmax_sessions_per_principal = 3\n"))
    try:
        with httpx2.Client(headers=INIT_HEADERS, timeout=60) as http:
            alice = server.headers("alice")
            ids = []
            for _ in range(3):
                opened = http.post(server.mcp_url, json=INIT, headers=alice)
                assert opened.status_code == 200, opened.text
                ids.append(opened.headers["mcp-session-id"])
            refused = http.post(server.mcp_url, json=INIT, headers=alice)
            assert refused.status_code == 429
            assert "too many open sessions" in refused.json()["error"]["message"]
            # Near misses: bob has his own sessions; alice closing one may open another.
            assert http.post(server.mcp_url, json=INIT, headers=server.headers("bob")).status_code == 200
            closing = {**alice, "Mcp-Session-Id": ids[0], "MCP-Protocol-Version": "2025-06-18"}
            assert http.delete(server.mcp_url, headers=closing).status_code in (200, 202, 204)
            assert http.post(server.mcp_url, json=INIT, headers=alice).status_code == 200
            # Stateless calls need no session and are not capped.
            assert not call(server, "host_info", {}, server.tokens["alice"]).get("isError")
        sse = [RawSseSession(server.base, alice) for _ in range(4)]
        try:
            assert [s.status for s in sse] == [200, 200, 200, 429]
        finally:
            for s in sse:
                if s.status == 200:
                    s.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            lines = records(server)
            sessions = [r for r in lines if r["event"] in ("session_opened", "session_closed")]
            if sum(r["event"] == "session_closed" for r in sessions) >= 4:
                break
            time.sleep(0.1)
        assert len([r for r in sessions if r["event"] == "session_opened"]) == 8
        assert all(r["client"] and r["client"].startswith("127.0.0.1:") for r in sessions), sessions
    finally:
        server.stop()


def test_a_body_that_is_not_json_is_a_400_parse_error():
    server = start_server()
    try:
        headers = {**INIT_HEADERS, **server.headers()}
        response = httpx2.post(server.mcp_url, content=b"{not json", headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32700
        response = httpx2.post(server.mcp_url, content=b"[1, 2]", headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32600
        # Near misses: another content type keeps rmcp's 415; a message is served.
        assert httpx2.post(server.mcp_url, content=b"{not json",
                           headers={**headers, "Content-Type": "text/plain"}).status_code == 415
        assert httpx2.post(server.mcp_url, json=INIT, headers=headers).status_code == 200
    finally:
        server.stop()
