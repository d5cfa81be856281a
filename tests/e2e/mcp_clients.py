"""Open a Python SDK client over each transport hostmcp serves, with a bearer token."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

# (name, transport, mode) for every way a client reaches hostmcp.
TRANSPORTS = [
    ("mcp-session", "streamable", "legacy"),
    ("mcp-2026", "streamable", "2026-07-28"),
    ("sse", "sse", "legacy"),
]
TRANSPORT_IDS = [name for name, _, _ in TRANSPORTS]


def http_client(headers: dict[str, str]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))


@asynccontextmanager
async def connect(server, transport: str, mode: str, headers: dict[str, str] | None = None):
    headers = server.headers() if headers is None else headers
    if transport == "sse":
        async with Client(sse_client(server.sse_url, headers=headers), mode=mode) as client:
            yield client
    else:
        async with http_client(headers) as http, Client(
            streamable_http_client(server.mcp_url, http_client=http), mode=mode
        ) as client:
            yield client
