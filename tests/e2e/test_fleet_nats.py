"""The NATS server setup of docs/fleet.md, run for real: permissions, TLS, nkeys, a 3-node cluster.

A real `nats-server` (Debian package) runs the configuration tests/e2e/nats/natsconf.py writes,
on free loopback ports; real nats-py clients log in as host and gateway users with their nkey
seeds. Each refusal has its near miss: the same client doing what it is allowed still works.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nats"))
import fleetproto  # noqa: E402
import natsconf  # noqa: E402
import natsproc  # noqa: E402

nats = pytest.importorskip("nats")
nkeys = pytest.importorskip("nkeys")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(natsproc.nats_server_bin() is None, reason="nats-server not installed (apt-get install nats-server)"),
]

# How long to wait for something that must happen, and for something that must not.
WAIT = 10.0
QUIET = 1.0


class Client:
    """A nats-py connection plus the asynchronous errors the server sent it."""

    def __init__(self, nc, errors: list[Exception]):
        self.nc = nc
        self.errors = errors

    async def permission_error(self, needle: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for e in self.errors:
                text = str(e)
                if "permissions violation" in text.lower() and needle.lower() in text.lower():
                    return text
            await asyncio.sleep(0.02)
        raise AssertionError(f"no permissions violation naming {needle!r}; errors: {self.errors}")

    def assert_no_errors(self) -> None:
        assert not self.errors, self.errors


async def connect(fleet: natsproc.Fleet, who: str, servers: list[str] | None = None, **kw) -> Client:
    errors: list[Exception] = []

    async def error_cb(e):
        errors.append(e)

    ctx = ssl.create_default_context(cafile=str(fleet.tls.ca))
    nc = await nats.connect(servers or fleet.urls, nkeys_seed=str(fleet.seed_file(who)), tls=ctx,
                            error_cb=error_cb, connect_timeout=5, name=f"test-{who}", **kw)
    return Client(nc, errors)


async def sync(nc) -> None:
    """Return once the server has processed everything this client sent before.

    nats-py 2.16's flush() writes its PING straight to the socket, ahead of the SUB/PUB commands
    still queued for its flusher task, so its PONG can come back before a SUB reached the
    server; writing the queue out first (and waiting for that) restores the order."""
    await nc._flush_pending(force_flush=True)
    await nc.flush()


async def next_or_none(sub, timeout: float):
    try:
        return await sub.next_msg(timeout=timeout)
    except nats.errors.TimeoutError:
        return None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = natsproc.new_fleet(tmp_path_factory.mktemp("nats"), ["web1", "db1"])
    natsproc.start_single(f)
    yield f
    f.stop()


@pytest.fixture
async def clients(fleet):
    opened: list[Client] = []

    async def open_(who: str, **kw) -> Client:
        c = await connect(fleet, who, **kw)
        opened.append(c)
        return c

    yield open_
    for c in opened:
        await c.nc.close()


# ------------------------------------------------------------------ subscribe

async def test_host_cannot_subscribe_to_another_hosts_subjects(clients):
    web1, gateway = await clients("web1"), await clients("gateway")
    stolen = await web1.nc.subscribe("hostmcp.host.db1.call")
    await web1.permission_error('"hostmcp.host.db1.call"')
    for wide in ("hostmcp.host.>", "hostmcp.presence.>", "_INBOX.>"):
        await web1.nc.subscribe(wide)
        await web1.permission_error(f'"{wide}"')
    own = await web1.nc.subscribe("hostmcp.host.web1.call")
    await sync(web1.nc)
    await gateway.nc.publish("hostmcp.host.db1.call", b"for db1")
    await gateway.nc.publish("hostmcp.host.web1.call", b"for web1")
    await sync(gateway.nc)
    # The near miss: its own subject delivers; the other host's never does.
    msg = await own.next_msg(timeout=WAIT)
    assert msg.data == b"for web1"
    assert await next_or_none(stolen, QUIET) is None
    gateway.assert_no_errors()


async def test_host_can_subscribe_to_its_subjects_and_discovery(clients):
    web1, gateway = await clients("web1"), await clients("gateway")
    subs = {s: await web1.nc.subscribe(s) for s in ("hostmcp.host.web1.call", "hostmcp.host.web1.cancel",
                                                    "hostmcp.discover")}
    await sync(web1.nc)
    for subject, sub in subs.items():
        await gateway.nc.publish(subject, subject.encode())
        await sync(gateway.nc)
        assert (await sub.next_msg(timeout=WAIT)).data == subject.encode()
    web1.assert_no_errors()


# ------------------------------------------------------------------ publish presence

async def test_host_cannot_publish_presence_for_another_host(clients):
    web1, gateway = await clients("web1"), await clients("gateway")
    presence = await gateway.nc.subscribe("hostmcp.presence.>")
    await sync(gateway.nc)
    await web1.nc.publish("hostmcp.presence.db1", b'{"online":true}')
    await web1.permission_error('"hostmcp.presence.db1"')
    await web1.nc.publish("hostmcp.host.db1.call", b"a host calling another host")
    await web1.permission_error('"hostmcp.host.db1.call"')
    # The near miss: its own presence reaches the gateway, and only that.
    await web1.nc.publish("hostmcp.presence.web1", b'{"online":true}')
    msg = await presence.next_msg(timeout=WAIT)
    assert msg.subject == "hostmcp.presence.web1"
    assert await next_or_none(presence, QUIET) is None


async def test_gateway_cannot_pose_as_a_host(clients):
    gateway = await clients("gateway")
    await gateway.nc.publish("hostmcp.presence.web1", b'{"online":true}')
    await gateway.permission_error('"hostmcp.presence.web1"')
    await gateway.nc.subscribe("hostmcp.host.web1.call")
    await gateway.permission_error('"hostmcp.host.web1.call"')


# ------------------------------------------------------------------ replies (allow_responses)

async def test_host_answers_only_requests_it_received(clients):
    web1, db1, gateway = await clients("web1"), await clients("db1"), await clients("gateway")
    calls = await web1.nc.subscribe("hostmcp.host.web1.call")
    await sync(web1.nc)
    inbox = gateway.nc.new_inbox()
    answers = await gateway.nc.subscribe(inbox)
    await sync(gateway.nc)
    await gateway.nc.publish("hostmcp.host.web1.call", b"uptime", reply=inbox)
    request = await calls.next_msg(timeout=WAIT)
    assert request.reply == inbox

    # Another host that learnt the inbox cannot answer on it, nor can the host write to an inbox
    # no request gave it.
    await db1.nc.publish(inbox, b'{"final":true,"forged":"db1"}')
    await db1.permission_error(f'"{inbox}"')
    forged_inbox = gateway.nc.new_inbox()
    await web1.nc.publish(forged_inbox, b"unasked")
    await web1.permission_error(f'"{forged_inbox}"')

    # The near miss: the host answers its own request with several messages (progress, chunks,
    # final), all delivered in order.
    for part in (b"progress", b"chunk", b"final"):
        await web1.nc.publish(request.reply, part)
    await sync(web1.nc)
    got = [(await answers.next_msg(timeout=WAIT)).data for _ in range(3)]
    assert got == [b"progress", b"chunk", b"final"]
    assert await next_or_none(answers, QUIET) is None


async def test_gateway_discovers_every_host(clients):
    gateway = await clients("gateway")
    hosts = {name: await clients(name) for name in ("web1", "db1")}
    for name, host in hosts.items():
        async def answer(msg, name=name, host=host):
            await host.nc.publish(msg.reply, json.dumps({"host": name, "online": True}).encode())
        await host.nc.subscribe("hostmcp.discover", cb=answer)
        await sync(host.nc)
    inbox = gateway.nc.new_inbox()
    answers = await gateway.nc.subscribe(inbox)
    await sync(gateway.nc)
    await gateway.nc.publish("hostmcp.discover", b"", reply=inbox)
    seen = {json.loads((await answers.next_msg(timeout=WAIT)).data)["host"] for _ in hosts}
    assert seen == {"web1", "db1"}
    for host in hosts.values():
        host.assert_no_errors()


async def test_request_reply_round_trip(clients):
    web1, gateway = await clients("web1"), await clients("gateway")

    async def answer(msg):
        await web1.nc.publish(msg.reply, b"up 3 days")
    await web1.nc.subscribe("hostmcp.host.web1.call", cb=answer)
    await sync(web1.nc)
    reply = await gateway.nc.request("hostmcp.host.web1.call", b"uptime", timeout=WAIT)
    assert reply.data == b"up 3 days"


# ------------------------------------------------------------------ TLS and nkeys

def raw_tls(server: natsproc.NatsServer, fleet: natsproc.Fleet) -> tuple[ssl.SSLSocket, dict]:
    """A TLS connection to the server, its INFO read: the NATS protocol by hand."""
    sock = socket.create_connection((server.host, server.port), timeout=WAIT)
    info_line = sock.makefile("rb").readline()
    assert info_line.startswith(b"INFO ")
    ctx = ssl.create_default_context(cafile=str(fleet.tls.ca))
    tls = ctx.wrap_socket(sock, server_hostname=server.host)
    return tls, json.loads(info_line[5:])


def read_until_closed(sock: socket.socket, want: bytes) -> bytes:
    sock.settimeout(WAIT)
    data = b""
    deadline = time.monotonic() + WAIT
    while want not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def connect_with_signature(fleet, public: str, signer_seed: str) -> bytes:
    server = fleet.servers[0]
    tls, info = raw_tls(server, fleet)
    try:
        pair = nkeys.from_seed(bytearray(signer_seed.encode()))
        sig = base64.b64encode(pair.sign(info["nonce"].encode())).decode()
        connect = {"verbose": False, "pedantic": False, "tls_required": True, "nkey": public, "sig": sig,
                   "protocol": 1, "lang": "test", "version": "0"}
        tls.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        return read_until_closed(tls, b"PONG")
    finally:
        tls.close()


def test_nkey_signed_by_another_key_is_refused(fleet):
    web1, intruder = fleet.hosts["web1"], natsconf.new_user()
    refused = connect_with_signature(fleet, web1.public, intruder.seed)
    assert b"Authorization Violation" in refused and b"PONG" not in refused
    # The near miss: the same login signed by web1's own seed is accepted.
    accepted = connect_with_signature(fleet, web1.public, web1.seed)
    assert b"PONG" in accepted, accepted


async def test_unknown_nkey_is_refused(fleet, tmp_path):
    stranger = natsconf.new_user().write_seed(tmp_path / "stranger.nk")
    ctx = ssl.create_default_context(cafile=str(fleet.tls.ca))
    errors: list[Exception] = []

    async def error_cb(e):
        errors.append(e)
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(fleet.urls, nkeys_seed=str(stranger), tls=ctx, connect_timeout=5, error_cb=error_cb,
                           allow_reconnect=False, max_reconnect_attempts=0)
    assert any("authorization violation" in str(e).lower() for e in errors), errors
    nc = await nats.connect(fleet.urls, nkeys_seed=str(fleet.seed_file("db1")), tls=ctx, connect_timeout=5,
                            allow_reconnect=False)
    assert nc.is_connected
    await nc.close()


def test_plaintext_client_is_refused(fleet):
    server = fleet.servers[0]
    with socket.create_connection((server.host, server.port), timeout=WAIT) as sock:
        info = json.loads(sock.makefile("rb").readline()[5:])
        assert info["tls_required"] is True
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        assert b"PONG" not in read_until_closed(sock, b"PONG")


async def test_tls_without_the_fleet_ca_is_refused(fleet):
    # The system trust store does not know the fleet's CA: the handshake fails.
    with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):
        await nats.connect(fleet.urls, nkeys_seed=str(fleet.seed_file("web1")), tls=ssl.create_default_context(),
                           connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=0)


# ------------------------------------------------------------------ a 3-node cluster loses one

@pytest.fixture
def cluster(tmp_path):
    f = natsproc.new_fleet(tmp_path, ["web1"])
    try:
        natsproc.start_cluster(f, 3)
        yield f
    finally:
        f.stop()


async def test_cluster_keeps_request_reply_when_a_node_dies(cluster):
    urls = cluster.urls
    options = dict(dont_randomize=True, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    host = await connect(cluster, "web1", servers=urls, **options)
    # The gateway starts on another node, so requests cross a route.
    gateway = await connect(cluster, "gateway", servers=urls[1:] + urls[:1], **options)
    try:
        async def answer(msg):
            await host.nc.publish(msg.reply, b"ok " + msg.data)
        await host.nc.subscribe("hostmcp.host.web1.call", cb=answer)
        await sync(host.nc)

        async def call(data: bytes, within: float) -> bytes:
            deadline = time.monotonic() + within
            while True:
                try:
                    return (await gateway.nc.request("hostmcp.host.web1.call", data, timeout=1)).data
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)

        assert await call(b"before", WAIT) == b"ok before"
        first = host.nc.connected_url.port
        assert first == cluster.servers[0].port
        cluster.servers[0].stop(signal.SIGKILL)
        assert await call(b"after", 3 * WAIT) == b"ok after"
        assert host.nc.connected_url.port in (cluster.servers[1].port, cluster.servers[2].port)
        # The dead node shows up as a lost connection, never as a refusal.
        assert not [e for e in host.errors if "violation" in str(e).lower()], host.errors
    finally:
        await host.nc.close()
        await gateway.nc.close()


# ------------------------------------------------------------------ simulated hosts (the benchmark's)

def simhosts_bin() -> Path | None:
    hostmcp = Path(os.environ.get("HOSTMCP_BIN", str(Path(__file__).resolve().parents[2] / "target/debug/hostmcp")))
    binary = hostmcp.parent / "examples" / "fleet_simhosts"
    return binary if binary.exists() else None


@pytest.fixture
def simhosts(tmp_path):
    binary = simhosts_bin()
    if binary is None:
        pytest.skip("examples/fleet_simhosts not built (cargo build --examples)")
    f = natsproc.new_fleet(tmp_path, [], simhosts=True)
    server = natsproc.start_single(f)
    log = tmp_path / "simhosts.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "--nats", server.url, "--nkey", str(f.seed_file("simhosts")),
                                 "--ca", str(f.tls.ca), "--hosts", "20", "--prefix", "sim", "--beat-ms", "500",
                                 "--trust", f.gateway.public], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WAIT
        while b"ready" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f, proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        f.stop()


async def fleet_call(nc, host: str, payload: bytes, headers: dict | None) -> dict:
    reply = fleetproto.Reply()
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await sync(nc)
    await nc.publish(f"hostmcp.host.{host}.call", payload, reply=inbox, headers=headers)
    while True:
        msg = await sub.next_msg(timeout=WAIT)
        final = reply.push(msg.headers, msg.data)
        if final is not None:
            await sub.unsubscribe()
            return final


async def test_simulated_hosts_answer_signed_calls_and_refuse_the_rest(simhosts):
    fleet, proc, log = simhosts
    gateway = fleetproto.Gateway(fleet.gateway.seed)
    nc = (await connect(fleet, "gateway")).nc
    try:
        payload, headers = gateway.seal_call("sim0003", "run_command", {"command": "uptime"})
        answer = await fleet_call(nc, "sim0003", payload, headers)
        assert answer["status"] == "ok" and answer["host"] == "sim0003", answer
        assert answer["id"] == json.loads(payload)["id"]
        assert "sim0003 up" in answer["result"]["content"][0]["text"]

        async def refused(host, payload, headers) -> str:
            got = await fleet_call(nc, host, payload, headers)
            assert got["status"] == "error", got
            return got["error"]

        assert await refused("sim0003", payload, headers) == "replayed"
        fresh, fresh_headers = gateway.seal_call("sim0003", "run_command", {"command": "uptime"})
        assert await refused("sim0003", fresh, None) == "unsigned"
        assert await refused("sim0003", fresh.replace(b"uptime", b"reboot"), fresh_headers) == "bad_signature"
        other, other_headers = gateway.seal_call("sim0004", "run_command", {"command": "uptime"})
        assert await refused("sim0003", other, other_headers) == "wrong_host"
        stranger = fleetproto.Gateway(natsconf.new_user().seed)
        forged, forged_headers = stranger.seal_call("sim0003", "run_command", {"command": "uptime"})
        assert await refused("sim0003", forged, forged_headers) == "not_trusted"
        # The near miss of them all: the untouched fresh request still runs.
        assert (await fleet_call(nc, "sim0003", fresh, fresh_headers))["status"] == "ok"

        inbox = nc.new_inbox()
        answers = await nc.subscribe(inbox)
        await sync(nc)
        await nc.publish("hostmcp.discover", b"", reply=inbox)
        seen = {json.loads((await answers.next_msg(timeout=WAIT)).data)["host"] for _ in range(20)}
        assert seen == {f"sim{i:04d}" for i in range(20)}
    finally:
        await nc.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert "calls=2 refused=5" in log.read_text()
