"""The command policy as an attacker meets it, through a real client: every allowed case
has its near miss, and every refusal is in the audit log with the rule that decided it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import BIN, config_text, start_server
from mcp_clients import connect

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy")
    (root / "app").mkdir()
    (root / "app2").mkdir()
    (root / "app" / "escape").symlink_to("/etc")
    (root / "bin").mkdir()
    (root / "bin" / "ls").symlink_to("/bin/rm")  # a renamed binary
    return root


@pytest.fixture(scope="module")
def policy_server(sandbox):
    policy = f'''
[policy]
default = "deny"
working_dirs = ["{sandbox / 'app'}"]
allow_env = ["LANG"]

[[policy.allow]]
program = "/usr/bin/ls"

[[policy.allow]]
program = "/usr/bin/echo"
args = ["hello", "*"]
'''
    srv = start_server(config=config_text(extra=policy))
    yield srv
    srv.stop()


async def call(server, arguments, principal="alice"):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool("run_command", arguments)


async def test_an_allowed_argv_runs_and_its_near_misses_do_not(policy_server, sandbox):
    app = str(sandbox / "app")
    ok = await call(policy_server, {"argv": ["ls", "-a"], "working_dir": app})
    assert ok.is_error is not True and "escape" in ok.structured_content["stdout"]
    for arguments, rule in [
        ({"argv": ["ls"], "working_dir": str(sandbox / "app2")}, "working_dirs"),       # prefix trick
        ({"argv": ["ls"], "working_dir": app + "/../app2"}, "working_dirs"),           # .. trick
        ({"argv": ["ls"], "working_dir": app + "/escape"}, "working_dirs"),            # symlink out of the root
        ({"argv": [str(sandbox / "bin" / "ls"), "-rf", app], "working_dir": app}, "default"),  # ls -> rm
        ({"argv": ["env", "rm", "-rf", app], "working_dir": app}, "deny_interpreters"),
        ({"command": "ls; rm -rf /", "working_dir": app}, "allow_shell"),
        ({"command": "$(id)", "working_dir": app}, "allow_shell"),
        ({"argv": ["ls"], "working_dir": app, "env": {"LD_PRELOAD": "/tmp/x.so"}}, "allow_env"),
    ]:
        result = await call(policy_server, arguments)
        assert result.is_error is True, arguments
        assert f"denied by {rule}" in result.content[0].text, (arguments, result.content[0].text)
    assert (sandbox / "app").exists(), "nothing was removed"


async def test_argument_patterns_bind_whole_arguments(policy_server, sandbox):
    app = str(sandbox / "app")
    ok = await call(policy_server, {"argv": ["echo", "hello", "world; reboot"], "working_dir": app})
    assert ok.structured_content["stdout"] == "hello world; reboot\n", "argv elements are never shell"
    denied = await call(policy_server, {"argv": ["echo", "goodbye", "world"], "working_dir": app})
    assert denied.is_error is True and "denied by default" in denied.content[0].text
    allowed_env = await call(policy_server, {"argv": ["ls"], "working_dir": app, "env": {"LANG": "C"}})
    assert allowed_env.is_error is not True


async def test_refusals_are_audited_with_their_rule(policy_server, sandbox):
    await call(policy_server, {"command": "cat /etc/shadow", "working_dir": str(sandbox / "app")})
    audit = policy_server.state_dir / "hostmcp" / "audit.jsonl"
    refused = [json.loads(line) for line in audit.read_text().splitlines() if '"command_refused"' in line]
    shell = [r for r in refused if r.get("command") == "cat /etc/shadow"]
    assert shell and shell[0]["rule"] == "allow_shell" and shell[0]["principal"] == "alice"


def test_policy_explain_prints_the_decision_without_running(policy_server, sandbox):
    config = policy_server.state_dir.parent / "config.toml"
    marker = sandbox / "app" / "must-not-exist"
    done = subprocess.run(
        [BIN, "policy", "explain", "--config", str(config), "--token-name", "alice",
         "--working-dir", str(sandbox / "app"), "--", "touch", str(marker)],
        capture_output=True, text=True, env={**os.environ, "HOME": str(sandbox)})
    assert done.returncode == 0, done.stderr
    assert "decision: DENY by default" in done.stdout
    assert not marker.exists()
    allowed = subprocess.run(
        [BIN, "policy", "explain", "--config", str(config), "--token-name", "alice",
         "--working-dir", str(sandbox / "app"), "--", "ls"],
        capture_output=True, text=True, env={**os.environ, "HOME": str(sandbox)})
    assert "decision: PERMIT by allow[0]" in allowed.stdout


async def test_an_admin_is_not_bound_by_the_policy_unless_restricted(policy_server, sandbox):
    outside = str(sandbox / "app2")
    admin = await call(policy_server, {"command": "echo admin; pwd", "working_dir": outside}, principal="boss")
    assert admin.is_error is not True and admin.structured_content["stdout"] == f"admin\n{outside}\n"
    operator = await call(policy_server, {"command": "echo admin; pwd", "working_dir": outside})
    assert operator.is_error is True


async def test_restrict_admin_judges_admins_like_operators(sandbox):
    policy = f"""
[policy]
default = "deny"
restrict_admin = true
working_dirs = ["{sandbox / 'app'}"]

[[policy.allow]]
program = "/usr/bin/ls"
"""
    server = start_server(config=config_text(extra=policy))
    try:
        denied = await call(server, {"command": "id", "working_dir": str(sandbox / "app")}, principal="boss")
        assert denied.is_error is True and "denied by allow_shell" in denied.content[0].text
        allowed = await call(server, {"argv": ["ls"], "working_dir": str(sandbox / "app")}, principal="boss")
        assert allowed.is_error is not True
    finally:
        server.stop()
