"""Privilege per policy rule: an allow rule's run_as wins over the token's, only for the
callers the rule grants; every command runs with no_new_privs, so sudo and su fail at once
with a hint that says how to grant the command instead."""

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

NOBODY_UID = "65534"
HINT = 'grant this command in the policy with run_as = "root" on an allow rule'

# alice and bob run as nobody; only alice is granted `id -u` as root.
POLICY = """
[policy]
default = "allow"
deny_interpreters = false

[[policy.allow]]
program = "/usr/bin/id"
args = ["-u"]
principals = ["alice"]
run_as = "root"
note = "alice may check she is root"
"""


def config(policy: str = POLICY) -> str:
    text = 'run_as = "root"\n'
    for name, (token, role) in TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        run_as = 'run_as = "nobody"\n' if name in ("alice", "bob") else ""
        text += f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{run_as}\n'
    return text + "[limits]\nauth_failures_per_minute = 100000\n" + policy


async def run(server, principal: str, argv: list[str]):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool("run_command", {"argv": argv, "timeout_secs": 30})


async def test_a_rules_run_as_wins_over_the_tokens_only_where_the_rule_applies():
    server = start_server(config=config())
    try:
        as_root = await run(server, "alice", ["id", "-u"])
        assert as_root.is_error is not True, as_root.content[0].text
        assert as_root.structured_content["stdout"].strip() == "0"
        assert as_root.structured_content["run_as"] == "root"
        assert ", as root" in as_root.content[0].text
        # Near misses: another command of alice's, and the same command for bob (whom the
        # rule does not grant), run as the token's user.
        other = await run(server, "alice", ["id", "-g"])
        assert other.structured_content["stdout"].strip() == NOBODY_UID
        assert other.structured_content["run_as"] == "nobody"
        bob = await run(server, "bob", ["id", "-u"])
        assert bob.structured_content["stdout"].strip() == NOBODY_UID
        assert bob.structured_content["run_as"] == "nobody"
        audit = (server.state_dir / "hostmcp" / "audit.jsonl").read_text()
        started = [line for line in audit.splitlines() if '"command_started"' in line]
        assert any('"run_as":"root"' in line and '"rule":"allow[0]"' in line for line in started), started
        assert any('"run_as":"nobody"' in line for line in started), started
    finally:
        server.stop()


@pytest.mark.parametrize("argv", [["sudo", "-n", "true"], ["sudo", "true"], ["su", "-c", "true"]])
@pytest.mark.skipif(not Path("/usr/bin/sudo").exists(), reason="sudo is not installed (scripts/install-test-deps.sh installs it)")
async def test_sudo_and_su_fail_at_once_with_the_hint(argv):
    server = start_server(config=config())
    try:
        started = time.monotonic()
        result = await run(server, "alice", argv)
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"{argv} took {elapsed:.1f} s"
        assert result.is_error is True
        assert HINT in result.structured_content["hint"], result.structured_content
        assert HINT in result.content[0].text
        # Near miss: a command that fails for another reason gets no hint.
        plain = await run(server, "alice", ["ls", "/no/such/dir"])
        assert plain.is_error is True and "hint" not in plain.structured_content
    finally:
        server.stop()


def write_config(text: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-priv-")) / "config.toml"
    path.write_text(text)
    return path


def test_a_rule_naming_an_unknown_user_stops_the_server_at_load():
    bad = POLICY.replace('run_as = "root"', 'run_as = "no-such-user-hostmcp"')
    path = write_config(config(bad))
    done = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(path)],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(path.parent)})
    assert done.returncode != 0
    assert "allow[0].run_as" in done.stderr and "no-such-user-hostmcp" in done.stderr, done.stderr


def test_policy_explain_says_who_runs_it():
    path = write_config(config())
    explain = lambda *argv: subprocess.run(  # noqa: E731
        [BIN, "policy", "explain", "--config", str(path), "--token-name", "alice", "--", *argv],
        capture_output=True, text=True, timeout=30)
    granted = explain("id", "-u")
    assert granted.returncode == 0, granted.stderr
    assert "runs as: root (the rule's run_as" in granted.stdout, granted.stdout
    other = explain("id", "-g")
    assert "runs as: the token's run_as user" in other.stdout, other.stdout
