"""Per-command cgroups (where the host delegates them): `memory` and `processes` bind a
command's whole process tree, not each process. Four children of 40 MiB under a 96 MiB limit
(each well under it, so the per-process rlimit alone would let them all live) are killed with
a clear result; two of 30 MiB run. A fork bomb run as root (whom RLIMIT_NPROC does not bind)
is stopped by the tree's process limit with nothing left running. The tree's peak memory is
reported, and each command's cgroup is gone after it."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, TOKENS, start_server
from mcp_clients import connect

pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups here needs root")]

MIB = 1 << 20
LIMITS = 'limits = { memory = "96MiB", processes = 16 }\n'
POLICY = """
[policy]
default = "allow"
deny_interpreters = false
"""


def config() -> str:
    text = ""
    for name, (token, role) in TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        extra = LIMITS if name == "alice" else ""
        text += f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{extra}\n'
    return 'run_as = "root"\n' + text + "[limits]\nauth_failures_per_minute = 100000\n" + POLICY


@pytest.fixture(scope="module")
def limited():
    server = start_server(config=config())
    log = ""
    for _ in range(50):
        log = server.log_path.read_text(errors="replace")
        if "per-command cgroups" in log:
            break
        time.sleep(0.1)
    if "no per-command cgroups" in log:
        server.stop()
        line = next(line for line in log.splitlines() if "no per-command cgroups" in line)
        pytest.skip(f"cgroups are not writable here: {line}")
    yield server
    server.stop()


async def run(server, argv: list[str], timeout: int = 60):
    async with connect(server, "streamable", "legacy", headers=server.headers("alice")) as client:
        return await client.call_tool("run_command", {"argv": argv, "timeout_secs": timeout})


def command_cgroups(pid: int) -> list[Path]:
    """The cgroups the server `pid` made for its commands and has not removed."""
    found = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        mount = Path("/sys/fs/cgroup")
        if controllers and not controllers.startswith("name="):
            mount = mount / controllers.split(",")[0]
        own = mount / path.lstrip("/")
        for parent in {own, own.parent}:
            found.extend((parent / "hostmcp").glob(f"{pid}-*"))
    return found


def alive(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()


def audit_records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


HOG = "import time; b = bytearray({mib} << 20); time.sleep(5)"
# This test's own interpreter, a real binary: `python3` on PATH may be a pyenv shim, a shell
# script that forks a dozen processes of its own and so trips the processes limit first.
PYTHON = shlex.quote(sys.executable)


async def test_children_over_the_tree_memory_limit_are_killed_with_a_clear_result(limited):
    hogs = await run(limited, ["sh", "-c", f"for i in 1 2 3 4; do {PYTHON} -c '{HOG.format(mib=40)}' & done; wait"])
    text = hogs.content[0].text
    assert hogs.structured_content["limit_hit"] == "memory", text
    assert "killed: memory limit 96.0 MiB" in hogs.structured_content["hint"]
    assert "killed: memory limit 96.0 MiB" in text
    # The tree's peak: near the limit, more than any one child held.
    assert hogs.structured_content["peak_memory_bytes"] > 60 * MIB, text
    deadline = time.monotonic() + 10
    while not any(r["event"] == "command_finished" and r.get("limit_hit") == "memory"
                  for r in audit_records(limited)) and time.monotonic() < deadline:
        time.sleep(0.1)
    finished = [r for r in audit_records(limited) if r["event"] == "command_finished"]
    assert finished[-1]["limit_hit"] == "memory"
    assert finished[-1]["peak_memory_bytes"] > 60 * MIB

    near = await run(limited, ["sh", "-c", f"for i in 1 2; do {PYTHON} -c '{HOG.format(mib=30)}' & done; wait; echo ok"])
    assert near.is_error is not True, near.content[0].text
    assert near.structured_content["stdout"] == "ok\n"
    assert "limit_hit" not in near.structured_content
    # Both children's 30 MiB at once: the shell's own rusage would show one at most.
    assert near.structured_content["peak_memory_bytes"] >= 60 * MIB, near.content[0].text
    assert command_cgroups(limited.process.pid) == []


async def test_a_root_fork_bomb_is_stopped_by_the_tree_process_limit(limited):
    marker = "sleep 318"
    started = time.monotonic()
    bomb = await run(limited, ["sh", "-c", f"for i in $(seq 200); do {marker} & done; wait"])
    assert time.monotonic() - started < 30, "stopped by the limit, not by the timeout"
    assert bomb.is_error is True
    assert bomb.structured_content["limit_hit"] == "processes", bomb.content[0].text
    assert "processes of the command" in bomb.structured_content["hint"]
    deadline = time.monotonic() + 10
    while alive(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(marker) == []
    assert command_cgroups(limited.process.pid) == []

    few = await run(limited, ["sh", "-c", "for i in 1 2 3 4; do sleep 0.1 & done; wait; echo done"])
    assert few.is_error is not True, few.content[0].text
    assert few.structured_content["stdout"] == "done\n"


async def test_a_daemon_that_left_the_group_dies_with_the_command(limited):
    marker = "sleep 319"
    out = await run(limited, ["sh", "-c", f"setsid {marker} >/dev/null 2>&1 </dev/null & echo started"])
    assert out.is_error is not True and out.structured_content["stdout"] == "started\n"
    assert alive(marker) == []
    assert command_cgroups(limited.process.pid) == []


def test_policy_explain_says_which_limits_bind_the_tree(limited):
    path = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-cgroups-")) / "config.toml"
    path.write_text(config())
    shown = subprocess.run([BIN, "policy", "explain", "--config", str(path), "--token-name", "alice",
                            "--", "sh", "-c", "true"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert "command tree: memory 96.0 MiB, processes 16 for the whole tree (cgroup v" in shown.stdout, shown.stdout
    checked = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=30)
    assert "confinement: cgroup v" in checked.stdout + checked.stderr

