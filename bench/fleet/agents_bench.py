#!/usr/bin/env python3
"""Real agents through the gateway (issue 16): `fleet_run uptime` to N `hostmcp serve --fleet`, and the hop.

This script owns the real-agent measurement of bench/fleet/run.sh. It starts a real fleet on
loopback (bench/fleet/realfleet.py: nats-server with TLS and nkeys, `hostmcp gateway`, N agents)
and, once the gateway sees every agent online:

1. fan-out: --rounds times one `fleet_run` `{"command": "uptime"}` over every host at once
   (concurrency N), asking for progress so that each host's completion, as the client sees it,
   is the arrival of its `notifications/progress` (the gateway sends one as each host finishes;
   one that the result overtook counts as the result's arrival);
   per round the `fleet_run` wall time and every host's outcome (all must be ok); completion
   p50/p99 over all hosts of all rounds; gateway CPU per host call (from /proc, over the
   measured rounds), gateway RSS with no agent and with N online, agents' RSS;
2. the hop (bench/fleet/hop.py): --hop-calls `run_command true` through the gateway to the first
   agent vs the same call to that agent's own /mcp, interleaved; then CPU per call of the
   gateway, that host and nats-server, through the gateway and direct.

Every process is stopped by PID at the end, also on failure or SIGTERM.

    bench/fleet/agents_bench.py --hostmcp target/release/hostmcp --agents 100 --rounds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from hop import measure_hop, percentile  # noqa: E402
from mcp_http import McpCallError, McpHttp  # noqa: E402
from realfleet import TOKEN, FleetStartError, real_fleet  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class RoundError(RuntimeError):
    """A fleet_run round did not answer for every host."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fan_out_round(client: McpHttp, hosts: int) -> dict:
    arguments = {"command": "uptime", "timeout_secs": 60, "concurrency": hosts}
    start = time.perf_counter()
    answer = client.call("fleet_run", arguments, progress=True)
    wall_ms = 1000 * (time.perf_counter() - start)
    runs = answer.structured.get("hosts", [])
    outcomes: dict[str, int] = {}
    for run in runs:
        outcomes[run.get("outcome", "?")] = outcomes.get(run.get("outcome", "?"), 0) + 1
    ok = (answer.structured.get("summary") or {}).get("ok", outcomes.get("ok", 0))
    done_ms = [1000 * t for t in answer.progress_at][:hosts]
    # The gateway forwards progress from a task of its own, so the result can overtake the last
    # notifications (a gateway finding; see the report). A host whose notification never came
    # finished before the result did: its completion is counted as the wall time (an upper bound).
    unseen = max(0, hosts - len(done_ms))
    done_ms += [wall_ms] * unseen
    return {"wall_ms": wall_ms, "ok": ok, "listed": len(runs), "outcomes": outcomes,
            "progress_seen": hosts - unseen, "completion_ms": done_ms,
            "p50_ms": percentile(done_ms, 0.5) if done_ms else None,
            "p99_ms": percentile(done_ms, 0.99) if done_ms else None}


def measure(args) -> dict:
    with real_fleet(args.hostmcp, args.agents, args.pidfile) as fleet:
        time.sleep(1)
        rss_empty = rss_kib(fleet.gateway.pid)
        started = time.monotonic()
        fleet.start_agents()
        fleet.wait_online(timeout=120 + 2 * args.agents)
        online_s = time.monotonic() - started
        time.sleep(5)  # a few presence beats of every agent while online
        rss_online = rss_kib(fleet.gateway.pid)
        with McpHttp(fleet.gateway_port, TOKEN) as client:
            for _ in range(args.warmup):
                fan_out_round(client, args.agents)
            cpu0 = cpu_seconds(fleet.gateway.pid)
            rounds = [fan_out_round(client, args.agents) for _ in range(args.rounds)]
            cpu1 = cpu_seconds(fleet.gateway.pid)
        rss_after = rss_kib(fleet.gateway.pid)
        bad = [r for r in rounds if r["ok"] != args.agents]
        if bad:
            raise RoundError(f"{len(bad)}/{len(rounds)} rounds not all ok: {bad[0]['outcomes']}")
        completion = [t for r in rounds for t in r["completion_ms"]]
        agent_rss = sorted(rss_kib(p.pid) for p in fleet.agents.values())
        with McpHttp(fleet.gateway_port, TOKEN) as gateway, McpHttp(fleet.direct_port, TOKEN) as direct:
            pids = {"gateway": fleet.gateway.pid, "host": fleet.agents[fleet.direct_host].pid,
                    "nats": fleet.nats.process.pid}
            hop = measure_hop(gateway, direct, fleet.direct_host, args.hop_calls, args.hop_warmup,
                              cpu=lambda: {name: cpu_seconds(pid) for name, pid in pids.items()})
        return {
            "agents": args.agents, "rounds": [{k: v for k, v in r.items() if k != "completion_ms"} for r in rounds],
            "warmup_rounds": args.warmup, "all_online_s": online_s,
            "completion_p50_ms": percentile(completion, 0.5) if completion else None,
            "completion_p99_ms": percentile(completion, 0.99) if completion else None,
            "completion_max_ms": max(completion) if completion else None,
            "completion_samples": len(completion),
            "progress_unseen": sum(args.agents - r["progress_seen"] for r in rounds),
            "median_wall_ms": statistics.median(r["wall_ms"] for r in rounds),
            "p99_wall_ms": percentile([r["wall_ms"] for r in rounds], 0.99),
            "gateway_cpu_us_per_host_call": 1e6 * (cpu1 - cpu0) / (args.rounds * args.agents),
            "gateway_rss_kib": {"no_hosts": rss_empty, "all_online": rss_online, "after_rounds": rss_after},
            "gateway_kib_per_host": (rss_online - rss_empty) / args.agents,
            "agent_rss_kib": {"median": statistics.median(agent_rss), "max": agent_rss[-1]},
            "hop": hop,
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hostmcp", required=True)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--hop-calls", type=int, default=500)
    parser.add_argument("--hop-warmup", type=int, default=20)
    parser.add_argument("--pidfile", type=Path, help="append every started PID here (run.sh stops leftovers)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.agents < 1:
        parser.error("--agents must be at least 1")
    # SIGTERM (run.sh's trap) unwinds like an exception, so the fleet's finally stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = measure(args)
    except (FleetStartError, RoundError, McpCallError) as e:
        print(f"agents_bench: {e}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
