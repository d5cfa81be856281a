"""The host tools through the Python SDK against the real binary, each fact checked against an
independent source read by the test: /proc, `df`, `du`, `ps`, `ss`, `ip`. process_signal goes
through the policy and the audit log: allowed, denied, protected, and refused to a read token."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from mcp import MCPError

from conftest import config_text, start_server
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect

pytestmark = pytest.mark.anyio
OWN_USER = pwd.getpwuid(os.geteuid()).pw_name


async def call(server, tool: str, arguments: dict | None = None, principal: str = "reader"):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool(tool, arguments or {})


def proc_count() -> int:
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


def meminfo_bytes(name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


def df(path: str) -> list[int]:
    out = subprocess.run(["df", "-B1", "--output=size,used,avail", path], capture_output=True,
                         text=True, check=True).stdout
    return [int(n) for n in out.splitlines()[1].split()]


class Spawned:
    """Processes started by a test, each killed and reaped at the end."""

    def __init__(self):
        self.children: list[subprocess.Popen] = []

    def start(self, *argv: str, **kwargs) -> subprocess.Popen:
        child = subprocess.Popen(list(argv), **kwargs)
        self.children.append(child)
        return child

    def stop(self):
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)


@pytest.fixture
def spawned():
    spawned = Spawned()
    yield spawned
    spawned.stop()


@pytest.mark.parametrize("name,transport,mode", TRANSPORTS, ids=TRANSPORT_IDS)
async def test_host_info_matches_proc_uname_and_df(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode, headers=shared_server.headers("reader")) as client:
        result = await client.call_tool("host_info", {})
    assert result.is_error is not True
    facts = result.structured_content
    uname = os.uname()
    assert facts["hostname"] == uname.nodename
    assert facts["kernel"] == uname.release
    assert facts["architecture"] == uname.machine
    assert facts["memory"]["total_bytes"] == meminfo_bytes("MemTotal")
    assert facts["memory"]["swap_total_bytes"] == meminfo_bytes("SwapTotal")
    cpus = sum(1 for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor"))
    assert facts["cpu"]["count"] == cpus
    # Processes, not threads (the count was the thread count before).
    assert abs(facts["processes"] - proc_count()) < 20
    threads = int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    assert facts["processes"] < threads
    assert facts["root_disk"]["size_bytes"] == df("/")[0]
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime "))
    assert facts["boot_time_unix"] == btime
    assert (facts["cpu"]["pressure"] is not None) == Path("/proc/pressure").is_dir()
    if Path("/.dockerenv").exists():
        assert facts["virtualisation"]["container"] == "docker"
    text = result.content[0].text
    assert f"{facts['processes']} processes" in text
    assert "up " in text and "root disk: " in text
    assert "GiB" in text or "MiB" in text


async def test_process_list_matches_ps_and_finds_the_busy_one(shared_server, spawned):
    sleeper = spawned.start("sleep", "1234.5")
    busy = spawned.start("sh", "-c", "while :; do :; done")
    time.sleep(0.3)
    result = await call(shared_server, "process_list", {"name": "sleep", "sort": "start", "limit": 5})
    assert result.is_error is not True
    listed = {p["pid"]: p for p in result.structured_content["processes"]}
    row = listed[sleeper.pid]
    assert row["ppid"] == os.getpid()
    assert row["user"] == OWN_USER
    assert row["command_line"] == "sleep 1234.5"
    assert row["state"] == "S"
    ps = subprocess.run(["ps", "-o", "rss=,etimes=", "-p", str(sleeper.pid)], capture_output=True,
                        text=True, check=True).stdout.split()
    assert abs(row["rss_bytes"] - int(ps[0]) * 1024) < 1 << 20
    assert abs(row["start_time_unix"] - (time.time() - int(ps[1]))) <= 3
    assert all("sleep" in p["name"] for p in result.structured_content["processes"])
    ps_count = len(subprocess.run(["ps", "-e", "--no-headers"], capture_output=True, text=True,
                                  check=True).stdout.splitlines())
    assert abs(result.structured_content["total"] - ps_count) < 20
    # Sorted by CPU, the busy loop is near the top and the sleeper shows nothing.
    by_cpu = await call(shared_server, "process_list", {"sort": "cpu", "limit": 10})
    top = {p["pid"]: p for p in by_cpu.structured_content["processes"]}
    assert busy.pid in top, by_cpu.content[0].text
    assert top[busy.pid]["cpu_percent"] > 10
    # Newest first: a host running many other sleeps still shows this one.
    idle = await call(shared_server, "process_list", {"name": "sleep", "sort": "start", "limit": 50})
    assert next(p for p in idle.structured_content["processes"] if p["pid"] == sleeper.pid)["cpu_percent"] < 5
    text = by_cpu.content[0].text
    assert "CPU % of one CPU over the last" in text and len(text) < 8000


async def test_process_tree_shows_the_parent_and_the_children(shared_server, spawned):
    shell = spawned.start("sh", "-c", "sleep 30 & sleep 31 & wait", start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(shell.pid)], capture_output=True,
                                  text=True).stdout.split()
        if len(children) == 2:
            break
        time.sleep(0.05)
    assert len(children) == 2
    result = await call(shared_server, "process_tree", {"pid": shell.pid})
    tree = result.structured_content
    assert tree["ancestors"][0]["pid"] == os.getpid()
    assert sorted(d["pid"] for d in tree["descendants"]) == sorted(int(c) for c in children)
    assert all(d["depth"] == 1 for d in tree["descendants"])
    os.killpg(shell.pid, 9)
    missing = await call(shared_server, "process_tree", {"pid": 999_999_999 % 4_000_000 + 4_000_000})
    assert missing.is_error is True and "no process" in missing.content[0].text


async def test_disk_usage_matches_df_and_du(shared_server, tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "blob").write_bytes(b"x" * (2 << 20))
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "note").write_bytes(b"y" * 10_000)
    result = await call(shared_server, "disk_usage", {"path": str(tmp_path)})
    usage = result.structured_content
    root = next(fs for fs in usage["filesystems"] if fs["mount_point"] == "/")
    size, used, avail = df("/")
    assert root["size_bytes"] == size
    assert abs(root["used_bytes"] - used) < 256 << 20 and abs(root["available_bytes"] - avail) < 256 << 20
    assert all(fs["fs_type"] not in ("proc", "sysfs", "cgroup") for fs in usage["filesystems"])
    walk = usage["largest_directories"]
    assert walk["complete"] is True
    du = subprocess.run(["du", "-s", "-x", "-B1", str(tmp_path / "big")], capture_output=True,
                        text=True, check=True).stdout.split()[0]
    assert walk["largest"][0]["path"] == str(tmp_path / "big")
    assert walk["largest"][0]["bytes"] == int(du)
    assert "largest under" in result.content[0].text
    for device in usage["block_devices"]:
        sectors = int(Path(f"/sys/block/{device['name']}/size").read_text())
        assert device["size_bytes"] == sectors * 512
    everything = await call(shared_server, "disk_usage", {"all_mounts": True})
    assert any(fs["fs_type"] == "proc" for fs in everything.structured_content["filesystems"])
    async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("reader")) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("disk_usage", {"path": "relative/dir"})
    assert raised.value.code == -32602


async def test_network_info_matches_ss_and_ip_and_names_the_owner(shared_server):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        ss = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
        result = await call(shared_server, "network_info")
    finally:
        listener.close()
    info = result.structured_content
    mine = [s for s in info["listening"] if s["local_port"] == port]
    assert mine and mine[0]["pid"] == os.getpid() and mine[0]["protocol"] == "tcp"
    ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in ss.splitlines()}
    listed = {s["local_port"] for s in info["listening"] if s["protocol"] == "tcp"}
    # The server's own listener and ours are in both; others may come and go in between.
    assert {port, shared_server.port} <= ports & listed
    addresses = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True,
                               check=True).stdout
    by_name = {i["name"]: i for i in info["interfaces"]}
    for line in addresses.splitlines():
        fields = line.split()
        assert fields[3] in by_name[fields[1].split("@")[0]]["addresses"]
    assert by_name["lo"]["mtu"] == 65536
    server_side = [s for s in info["connections"] if s["local_port"] == shared_server.port]
    assert all(s["pid"] == shared_server.process.pid for s in server_side if s["pid"] is not None)
    assert f"127.0.0.1:{port}" in result.content[0].text


@pytest.fixture(scope="module")
def signal_server():
    kill = os.path.realpath(shutil.which("kill"))
    policy = f'''
[policy]
default = "deny"

[[policy.allow]]
program = "{kill}"
args = ["-TERM", "*"]
'''
    server = start_server(config=config_text(extra=policy))
    yield server
    server.stop()


def audit_records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_process_signal_goes_through_the_policy_and_the_audit_log(signal_server, spawned):
    allowed = spawned.start("sleep", "301")
    denied = spawned.start("sleep", "302")
    result = await call(signal_server, "process_signal", {"pid": allowed.pid}, principal="alice")
    assert result.is_error is not True, result.content[0].text
    assert result.structured_content["sent"] is True
    assert result.structured_content["ended"] is True
    assert allowed.wait(timeout=10) == -15
    # Near miss: KILL is not in the rule; the process lives on.
    refused = await call(signal_server, "process_signal", {"pid": denied.pid, "signal": "KILL"},
                         principal="alice")
    assert refused.is_error is True
    assert denied.poll() is None
    records = audit_records(signal_server)
    started = [r for r in records if r["event"] == "command_started" and str(allowed.pid) in json.dumps(r)]
    assert started and started[0]["argv"] == ["kill", "-TERM", str(allowed.pid)], started
    assert started[0]["tool"] == "process_signal" and started[0]["program"].endswith("/kill")
    finished = [r for r in records if r["event"] == "command_finished"
                and r["command_id"] == started[0]["command_id"]]
    assert finished and finished[0]["exit_code"] == 0
    refusals = [r for r in records if r["event"] == "command_refused" and str(denied.pid) in json.dumps(r)]
    assert refusals and refusals[0]["rule"] == "default", refusals
    assert refusals[0]["argv"] == ["kill", "-KILL", str(denied.pid)]


async def test_a_read_token_cannot_signal_and_pid_1_is_protected(signal_server, spawned):
    target = spawned.start("sleep", "303")
    async with connect(signal_server, "streamable", "legacy", headers=signal_server.headers("reader")) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("process_signal", {"pid": target.pid})
    assert "process_list" in names and "process_signal" not in names
    assert result.is_error is True and "operator" in result.content[0].text
    assert target.poll() is None
    protected = await call(signal_server, "process_signal", {"pid": 1}, principal="alice")
    assert protected.is_error is True and "allow_protected" in protected.content[0].text
    server_itself = await call(signal_server, "process_signal", {"pid": signal_server.process.pid},
                               principal="alice")
    assert server_itself.is_error is True and signal_server.process.poll() is None
    records = audit_records(signal_server)
    denials = [r for r in records if r["event"] == "tool_denied" and r.get("denied_tool") == "process_signal"]
    assert {r["rule"] for r in denials} >= {"role", "protected_pid"}
