"""Fleet hosts in their own network and UTS namespaces: reachability, partitions that heal.

Each host is a process in its own `ip netns` namespace with its own hostname, joined to a bridge
whose root side runs a real nats-server (TLS, nkey users, the permissions of docs/fleet.md).
A partition is a cut link (`ip link set ... down`); restoring it must bring the same process
back, without a restart. The stand-in host (tests/e2e/nats/echo_host.py) speaks plain NATS;
the real agent (`hostmcp serve --fleet`) runs the same scenario when the binary has --fleet.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "nats"))
import fleet_net  # noqa: E402
from conftest import RUN_AS_ROOT  # noqa: E402
import natsproc  # noqa: E402

nats = pytest.importorskip("nats")

NAMES = ["web1", "web2", "web3"]
WAIT = 30.0

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(natsproc.nats_server_bin() is None, reason="nats-server not installed (apt-get install nats-server)"),
    pytest.mark.skipif(fleet_net.available() is not None, reason=f"fleet_net: {fleet_net.available()}"),
]


@pytest.fixture
def network(tmp_path):
    with fleet_net.fleet_net(NAMES) as net:
        fleet = natsproc.new_fleet(tmp_path, NAMES, tls_names=(net.root_address,))
        # A vanished client is dropped after two missed 1 s pings, not the default two minutes.
        server = natsproc.start_single(fleet, listen=net.root_address, extra={"ping_interval": "1s", "ping_max": 2})
        try:
            yield net, fleet, server
        finally:
            fleet.stop()


async def gateway_client(fleet, server):
    ctx = ssl.create_default_context(cafile=str(fleet.tls.ca))
    return await nats.connect(server.url, nkeys_seed=str(fleet.seed_file("gateway")), tls=ctx, connect_timeout=5)


async def call(nc, name: str, timeout: float = 1.0) -> str | None:
    try:
        return (await nc.request(f"hostmcp.host.{name}.call", b"uptime", timeout=timeout)).data.decode()
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return None


async def eventually(predicate, within: float, what: str):
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.2)


class Beats:
    """Presence beats seen by the gateway, by host name, with their arrival times."""

    def __init__(self):
        self.seen: dict[str, list[float]] = {}

    async def on_msg(self, msg):
        self.seen.setdefault(msg.subject.rsplit(".", 1)[1], []).append(time.monotonic())

    def since(self, name: str, t: float) -> int:
        return sum(1 for x in self.seen.get(name, []) if x >= t)


def test_namespaces_have_their_own_hostname_and_address(network):
    net, _, _ = network
    for name, host in net.hosts.items():
        assert host.run(["hostname"]).stdout.strip() == name
        addrs = host.run(["ip", "-o", "-4", "addr", "show"]).stdout
        assert host.address in addrs and net.root_address not in addrs
    # The near miss: the root namespace keeps its own name.
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() not in NAMES


def test_namespaces_left_by_a_dead_run_are_removed():
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live = f"{fleet_net.NETNS_PREFIX}-{dead.pid}-0", f"{fleet_net.NETNS_PREFIX}-{os.getpid()}-999"
    for name in (stale, live):
        fleet_net.ip("netns", "add", name)
    try:
        removed = fleet_net.remove_stale()
        listed = fleet_net.ip("netns", "list").stdout.split()
        assert stale in removed and stale not in listed
        # The near miss: a namespace whose owner still runs is left alone.
        assert live not in removed and live in listed
    finally:
        for name in (stale, live):
            fleet_net.ip("netns", "del", name, check=False)


async def test_stand_in_hosts_answer_and_heal_after_a_cut(network):
    net, fleet, server = network
    procs = {}
    for name, host in net.hosts.items():
        procs[name] = host.start([sys.executable, str(HERE / "nats" / "echo_host.py"), "--nats", server.url,
                                  "--nkey", str(fleet.seed_file(name)), "--ca", str(fleet.tls.ca), "--beat", "0.5"],
                                 fleet.workdir / f"{name}.log", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    nc = await gateway_client(fleet, server)
    try:
        beats = Beats()
        await nc.subscribe("hostmcp.presence.>", cb=beats.on_msg)
        # Every host answers under its own hostname: the namespace's UTS name and its own process.
        for name, p in procs.items():
            answer = await eventually(lambda n=name: call(nc, n), WAIT, f"{name} answers")
            assert answer == f"{name} {p.pid}"

        net.hosts["web2"].cut()
        cut_at = time.monotonic()
        await eventually(lambda: _none(call(nc, "web2", timeout=0.5)), WAIT, "web2 unreachable after the cut")
        # Give any beat already in flight time to land, then: web2 silent, the others beating.
        await asyncio.sleep(2)
        quiet_from = time.monotonic()
        await asyncio.sleep(3)
        assert beats.since("web2", quiet_from) == 0, "a cut host still beats"
        assert beats.since("web1", quiet_from) >= 2 and beats.since("web3", quiet_from) >= 2
        assert await call(nc, "web1") == f"web1 {procs['web1'].pid}"

        net.hosts["web2"].restore()
        answer = await eventually(lambda: call(nc, "web2"), WAIT, "web2 back after restore")
        assert answer == f"web2 {procs['web2'].pid}", "the same process answers: no restart"
        assert procs["web2"].poll() is None
        await eventually(lambda: _async(beats.since("web2", time.monotonic() - 1) > 0), WAIT, "web2 beats again")
        assert time.monotonic() - cut_at < 4 * WAIT
    finally:
        await nc.close()


async def _none(aw):
    return (await aw) is None


async def _async(value):
    return value


def _hostmcp_has_fleet() -> bool:
    binary = os.environ.get("HOSTMCP_BIN", str(HERE.parents[1] / "target/debug/hostmcp"))
    if not Path(binary).exists():
        return False
    return "--fleet" in subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout


@pytest.mark.skipif(not _hostmcp_has_fleet(), reason="hostmcp serve has no --fleet yet (branch fleet)")
async def test_real_agents_take_their_hostname_and_heal_after_a_cut(network):
    net, fleet, server = network
    binary = os.environ.get("HOSTMCP_BIN", str(HERE.parents[1] / "target/debug/hostmcp"))
    procs = {}
    for name, host in net.hosts.items():
        state = fleet.workdir / f"state-{name}"
        state.mkdir()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(state),
               "XDG_STATE_HOME": str(state), "HOSTMCP_LOG": "info"}
        config = state / "config.toml"
        config.write_text(RUN_AS_ROOT + f'[audit]\npath = "{state / "audit.jsonl"}"\n'
                          + f'[fleet]\ntrusted_gateways = ["{fleet.gateway.public}"]\n')
        # No --fleet-name: the agent names itself after the namespace's hostname.
        procs[name] = host.start([binary, "serve", "--config", str(config), "--fleet", server.url,
                                  "--fleet-nkey", str(fleet.seed_file(name)), "--fleet-ca", str(fleet.tls.ca),
                                  "--no-http"],
                                 fleet.workdir / f"agent-{name}.log", env=env)
    nc = await gateway_client(fleet, server)
    try:
        beats = Beats()
        await nc.subscribe("hostmcp.presence.>", cb=beats.on_msg)
        for name in NAMES:
            await eventually(lambda n=name: _async(beats.since(n, 0) > 0), WAIT, f"{name} presence")
        net.hosts["web2"].cut()
        await asyncio.sleep(12)  # longer than a few presence intervals
        quiet_from = time.monotonic()
        await asyncio.sleep(8)
        assert beats.since("web2", quiet_from) == 0, "a cut agent's presence still arrives"
        assert beats.since("web1", quiet_from) > 0
        net.hosts["web2"].restore()
        await eventually(lambda: _async(beats.since("web2", quiet_from) > 0), 2 * WAIT, "web2 presence after restore")
        assert procs["web2"].poll() is None, "the agent healed without a restart"
    finally:
        await nc.close()
