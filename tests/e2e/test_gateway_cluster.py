"""Failure is a normal day, through the gateway: a NATS node dies, the gateway is replaced.

A 3-node nats-server cluster on loopback (docs/fleet.md's configuration: TLS, nkeys), three real
`hostmcp serve --fleet` hosts and a real `hostmcp gateway`, every one of them given all three
URLs. The node the gateway is connected to is killed (SIGKILL, by PID): within a bounded time
host_list shows every host online again and run_command succeeds on each; the node is restarted.
Then the node of a host (another one where there is one) is killed the same way. Separately, the
gateway process is replaced on the same port: a 2026-07-28 client (the Python SDK, no session)
keeps going, and a job started before the restart is read through the new gateway by its
`<host>:<id>`. Near misses: the same calls before any failure.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from gateway_fleet import (gateway_fleet, online_hosts, result_of, stateless_call, stop,
                           wait_online)
from mcp_clients import connect

sys.path.insert(0, str(Path(__file__).resolve().parent / "nats"))
import natsproc  # noqa: E402

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(natsproc.nats_server_bin() is None, reason="nats-server not installed"),
]

HOSTS = ["c-1", "c-2", "c-3"]
# Seconds the fleet has to be whole again after a node dies: reconnect (async-nats backs off),
# then presence beats through the surviving nodes. Generous: the machine is shared.
RECOVER_WITHIN = 45


@pytest.fixture(scope="module")
def fleet():
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-gwcluster-"))
    with gateway_fleet(workdir, HOSTS, nodes=3) as fleet:
        yield fleet


def clients_by_node(fleet) -> list[list[str]]:
    """The names of the NATS connections on each node (nats-server's /connz)."""
    names = []
    for server in fleet.nats.servers:
        if server.process.poll() is not None:
            names.append([])
            continue
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/connz", timeout=5) as r:
            names.append([c.get("name", "") for c in json.load(r).get("connections") or []])
    return names


def node_of(fleet, prefix: str) -> int:
    """The node a connection whose name starts with `prefix` is on."""
    for index, names in enumerate(clients_by_node(fleet)):
        if any(name.startswith(prefix) for name in names):
            return index
    raise AssertionError(f"no connection named {prefix}*: {clients_by_node(fleet)}")


def run_everywhere(gateway) -> None:
    for host in HOSTS:
        result = result_of(stateless_call(gateway, "run_command", {"host": host, "command": "echo up on $0"},
                                          timeout=30))
        assert result["structuredContent"]["exit_code"] == 0, (host, result)


def recovered(gateway) -> float:
    """Seconds until every host is online and run_command succeeds on each (bounded)."""
    started = time.monotonic()
    deadline = started + RECOVER_WITHIN
    while True:
        try:
            if online_hosts(gateway) >= set(HOSTS):
                run_everywhere(gateway)
                return time.monotonic() - started
            problem = "not every host is online"
        except Exception as error:  # a call that failed while NATS reconnects: try again
            problem = repr(error)
        assert time.monotonic() < deadline, (problem, gateway.log()[-3000:])
        time.sleep(0.5)


def kill_and_restart(fleet, index: int, moved: list[str]) -> float:
    """Kill node `index`; once the fleet is whole again, the connections named `moved` are on
    the surviving nodes; then the node is restarted on its port."""
    node = fleet.nats.servers[index]
    node.stop(signal.SIGKILL)
    try:
        took = recovered(fleet.gateways[0])
        for prefix in moved:
            assert node_of(fleet, prefix) != index, (prefix, clients_by_node(fleet))
        return took
    finally:
        restarted = natsproc.start(node.conf.read_text(), node.port, fleet.nats.workdir,
                                   f"nats-{index}", http_port=node.http_port)
        fleet.nats.servers[index] = restarted


def test_calls_go_on_when_the_gateways_nats_node_dies(fleet):
    gateway = fleet.gateways[0]
    run_everywhere(gateway)  # the near miss: the whole cluster serves
    index = node_of(fleet, "hostmcp-gateway")
    on_it = [host for host in HOSTS if node_of(fleet, f"hostmcp host {host}") == index]
    took = kill_and_restart(fleet, index, ["hostmcp-gateway", *(f"hostmcp host {h}" for h in on_it)])
    print(f"gateway's node {index} (and hosts {on_it}) killed: fleet whole again after {took:.1f} s")
    wait_online(gateway, set(HOSTS))
    run_everywhere(gateway)


def test_calls_go_on_when_a_hosts_nats_node_dies(fleet):
    gateway = fleet.gateways[0]
    run_everywhere(gateway)
    gateway_node = node_of(fleet, "hostmcp-gateway")
    host_nodes = [node_of(fleet, f"hostmcp host {host}") for host in HOSTS]
    others = [n for n in host_nodes if n != gateway_node]
    index = others[0] if others else host_nodes[0]
    on_it = [host for host, node in zip(HOSTS, host_nodes) if node == index]
    took = kill_and_restart(fleet, index, [f"hostmcp host {host}" for host in on_it])
    print(f"node {index} of hosts {on_it} killed: fleet whole again after {took:.1f} s")
    run_everywhere(gateway)


async def test_a_replaced_gateway_loses_nothing_a_stateless_client_needs(fleet):
    old = fleet.gateways[0]
    port = old.port
    async with connect(old, "streamable", "2026-07-28") as client:
        ran = await client.call_tool("run_command", {"host": "c-1", "command": "echo before"})
        assert ran.structured_content["stdout"] == "before\n"
        started = await client.call_tool("job_start", {"host": "c-2", "command": "sleep 2; echo job-survived"})
        job_id = started.structured_content["job_id"]
        assert job_id.startswith("c-2:"), started
        stop(old.process)
        fleet.gateways.remove(old)
        new = fleet.start_gateway("gw-0", port=port)
        assert new.port == port
        wait_online(new, set(HOSTS))
        # The same client object, no new session or handshake: it just goes on.
        ran = await client.call_tool("run_command", {"host": "c-3", "command": "echo after"})
        assert not ran.is_error, ran
        assert ran.structured_content["stdout"] == "after\n"
        deadline = time.monotonic() + 30
        while True:
            output = await client.call_tool("job_output", {"job_id": job_id, "wait_secs": 5})
            assert not output.is_error, output
            if "job-survived" in json.dumps(output.structured_content):
                break
            assert time.monotonic() < deadline, output
        assert output.structured_content["job_id"] == job_id
