#!/usr/bin/env python3
"""`fleet_run uptime` through a real `hostmcp gateway` to N simulated hosts: the issue 16 numbers.

This script owns the gateway measurement: a nats-server on a free loopback port (docs/fleet.md's
TLS and nkey setup, plus the simulated-hosts user), `hostmcp gateway` (its key made with
`hostmcp gateway key`), examples/fleet_simhosts answering as --hosts hosts and trusting that
key. Once the gateway sees every host online it measures, per round, one `fleet_run` call
(MCP 2026-07-28 stateless POST to /mcp, `{"command": "uptime"}`, --fan-out at once): its wall
time, and over hosts the completion time reported per host (p50, p99); every host's outcome
must be ok. Gateway CPU per host call (from /proc, over the measured rounds) and gateway
memory per connected host (RSS with the N hosts online minus RSS before any host beat, / N).
Everything is stopped by PID, also on failure.

    bench/fleet/gateway_fanout.py --hostmcp target/release/hostmcp \
        --simhosts target/release/examples/fleet_simhosts --hosts 1000 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests/e2e/nats"))
sys.path.insert(0, str(HERE))
import natsproc  # noqa: E402
from simfanout import cpu_seconds, rss_kib  # noqa: E402

TOKEN = "bench-fleet-token-0123456789abcdef"
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "fleet-bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}


class BenchError(RuntimeError):
    """A process did not start, or the gateway never saw the fleet, or a round failed."""


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def call(port: int, tool: str, arguments: dict, timeout: float = 120) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": META}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool,
               "Authorization": f"Bearer {TOKEN}"}
    response = httpx2.post(f"http://127.0.0.1:{port}/mcp", content=json.dumps(body), headers=headers,
                           timeout=timeout)
    if response.status_code != 200:
        raise BenchError(f"{tool}: HTTP {response.status_code}: {response.text[:500]}")
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads([d for d in data if d][-1])
    else:
        message = response.json()
    if "result" not in message:
        raise BenchError(f"{tool}: {message}")
    return message["result"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="hostmcp-fleet-gw-"))
    fleet = natsproc.new_fleet(work, [], simhosts=True)
    server = natsproc.start_single(fleet)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "XDG_STATE_HOME": str(work / "state"),
           "HOSTMCP_LOG": "warn"}
    gateway = sim = None
    try:
        key = subprocess.run([args.hostmcp, "gateway", "key"], env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        config = work / "gateway.toml"
        config.write_text(('run_as = "root"\n' if os.geteuid() == 0 else "")
                          + f'[[tokens]]\nname = "bench"\nrole = "operator"\nsha256 = "{digest}"\n'
                          + "[limits]\ntool_calls_per_minute = 1000000\nmax_concurrent_per_principal = 64\n"
                          # fleet_run lists one row per host in 3/10 of the budget: room for all
                          # of them, so every host's duration is measured.
                          + f"result_budget_bytes = {max(100 * 1024, 400 * args.hosts)}\n")
        log_path = work / "gateway.log"
        with open(log_path, "wb") as log:
            gateway = subprocess.Popen(
                [args.hostmcp, "gateway", "--nats", server.url, "--nats-nkey", str(fleet.seed_file("gateway")),
                 "--nats-ca", str(fleet.tls.ca), "--listen", "127.0.0.1:0", "--config", str(config),
                 "--fan-out", str(args.fan_out), "--audit-log", str(work / "audit.jsonl")],
                stdout=subprocess.DEVNULL, stderr=log, env={**env, "HOSTMCP_LOG": "info"})
        deadline, port = time.monotonic() + 60, None
        while port is None:
            match = re.search(r"address=127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
            if match:
                port = int(match.group(1))
            elif gateway.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"gateway did not start: {log_path.read_text()}")
            else:
                time.sleep(0.05)
        time.sleep(1)
        rss_empty = rss_kib(gateway.pid)

        sim_log = work / "simhosts.log"
        with open(sim_log, "wb") as out:
            sim = subprocess.Popen([args.simhosts, "--nats", server.url, "--nkey", str(fleet.seed_file("simhosts")),
                                    "--ca", str(fleet.tls.ca), "--hosts", str(args.hosts), "--prefix", "sim",
                                    "--beat-ms", str(args.beat_ms), "--trust", key],
                                   stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            text = call(port, "host_list", {})["content"][0]["text"]
            match = re.match(r"(\d+) hosts \((\d+) online\)", text)
            if match and int(match.group(2)) >= args.hosts:
                break
            if sim.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the gateway saw {text.splitlines()[0]!r}; simhosts: {sim_log.read_text()[-500:]}")
            time.sleep(0.5)
        time.sleep(2 * args.beat_ms / 1000)  # a full beat cycle of every host while online
        rss_full = rss_kib(gateway.pid)

        arguments = {"command": "uptime", "timeout_secs": 30, "concurrency": args.fan_out}
        for _ in range(args.warmup):
            call(port, "fleet_run", arguments)
        cpu0 = cpu_seconds(gateway.pid)
        rounds = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            result = call(port, "fleet_run", arguments)
            wall_ms = 1000 * (time.perf_counter() - start)
            structured = result.get("structuredContent") or {}
            runs = structured.get("hosts", [])
            if structured.get("hosts_not_listed"):
                raise BenchError(f"fleet_run listed {len(runs)} of {structured.get('hosts_run')} hosts")
            durations = [r["duration_ms"] for r in runs]
            ok = (structured.get("summary") or {}).get("ok", 0)
            rounds.append({"wall_ms": wall_ms, "hosts": structured.get("hosts_run", len(runs)), "ok": ok,
                           "result_bytes": len(json.dumps(result, separators=(",", ":"))),
                           "summary": structured.get("summary"),
                           "p50_ms": percentile(durations, 0.5) if durations else None,
                           "p99_ms": percentile(durations, 0.99) if durations else None})
        cpu1 = cpu_seconds(gateway.pid)
        complete = [r for r in rounds if r["ok"] == args.hosts]
        return {
            "hosts": args.hosts, "fan_out": args.fan_out, "rounds": rounds, "complete_rounds": len(complete),
            "median_wall_ms": statistics.median(r["wall_ms"] for r in complete) if complete else None,
            "median_p50_ms": statistics.median(r["p50_ms"] for r in complete) if complete else None,
            "median_p99_ms": statistics.median(r["p99_ms"] for r in complete) if complete else None,
            "gateway_cpu_us_per_host_call": 1e6 * (cpu1 - cpu0) / (args.rounds * args.hosts),
            "gateway_rss_kib": {"no_hosts": rss_empty, "all_online": rss_full},
            "gateway_kib_per_host": (rss_full - rss_empty) / args.hosts,
        }
    finally:
        stop(sim)
        stop(gateway)
        fleet.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hostmcp", required=True)
    parser.add_argument("--simhosts", required=True)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--beat-ms", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        result = measure(args)
    except BenchError as e:
        print(f"gateway_fanout: {e}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if result["complete_rounds"] == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
