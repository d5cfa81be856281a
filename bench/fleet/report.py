#!/usr/bin/env python3
"""Turns the fleet benchmark's JSON results into bench/results/fleet-<stamp>.md.

This script owns the report's layout: the machine and its load during the run, then the Ansible
baseline (medians and every run, per forks setting and connection mode).

    bench/fleet/report.py --ansible ansible.json --commit SHA --out bench/results/fleet-STAMP.md
"""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ansible", type=Path, required=True)
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--stamp", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    ansible = json.loads(args.ansible.read_text())
    lines = [
        f"# Fleet benchmark {args.stamp} (issue 16)",
        "",
        f"Commit {args.commit}; {platform.node()}, {platform.system()} {platform.release()}, "
        f"{ansible['cpus']} CPUs. Reproduce: `bench/fleet/run.sh`.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    lines += ansible_section(ansible)
    args.out.write_text("\n".join(lines))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
