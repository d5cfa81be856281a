#!/usr/bin/env python3
"""Turns the fleet benchmark's JSON results into bench/results/fleet-<stamp>.md.

This script owns the report's layout: the machine and its load during the run, the Ansible
baseline (medians and every run, per forks setting and connection mode), the fan-out to
simulated hosts over NATS (completion percentiles per round, CPU and memory), and `fleet_run`
through the gateway (the same, plus gateway CPU per host call and memory per connected host).

    bench/fleet/report.py --ansible ansible.json --commit SHA --out bench/results/fleet-STAMP.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


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
    parser.add_argument("--ansible", type=Path)
    parser.add_argument("--simfanout", type=Path)
    parser.add_argument("--simhosts-bin", default="")
    parser.add_argument("--gateway", type=Path)
    parser.add_argument("--hostmcp-bin", default="")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--stamp", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    ansible = json.loads(args.ansible.read_text()) if args.ansible else None
    lines = [
        f"# Fleet benchmark {args.stamp} (issue 16)",
        "",
        f"Commit {args.commit}; {platform.node()}, {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs. Reproduce: `bench/fleet/run.sh`.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    if ansible:
        lines += ansible_section(ansible)
    if args.simfanout:
        lines += simfanout_section(json.loads(args.simfanout.read_text()), args.simhosts_bin)
    if args.gateway:
        lines += gateway_section(json.loads(args.gateway.read_text()), args.hostmcp_bin)
    args.out.write_text("\n".join(lines))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
