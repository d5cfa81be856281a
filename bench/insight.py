"""Ask the same host questions three ways and time them: hostmcp's native tools, hostmcp's
run_command shelling out (ps, df, ss), and the PyPI server linux-mcp-server over stdio.
Run by bench/insight.sh, which starts the server and the 1,000 sleepers; prints a Markdown table.

Each call is timed twice over: as a raw JSON-RPC exchange (one HTTP POST, or one line on
linux-mcp-server's stdin, read until the answer is complete: the server's time plus the
transport's), and through the official Python SDK's `ClientSession.call_tool`. The SDK
validates every `structuredContent` against the tool's output schema with
`jsonschema.validate`, which checks the schema itself against the meta-schema on every call:
measured on hostmcp's debug build, 25-30 ms a call for host_info's schema, more than the
server's whole answer. The raw column is the one that says how fast a server answers."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

# question -> (hostmcp tool and arguments, the shell-outs through run_command, linux-mcp-server tool)
# The first shell-out of each question gathers the facts the tool reports, each by the
# cheapest command there is for it. host_info's has a second, older row: the facts of
# `uname`, os-release, `uptime`, `nproc`, `free` and `df` only (no CPU model, pressure,
# virtualisation, logged-in users or process count), kept to compare with earlier runs.
HOST_FACTS = ("uname -a; cat /etc/os-release; uptime; nproc; grep -m1 'model name' /proc/cpuinfo; "
              "cat /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io; free -b; df -B1 /; "
              "systemd-detect-virt; who; ls /proc | grep -c '^[0-9]'")
QUESTIONS = {
    "host overview": (("host_info", {}),
                      [HOST_FACTS, "uname -a; cat /etc/os-release; uptime; nproc; free -b; df -B1 /"],
                      "get_system_information"),
    "top 10 processes by memory": (("process_list", {"sort": "memory", "limit": 10}),
                                   ["ps aux --sort=-%mem | head -11"],
                                   "list_processes"),
    "disk space": (("disk_usage", {}), ["df -B1"], "get_disk_usage"),
    "listening sockets": (("network_info", {"max_connections": 0}), ["ss -ltnup"], "get_listening_ports"),
}
# The floor: a tool that reads nothing of the host (no jobs are running), so its time is the
# HTTP, JSON-RPC, authentication and result shaping every call above pays too.
FLOOR = ("job_list", {})


def size(result) -> int:
    text = sum(len(getattr(block, "text", "") or "") for block in result.content)
    structured = len(json.dumps(result.structuredContent)) if result.structuredContent else 0
    return text + structured


async def timed(session: ClientSession, tool: str, arguments: dict, calls: int) -> tuple[list[float], int]:
    for _ in range(3):  # warm-up (and hostmcp's first CPU sample)
        await session.call_tool(tool, arguments)
    times, last = [], None
    for _ in range(calls):
        started = time.perf_counter()
        last = await session.call_tool(tool, arguments)
        times.append((time.perf_counter() - started) * 1000)
    assert not last.isError, last.content
    return times, size(last)


def stats(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.9))]


def row(question: str, way: str, raw: list[float], sdk: list[float], nbytes: int) -> str:
    (raw_median, raw_p90), (sdk_median, _) = stats(raw), stats(sdk)
    way = way.replace("|", "\\|")  # a pipe inside a shell-out would end the cell
    return f"| {question} | {way} | {raw_median:.1f} | {raw_p90:.1f} | {sdk_median:.1f} | {nbytes:,} |"


class RawHttp:
    """One Streamable HTTP session of plain POSTs: the answer read whole, nothing validated."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream"}
        self.client = httpx.Client(timeout=60)
        self.next_id = 0

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        response = self.client.post(self.url, headers=self.headers, json={
            "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        response.raise_for_status()
        if "mcp-session-id" in response.headers:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    message = json.loads(line[5:])
                    if message.get("id") == self.next_id:
                        return message
            raise RuntimeError(f"no answer to {method}: {response.text[:200]}")
        return response.json()

    def open(self) -> None:
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "insight-raw", "version": "1"}})
        self.headers["mcp-protocol-version"] = "2025-06-18"
        self.client.post(self.url, headers=self.headers,
                         json={"jsonrpc": "2.0", "method": "notifications/initialized"})

    def timed(self, tool: str, arguments: dict, calls: int) -> list[float]:
        for _ in range(3):
            self.request("tools/call", {"name": tool, "arguments": arguments})
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            answer = self.request("tools/call", {"name": tool, "arguments": arguments})
            times.append((time.perf_counter() - started) * 1000)
        assert "result" in answer and not answer["result"].get("isError"), answer
        return times


async def raw_stdio(command: list[str], tool: str, arguments: dict, calls: int) -> list[float]:
    """The same exchange over a stdio server: one JSON line out, lines read until the answer."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=64 << 20)
    next_id = 0

    async def request(method: str, params: dict) -> dict:
        nonlocal next_id
        next_id += 1
        process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method,
                                        "params": params}).encode() + b"\n")
        await process.stdin.drain()
        while True:
            line = await process.stdout.readline()
            if not line:
                raise RuntimeError(f"{command[0]} closed its output")
            message = json.loads(line)
            if message.get("id") == next_id:
                return message

    try:
        await request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                     "clientInfo": {"name": "insight-raw", "version": "1"}})
        process.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        for _ in range(3):
            await request("tools/call", {"name": tool, "arguments": arguments})
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            answer = await request("tools/call", {"name": tool, "arguments": arguments})
            times.append((time.perf_counter() - started) * 1000)
        assert "result" in answer, answer
        return times
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--lms", required=True, help="the linux-mcp-server executable")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="raw JSON-RPC times of hostmcp only: no Python SDK, no linux-mcp-server")
    args = parser.parse_args()
    rows = []
    headers = {"Authorization": f"Bearer {args.token}"}
    raw = RawHttp(args.url, args.token)
    raw.open()
    floor = raw.timed(*FLOOR, args.calls)
    if args.quick:
        for question, ((tool, arguments), shells, _) in QUESTIONS.items():
            native = raw.timed(tool, arguments, args.calls)
            rows.append(row(question, f"hostmcp `{tool}`", native, [0.0], 0))
            for shell in shells:
                shelled = raw.timed("run_command", {"command": shell}, args.calls)
                rows.append(row(question, f"hostmcp run_command `{shell}`", shelled, [0.0], 0))
        print_table(rows + [row("the floor (no host reading)", f"hostmcp `{FLOOR[0]}`", floor, [0.0], 0)])
        return
    async with streamablehttp_client(args.url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for question, ((tool, arguments), shells, _) in QUESTIONS.items():
                raw_times = raw.timed(tool, arguments, args.calls)
                times, nbytes = await timed(session, tool, arguments, args.calls)
                rows.append(row(question, f"hostmcp `{tool}`", raw_times, times, nbytes))
                for shell in shells:
                    command = {"command": shell}
                    raw_times = raw.timed("run_command", command, args.calls)
                    times, nbytes = await timed(session, "run_command", command, args.calls)
                    rows.append(row(question, f"hostmcp run_command `{shell}`", raw_times, times, nbytes))
            times, nbytes = await timed(session, *FLOOR, args.calls)
            floor_row = row("the floor (no host reading)", f"hostmcp `{FLOOR[0]}`", floor, times, nbytes)
    lms = [args.lms, "--transport", "stdio", "--log-level", "ERROR"]
    params = StdioServerParameters(command=lms[0], args=lms[1:])
    lms_calls = max(5, args.calls // 3)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for question, (_, _, tool) in QUESTIONS.items():
                times, nbytes = await timed(session, tool, {"host": "localhost"}, lms_calls)
                raw_times = await raw_stdio(lms, tool, {"host": "localhost"}, lms_calls)
                rows.append(row(question, f"linux-mcp-server `{tool}`", raw_times, times, nbytes))
    print_table(rows + [floor_row])


def print_table(rows: list[str]) -> None:
    """The rows grouped by question, in the order of QUESTIONS (the floor last)."""
    order = [*QUESTIONS, "the floor (no host reading)"]
    print("| question | asked of | median ms (raw JSON-RPC) | p90 ms (raw) | median ms (Python SDK) | result bytes |")
    print("|---|---|---|---|---|---|")
    for line in sorted(rows, key=lambda r: order.index(r.split(" | ")[0][2:])):
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
