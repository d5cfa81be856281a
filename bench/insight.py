"""Ask the same host questions three ways and time them: hostmcp's native tools, hostmcp's
run_command shelling out (ps, df, ss), and the PyPI server linux-mcp-server over stdio.
Run by bench/insight.sh, which starts the server and the 1,000 sleepers; prints a Markdown table."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

# question -> (hostmcp tool and arguments, the shell-out through run_command, linux-mcp-server tool)
QUESTIONS = {
    "host overview": (("host_info", {}),
                      "uname -a; cat /etc/os-release; uptime; nproc; free -b; df -B1 /",
                      "get_system_information"),
    "top 10 processes by memory": (("process_list", {"sort": "memory", "limit": 10}),
                                   "ps aux --sort=-%mem | head -11",
                                   "list_processes"),
    "disk space": (("disk_usage", {}), "df -B1", "get_disk_usage"),
    "listening sockets": (("network_info", {"max_connections": 0}), "ss -ltnup", "get_listening_ports"),
}


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


def row(question: str, way: str, times: list[float], nbytes: int) -> str:
    times = sorted(times)
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    return f"| {question} | {way} | {statistics.median(times):.1f} | {p90:.1f} | {nbytes:,} |"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--lms", required=True, help="the linux-mcp-server executable")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    rows = []
    headers = {"Authorization": f"Bearer {args.token}"}
    async with streamablehttp_client(args.url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for question, ((tool, arguments), shell, _) in QUESTIONS.items():
                times, nbytes = await timed(session, tool, arguments, args.calls)
                rows.append(row(question, f"hostmcp `{tool}`", times, nbytes))
                times, nbytes = await timed(session, "run_command", {"command": shell}, args.calls)
                rows.append(row(question, f"hostmcp run_command `{shell}`", times, nbytes))
    params = StdioServerParameters(command=args.lms, args=["--transport", "stdio", "--log-level", "ERROR"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for question, (_, _, tool) in QUESTIONS.items():
                times, nbytes = await timed(session, tool, {"host": "localhost"}, max(5, args.calls // 3))
                rows.append(row(question, f"linux-mcp-server `{tool}`", times, nbytes))
    print("| question | asked of | median ms | p90 ms | result bytes |")
    print("|---|---|---|---|---|")
    for line in sorted(rows, key=lambda r: list(QUESTIONS).index(r.split(" | ")[0][2:])):
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
