"""Orphans a command leaves behind (reparented to the server, a child subreaper) are tied to
their command by HOSTMCP_COMMAND_ID, a random 128-bit token, and by the command's run-as uid.
The red team's F1 steps: a daemon with no token, with a forged token, or with the token of a
command that runs as another user dies at once; one of a revoked principal dies with its
command. Each kill is audited (`orphan_killed`). The near misses: a command's own background
child and `setsid -f` daemon live as long as that command."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from conftest import pid_alive, start_server
from test_token_lifecycle import (McpSession, audit_records, config_of, pids_of, wait_for_log,
                                  wait_until)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")

# alice and bob run as nobody, boss as root (the config's top-level run_as).
RUN_AS = {"alice": 'run_as = "nobody"', "bob": 'run_as = "nobody"'}
# Longer than the reaper's periodic sweep (2 s): what is alive after it was judged and kept.
PAST_A_SWEEP = 3


def orphans_killed(server) -> list[dict]:
    return [record for record in audit_records(server) if record["event"] == "orphan_killed"]


def killed_by_pid(server, pids: list[int]) -> dict[int, dict]:
    return {record["pid"]: record for record in orphans_killed(server) if record["pid"] in pids}


def command_ids_of_jobs(server) -> dict[str, str]:
    """job id -> the audit command id of its `command_started` record."""
    return {record["job_id"]: record["command_id"] for record in audit_records(server)
            if record["event"] == "command_started" and record.get("job_id")}


def job_stdout(session: McpSession, job_id: str) -> str:
    answer = session.call(30, "job_output", {"job_id": job_id, "wait_secs": 5})
    return answer["result"]["structuredContent"]["stdout"]


def start_job(session: McpSession, request_id: int, command: str) -> str:
    answer = session.call(request_id, "job_start", {"command": command})
    return answer["result"]["structuredContent"]["job_id"]


def run(session: McpSession, request_id: int, command: str) -> dict:
    answer = session.call(request_id, "run_command", {"command": command, "timeout_secs": 60})
    return answer["result"]["structuredContent"]


def daemon(n: int, pid_dir: Path, env: str) -> str:
    """`sleep n` in a session of its own (out of the command's process group), left as an
    orphan when its subshell exits, with `env` in front. `setsid` does not fork here (a
    background process of a shell without job control leads no group), so the subshell
    writes the daemon's pid before leaving: the reaper may kill it at once."""
    return f"( {env} setsid sleep {n} </dev/null >/dev/null 2>&1 & echo $! > {pid_dir}/{n} )"


def test_forged_and_unmarked_orphans_die_at_once_and_an_adopted_token_dies_with_its_command():
    pid_dir = Path(tempfile.mkdtemp(prefix="hostmcp-orphans-"))
    pid_dir.chmod(0o777)  # alice runs as nobody
    server = start_server(config=config_of(["alice", "bob", "boss"], extra=RUN_AS))
    try:
        boss = McpSession(server, "boss")
        boss_job = start_job(boss, 1, "echo $HOSTMCP_COMMAND_ID; sleep 340")
        wait_until("boss's job runs", lambda: pids_of(server, "sleep 340"))
        boss_token = job_stdout(boss, boss_job).strip()
        assert len(boss_token) == 32 and int(boss_token, 16) >= 0, "a 128-bit random token"

        # The red team's steps, as alice (run as nobody) while boss's job runs: an old-style
        # sequential id, no id at all, and boss's real token (boss runs as root). Each
        # daemon writes its pid to a file first, since it may be dead before we look.
        alice = McpSession(server, "alice")
        out = run(alice, 2, f"{daemon(341, pid_dir, 'HOSTMCP_COMMAND_ID=2')}; "
                            f"{daemon(342, pid_dir, 'env -u HOSTMCP_COMMAND_ID')}; "
                            f"{daemon(343, pid_dir, f'HOSTMCP_COMMAND_ID={boss_token}')}; sleep 0.5")
        assert out["exit_code"] == 0
        wait_until("each daemon wrote its pid", lambda: all((pid_dir / str(n)).exists() for n in (341, 342, 343)))
        condemned = {n: int((pid_dir / str(n)).read_text()) for n in (341, 342, 343)}
        pids = list(condemned.values())
        wait_until("the three orphans are gone", lambda: not any(map(pid_alive, pids)))
        assert pids_of(server, "sleep 340"), "boss's job is untouched"

        wait_until("every kill is on record", lambda: len(killed_by_pid(server, pids)) == len(pids))
        records = killed_by_pid(server, pids)
        assert {n: records[pid]["reason"] for n, pid in condemned.items()} == {
            341: "unknown_command_id", 342: "no_command_id", 343: "wrong_user"}
        assert records[condemned[342]]["principal"] is None, "a process naming no command has no owner"
        boss_command = command_ids_of_jobs(server)[boss_job]
        named_boss = records[condemned[343]]
        assert (named_boss["principal"], named_boss["command_id"], named_boss["uid"]) == ("boss", boss_command, 65534)

        # The documented limit, and its end: a command of boss's own uid (root) can adopt
        # boss's token and lives while boss's job runs, then dies with it.
        # (`setsid -f` returns before its child leaves the group: give it time to, or the
        # group kill at the command's end takes it.)
        mine = run(boss, 3, f"HOSTMCP_COMMAND_ID={boss_token} setsid -f sleep 344; sleep 0.5; echo ok")
        assert mine["stdout"] == "ok\n"
        wait_until("the adopted daemon started", lambda: pids_of(server, "sleep 344"), timeout=5)
        adopted = pids_of(server, "sleep 344")
        time.sleep(PAST_A_SWEEP)
        assert all(map(pid_alive, adopted)), "same uid, running command: kept"
        boss.call(4, "job_signal", {"job_id": boss_job, "signal": "KILL"})
        wait_until("the adopted daemon ended with boss's job", lambda: not any(map(pid_alive, adopted)))
        wait_until("its kill is on record", lambda: len(killed_by_pid(server, adopted)) == len(adopted))
        assert {(r["reason"], r["principal"], r["command_id"]) for r in killed_by_pid(server, adopted).values()} \
            == {("command_ended", "boss", boss_command)}
    finally:
        server.stop()
        shutil.rmtree(pid_dir)


def test_a_commands_own_daemons_live_while_it_runs_and_die_when_its_principal_is_revoked():
    server = start_server(config=config_of(["alice", "bob", "boss"], extra=RUN_AS))
    try:
        alice, bob = McpSession(server, "alice"), McpSession(server, "bob")
        alice_job = start_job(alice, 1, "setsid -f sleep 350; sleep 351 & sleep 300")
        alice.call_in_background(2, "run_command", {"command": "setsid -f sleep 352; sleep 353 & sleep 301",
                                                    "timeout_secs": 300})
        bob_job = start_job(bob, 3, "setsid -f sleep 354; sleep 302")
        wait_until("every command and daemon runs",
                   lambda: all(pids_of(server, f"sleep {n}") for n in (350, 351, 352, 353, 354, 300, 301, 302)))
        time.sleep(PAST_A_SWEEP)
        alice_pids = {n: pids_of(server, f"sleep {n}") for n in (350, 351, 352, 353)}
        assert all(alice_pids.values()), "a command's background child and daemon live while it runs"

        (server.state_dir.parent / "config.toml").write_text(config_of(["bob", "boss"], extra=RUN_AS))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens reloaded")
        every = [pid for found in alice_pids.values() for pid in found]
        wait_until("everything alice ran is gone, daemons included", lambda: not any(map(pid_alive, every)))

        daemons = alice_pids[350] + alice_pids[352]
        wait_until("the daemons' kills are on record", lambda: len(killed_by_pid(server, daemons)) == len(daemons))
        records = killed_by_pid(server, daemons)
        assert {(r["reason"], r["principal"]) for r in records.values()} == {("command_ended", "alice")}
        assert records[alice_pids[350][0]]["command_id"] == command_ids_of_jobs(server)[alice_job]

        # The near miss: bob's job and its daemon live on, and nothing of bob was killed.
        time.sleep(PAST_A_SWEEP)
        assert pids_of(server, "sleep 354") and pids_of(server, "sleep 302")
        assert [r for r in orphans_killed(server) if r["principal"] == "bob"] == []
        bob.call(4, "job_signal", {"job_id": bob_job, "signal": "KILL"})
        wait_until("bob's daemon ends with his job", lambda: not pids_of(server, "sleep 354"))
    finally:
        server.stop()
