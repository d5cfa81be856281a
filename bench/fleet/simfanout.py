#!/usr/bin/env python3
"""N simulated hosts behind a real nats-server, fanned out to: the NATS floor of `fleet_run`.

This script owns one benchmark setup: a nats-server on a free loopback port (the TLS and nkey
configuration of docs/fleet.md, plus the simulated-hosts user), examples/fleet_simhosts
answering as --hosts hosts, then bench/fleet/fanout.py's signed `uptime` fan-out for --rounds
rounds. It reports the fan-out's completion p50/p99 and wall time, and the CPU time and RSS
the NATS server and the simulated hosts used, and stops both by PID, also on failure.

    bench/fleet/simfanout.py --simhosts target/debug/examples/fleet_simhosts --hosts 1000 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests/e2e/nats"))
sys.path.insert(0, str(HERE))
import fanout  # noqa: E402
import fleetproto  # noqa: E402
import nats  # noqa: E402
import natsproc  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def measure(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="hostmcp-fleet-sim-"))
    fleet = natsproc.new_fleet(work, [], simhosts=True)
    server = natsproc.start_single(fleet)
    sim = None
    try:
        log = open(work / "simhosts.log", "wb")
        sim = subprocess.Popen([args.simhosts, "--nats", server.url, "--nkey", str(fleet.seed_file("simhosts")),
                                "--ca", str(fleet.tls.ca), "--hosts", str(args.hosts), "--prefix", "sim",
                                "--trust", fleet.gateway.public], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"ready" not in (work / "simhosts.log").read_bytes():
            if sim.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fleet_simhosts did not start: {(work / 'simhosts.log').read_text()}")
            await asyncio.sleep(0.05)
        gateway = fleetproto.Gateway(fleet.gateway.seed)
        nc = await nats.connect(server.url, nkeys_seed=str(fleet.seed_file("gateway")),
                                tls=ssl.create_default_context(cafile=str(fleet.tls.ca)), pending_size=64 << 20)
        hosts = [f"sim{i:04d}" for i in range(args.hosts)]
        try:
            for _ in range(args.warmup):
                await fanout.fan_out(nc, gateway, hosts, args.timeout)
            cpu0 = {"nats": cpu_seconds(server.process.pid), "simhosts": cpu_seconds(sim.pid)}
            rounds = [await fanout.fan_out(nc, gateway, hosts, args.timeout) for _ in range(args.rounds)]
            cpu1 = {"nats": cpu_seconds(server.process.pid), "simhosts": cpu_seconds(sim.pid)}
        finally:
            await nc.close()
        calls = args.rounds * args.hosts
        return {
            "hosts": args.hosts, "rounds": rounds,
            "complete_rounds": sum(1 for r in rounds if r["missing"] == 0 and r["bad"] == 0),
            "cpu_us_per_host_call": {k: 1e6 * (cpu1[k] - cpu0[k]) / calls for k in cpu0},
            "rss_kib": {"nats": rss_kib(server.process.pid), "simhosts": rss_kib(sim.pid)},
        }
    finally:
        if sim is not None and sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
        fleet.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simhosts", required=True)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args))
    complete = [r for r in result["rounds"] if r["missing"] == 0 and r["bad"] == 0]
    for key in ("p50_ms", "p99_ms", "wall_ms"):
        values = sorted(r[key] for r in complete)
        result[f"median_{key}"] = values[len(values) // 2] if values else None
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if len(complete) == len(result["rounds"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
