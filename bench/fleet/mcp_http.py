"""A raw MCP client for the fleet benchmark: JSON-RPC `tools/call` over one HTTP keep-alive connection.

This module owns the client side of every timed call the real-agent benchmark makes: MCP
2026-07-28 stateless POSTs to /mcp (no handshake, no session: the fast path of both `hostmcp
serve` and `hostmcp gateway`), with the SEP-2243 headers (`Mcp-Method`, `Mcp-Name`, and
`Mcp-Param-Host` for a gateway host tool), on one `httpx2.Client` so every call reuses one TCP
connection. The same code talks to a host's own /mcp and to the gateway's, so the difference
between the two is the gateway's hop, not the client's. A call that asks for progress reads the
response as a stream and stamps each `notifications/progress` as it arrives.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

import httpx2

PROTOCOL = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientInfo": {"name": "fleet-bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}


class McpCallError(RuntimeError):
    """An HTTP status other than 200, a JSON-RPC error, or a response without a result."""


@dataclass
class Answer:
    """A call's result, and the seconds (from the request's start) each progress arrived at."""

    result: dict
    progress_at: list[float] = field(default_factory=list)

    @property
    def structured(self) -> dict:
        return self.result.get("structuredContent") or {}


class McpHttp:
    """One keep-alive connection to http://127.0.0.1:PORT/mcp with a bearer token."""

    def __init__(self, port: int, token: str, timeout: float = 120):
        self.client = httpx2.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout,
            limits=httpx2.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                     "MCP-Protocol-Version": PROTOCOL, "Authorization": f"Bearer {token}"})
        self.ids = itertools.count(1)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "McpHttp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, tool: str, arguments: dict, progress: bool) -> tuple[int, bytes, dict]:
        rid = next(self.ids)
        meta = {**META, "progressToken": f"p{rid}"} if progress else META
        body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments, "_meta": meta}}
        headers = {"Mcp-Method": "tools/call", "Mcp-Name": tool}
        if "host" in arguments:
            headers["Mcp-Param-Host"] = arguments["host"]
        return rid, json.dumps(body).encode(), headers

    def call(self, tool: str, arguments: dict, *, progress: bool = False) -> Answer:
        """tools/call; with `progress`, a progress token is sent and each notification timed."""
        rid, body, headers = self._request(tool, arguments, progress)
        start = time.perf_counter()
        progress_at: list[float] = []
        message = None
        with self.client.stream("POST", "/mcp", content=body, headers=headers) as response:
            if response.status_code != 200:
                raise McpCallError(f"{tool}: HTTP {response.status_code}: {response.read()[:500]!r}")
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                message = json.loads(response.read())
            else:
                for line in response.iter_lines():
                    if not line.startswith("data:") or not line[5:].strip():
                        continue
                    data = json.loads(line[5:])
                    if data.get("method") == "notifications/progress":
                        progress_at.append(time.perf_counter() - start)
                    elif data.get("id") == rid:
                        message = data
                        break
        if message is None or "result" not in message:
            raise McpCallError(f"{tool}: {message}")
        return Answer(message["result"], progress_at)
