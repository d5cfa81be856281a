"""The gateway's hop: one `run_command true` through the gateway vs the same call to the host's own /mcp.

This module owns that comparison (issue 16: "one call through the gateway to one host costs under
1 ms more than the same call made to the host's own HTTP endpoint"). Two clients of the same code
(mcp_http.McpHttp: 2026-07-28 stateless POSTs on one keep-alive connection each), one to the
gateway (`run_command` with `host`), one to the host's /mcp; calls interleaved one by one, the
order within each pair alternating, so load on the machine falls on both alike. Every answer must
be exit code 0. Reported: median, p90 and p99 of each, the difference of the medians and the
median of the per-pair differences (gateway minus direct). Then, to show where the hop's time
goes, a block of calls through the gateway and a block direct (not interleaved: CPU time is
per process), each with the CPU time (/proc) the gateway and the host spent per call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from mcp_http import Answer, McpHttp, McpCallError


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _timed(client: McpHttp, arguments: dict) -> float:
    start = time.perf_counter()
    answer: Answer = client.call("run_command", arguments)
    elapsed = time.perf_counter() - start
    if answer.structured.get("exit_code") != 0:
        raise McpCallError(f"run_command true did not exit 0: {answer.result}")
    return 1000 * elapsed


def cpu_per_call(client: McpHttp, arguments: dict, calls: int, cpu: Callable[[], dict]) -> dict:
    """CPU microseconds per call of each process `cpu()` reads (name -> seconds), over `calls` calls."""
    before = cpu()
    for _ in range(calls):
        _timed(client, arguments)
    after = cpu()
    return {name: 1e6 * (after[name] - before[name]) / calls for name in before}


def measure_hop(gateway: McpHttp, direct: McpHttp, host: str, calls: int, warmup: int = 20,
                cpu: Callable[[], dict] | None = None) -> dict:
    through = {"command": "true", "host": host}
    local = {"command": "true"}
    for _ in range(warmup):
        _timed(gateway, through)
        _timed(direct, local)
    gw_ms, direct_ms = [], []
    for i in range(calls):
        if i % 2:
            gw_ms.append(_timed(gateway, through))
            direct_ms.append(_timed(direct, local))
        else:
            direct_ms.append(_timed(direct, local))
            gw_ms.append(_timed(gateway, through))
    pairs = [g - d for g, d in zip(gw_ms, direct_ms)]

    def stats(xs: list[float]) -> dict:
        return {"median_ms": statistics.median(xs), "p90_ms": percentile(xs, 0.90), "p99_ms": percentile(xs, 0.99),
                "min_ms": min(xs)}

    result = {"host": host, "calls": calls, "warmup": warmup, "gateway": stats(gw_ms), "direct": stats(direct_ms),
              "median_difference_ms": statistics.median(gw_ms) - statistics.median(direct_ms),
              "median_pair_difference_ms": statistics.median(pairs),
              "p99_difference_ms": percentile(gw_ms, 0.99) - percentile(direct_ms, 0.99)}
    if cpu is not None:
        block = max(10, calls // 5)
        result["cpu_calls"] = block
        result["cpu_us_per_call"] = {"through_gateway": cpu_per_call(gateway, through, block, cpu),
                                     "direct": cpu_per_call(direct, local, block, cpu)}
    return result
