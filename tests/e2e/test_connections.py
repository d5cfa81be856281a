"""Connections under attack (issue 10, part 3): header-read and keep-alive timeouts, caps on
connections per client address and in total, the per-principal stream cap, and a valid client
still answered at once while a flood of slow connections comes from another loopback address.

The flood and the capped clients connect from 127.0.0.2 (the whole of 127/8 is loopback), the
valid clients from 127.0.0.1; the server listens on 127.0.0.1 only. Every socket opened here
is closed, every server stopped; loops are bounded in count and time.
"""

from __future__ import annotations

import json
import resource
import socket
import time

import httpx2
import pytest

from conftest import config_text, start_server
from sse_raw import RawSseSession

FLOOD_ADDRESS = "127.0.0.2"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
ECHO_2026 = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "run_command", "arguments": {"command": "echo ok"},
                        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                  "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                  "io.modelcontextprotocol/clientCapabilities": {}}}}
HEADERS_2026 = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                "Mcp-Name": "run_command"}


def connections_config(**table) -> str:
    return config_text(extra="\n[connections]\n" + "".join(f"{k} = {v}\n" for k, v in table.items()))


def log_shows(server, text: str, timeout: float = 5) -> bool:
    """Whether the server's log shows `text` within `timeout` s (a refusal is logged just
    after the socket is closed, so the client can see the close first)."""
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def connect_from(source: str, port: int, timeout: float = 5) -> socket.socket:
    """A TCP connection to the server whose source address is `source`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or `limit` seconds pass,
    then AssertionError), and how long that took."""
    started = time.monotonic()
    received = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return received, time.monotonic() - started
        if not chunk:
            return received, time.monotonic() - started
        received += chunk
    raise AssertionError(f"still open after {limit} s; received {received!r}")


def one_response(sock: socket.socket, path: str, host: str) -> bytes:
    """Send one GET on a kept-alive connection and read its (Content-Length) response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def valid_client_round(server) -> float:
    """A fresh client from 127.0.0.1 (a new connection): /healthz, then a tool call.
    Returns the seconds the two took (building the Python client is not counted)."""
    with httpx2.Client(timeout=10) as http:
        started = time.monotonic()
        assert http.get(f"{server.base}/healthz").status_code == 200
        answer = http.post(server.mcp_url, json=ECHO_2026, headers={**HEADERS_2026, **server.headers("alice")})
        elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.text)["result"]["structuredContent"]["stdout"] == "ok\n"
    return elapsed


@pytest.fixture
def raised_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_slow_header_is_cut_at_the_header_timeout_and_a_kept_alive_client_is_not():
    server = start_server(config=connections_config(header_timeout_secs=2))
    host = f"127.0.0.1:{server.port}"
    try:
        # A client that drips its request head a byte every 0.25 s never finishes it.
        slow = connect_from("127.0.0.1", server.port)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Drip: ")
        started = time.monotonic()
        closed_after, answer = None, b""
        slow.settimeout(0.25)
        while closed_after is None and time.monotonic() - started < 10:
            try:
                slow.sendall(b"a")
                answer = slow.recv(4096)  # the server only speaks to end the connection
                closed_after = time.monotonic() - started
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
        slow.close()
        assert closed_after is not None, "the slow header was never cut"
        assert not answer.startswith(b"HTTP/1.1 200"), answer
        assert 1.5 <= closed_after <= 8, closed_after

        # Near miss: a normal client makes two calls on one kept-alive connection, with a
        # pause shorter than the timeout between them ...
        kept = connect_from("127.0.0.1", server.port)
        assert one_response(kept, "/healthz", host).startswith(b"HTTP/1.1 200")
        time.sleep(1)
        assert one_response(kept, "/healthz", host).startswith(b"HTTP/1.1 200")
        # ... and the idle connection is closed once it waits longer than the timeout.
        rest, idle = read_until_closed(kept, limit=10)
        kept.close()
        assert not rest.startswith(b"HTTP/1.1 200"), rest
        assert 1.5 <= idle <= 8, idle
    finally:
        server.stop()


def test_an_open_sse_stream_outlives_the_header_timeout():
    server = start_server(config=connections_config(header_timeout_secs=1))
    try:
        stream = RawSseSession(server.base, server.headers("alice"))
        assert stream.status == 200
        time.sleep(3)  # three header timeouts
        ping = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}
        posted = httpx2.post(f"{server.base}{stream.endpoint}", json=ping, headers=server.headers("alice"))
        assert posted.status_code == 202
        assert stream.next_message(timeout=10)["id"] == 1
        stream.close()
    finally:
        server.stop()


def test_the_per_address_cap_refuses_the_next_connection_and_another_address_still_connects():
    server = start_server(config=connections_config(max_per_address=4))
    held = []
    try:
        for _ in range(4):
            held.append(connect_from(FLOOD_ADDRESS, server.port))
        # Each of the four is admitted (it answers a request).
        host = f"127.0.0.1:{server.port}"
        for sock in held:
            assert one_response(sock, "/healthz", host).startswith(b"HTTP/1.1 200")
        refused = connect_from(FLOOD_ADDRESS, server.port)
        answer, _ = read_until_closed(refused, limit=5)
        refused.close()
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert answer.endswith(b"too many connections\n"), answer
        # Near miss: another address is under its own cap.
        assert httpx2.get(f"{server.base}/healthz").status_code == 200
        # And a place given back is a place for the same address again.
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            again = connect_from(FLOOD_ADDRESS, server.port)
            try:
                response = one_response(again, "/healthz", host)
            except (AssertionError, ConnectionResetError):
                response = b""
            again.close()
            if response.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.startswith(b"HTTP/1.1 200"), response
        assert log_shows(server, "connection refused"), server.log()
        assert log_shows(server, "the client address has its maximum of 4 open connections"), server.log()
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_the_stream_cap_refuses_an_extra_stream_of_one_token_and_another_token_still_opens_one():
    server = start_server(config=connections_config(max_streams_per_principal=2))
    streams = []
    try:
        streams += [RawSseSession(server.base, server.headers("alice")) for _ in range(2)]
        assert [s.status for s in streams] == [200, 200]
        extra = RawSseSession(server.base, server.headers("alice"))
        extra.close()
        assert extra.status == 429
        # The /mcp GET stream counts against the same cap.
        headers = {**ACCEPT, **server.headers("alice")}
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}
        opened = httpx2.post(server.mcp_url, json=init, headers=headers)
        assert opened.status_code == 200, opened.text
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
        get = httpx2.get(server.mcp_url, headers={**server.headers("alice"), **session,
                                                  "Accept": "text/event-stream"})
        assert get.status_code == 429, get.text
        # Near miss: another token still opens a stream.
        bob = RawSseSession(server.base, server.headers("bob"))
        streams.append(bob)
        assert bob.status == 200
        # And a closed stream gives its slot back.
        streams.pop(0).close()
        deadline = time.monotonic() + 5
        while True:
            again = RawSseSession(server.base, server.headers("alice"))
            streams.append(again)
            if again.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert again.status == 200
        assert log_shows(server, "stream refused"), server.log()
    finally:
        for stream in streams:
            stream.close()
        server.stop()


FLOOD_SIZE = 3000


def test_a_slow_connection_flood_from_one_address_leaves_other_clients_answered_at_once(raised_fd_limit):
    assert raised_fd_limit >= FLOOD_SIZE + 200, "the test needs a larger hard file limit"
    server = start_server()
    flood: list[socket.socket] = []
    try:
        baseline = valid_client_round(server)
        started = time.monotonic()
        partial = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Drip: ".encode()
        failed = 0
        for _ in range(FLOOD_SIZE):
            if time.monotonic() - started > 60:
                break
            try:
                sock = connect_from(FLOOD_ADDRESS, server.port, timeout=5)
                sock.setblocking(False)
                flood.append(sock)
                sock.send(partial)
            except OSError:
                failed += 1
        flood_secs = time.monotonic() - started
        # Drip one more byte on every socket still open, then measure the valid client.
        times = []
        for round_number in range(3):
            for sock in flood:
                try:
                    sock.send(b"a")
                except OSError:
                    pass
            times.append(valid_client_round(server))
        refused = 0
        for sock in flood:
            try:
                if sock.recv(4096)[:12] in (b"HTTP/1.1 503", b""):
                    refused += 1
            except (BlockingIOError, ConnectionResetError):
                pass
        print(f"flood: {len(flood)} connections in {flood_secs:.2f} s ({failed} failed), "
              f"{refused} refused; valid client: baseline {baseline * 1000:.0f} ms, "
              f"under flood {', '.join(f'{t * 1000:.0f} ms' for t in times)}")
        assert len(flood) >= FLOOD_SIZE * 0.9, (len(flood), failed)
        assert refused >= len(flood) - 256, refused  # the default per-address cap is 256
        assert max(times) < 1.0, times
    finally:
        for sock in flood:
            sock.close()
        server.stop()


def test_a_silent_tls_client_is_cut_at_the_handshake_timeout_and_a_real_one_is_served(tmp_path):
    from test_tls import make_cert

    cert, key = make_cert(tmp_path, "server")
    server = start_server(args=["--tls-cert", cert, "--tls-key", key], ca=cert,
                          config=connections_config(tls_handshake_timeout_secs=1, max_per_address=2))
    try:
        silent = connect_from("127.0.0.1", server.port)
        answer, took = read_until_closed(silent, limit=10)
        silent.close()
        assert answer == b"" and 0.5 <= took <= 6, (answer, took)
        # Near miss: a client that does the handshake is served.
        assert httpx2.get(f"{server.base}/healthz", verify=cert).status_code == 200
        # Over the per-address cap a TLS connection is closed without a word (no handshake).
        held = [connect_from(FLOOD_ADDRESS, server.port) for _ in range(2)]
        refused = connect_from(FLOOD_ADDRESS, server.port)
        answer, took = read_until_closed(refused, limit=5)
        refused.close()
        for sock in held:
            sock.close()
        assert answer == b"" and took < 0.9, (answer, took)
        assert log_shows(server, "the client address has its maximum of 2 open connections"), server.log()
    finally:
        server.stop()
