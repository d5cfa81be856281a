"""A minimal raw legacy-SSE client for wire-level tests (the SDK hides the HTTP details)."""

from __future__ import annotations

import json
import queue
import socket
import threading
from urllib.parse import urlsplit

import httpx2


class RawSseSession:
    """GET /sse on a plain socket (so closing it really closes the connection), read in a
    background thread; events land in a queue; POSTs go to the endpoint."""

    def __init__(self, base: str, headers: dict[str, str]):
        self.base = base
        self.headers = headers
        self.events: queue.Queue = queue.Queue()
        url = urlsplit(base)
        self._sock = socket.create_connection((url.hostname, url.port), timeout=60)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._sock.sendall(f"GET /sse HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: text/event-stream\r\n{head}\r\n".encode())
        self._file = self._sock.makefile("rb")
        status_line = self._file.readline().decode()
        self.status = int(status_line.split()[1])
        self.response_headers = {}
        while (line := self._file.readline().decode().rstrip("\r\n")):
            name, value = line.split(":", 1)
            self.response_headers[name.strip().lower()] = value.strip()
        self.endpoint = None
        if self.status == 200:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
            kind, data = self.next_event()
            assert kind == "endpoint", (kind, data)
            self.endpoint = data

    def _lines(self):
        """Decode the chunked body into lines."""
        pending = b""
        while True:
            size = int(self._file.readline().strip() or b"0", 16)
            if size == 0:
                return
            pending += self._file.read(size)
            self._file.readline()
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.rstrip(b"\r").decode()

    def _read(self):
        kind, data = None, []
        try:
            for line in self._lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    self.events.put((kind or "message", "\n".join(data)))
                    kind, data = None, []
        except Exception:  # the stream was closed
            pass
        self.events.put(("closed", ""))

    def next_event(self, timeout: float = 10):
        return self.events.get(timeout=timeout)

    def next_message(self, timeout: float = 10) -> dict:
        kind, data = self.next_event(timeout)
        assert kind == "message", (kind, data)
        return json.loads(data)

    @property
    def session_id(self) -> str:
        return self.endpoint.split("sessionId=", 1)[1]

    def post(self, message, headers: dict[str, str] | None = None, url: str | None = None) -> httpx2.Response:
        body = message if isinstance(message, (bytes, str)) else json.dumps(message)
        return httpx2.post(url or self.base + self.endpoint, content=body,
                           headers={"Content-Type": "application/json", **(self.headers if headers is None else headers)})

    def initialize(self):
        assert self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}).status_code == 202
        reply = self.next_message()
        assert reply["id"] == 0 and "result" in reply, reply
        assert self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
        return reply["result"]

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
