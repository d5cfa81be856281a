#!/usr/bin/env python3
"""Turns the fleet benchmark's JSON results into bench/results/fleet-<stamp>.md.

This script owns the report's layout: the machine and its load average at the start and end of
the run, the issue's goals against what was measured, real agents through the gateway
(`fleet_run` completion per round, gateway CPU and memory, agents' memory), the hop (gateway
vs the host's own /mcp), the Ansible baseline (medians and every run, per forks setting and
connection mode) and its ratio to `fleet_run`, the fan-out to simulated hosts over NATS
(completion percentiles per round, CPU and memory), and `fleet_run` through the gateway to
simulated hosts (the same, plus gateway CPU per host call and memory per connected host).

    bench/fleet/report.py --agents agents.json --ansible ansible.json --hostmcp-bin BIN \
        --load-start "0.5 0.4 0.3" --commit SHA --stamp STAMP --out bench/results/fleet-STAMP.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def machine_lines(args) -> list[str]:
    """CPU, memory, kernel, tool versions, the binary, and the load average at start and end."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))

    def version(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return "not found"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"

    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines = [
        "## Machine",
        "",
        f"- {platform.node()}: {os.cpu_count()} CPUs ({cpu}), {mem_kib / 1048576:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- {version(['nats-server', '--version'])}",
    ]
    if args.hostmcp_bin:
        build = "DEBUG build: not a result" if "/debug/" in args.hostmcp_bin else "release build"
        lines.append(f"- hostmcp: `{args.hostmcp_bin}` ({build}): {version([args.hostmcp_bin, '--version'])}")
    lines += [f"- load average (1, 5, 15 min): {args.load_start or '?'} at the start ({args.started or '?'} UTC), "
              f"{load_end} at the end ({time.strftime('%H:%M:%S', time.gmtime())} UTC)", ""]
    return lines


def goals_lines(agents: dict | None, ansible: dict | None, sim: dict | None, gateway: dict | None) -> list[str]:
    """The issue's goals, each with what this run measured (blank when its part did not run)."""
    rows = []
    if agents:
        rows.append((f"{agents['agents']} real agents: `fleet_run uptime` completion p99",
                     "", f"{agents['completion_p99_ms']:.0f} ms (p50 {agents['completion_p50_ms']:.0f} ms)"))
        ratio = speedup(agents, ansible, "forks50")
        if ratio:
            rows.append(("vs Ansible forks 50, same host count (cold / warm SSH)", "at least 20x",
                         f"{ratio[0]:.1f}x / {ratio[1]:.1f}x"))
        hop = agents["hop"]
        rows.append(("one call through the gateway vs the host's own /mcp (median)", "under 1 ms more",
                     f"{hop['median_difference_ms']:+.2f} ms"))
        rows.append(("gateway CPU per host call (real agents)", "", f"{agents['gateway_cpu_us_per_host_call']:.0f} µs"))
    if sim and sim.get("median_p99_ms") is not None:
        rows.append((f"{sim['hosts']} simulated hosts over NATS, p99 (no gateway)", "under 1 s",
                     f"{sim['median_p99_ms']:.0f} ms"))
    if gateway and gateway.get("median_p99_ms") is not None:
        rows.append((f"{gateway['hosts']} simulated hosts through the gateway, p99", "under 1 s",
                     f"{gateway['median_p99_ms']:.0f} ms"))
    for r, what in ((gateway, "simulated"), (agents, "real")):
        if r and r.get("gateway_kib_per_host") is not None:
            rows.append((f"gateway memory per connected host ({r.get('hosts') or r.get('agents')} {what})",
                         "under 10 KiB", f"{r['gateway_kib_per_host']:.2f} KiB"))
    if not rows:
        return []
    lines = ["## Goals of issue 16", "", "| what | goal | measured |", "| --- | --- | ---: |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return lines + [""]


def speedup(agents: dict, ansible: dict | None, mode: str) -> tuple[float, float] | None:
    """Ansible's median time at `mode` over fleet_run's median wall, cold and warm SSH."""
    if not ansible or mode not in ansible["modes"] or not agents.get("median_wall_ms"):
        return None
    m, wall_s = ansible["modes"][mode], agents["median_wall_ms"] / 1000
    return m["cold_median_s"] / wall_s, m["warm_median_s"] / wall_s


def agents_section(r: dict, binary: str) -> list[str]:
    lines = [
        f"## `fleet_run uptime` through `hostmcp gateway` to {r['agents']} real agents",
        "",
        f"One nats-server (TLS, an nkey user per host), one `hostmcp gateway` and {r['agents']} "
        f"`hostmcp serve --fleet` ({binary}), each with its own state directory, fleet name and nkey, "
        f"trusting the gateway's key; all online {r['all_online_s']:.1f} s after the first was started. "
        "Per round one MCP 2026-07-28 POST of `fleet_run` `{\"command\": \"uptime\"}` over every host at once; "
        "a host's completion is the arrival at the client of the gateway's progress notification for it "
        f"(sent as each host finishes). {r['warmup_rounds']} warm-up rounds, then:",
        "",
        "| round | hosts ok | progress seen | p50 | p99 | fleet_run wall |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, x in enumerate(r["rounds"], 1):
        p50 = f"{x['p50_ms']:.0f} ms" if x["p50_ms"] is not None else "-"
        p99 = f"{x['p99_ms']:.0f} ms" if x["p99_ms"] is not None else "-"
        lines.append(f"| {i} | {x['ok']}/{r['agents']} | {x['progress_seen']} | {p50} | {p99} | {x['wall_ms']:.0f} ms |")
    rss, agent_rss = r["gateway_rss_kib"], r["agent_rss_kib"]
    unseen = r.get("progress_unseen", 0)
    if unseen:
        lines += ["", f"{unseen} of {r['completion_samples']} progress notifications never reached the client: "
                  "the gateway forwards progress from a task of its own, and the result overtook them (a gateway "
                  "finding: the final result should wait for the pending notifications). Those hosts count at the "
                  "result's arrival (fleet_run wall), an upper bound."]
    lines += ["", f"Over all {r['completion_samples']} host completions: p50 {r['completion_p50_ms']:.0f} ms, "
              f"p99 {r['completion_p99_ms']:.0f} ms, max {r['completion_max_ms']:.0f} ms; fleet_run wall median "
              f"{r['median_wall_ms']:.0f} ms. Gateway CPU per host call: {r['gateway_cpu_us_per_host_call']:.0f} µs. "
              f"Gateway RSS: {rss['no_hosts']} KiB with no host, {rss['all_online']} KiB with {r['agents']} online "
              f"({r['gateway_kib_per_host']:.1f} KiB per host), {rss.get('after_rounds', '?')} KiB after the rounds. Agent RSS: median {agent_rss['median']:.0f} KiB, "
              f"max {agent_rss['max']} KiB.", ""]
    return lines


def hop_section(h: dict) -> list[str]:
    g, d = h["gateway"], h["direct"]
    return [
        f"## The hop: `run_command true` through the gateway vs the host's own /mcp ({h['host']})",
        "",
        f"The same client code (bench/fleet/mcp_http.py: 2026-07-28 stateless POSTs, one keep-alive connection "
        f"per endpoint), {h['calls']} calls each after {h['warmup']} warm-up calls, interleaved one by one "
        "(order alternating); every answer exit code 0.",
        "",
        "| endpoint | median | p90 | p99 | min |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| gateway -> NATS -> host | {g['median_ms']:.2f} ms | {g['p90_ms']:.2f} ms | {g['p99_ms']:.2f} ms | "
        f"{g['min_ms']:.2f} ms |",
        f"| host's own /mcp | {d['median_ms']:.2f} ms | {d['p90_ms']:.2f} ms | {d['p99_ms']:.2f} ms | "
        f"{d['min_ms']:.2f} ms |",
        "",
        f"Difference: medians {h['median_difference_ms']:+.2f} ms (median of per-pair differences "
        f"{h['median_pair_difference_ms']:+.2f} ms), p99 {h['p99_difference_ms']:+.2f} ms. Goal: under 1 ms.",
        "",
    ] + hop_cpu_lines(h)


def hop_cpu_lines(h: dict) -> list[str]:
    if "cpu_us_per_call" not in h:
        return []
    through, direct = h["cpu_us_per_call"]["through_gateway"], h["cpu_us_per_call"]["direct"]
    lines = [f"CPU time per call ({h['cpu_calls']} calls each way, one block after the other):", "",
             "| process | through the gateway | direct |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {through[name]:.0f} µs | {direct[name]:.0f} µs |" for name in through]
    return lines + [""]


def comparison_section(agents: dict, ansible: dict) -> list[str]:
    lines = [f"## hostmcp through the gateway vs Ansible: {agents['agents']} agents, {ansible['hosts']} sshd",
             "",
             "Ansible's median wall time (start to exit) over `fleet_run`'s median wall time (request to result):",
             "",
             "| Ansible forks | cold SSH | warm SSH |", "| ---: | ---: | ---: |"]
    for mode in ansible["modes"]:
        cold, warm = speedup(agents, ansible, mode)
        lines.append(f"| {mode.removeprefix('forks')} | {cold:.1f}x | {warm:.1f}x |")
    if agents["agents"] != ansible["hosts"]:
        lines += ["", "Note: not the same host count on both sides; the ratio compares unlike runs."]
    return lines + ["", "Goal: at least 20x faster than Ansible with 50 forks.", ""]


def ansible_section(r: dict) -> list[str]:
    lines = [
        f"## Ansible ad-hoc over SSH: `ansible all -m command -a uptime`, {r['hosts']} sshd on loopback",
        "",
        f"{r['ansible']}; {r['ssh']}. Each sshd its own port and ed25519 host key, key auth for `{r['user']}`, "
        "host key checking on (known_hosts written by the script). Wall clock from starting `ansible` to its exit, "
        f"every host's answer checked; median of {r['runs']} runs. *cold*: a fresh ControlPath directory per run "
        "(N new SSH connections); *warm*: ControlPersist masters left by the previous run (Ansible's best case).",
        "",
        "| forks | cold median | cold runs | warm median | warm runs | per host (cold) |",
        "| ---: | ---: | --- | ---: | --- | ---: |",
    ]
    for mode, m in r["modes"].items():
        forks = mode.removeprefix("forks")
        runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
        lines.append(f"| {forks} | {m['cold_median_s']:.2f} s | {runs(m['cold_runs_s'])} | "
                     f"{m['warm_median_s']:.2f} s | {runs(m['warm_runs_s'])} | "
                     f"{1000 * m['cold_median_s'] / r['hosts']:.0f} ms |")
    if r.get("remote_home") == "empty":
        lines += ["", f"`{r['user']}`'s login shell ({r['login_shell']}) runs each of Ansible's remote commands "
                  "with HOME an empty directory (sshd `SetEnv`): no rc file of this machine's user is measured."]
    elif "login_shell" in r:
        rc = " and reads its ~/.bashrc for each remote command (bash started by sshd does)" \
            if r["bashrc"] and r["login_shell"].endswith("bash") else ""
        lines += ["", f"`{r['user']}`'s login shell is {r['login_shell']}{rc} (--user-home)."]
    lines += ["", f"Load average (1 min) before the Ansible runs: {r['load_before']:.1f}, after: "
              f"{r['load_after']:.1f}, on {r['cpus']} CPUs.", ""]
    return lines


def simfanout_section(r: dict, binary: str) -> list[str]:
    lines = [
        f"## Fan-out over NATS to {r['hosts']} simulated hosts (no gateway)",
        "",
        f"examples/fleet_simhosts ({binary}) answers as {r['hosts']} hosts behind one nats-server (TLS, nkeys); "
        "bench/fleet/fanout.py signs one `run_command uptime` CallRequest per host, publishes all of them, "
        "and times each host's complete reply from the first publish. Every answer checked (ok, right host "
        f"and id). {r['complete_rounds']}/{len(r['rounds'])} rounds complete.",
        "",
        "| round | p50 | p99 | max | wall |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, x in enumerate(r["rounds"], 1):
        lines.append(f"| {i} | {x['p50_ms']:.1f} ms | {x['p99_ms']:.1f} ms | {x['max_ms']:.1f} ms | {x['wall_ms']:.1f} ms |")
    cpu = r["cpu_us_per_host_call"]
    lines += ["", f"Medians: p50 {r['median_p50_ms']:.1f} ms, p99 {r['median_p99_ms']:.1f} ms, wall "
              f"{r['median_wall_ms']:.1f} ms. CPU per host call: nats-server {cpu['nats']:.0f} µs, simulated hosts "
              f"{cpu['simhosts']:.0f} µs. RSS: nats-server {r['rss_kib']['nats']} KiB, simulated hosts "
              f"{r['rss_kib']['simhosts']} KiB.", ""]
    return lines


def gateway_section(r: dict, binary: str) -> list[str]:
    lines = [
        f"## `fleet_run uptime` through `hostmcp gateway` to {r['hosts']} simulated hosts",
        "",
        f"{binary}; one MCP 2026-07-28 POST per round, fan-out {r['fan_out']}; completion = each host's "
        f"`duration_ms` in the result. {r['complete_rounds']}/{len(r['rounds'])} rounds with every host ok.",
        "",
        "| round | hosts ok | p50 | p99 | fleet_run wall |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, x in enumerate(r["rounds"], 1):
        lines.append(f"| {i} | {x['ok']}/{x['hosts']} | {x['p50_ms']} ms | {x['p99_ms']} ms | {x['wall_ms']:.0f} ms |")
    rss = r["gateway_rss_kib"]
    lines += ["", f"Gateway CPU per host call: {r['gateway_cpu_us_per_host_call']:.0f} µs. Gateway RSS: "
              f"{rss['no_hosts']} KiB with no host, {rss['all_online']} KiB with {r['hosts']} online: "
              f"{r['gateway_kib_per_host']:.2f} KiB per connected host.", ""]
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=Path)
    parser.add_argument("--ansible", type=Path)
    parser.add_argument("--simfanout", type=Path)
    parser.add_argument("--simhosts-bin", default="")
    parser.add_argument("--gateway", type=Path)
    parser.add_argument("--hostmcp-bin", default="")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--stamp", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--load-start", default="", help="/proc/loadavg's first three fields at the start")
    parser.add_argument("--started", default="", help="the run's start time (UTC)")
    parser.add_argument("--failed", default="", help="the parts that failed (their messages are in the run's log)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    load = lambda path: json.loads(path.read_text()) if path else None  # noqa: E731
    agents, ansible, sim, gateway = load(args.agents), load(args.ansible), load(args.simfanout), load(args.gateway)
    lines = [
        f"# Fleet benchmark {args.stamp} (issue 16)",
        "",
        f"Commit {args.commit}. Reproduce: `bench/fleet/run.sh`. Raw data: `fleet-{args.stamp}/`.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    if args.failed.strip():
        lines += [f"**Failed parts: {args.failed.strip()}** (not in this report; their errors are in the run's "
                  "output).", ""]
    lines += machine_lines(args)
    lines += goals_lines(agents, ansible, sim, gateway)
    if agents:
        lines += agents_section(agents, args.hostmcp_bin)
        lines += hop_section(agents["hop"])
    if ansible:
        lines += ansible_section(ansible)
    if agents and ansible:
        lines += comparison_section(agents, ansible)
    if sim:
        lines += simfanout_section(sim, args.simhosts_bin)
    if gateway:
        lines += gateway_section(gateway, args.hostmcp_bin)
    args.out.write_text("\n".join(lines))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
