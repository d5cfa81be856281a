"""Per-command cgroups (where the host delegates them): `memory` and `processes` bind a
command's whole process tree, not each process. Four children of 40 MiB under a 96 MiB limit
(each well under it, so the per-process rlimit alone would let them all live) are killed with
a clear result; two of 30 MiB run. An OOM ends the whole command on cgroup v1 too: the shell
does not go on past its killed child. A fork bomb run as root (whom RLIMIT_NPROC does not
bind) is stopped by the tree's process limit with nothing left running. The tree's peak
memory and CPU time are reported, and each command's cgroup is gone after it. Terminals get
the same cgroup, gone after terminal_close. `hostmcp check` only looks: it makes no cgroup."""

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
TERMINAL_LIMITS = '{ memory = "96MiB", processes = 16 }'
POLICY = f"""
[policy]
default = "allow"
deny_interpreters = false

[[policy.allow]]
program = "/usr/bin/bash"
limits = {TERMINAL_LIMITS}
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


# Shared memory: charged to the cgroup but not to the per-process RLIMIT_DATA (private
# memory), so only the tree's limit stops it. One line, so it can be typed into a terminal.
SHARED_HOG = "import mmap; m = mmap.mmap(-1, {mib} << 20); [m.__setitem__(i, 1) for i in range(0, len(m), 4096)]"


async def test_an_oom_ends_the_whole_command_not_only_the_child_that_ran_out(limited):
    started = time.monotonic()
    hog = await run(limited, ["sh", "-c", f"{PYTHON} -c '{SHARED_HOG.format(mib=200)}'; echo survived; sleep 30"])
    text = hog.content[0].text
    assert time.monotonic() - started < 25, "the shell went on to its sleep"
    assert "survived" not in hog.structured_content["stdout"], text
    assert hog.is_error is True
    assert hog.structured_content["exit_code"] is None and hog.structured_content["signal"] == 9, text
    assert hog.structured_content["limit_hit"] == "memory", text
    assert "killed: memory limit 96.0 MiB" in text
    assert "the command was ended" in hog.structured_content["hint"]
    assert command_cgroups(limited.process.pid) == []

    near = await run(limited, ["sh", "-c", f"{PYTHON} -c '{SHARED_HOG.format(mib=30)}'; echo survived"])
    assert near.is_error is not True, near.content[0].text
    assert near.structured_content["stdout"] == "survived\n"
    assert "limit_hit" not in near.structured_content


async def test_cpu_time_counts_a_daemon_that_no_wait_sees(limited):
    root = Path("/sys/fs/cgroup")
    if not (root / "cgroup.controllers").exists() and not (root / "cpuacct" / "cpuacct.usage").exists():
        pytest.skip("no cpuacct hierarchy: CPU time is the leader's rusage here")
    done = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-cpu-")) / "done"
    spin = f"import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\nopen({str(done)!r}, 'w')"
    # An orphan: the subshell that starts it exits at once, so the shell never reaps it.
    script = (f"(setsid {PYTHON} -c {shlex.quote(spin)} >/dev/null 2>&1 </dev/null &)\n"
              f"i=0; while [ ! -e {done} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; test -e {done}")
    out = await run(limited, ["sh", "-c", script])
    assert out.is_error is not True, out.content[0].text
    # The daemon's 0.5 s: the shell's own rusage (what it waited for) would show ~0.
    assert out.structured_content["cpu_time_ms"] >= 490, out.content[0].text
    deadline = time.monotonic() + 10
    while not any(r["event"] == "command_finished" and (r.get("cpu_time_ms") or 0) >= 490
                  for r in audit_records(limited)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(r["event"] == "command_finished" and r["cpu_time_ms"] >= 490 for r in audit_records(limited))


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


# F3: a root command makes sub/ inside each of its own cgroups, moves itself there (and
# leaves a daemon there), then needs memory past the limit. The child cgroups are still the
# command's: the OOM kills everything in them, and they are removed with the command's own.
ESCAPE = ("for h in memory pids cpuacct cpu; do "
          "c=$(awk -F: -v h=$h '$2==h{print $3}' /proc/self/cgroup); "
          "case \"$c\" in */hostmcp/*) mkdir -p /sys/fs/cgroup/$h$c/sub "
          "&& echo $$ > /sys/fs/cgroup/$h$c/sub/cgroup.procs;; esac; done; "
          "grep -q '/hostmcp/.*/sub$' /proc/self/cgroup && echo moved; "
          "setsid {marker} </dev/null >/dev/null 2>&1 & ")


async def test_a_command_that_moved_into_a_child_cgroup_is_still_ended_by_an_oom(limited):
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("cgroup v2: cgroup.kill and memory.oom.group cover the subtree")
    marker = "sleep 417"
    started = time.monotonic()
    hog = await run(limited, ["sh", "-c", ESCAPE.replace("{marker}", marker)
                              + f"{PYTHON} -c '{SHARED_HOG.format(mib=200)}'; echo survived; sleep 30"])
    text = hog.content[0].text
    assert time.monotonic() - started < 25, "ended by the timeout, not by the OOM: " + text
    assert hog.structured_content["stdout"] == "moved\n", text
    assert hog.structured_content["limit_hit"] == "memory", text
    assert not hog.structured_content.get("timed_out"), text
    deadline = time.monotonic() + 10
    while (alive(marker) or command_cgroups(limited.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(marker) == []
    assert command_cgroups(limited.process.pid) == []

    # Near miss: moved the same way, under the limit, it runs to its end.
    near = await run(limited, ["sh", "-c", ESCAPE.replace("{marker}", marker)
                               + f"{PYTHON} -c '{SHARED_HOG.format(mib=30)}'; echo survived"])
    assert near.is_error is not True, near.content[0].text
    assert near.structured_content["stdout"] == "moved\nsurvived\n"
    assert "limit_hit" not in near.structured_content
    deadline = time.monotonic() + 10
    while (alive(marker) or command_cgroups(limited.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
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



async def read_terminal(client, terminal: str, **wait) -> dict:
    result = await client.call_tool("terminal_read", {"terminal_id": terminal, **wait})
    assert result.is_error is not True, result.content[0].text
    return result.structured_content


async def open_bash(client) -> dict:
    opened = await client.call_tool("terminal_open", {"argv": ["bash", "--norc", "--noprofile", "-i"]})
    assert opened.is_error is not True, opened.content[0].text
    terminal = opened.structured_content["terminal_id"]
    await type_line(client, terminal, "echo up-$((40+2))")
    screen = await read_terminal(client, terminal, wait_for=r"(?m)^up-42$")
    assert screen["matched"] is True, screen["screen"]
    return opened.structured_content


async def type_line(client, terminal: str, line: str):
    sent = await client.call_tool("terminal_send", {"terminal_id": terminal, "text": line, "keys": ["Enter"]})
    assert sent.is_error is not True, sent.content[0].text


async def test_a_fork_bomb_in_a_terminal_is_stopped_by_its_rules_process_limit(limited):
    marker = "sleep 417"
    async with connect(limited, "streamable", "legacy", headers=limited.headers("bob")) as client:
        opened = await open_bash(client)
        terminal = opened["terminal_id"]
        assert len(command_cgroups(limited.process.pid)) >= 1, "the terminal has its cgroup"
        # Near miss: a few children are fine.
        await type_line(client, terminal, "for i in 1 2 3; do sleep 0.1 & done; wait; echo few-$((40+2))")
        screen = await read_terminal(client, terminal, wait_for=r"(?m)^few-42$")
        assert screen["matched"] is True and "limit_hit" not in screen, screen
        # dash, not bash: bash retries a refused fork for half a minute.
        await type_line(client, terminal, f"sh -c 'for i in $(seq 60); do {marker} & done' 2>/dev/null; echo bomb-$((40+2))")
        screen = await read_terminal(client, terminal, wait_for=r"(?m)^bomb-42$")
        assert screen["matched"] is True, screen["screen"]
        assert screen["exit"] is None, "the shell lives on"
        assert screen["limit_hit"] == "processes", screen
        assert "processes of the command" in screen["hint"]
        assert 0 < len(alive(marker)) < 16
        closed = await client.call_tool("terminal_close", {"terminal_id": terminal})
        assert closed.structured_content["limit_hit"] == "processes", closed.content[0].text
    deadline = time.monotonic() + 10
    while (alive(marker) or command_cgroups(limited.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(marker) == []
    assert command_cgroups(limited.process.pid) == []


async def test_a_memory_hog_in_a_terminal_ends_the_terminal_with_a_clear_result(limited):
    async with connect(limited, "streamable", "legacy", headers=limited.headers("bob")) as client:
        opened = await open_bash(client)
        terminal = opened["terminal_id"]
        # Near miss: under the limit the shell goes on.
        await type_line(client, terminal, f"{PYTHON} -c '{SHARED_HOG.format(mib=30)}'; echo ok-$((40+2))")
        screen = await read_terminal(client, terminal, wait_for=r"(?m)^ok-42$", timeout_ms=30000)
        assert screen["matched"] is True and screen["exit"] is None, screen["screen"]
        await type_line(client, terminal, f"{PYTHON} -c '{SHARED_HOG.format(mib=200)}'; echo survived-$((40+2))")
        deadline = time.monotonic() + 30
        while (screen := await read_terminal(client, terminal, settle_ms=300, timeout_ms=2000))["exit"] is None \
                and time.monotonic() < deadline:
            pass
        assert screen["exit"] is not None, screen["screen"]
        assert screen["exit"]["limit_hit"] == "memory", screen
        assert "killed: memory limit 96.0 MiB" in screen["hint"]
        assert "survived-42" not in screen["screen"]
        closed = await client.call_tool("terminal_close", {"terminal_id": terminal})
        assert "killed: memory limit 96.0 MiB" in closed.content[0].text
        assert closed.structured_content["limit_hit"] == "memory"
    assert command_cgroups(limited.process.pid) == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        finished = [r for r in audit_records(limited) if r["event"] == "command_finished"]
        if finished and finished[-1].get("limit_hit") == "memory":
            break
        time.sleep(0.1)
    assert finished[-1]["limit_hit"] == "memory"
    assert finished[-1]["peak_memory_bytes"] > 60 * MIB


V1_HIERARCHIES = ("memory", "pids", "cpu", "cpuacct")


def test_check_only_looks_it_makes_no_cgroup():
    """`check` and `policy explain` run in fresh cgroups of their own: nothing is made in them."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        pytest.skip("a cgroup v2 host: this test moves a process between v1 hierarchies")
    path = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-check-")) / "config.toml"
    path.write_text(config())
    name = f"hostmcp-e2e-check-{os.getpid()}"
    scratch = [root / h / name for h in V1_HIERARCHIES if (root / h / "cgroup.procs").exists()]
    for dir in scratch:
        dir.mkdir()
    try:
        join = "".join(f"echo $$ > {dir / 'cgroup.procs'}; " for dir in scratch)
        for argv in ([BIN, "check", "--config", str(path)],
                     [BIN, "policy", "explain", "--config", str(path), "--token-name", "alice", "--", "sh", "-c", "true"]):
            shown = subprocess.run(["sh", "-c", join + 'exec "$@"', "sh", *argv],
                                   capture_output=True, text=True, timeout=60)
            out = shown.stdout + shown.stderr
            # Near miss: it found the cgroups it would use, there.
            assert f"memory ({root / 'memory' / name / 'hostmcp'})" in out, out
            for dir in scratch:
                assert [p.name for p in dir.iterdir() if p.is_dir()] == [], f"{argv[1]} made cgroups in {dir}"
    finally:
        for dir in scratch:
            # What a check that did not only look made (empty cgroups), then the scratch.
            for made in sorted((p for p in dir.rglob("*") if p.is_dir()), reverse=True):
                made.rmdir()
            dir.rmdir()
