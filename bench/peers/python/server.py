"""Python SDK peer for hostmcp's benchmark: mcp 2.3.x `MCPServer` under uvicorn.

usage: BENCH_TOKEN=secret python server.py --listen 127.0.0.1:PORT

The same two tools as the hostmcp targets, behind the same bearer check:
  echo {"text": s}                      -> text content s
  run_command {"argv": [...]} | {"command": "sh line"}
                                        -> runs it as a subprocess; structuredContent
                                           {exit_code, stdout, stderr}
Serves Streamable HTTP at /mcp (session era and 2026-07-28, one app) and legacy SSE at
/sse + /messages/. Prints `address=HOST:PORT` on stderr once it listens.
"""
import argparse
import asyncio
import hmac
import os
import sys
from typing import TypedDict

import uvicorn
from mcp.server.mcpserver import MCPServer

ap = argparse.ArgumentParser()
ap.add_argument("--listen", default="127.0.0.1:0")
args = ap.parse_args()
host, _, port = args.listen.rpartition(":")
TOKEN = os.environ.get("BENCH_TOKEN", "")
EXPECTED = f"Bearer {TOKEN}".encode()

mcp = MCPServer("bench-python-peer", version="0.0.0", log_level="WARNING")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


class CommandResult(TypedDict):
    exit_code: int | None
    stdout: str
    stderr: str


@mcp.tool()
async def run_command(command: str | None = None, argv: list[str] | None = None) -> CommandResult:
    """Run a command (argv without a shell, or a shell command line); report exit code and output."""
    if argv:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    else:
        proc = await asyncio.create_subprocess_shell(
            command or "", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return {"exit_code": proc.returncode, "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace")}


# The benchmark opens 10,000 idle sessions; the SDK's default cap is exactly 10,000.
http_app = mcp.streamable_http_app(max_sessions=100_000)
sse_app = mcp.sse_app()
UNAUTHORIZED = b'{"error":"unauthorized"}'


async def app(scope, receive, send):
    """Bearer check in front of both apps (pure ASGI: the cheapest place for it)."""
    if scope["type"] == "lifespan":
        return await http_app(scope, receive, send)
    auth = b""
    for key, value in scope["headers"]:
        if key == b"authorization":
            auth = value
            break
    if not hmac.compare_digest(auth, EXPECTED):
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"),
            (b"www-authenticate", b'Bearer realm="bench"'),
            (b"content-length", str(len(UNAUTHORIZED)).encode())]})
        await send({"type": "http.response.body", "body": UNAUTHORIZED})
        return
    path = scope["path"]
    if path.startswith("/sse") or path.startswith("/messages"):
        return await sse_app(scope, receive, send)
    return await http_app(scope, receive, send)


class Server(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                h, p = sock.getsockname()[:2]
                print(f"address={h}:{p}", file=sys.stderr, flush=True)


config = uvicorn.Config(app, host=host, port=int(port), log_level="warning",
                        loop="uvloop", http="httptools", access_log=False)
Server(config).run()
