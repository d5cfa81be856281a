#!/usr/bin/env python3
"""Fan-out over NATS without a gateway: signed `run_command uptime` calls to N hosts at once.

This script owns the NATS-level fan-out measurement of the fleet benchmark: it logs in as a
gateway user, sends every host one signed CallRequest (tests/e2e/nats/fleetproto.py, the wire
format of docs/fleet.md) on `hostmcp.host.<name>.call`, each with its own reply inbox, and
times each host's complete reply stream from the moment the first request was published.
Per round: completion p50/p99/max over hosts and the whole fan-out's wall time; every answer is
checked (status ok, the right host and id). It is the floor the gateway's `fleet_run` adds to:
NATS plus the hosts (real agents, or examples/fleet_simhosts.rs answering as N hosts).

    bench/fleet/fanout.py --nats tls://127.0.0.1:4222 --nkey gateway.nk --ca ca.pem \
        --hosts sim0000..sim0999 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests/e2e/nats"))
import fleetproto  # noqa: E402
import nats  # noqa: E402


def host_names(spec: str) -> list[str]:
    """`a,b,c` or `sim0000..sim0999` (a prefix and a zero-padded inclusive range)."""
    if ".." in spec:
        first, last = spec.split("..")
        digits = len(first) - len(first.rstrip("0123456789"))
        prefix = first[:-digits]
        return [f"{prefix}{i:0{digits}d}" for i in range(int(first[-digits:]), int(last[-digits:]) + 1)]
    return [h for h in spec.split(",") if h]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def fan_out(nc, gateway: fleetproto.Gateway, hosts: list[str], timeout: float) -> dict:
    prefix = nc.new_inbox()
    replies = {h: fleetproto.Reply() for h in hosts}
    done_at: dict[str, float] = {}
    ids: dict[str, str] = {}
    finished = asyncio.Event()

    async def on_reply(msg):
        host = msg.subject.rsplit(".", 1)[1]
        if host in done_at:
            return
        if replies[host].push(msg.headers, msg.data) is not None:
            done_at[host] = time.perf_counter()
            if len(done_at) == len(hosts):
                finished.set()

    sub = await nc.subscribe(f"{prefix}.*", cb=on_reply)
    await nc._flush_pending(force_flush=True)  # the SUB before the first request (nats-py 2.16)
    await nc.flush()
    sealed = []
    for host in hosts:
        payload, headers = gateway.seal_call(host, "run_command", {"command": "uptime"})
        ids[host] = json.loads(payload)["id"]
        sealed.append((host, payload, headers))
    start = time.perf_counter()
    for host, payload, headers in sealed:
        await nc.publish(f"hostmcp.host.{host}.call", payload, reply=f"{prefix}.{host}", headers=headers)
    await nc._flush_pending(force_flush=True)
    try:
        await asyncio.wait_for(finished.wait(), timeout)
    except asyncio.TimeoutError:
        pass
    wall = time.perf_counter() - start
    await sub.unsubscribe()
    latencies = [1000 * (t - start) for t in done_at.values()]
    bad = [h for h in done_at if replies[h].final.get("status") != "ok" or replies[h].final.get("host") != h
           or replies[h].final.get("id") != ids[h]]
    return {"answered": len(done_at), "missing": len(hosts) - len(done_at), "bad": len(bad),
            "bad_example": replies[bad[0]].final if bad else None, "wall_ms": 1000 * wall,
            "p50_ms": percentile(latencies, 0.50) if latencies else None,
            "p99_ms": percentile(latencies, 0.99) if latencies else None,
            "max_ms": max(latencies) if latencies else None}


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats", required=True)
    parser.add_argument("--nkey", required=True, type=Path)
    parser.add_argument("--ca", type=Path)
    parser.add_argument("--hosts", required=True, help="a,b,c or sim0000..sim0999")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    hosts = host_names(args.hosts)
    gateway = fleetproto.Gateway(args.nkey.read_text().strip())
    tls = ssl.create_default_context(cafile=str(args.ca)) if args.ca else None
    nc = await nats.connect(args.nats.split(","), nkeys_seed=str(args.nkey), tls=tls, connect_timeout=10,
                            pending_size=64 * 1024 * 1024)
    try:
        for _ in range(args.warmup):
            await fan_out(nc, gateway, hosts, args.timeout)
        rounds = [await fan_out(nc, gateway, hosts, args.timeout) for _ in range(args.rounds)]
    finally:
        await nc.close()
    complete = [r for r in rounds if r["missing"] == 0 and r["bad"] == 0]
    summary = {"hosts": len(hosts), "rounds": rounds, "complete_rounds": len(complete),
               "median_p50_ms": statistics.median(r["p50_ms"] for r in complete) if complete else None,
               "median_p99_ms": statistics.median(r["p99_ms"] for r in complete) if complete else None,
               "median_wall_ms": statistics.median(r["wall_ms"] for r in complete) if complete else None}
    text = json.dumps(summary, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if len(complete) == len(rounds) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
