"""Per-command resource limits, per token and per policy rule (the stricter wins): a fork
bomb stopped by `processes` with nothing left running, a memory hog by `memory`, a CPU
spinner by `cpu_seconds`, a large file by `file_size`; each with its near miss, a command
under the limit that succeeds."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, TOKENS, start_server
from mcp_clients import connect

pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")]

# alice runs as nobody (RLIMIT_NPROC does not bind root); bob as root, with token limits,
# and a rule that gives bob's shell a stricter CPU limit than his token's.
TOKEN_EXTRA = {
    "alice": 'run_as = "nobody"\n',
    "bob": 'run_as = "root"\nlimits = { memory = "64MiB", cpu_seconds = 30, file_size = "1MiB" }\n',
}
POLICY = """
[policy]
default = "allow"
deny_interpreters = false

[[policy.allow]]
program = "/usr/bin/dash"
principals = ["alice"]
limits = { processes = 32 }

[[policy.allow]]
program = "/usr/bin/dash"
args = ["-c", "while :; do :; done"]
principals = ["bob"]
limits = { cpu_seconds = 1 }
"""


def config() -> str:
    text = ""
    for name, (token, role) in TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        text += f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{TOKEN_EXTRA.get(name, "")}\n'
    return 'run_as = "root"\n' + text + "[limits]\nauth_failures_per_minute = 100000\n" + POLICY


@pytest.fixture(scope="module")
def limited():
    server = start_server(config=config())
    yield server
    server.stop()


async def run(server, principal: str, argv: list[str]):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool("run_command", {"argv": argv, "timeout_secs": 60})


def sleepers(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return found.stdout.split()


async def test_a_fork_bomb_is_stopped_by_processes_and_leaves_nothing_running(limited):
    marker = "sleep 317"
    bomb = await run(limited, "alice", ["sh", "-c", f"for i in $(seq 200); do {marker} & done; wait"])
    assert bomb.is_error is True
    assert bomb.structured_content["limit_hit"] == "processes", bomb.content[0].text
    assert "processes limit" in bomb.structured_content["hint"]
    assert "limits: processes 32" in bomb.content[0].text
    deadline = time.monotonic() + 10
    while sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleepers(marker) == []
    # Near miss: a few processes are fine.
    few = await run(limited, "alice", ["sh", "-c", "for i in 1 2 3 4; do sleep 0.1 & done; wait; echo done"])
    assert few.is_error is not True, few.content[0].text
    assert few.structured_content["stdout"] == "done\n"


async def test_a_memory_hog_is_stopped_with_a_clear_result(limited):
    hog = await run(limited, "bob", ["/usr/bin/python3", "-c", "b = bytearray(256 * 1024 * 1024)"])
    assert hog.is_error is True
    assert hog.structured_content["limit_hit"] == "memory", hog.content[0].text
    assert "stopped by the memory limit" in hog.content[0].text
    near = await run(limited, "bob", ["/usr/bin/python3", "-c", "b = bytearray(8 * 1024 * 1024); print('ok')"])
    assert near.is_error is not True, near.content[0].text
    assert near.structured_content["stdout"] == "ok\n"
    assert "limit_hit" not in near.structured_content


async def test_a_cpu_spinner_is_killed_by_the_rules_stricter_cpu_seconds(limited):
    started = time.monotonic()
    spin = await run(limited, "bob", ["sh", "-c", "while :; do :; done"])
    assert time.monotonic() - started < 30, "the rule's 1 s, not the token's 30 s"
    assert spin.is_error is True
    assert spin.structured_content["limit_hit"] == "cpu_seconds", spin.content[0].text
    assert "cpu_seconds 1" in spin.structured_content["limits"]
    near = await run(limited, "bob", ["sh", "-c", "echo ok"])
    assert near.is_error is not True and near.structured_content["stdout"] == "ok\n"
    assert "cpu_seconds 30" in near.structured_content["limits"]


async def test_a_file_past_file_size_is_stopped(limited):
    scratch = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-fsize-"))
    big = await run(limited, "bob", ["sh", "-c", f"head -c 2000000 /dev/zero > {scratch}/big"])
    assert big.is_error is True
    assert big.structured_content["limit_hit"] == "file_size", big.content[0].text
    small = await run(limited, "bob", ["sh", "-c", f"head -c 500000 /dev/zero > {scratch}/small"])
    assert small.is_error is not True, small.content[0].text
    assert (scratch / "small").stat().st_size == 500000


def test_policy_explain_shows_rule_and_token_limits():
    path = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-limits-")) / "config.toml"
    path.write_text(config())
    shown = subprocess.run([BIN, "policy", "explain", "--config", str(path), "--token-name", "bob",
                            "--", "sh", "-c", "while :; do :; done"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert "rule limits: cpu_seconds 1" in shown.stdout, shown.stdout
    assert "token limits: memory 64.0 MiB, cpu_seconds 30, file_size 1.0 MiB" in shown.stdout, shown.stdout
