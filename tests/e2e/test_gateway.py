"""`hostmcp gateway` end to end: a real nats-server (nkey users with the documented
permissions), three real `hostmcp serve --fleet --no-http` hosts, and two gateways in front of
them. The Python SDK talks to the gateways over /mcp (session era and 2026-07-28) and /sse:
host_list, run_command with `host`, fleet_run over every host, job ids that name their host
(served by either gateway), an offline host that fails fast, and the stateless wire with the
`Mcp-Param-Host` header (a mismatched header is refused, the matching one served). Then
fleet_run over 300 simulated hosts (examples/fleet_simhosts --vary) behind their own gateway: the
result fits the budget, failures come first, identical outputs are grouped, windows page it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import nkeys
import pytest
from mcp.types import CallToolResult

from conftest import BIN, RUN_AS_ROOT, Server, config_text, wait_for_port
from gateway_fleet import result_of, stateless_call
from mcp_clients import connect

pytestmark = pytest.mark.anyio

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"
HOSTS = {"web-1": "prod", "web-2": "prod", "db-1": "dev"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_seed() -> tuple[str, str]:
    """A NATS user nkey: (seed, public key)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Fleet:
    """nats-server, the hosts and the gateways, each stopped by PID."""

    def __init__(self, simhosts: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hostmcp-gateway-"))
        self.port = free_port()
        self.host_users = {name: user_seed() for name in [*HOSTS, "gone-1"]}
        self.gateway_user = user_seed()
        self.simhosts_user = user_seed()
        users = [
            f'{{ nkey: "{public}", permissions: {{ '
            f'subscribe: {{ allow: ["hostmcp.host.{name}.>", "hostmcp.discover"] }}, '
            f'publish: {{ allow: ["hostmcp.presence.{name}"] }}, '
            'allow_responses: { max: 100000, expires: "15m" } } }'
            for name, (_, public) in self.host_users.items()
        ]
        users.append(
            f'{{ nkey: "{self.gateway_user[1]}", permissions: {{ '
            'publish: { allow: ["hostmcp.host.>", "hostmcp.discover"] }, '
            'subscribe: { allow: ["hostmcp.presence.>", "_INBOX.>"] } } }')
        if simhosts:
            # The benchmark's simulated hosts: one user answering as every host.
            users.append(
                f'{{ nkey: "{self.simhosts_user[1]}", permissions: {{ '
                'subscribe: { allow: ["hostmcp.host.*.call", "hostmcp.host.*.cancel", "hostmcp.discover"] }, '
                'publish: { allow: ["hostmcp.presence.>"] }, '
                'allow_responses: { max: 100000, expires: "15m" } } }')
        conf = self.dir / "nats.conf"
        conf.write_text(f"listen: 127.0.0.1:{self.port}\n"
                        "authorization: { users: [\n  " + ",\n  ".join(users) + "\n] }\n")
        self.nats_log = open(self.dir / "nats.log", "wb")
        self.nats = subprocess.Popen([NATS_BIN, "-c", str(conf)], stdout=self.nats_log,
                                     stderr=self.nats_log)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (self.dir / "nats.log").read_text()
                time.sleep(0.05)
        self.gateway_seed = self.dir / "gateway-user.nk"
        self.gateway_seed.write_text(self.gateway_user[0] + "\n")
        self.gateway_seed.chmod(0o600)
        self.processes: list[subprocess.Popen] = []
        self.gateways: list[Server] = []
        self.gateway_keys: list[str] = []
        self.hosts: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def env(self, home: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                "XDG_STATE_HOME": str(home / "state"), "HOSTMCP_LOG": "info"}

    def gateway_key(self, home: Path) -> str:
        """`hostmcp gateway key` in the gateway's state directory."""
        out = subprocess.run([BIN, "gateway", "key"], env=self.env(home), capture_output=True,
                             text=True, timeout=30, check=True)
        return out.stdout.strip()

    def start_host(self, name: str, env_label: str) -> subprocess.Popen:
        home = self.dir / name
        home.mkdir()
        seed = home / "host.nk"
        seed.write_text(self.host_users[name][0] + "\n")
        seed.chmod(0o600)
        trusted = ", ".join(f'"{key}"' for key in self.gateway_keys)
        config = home / "config.toml"
        config.write_text(
            RUN_AS_ROOT + f'[audit]\npath = "{home / "audit.jsonl"}"\n'
            + "[limits]\ntool_calls_per_minute = 100000\nmax_concurrent_per_principal = 64\n"
            + f"[fleet]\ntrusted_gateways = [{trusted}]\n"
            + '[fleet.principals]\nalice = "operator"\nreader = "read"\n')
        log = open(home / "host.log", "wb")
        process = subprocess.Popen(
            [BIN, "serve", "--config", str(config), "--fleet", self.url, "--fleet-name", name,
             "--fleet-nkey", str(seed), "--fleet-label", f"env={env_label}", "--no-http"],
            stdout=subprocess.DEVNULL, stderr=log, env=self.env(home))
        self.processes.append(process)
        self.hosts[name] = process
        return process

    def start_gateway(self, home: Path) -> Server:
        (home / "config.toml").write_text(config_text())
        log_path = home / "gateway.log"
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [BIN, "gateway", "--nats", self.url, "--nats-nkey", str(self.gateway_seed),
             "--listen", "127.0.0.1:0", "--config", str(home / "config.toml"),
             "--audit-log", str(home / "audit.jsonl")],
            stdout=subprocess.DEVNULL, stderr=log, env=self.env(home))
        self.processes.append(process)
        port = wait_for_port(process, log_path, timeout=60)
        from conftest import TOKENS
        server = Server(process, port, home / "state", log_path,
                        {name: token for name, (token, _) in TOKENS.items()})
        self.gateways.append(server)
        return server

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        stop(self.nats)
        self.nats_log.close()


@pytest.fixture(scope="module")
def fleet():
    fleet = Fleet()
    try:
        homes = [fleet.dir / "gateway-a", fleet.dir / "gateway-b"]
        for home in homes:
            home.mkdir()
            fleet.gateway_keys.append(fleet.gateway_key(home))
        for name, env_label in HOSTS.items():
            fleet.start_host(name, env_label)
        for home in homes:
            fleet.start_gateway(home)
        wait_online(fleet.gateways[0], set(HOSTS))
        wait_online(fleet.gateways[1], set(HOSTS))
        yield fleet
    finally:
        fleet.close()


def wait_online(gateway: Server, names: set[str], timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        hosts = result_of(stateless_call(gateway, "host_list", {}))["structuredContent"]["hosts"]
        online = {host["name"] for host in hosts if host["online"]}
        if names <= online:
            return hosts
        assert time.monotonic() < deadline, (hosts, gateway.log())
        time.sleep(0.5)


def text(result: CallToolResult) -> str:
    return result.content[0].text


def gateway_records(gateway: Server) -> list[dict]:
    path = gateway.state_dir.parent / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("transport,mode", [("streamable", "legacy"), ("streamable", "2026-07-28"),
                                            ("sse", "legacy")])
async def test_the_sdk_lists_hosts_and_runs_a_command_on_the_one_it_names(fleet, transport, mode):
    gateway = fleet.gateways[0]
    async with connect(gateway, transport, mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"host_list", "fleet_run", "run_command", "job_start", "job_output"} <= set(tools)
        schema = tools["run_command"].input_schema
        assert schema["properties"]["host"]["x-mcp-header"] == "Host"
        assert schema["required"][0] == "host"
        listed = await client.call_tool("host_list", {"selector": "env=prod"})
        names = [host["name"] for host in listed.structured_content["hosts"]]
        assert names == ["web-1", "web-2"]
        ran = await client.call_tool("run_command", {"host": "web-2", "command": "echo hello from $0"})
        assert not ran.is_error, text(ran)
        assert ran.structured_content["exit_code"] == 0
        assert "hello from" in ran.structured_content["stdout"]
    records = [r for r in gateway_records(gateway) if r["event"] == "fleet_call"]
    assert any(r["tool"] == "run_command" and r["hosts"] == ["web-2"] and r["outcome"] == "ok"
               and r["principal"] == "alice" for r in records), records
    host_audit = (fleet.dir / "web-2" / "audit.jsonl").read_text()
    assert "hello from" in host_audit


async def test_a_reader_cannot_run_commands_through_the_gateway_but_can_list_hosts(fleet):
    gateway = fleet.gateways[0]
    async with connect(gateway, "streamable", "legacy", gateway.headers("reader")) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "run_command" not in names and "host_list" in names
        listed = await client.call_tool("host_list", {})
        assert not listed.is_error
        refused = await client.call_tool("run_command", {"host": "web-1", "command": "true"})
        assert refused.is_error and "needs the operator role" in text(refused)


async def test_fleet_run_reaches_every_host_with_progress_and_one_result(fleet):
    updates = []

    async def on_progress(progress, total, message):
        updates.append((progress, total, message))

    async with connect(fleet.gateways[1], "streamable", "legacy") as client:
        result = await client.call_tool("fleet_run", {"command": "echo up", "timeout_secs": 30},
                                        progress_callback=on_progress)
    assert not result.is_error, text(result)
    hosts = result.structured_content["hosts"]
    assert [host["host"] for host in hosts] == sorted(HOSTS)
    assert all(host["outcome"] == "ok" and host["group"] == 0 for host in hosts), hosts
    [group] = result.structured_content["groups"]
    assert group == {"hosts": "db-1,web-[1-2]", "count": 3, "outcome": "ok", "exit_code": 0,
                     "stdout": "up\n", "stderr": ""}, group
    assert result.structured_content["summary"] == {"ok": 3}
    assert text(result).startswith("3 hosts: ok 3")
    assert len(updates) == 3 and updates[-1][:2] == (3, 3), updates


async def test_fleet_run_reports_each_failure_and_cuts_big_outputs_with_a_marker(fleet):
    async with connect(fleet.gateways[0], "streamable", "2026-07-28") as client:
        result = await client.call_tool("fleet_run", {
            "selector": "web-*", "timeout_secs": 30,
            "command": "head -c 3000000 /dev/zero | tr '\\0' a; exit 3"})
    hosts = result.structured_content["hosts"]
    assert [host["host"] for host in hosts] == ["web-1", "web-2"]
    for host in hosts:
        assert host["outcome"] == "failed" and host["exit_code"] == 3, host
    [group] = result.structured_content["groups"]
    assert group["hosts"] == "web-[1-2]" and group["count"] == 2, group["hosts"]
    assert "omitted" in group["stdout"], group["stdout"][:300]
    assert len(group["stdout"]) < 300_000


async def test_job_ids_name_their_host_and_either_gateway_serves_them(fleet):
    a, b = fleet.gateways
    started = result_of(stateless_call(a, "job_start", {"host": "db-1", "command": "echo job-done"}))
    job_id = started["structuredContent"]["job_id"]
    assert job_id.startswith("db-1:"), started
    assert job_id in started["content"][0]["text"]
    deadline = time.monotonic() + 30
    while True:
        output = result_of(stateless_call(b, "job_output", {"host": "db-1", "job_id": job_id}))
        if "job-done" in json.dumps(output["structuredContent"]):
            break
        assert time.monotonic() < deadline, output
        time.sleep(0.3)
    assert output["structuredContent"]["job_id"] == job_id
    # A job id of one host sent to another is refused before anything is forwarded.
    wrong = stateless_call(b, "job_output", {"host": "web-1", "job_id": job_id})
    assert wrong.status_code == 200
    assert "error" in wrong.json() and "belongs to host" in wrong.json()["error"]["message"]


def test_the_host_parameter_header_must_match_the_argument(fleet):
    gateway = fleet.gateways[0]
    ok = result_of(stateless_call(gateway, "run_command", {"host": "web-1", "command": "echo same"}))
    assert ok["structuredContent"]["stdout"] == "same\n"
    mismatch = stateless_call(gateway, "run_command", {"host": "web-1", "command": "echo no"},
                              extra_headers={"Mcp-Param-Host": "web-2"})
    assert mismatch.status_code == 400, mismatch.text
    missing = stateless_call(gateway, "run_command", {"host": "web-1", "command": "echo no"},
                             extra_headers={"Mcp-Param-Host": ""})
    assert missing.status_code == 400, missing.text


def test_two_gateways_answer_the_same_stateless_calls(fleet):
    for gateway in fleet.gateways:
        result = result_of(stateless_call(gateway, "run_command", {"host": "web-1", "command": "echo x"}))
        assert result["structuredContent"]["stdout"] == "x\n"
        hosts = result_of(stateless_call(gateway, "host_list", {"selector": "db-*"}))
        assert [host["name"] for host in hosts["structuredContent"]["hosts"]] == ["db-1"]


def test_an_unknown_host_and_an_offline_one_fail_fast_with_a_clear_error(fleet):
    gateway = fleet.gateways[0]
    unknown = result_of(stateless_call(gateway, "run_command", {"host": "nope-1", "command": "true"}))
    assert unknown["isError"] and "not in the fleet" in unknown["content"][0]["text"]
    process = fleet.start_host("gone-1", "dev")
    wait_online(gateway, {"gone-1"})
    alive = result_of(stateless_call(gateway, "run_command", {"host": "gone-1", "command": "echo here"}))
    assert alive["structuredContent"]["stdout"] == "here\n"
    stop(process)
    started = time.monotonic()
    gone = result_of(stateless_call(gateway, "run_command", {"host": "gone-1", "command": "true"}))
    assert time.monotonic() - started < 5
    assert gone["isError"] and "offline" in gone["content"][0]["text"], gone
    result = result_of(stateless_call(gateway, "fleet_run", {"command": "true", "timeout_secs": 20}))
    outcomes = {host["host"]: host["outcome"] for host in result["structuredContent"]["hosts"]}
    assert outcomes == {"web-1": "ok", "web-2": "ok", "db-1": "ok", "gone-1": "offline"}, outcomes


def test_a_gateway_refuses_to_join_a_fleet_itself(tmp_path):
    # A gateway that also ran a host agent would answer for a host on the bus it fronts;
    # the twin (a gateway without --fleet) serves in every test above.
    done = subprocess.run(
        [str(BIN), "gateway", "--nats", "nats://127.0.0.1:1", "--fleet", "nats://127.0.0.1:1"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
    )
    assert done.returncode == 1
    assert "does not join a fleet itself" in done.stderr
    assert not (tmp_path / "hostmcp" / "gateway.nk").exists()


# ------------------------------------------------------------------ fleet_run over many hosts

SIM_HOSTS = 300


@pytest.fixture(scope="module")
def simfleet():
    """A gateway in front of 300 simulated hosts with varied outcomes (fleet_simhosts --vary)."""
    binary = Path(BIN).parent / "examples" / "fleet_simhosts"
    if not binary.exists():
        pytest.skip("examples/fleet_simhosts not built (cargo build --examples)")
    fleet = Fleet(simhosts=True)
    try:
        home = fleet.dir / "gateway-sim"
        home.mkdir()
        key = fleet.gateway_key(home)
        seed = fleet.dir / "simhosts.nk"
        seed.write_text(fleet.simhosts_user[0] + "\n")
        seed.chmod(0o600)
        log = open(fleet.dir / "simhosts.log", "wb")
        fleet.processes.append(subprocess.Popen(
            [str(binary), "--nats", fleet.url, "--nkey", str(seed), "--hosts", str(SIM_HOSTS),
             "--prefix", "sim", "--beat-ms", "5000", "--trust", key, "--vary"],
            stdout=log, stderr=log))
        gateway = fleet.start_gateway(home)
        wait_online(gateway, {f"sim{i:04}" for i in range(SIM_HOSTS)})
        yield fleet
    finally:
        fleet.close()


def test_fleet_run_over_300_hosts_fits_the_budget_failures_first_outputs_grouped(simfleet):
    gateway = simfleet.gateways[0]
    response = stateless_call(gateway, "fleet_run", {"command": "uptime", "timeout_secs": 30})
    assert len(response.content) < 110_000
    result = result_of(response)
    assert len(json.dumps(result, separators=(",", ":"))) <= 100 * 1024
    assert not result.get("isError"), result["content"][0]["text"][:2000]
    structured = result["structuredContent"]
    # Host i: denied when i % 25 == 11, failed when i % 10 == 3, 100 KB when i % 20 == 7.
    assert structured["summary"] == {"failed": 30, "denied": 12, "ok": 258}, (structured["summary"], structured["groups"][:3])
    assert (structured["hosts_run"], structured["hosts_matched"]) == (300, 300)
    assert "next_offset" not in structured
    groups = structured["groups"]
    assert [(g["outcome"], g["count"]) for g in groups] == [("failed", 30), ("denied", 12),
                                                            ("ok", 243), ("ok", 15)], groups
    assert groups[0]["hosts"].startswith("sim[0003,0013,0023,"), groups[0]["hosts"]
    assert groups[0]["stderr"] == "simulated failure: disk full\n"
    assert "omitted" in groups[3]["stdout"] and len(groups[3]["stdout"]) < 50_000
    rows = structured["hosts"]
    assert len(rows) + structured["hosts_not_listed"] == 300
    assert [row["outcome"] for row in rows[:42]] == ["failed"] * 30 + ["denied"] * 12
    text = result["content"][0]["text"]
    assert text.startswith("300 hosts: failed 30, denied 12, ok 258\n"), text[:300]
    assert text.index("): failed (exit 2)") < text.index("): denied") < text.index("): ok (exit 0)")


def test_fleet_run_pages_a_large_fleet_in_windows_any_gateway_serves(simfleet):
    gateway = simfleet.gateways[0]
    seen: list[str] = []
    offset = 0
    for _ in range(5):
        result = result_of(stateless_call(gateway, "fleet_run", {
            "command": "uptime", "timeout_secs": 30, "hosts_offset": offset, "hosts_limit": 100}))
        structured = result["structuredContent"]
        assert structured["hosts_offset"] == offset and structured["hosts_run"] == 100
        assert structured["hosts_not_listed"] == 0
        seen += sorted(row["host"] for row in structured["hosts"])
        if "next_offset" not in structured:
            break
        assert f"next window: hosts_offset={structured['next_offset']}" in result["content"][0]["text"]
        offset = structured["next_offset"]
    assert seen == [f"sim{i:04}" for i in range(SIM_HOSTS)]
    # Past the end: a clear error, not an empty success.
    past = result_of(stateless_call(gateway, "fleet_run", {"command": "uptime", "hosts_offset": 300}))
    assert past["isError"] and "past the 300 matched hosts" in past["content"][0]["text"]
