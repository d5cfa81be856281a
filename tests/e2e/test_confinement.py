"""Confinement of every command (Landlock and a network namespace), driven through a real
client against the built binary: reads inside vs outside the roots (also through a symlink
out, /proc/<server pid>/environ, the audit log; a /proc root refused), writes, connects under network "none" and
to a listed vs an unlisted port; a root over the server's state dir refused at start; peak
memory and CPU time in the result; `policy explain` showing it all. Each refusal has its
near miss (the same thing by an unconfined token, or inside the roots)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, TOKENS, start_server
from mcp_clients import connect

pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and run_as need root")]

SCRATCH = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-confine-")).resolve()
LISTED = socket.create_server(("127.0.0.1", 0))
UNLISTED = socket.create_server(("127.0.0.1", 0))
LISTED_PORT = LISTED.getsockname()[1]
UNLISTED_PORT = UNLISTED.getsockname()[1]


def layout() -> None:
    for name in ("inside", "outside", "rw"):
        (SCRATCH / name).mkdir(exist_ok=True)
    (SCRATCH / "inside" / "file").write_text("inside\n")
    (SCRATCH / "outside" / "file").write_text("outside\n")
    link = SCRATCH / "inside" / "link"
    if not link.is_symlink():
        link.symlink_to(SCRATCH / "outside" / "file")


# alice: confined files and no network (token); bob: unconfined token, and a rule that
# lets his python3 connect only to LISTED_PORT.
TOKEN_EXTRA = {
    "alice": (f'fs_read = ["/usr", "{SCRATCH}/inside"]\n'
              f'fs_write = ["{SCRATCH}/rw"]\nnetwork = "none"\n'),
}


def config(extra_rule: str = "") -> str:
    text = 'run_as = "root"\n'
    for name, (token, role) in TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        text += f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{TOKEN_EXTRA.get(name, "")}\n'
    return text + f"""[limits]
auth_failures_per_minute = 100000

[policy]
default = "allow"
deny_interpreters = false

[[policy.allow]]
program = "/usr/bin/python3*"
args = ["-c", "*", "*"]
principals = ["bob"]
network = {{ connect = ["*:{LISTED_PORT}"] }}
{extra_rule}"""


@pytest.fixture(scope="module")
def confined():
    layout()
    server = start_server(config=config())
    yield server
    server.stop()


async def run(server, principal: str, argv: list[str]):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool("run_command", {"argv": argv, "timeout_secs": 60})


def ok(result) -> str:
    assert result.is_error is not True, result.content[0].text
    return result.structured_content["stdout"]


def refused(result) -> str:
    assert result.is_error is True, result.content[0].text
    return result.structured_content["stderr"]


async def test_a_file_inside_the_roots_is_read_and_one_outside_is_not(confined):
    assert ok(await run(confined, "alice", ["cat", f"{SCRATCH}/inside/file"])) == "inside\n"
    assert "Permission denied" in refused(await run(confined, "alice", ["cat", f"{SCRATCH}/outside/file"]))
    # Near miss: bob's token is not confined.
    assert ok(await run(confined, "bob", ["cat", f"{SCRATCH}/outside/file"])) == "outside\n"


async def test_a_symlink_pointing_out_of_the_roots_is_not_followed(confined):
    assert "Permission denied" in refused(await run(confined, "alice", ["cat", f"{SCRATCH}/inside/link"]))
    assert ok(await run(confined, "bob", ["cat", f"{SCRATCH}/inside/link"])) == "outside\n"


async def test_the_servers_environ_is_out_of_reach(confined):
    environ = f"/proc/{confined.process.pid}/environ"
    assert "Permission denied" in refused(await run(confined, "alice", ["cat", environ]))
    # Near miss: the unconfined root token reads the server's environment.
    assert "XDG_STATE_HOME" in ok(await run(confined, "bob", ["cat", environ]))


async def test_the_audit_log_and_state_dir_are_out_of_reach(confined):
    audit = next(confined.state_dir.rglob("audit*.jsonl"))
    assert "Permission denied" in refused(await run(confined, "alice", ["cat", str(audit)]))
    assert "Permission denied" in refused(await run(confined, "alice", ["ls", str(confined.state_dir)]))
    assert "command_started" in ok(await run(confined, "bob", ["cat", str(audit)]))


async def test_a_write_inside_the_write_root_lands_and_one_in_a_read_root_does_not(confined):
    ok(await run(confined, "alice", ["sh", "-c", f"echo hi > {SCRATCH}/rw/new"]))
    assert (SCRATCH / "rw" / "new").read_text() == "hi\n"
    refused(await run(confined, "alice", ["sh", "-c", f"echo hi > {SCRATCH}/inside/new"]))
    assert not (SCRATCH / "inside" / "new").exists()


CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5).close(); print('connected')\n"
           "except OSError as e:\n"
           "    print('refused', e)")


async def test_no_network_refuses_a_connect_that_an_unconfined_token_makes(confined):
    out = ok(await run(confined, "alice", ["/usr/bin/python3", "-c", CONNECT, str(LISTED_PORT)]))
    assert out.startswith("refused"), out
    assert ok(await run(confined, "bob", ["sh", "-c", f"/usr/bin/python3 -c \"$0\" {LISTED_PORT}", CONNECT])) == "connected\n"


async def test_a_listed_port_is_reached_and_an_unlisted_one_is_not(confined):
    listed = ok(await run(confined, "bob", ["/usr/bin/python3", "-c", CONNECT, str(LISTED_PORT)]))
    assert listed == "connected\n", listed
    unlisted = ok(await run(confined, "bob", ["/usr/bin/python3", "-c", CONNECT, str(UNLISTED_PORT)]))
    assert unlisted.startswith("refused") and "Permission denied" in unlisted, unlisted


async def test_peak_memory_and_cpu_time_are_reported(confined):
    big = await run(confined, "bob", ["/usr/bin/python3", "-c", "b = bytearray(96 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"])
    assert big.is_error is not True, big.content[0].text
    peak = big.structured_content["peak_memory_bytes"]
    assert peak >= 96 * 1024 * 1024, peak
    assert "cpu_time_ms" in big.structured_content
    assert "peak memory" in big.content[0].text
    # Near miss: a small command reports a small peak.
    small = await run(confined, "bob", ["true"])
    assert small.structured_content["peak_memory_bytes"] < 32 * 1024 * 1024


def test_a_proc_root_is_refused_at_start():
    # Landlock does not keep a root command from /proc/<server pid>/environ under it.
    rule = '\n[[policy.allow]]\nprogram = "/usr/bin/cat"\nfs_read = ["/usr", "/proc"]\n'
    with pytest.raises(RuntimeError, match=r"would reach the server's own /proc/\d+"):
        start_server(config=config(rule))


async def test_command_started_records_the_confinement(confined):
    ok(await run(confined, "alice", ["cat", f"{SCRATCH}/inside/file"]))
    ok(await run(confined, "bob", ["cat", f"{SCRATCH}/inside/file"]))
    audit = next(confined.state_dir.rglob("audit*.jsonl"))
    started = [json.loads(line) for line in audit.read_text().splitlines() if '"command_started"' in line]
    alice = [r for r in started if r["principal"] == "alice" and r["argv"][0] == "cat"][-1]
    assert alice["confinement"]["token"] == (f"fs_read [/usr, {SCRATCH}/inside]; fs_write [{SCRATCH}/rw]; "
                                             "network none"), alice
    assert alice["confinement"]["enforced"].startswith("landlock ABI "), alice
    # Near miss: bob's token and his `cat` rule confine nothing: no confinement on record.
    bob = [r for r in started if r["principal"] == "bob" and r["argv"][0] == "cat"][-1]
    assert "confinement" not in bob, bob


def test_a_root_in_any_process_dir_is_refused_at_start():
    # Not only the server's pid: a thread's /proc/<tid> resolves although /proc does not list it.
    for root in ["/proc/1", "/proc/self/environ", "/proc/thread-self"]:
        rule = f'\n[[policy.allow]]\nprogram = "/usr/bin/cat"\nfs_read = ["/usr", "{root}"]\n'
        with pytest.raises(RuntimeError, match=r"/proc directory|would reach the server's own /proc/\d+"):
            start_server(config=config(rule))
    # Near miss: a file that describes the host, not a process.
    rule = '\n[[policy.allow]]\nprogram = "/usr/bin/cat"\nfs_read = ["/usr", "/proc/meminfo", "/proc/cpuinfo"]\n'
    server = start_server(config=config(rule))
    server.stop()


def test_a_root_over_the_servers_state_dir_is_refused_at_start():
    base = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-confine-state-")).resolve()
    rule = f'\n[[policy.allow]]\nprogram = "/usr/bin/cat"\nfs_read = ["/usr", "{base}"]\n'
    with pytest.raises(RuntimeError, match="would reach the server's own"):
        start_server(config=config(rule), env={"XDG_STATE_HOME": str(base / "state")})
    # Near miss: a sibling of the state dir is a fine root.
    (base / "data").mkdir()
    rule = f'\n[[policy.allow]]\nprogram = "/usr/bin/cat"\nfs_read = ["/usr", "{base}/data"]\n'
    server = start_server(config=config(rule), env={"XDG_STATE_HOME": str(base / "state")})
    server.stop()


def test_policy_explain_shows_the_confinement():
    path = SCRATCH / "explain.toml"
    path.write_text(config())
    shown = subprocess.run([BIN, "policy", "explain", "--config", str(path), "--token-name", "bob",
                            "--", "/usr/bin/python3", "-c", "x", "1"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert f"rule reach: network TCP connect to *:{LISTED_PORT} only" in shown.stdout, shown.stdout
    assert "token reach: unconfined" in shown.stdout
    assert "confinement here: Landlock ABI" in shown.stdout
    shown = subprocess.run([BIN, "policy", "explain", "--config", str(path), "--token-name", "alice",
                            "--", "cat", "/etc/hostname"], capture_output=True, text=True, timeout=30)
    assert f"token reach: fs_read [/usr, {SCRATCH}/inside]; fs_write [{SCRATCH}/rw]; network none" in shown.stdout, shown.stdout
