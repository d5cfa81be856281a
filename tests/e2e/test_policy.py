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
    # A harmless stand-in for systemctl (which may not run in a container): prints its args.
    systemctl = root / "bin" / "systemctl"
    systemctl.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    systemctl.chmod(0o755)
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

[[policy.allow]]
program = "{sandbox / 'bin' / 'systemctl'}"
args = ["status", "*"]
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


async def test_a_wildcard_does_not_admit_an_option_systemctl_host_attack(policy_server, sandbox):
    """`systemctl status *` must not become `systemctl status --host=me@elsewhere`, which makes
    systemctl run ssh to a host the caller picks."""
    app, systemctl = str(sandbox / "app"), str(sandbox / "bin" / "systemctl")
    ok = await call(policy_server, {"argv": [systemctl, "status", "cron"], "working_dir": app})
    assert ok.is_error is not True and ok.structured_content["stdout"] == "status\ncron\n"
    for attack in (["status", "--host=me@elsewhere"], ["status", "-Hme@elsewhere"],
                   ["status", "-H", "me@elsewhere"], ["status", "--", "-Hx"]):
        refused = await call(policy_server, {"argv": [systemctl, *attack], "working_dir": app})
        text = refused.content[0].text
        assert refused.is_error is True and text.startswith("denied by default"), (attack, text)
        assert "is an option" in text, (attack, text)
    refused = await call(policy_server, {"argv": [systemctl, "status", "--host=me@elsewhere"], "working_dir": app})
    assert ('In allow[2], argv[2] "--host=me@elsewhere" is an option, and "*" does not match options'
            in refused.content[0].text), refused.content[0].text
    audit = policy_server.state_dir / "hostmcp" / "audit.jsonl"
    hosts = [json.loads(line) for line in audit.read_text().splitlines()
             if '"command_refused"' in line and "--host=me@elsewhere" in line]
    assert hosts and all(r["rule"] == "default" and r["principal"] == "alice" for r in hosts), hosts


def test_policy_explain_shows_which_argument_matched_what(policy_server, sandbox):
    config = policy_server.state_dir.parent / "config.toml"
    systemctl = str(sandbox / "bin" / "systemctl")

    def explain(*argv):
        done = subprocess.run(
            [BIN, "policy", "explain", "--config", str(config), "--token-name", "alice",
             "--working-dir", str(sandbox / "app"), "--", *argv],
            capture_output=True, text=True, env={**os.environ, "HOME": str(sandbox)}, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    allowed = explain(systemctl, "status", "cron")
    assert 'MATCHES: argv[1] "status" by "status", argv[2] "cron" by "*"' in allowed, allowed
    assert "decision: PERMIT by allow[2]" in allowed
    refused = explain(systemctl, "status", "--host=me@elsewhere")
    assert 'args do not match: argv[2] "--host=me@elsewhere" is an option' in refused, refused
    assert "decision: DENY by default" in refused


async def test_a_missing_program_is_named_without_the_servers_path(policy_server, sandbox):
    app = str(sandbox / "app")
    missing = await call(policy_server, {"argv": ["hostmcp-no-such-program"], "working_dir": app})
    text = missing.content[0].text
    assert missing.is_error is True and '"hostmcp-no-such-program" was not found on this host' in text, text
    assert "PATH" not in text and os.environ["PATH"] not in text, text
    present = await call(policy_server, {"argv": ["ls"], "working_dir": app})  # the near miss
    assert present.is_error is not True


async def test_a_response_file_is_an_option_to_a_wildcard(policy_server, sandbox):
    """F7: `@file` makes gcc, clang, ld, javac or 7z read options from a file (`-wrapper` runs a
    program): `*` must not take it where it would not take the option itself."""
    app, systemctl = str(sandbox / "app"), str(sandbox / "bin" / "systemctl")
    ok = await call(policy_server, {"argv": [systemctl, "status", "cron@x"], "working_dir": app})
    assert ok.is_error is not True and ok.structured_content["stdout"] == "status\ncron@x\n"
    refused = await call(policy_server, {"argv": [systemctl, "status", "@/tmp/rt/opts"], "working_dir": app})
    text = refused.content[0].text
    assert refused.is_error is True and text.startswith("denied by default"), text
    assert ('argv[2] "@/tmp/rt/opts" is an option (a response file), and "*" does not match options '
            '(only a pattern that starts with "@" does') in text, text


async def test_a_working_dir_outside_the_roots_does_not_reveal_whether_it_exists(policy_server, sandbox):
    """F10 (a): `/etc`, a missing dir and a file outside the root get the same refusal."""
    def shape(text: str, path: str) -> str:
        assert path in text, (path, text)
        return text.replace(path, "DIR")

    answers = set()
    for outside in ("/etc", "/no/such/dir", str(sandbox / "bin" / "systemctl"), str(sandbox / "app2"),
                    str(sandbox / "app" / "escape" / "no-such-dir")):
        refused = await call(policy_server, {"argv": ["ls"], "working_dir": outside})
        assert refused.is_error is True, outside
        answers.add(shape(refused.content[0].text, outside))
    assert len(answers) == 1, answers
    (answer,) = answers
    assert answer.startswith("denied by working_dirs (") and "working dir DIR is not inside an allowed root" in answer
    assert "No such file" not in answer and "/etc" not in answer
    # Near misses: inside the root, a missing dir says so, and an existing one runs.
    missing = await call(policy_server, {"argv": ["ls"], "working_dir": str(sandbox / "app" / "missing")})
    assert missing.is_error is True and "No such file or directory" in missing.content[0].text
    ok = await call(policy_server, {"argv": ["ls"], "working_dir": str(sandbox / "app")})
    assert ok.is_error is not True
    audit = policy_server.state_dir / "hostmcp" / "audit.jsonl"
    probes = [json.loads(line) for line in audit.read_text().splitlines()
              if '"command_refused"' in line and "/no/such/dir" in line]
    assert probes and all(r["rule"] == "working_dirs" for r in probes), probes
