"""The host side of the fleet, end to end: a real nats-server (nkey users with the documented
permissions, max_payload 64 KiB), real `hostmcp serve --fleet --no-http` hosts, and the bus
driven by nats-py, signing requests with the Python nkeys package exactly as docs/fleet.md
describes the wire format. Every trust near miss has its allowed twin.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import nats
import nkeys
import pytest

from conftest import BIN, RUN_AS_ROOT, descendants, pid_alive

pytestmark = pytest.mark.anyio

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"
MAX_PAYLOAD = 64 * 1024


def new_seed(prefix: int) -> tuple[str, object]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return seed.decode(), nkeys.from_seed(bytearray(seed))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """One nats-server and the keys of two hosts, a gateway user and two gateway signers."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.hosts = {name: new_seed(nkeys.PREFIX_BYTE_USER) for name in ("web-1", "web-2")}
        self.gateway_user = new_seed(nkeys.PREFIX_BYTE_USER)
        # The gateway's signing key (what `hostmcp gateway key` prints) and a stranger's.
        self.signer = new_seed(nkeys.PREFIX_BYTE_ACCOUNT)[1]
        self.stranger = new_seed(nkeys.PREFIX_BYTE_ACCOUNT)[1]
        users = []
        for name, (_, pair) in self.hosts.items():
            users.append(
                f'{{ nkey: "{pair.public_key.decode()}", permissions: {{ '
                f'subscribe: {{ allow: ["hostmcp.host.{name}.>", "hostmcp.discover"] }}, '
                f'publish: {{ allow: ["hostmcp.presence.{name}"] }}, '
                f'allow_responses: {{ max: 100000, expires: "15m" }} }} }}')
        users.append(
            f'{{ nkey: "{self.gateway_user[1].public_key.decode()}", permissions: {{ '
            'publish: { allow: ["hostmcp.host.>", "hostmcp.discover"] }, '
            'subscribe: { allow: ["hostmcp.presence.>", "_INBOX.>"] } } }')
        conf = workdir / "nats.conf"
        conf.write_text(
            f"listen: 127.0.0.1:{self.port}\nmax_payload: {MAX_PAYLOAD}\n"
            "authorization: { users: [\n  " + ",\n  ".join(users) + "\n] }\n")
        self.log = open(workdir / "nats.log", "wb")
        self.nats = subprocess.Popen([NATS_BIN, "-c", str(conf)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            import socket

            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError((workdir / "nats.log").read_text())

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.nats.poll() is None:
            self.nats.send_signal(signal.SIGTERM)
            try:
                self.nats.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nats.kill()
                self.nats.wait(timeout=5)
        self.log.close()


class Host:
    """A `hostmcp serve --fleet URL --no-http` process."""

    def __init__(self, fleet: Fleet, name: str):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"hostmcp-fleet-{name}-", dir=fleet.workdir))
        seed_file = self.dir / "host.nk"
        seed_file.write_text(fleet.hosts[name][0] + "\n")
        seed_file.chmod(0o600)
        self.audit = self.dir / "audit.jsonl"
        config = self.dir / "config.toml"
        config.write_text(
            RUN_AS_ROOT
            + f'[audit]\npath = "{self.audit}"\n'
            + "[limits]\nmax_output_bytes = 1000000\nresult_budget_bytes = 2000000\n"
            + "tool_calls_per_minute = 100000\nmax_concurrent_per_principal = 64\n"
            + f'[fleet]\nlabels = {{ env = "test" }}\n'
            + f'trusted_gateways = ["{fleet.signer.public_key.decode()}"]\n'
            + '[fleet.principals]\nalice = "operator"\nreader = "read"\n')
        self.log_path = self.dir / "host.log"
        self.log_file = open(self.log_path, "wb")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir),
               "XDG_STATE_HOME": str(self.dir / "state"), "HOSTMCP_LOG": "info"}
        self.process = subprocess.Popen(
            [BIN, "serve", "--config", str(config), "--fleet", fleet.url, "--fleet-name", name,
             "--fleet-nkey", str(seed_file), "--fleet-label", "role=web", "--no-http"],
            stdout=subprocess.DEVNULL, stderr=self.log_file, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log_file.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def fleet():
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-fleet-"))
    fleet = Fleet(workdir)
    hosts = {name: Host(fleet, name) for name in ("web-1", "web-2")}
    fleet.host_procs = hosts
    yield fleet
    for host in hosts.values():
        host.stop()
    fleet.stop()


async def connect(fleet: Fleet):
    """The gateway's NATS user (its own nkey; signing requests is another key)."""
    return await nats.connect(fleet.url, nkeys_seed_str=fleet.gateway_user[0], connect_timeout=5)


def request(host: str, tool: str, arguments: dict | None = None, *, signer=None,
            principal: str = "alice", role: str = "admin", issued_delta: float = 0.0,
            validity: float = 30.0, progress: bool = False) -> dict:
    now = int(time.time() * 1000 + issued_delta * 1000)
    return {
        "id": uuid.uuid4().hex, "host": host, "tool": tool, "arguments": arguments or {},
        "principal": principal, "role": role, "gateway": signer.public_key.decode(),
        "issued_at_ms": now, "expires_at_ms": now + int(validity * 1000),
        "nonce": uuid.uuid4().hex, "progress": progress,
    }


def seal(body: dict, signer, kind: str = "call") -> tuple[bytes, dict]:
    payload = json.dumps(body).encode()
    signature = signer.sign(f"hostmcp-fleet-v1 {kind}\n".encode() + payload)
    return payload, {
        "Hostmcp-Signer": signer.public_key.decode(),
        "Hostmcp-Signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode(),
    }


async def exchange(nc, subject: str, payload: bytes, headers: dict | None,
                   timeout: float = 30.0) -> tuple[list[dict], dict, int]:
    """Send one request; read its reply stream to the final frame, checking order and length."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, payload, reply=inbox, headers=headers)
    progress, body, messages, part = [], b"", 0, 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            h = msg.headers or {}
            assert int(h["Hostmcp-Seq"]) == messages, h
            messages += 1
            kind = h["Hostmcp-Reply"]
            assert len(msg.data) <= MAX_PAYLOAD
            if kind == "progress":
                progress.append(json.loads(msg.data))
                continue
            assert int(h["Hostmcp-Part"]) == part, h
            part += 1
            body += msg.data
            if kind == "final":
                assert int(h["Hostmcp-Parts"]) == part
                assert int(h["Hostmcp-Length"]) == len(body)
                return progress, json.loads(body), messages
            assert kind == "chunk", kind
    finally:
        await sub.unsubscribe()


async def call(nc, fleet: Fleet, body: dict, *, signer=None, to: str | None = None, **kw):
    payload, headers = seal(body, signer or fleet.signer)
    return await exchange(nc, f"hostmcp.host.{to or body['host']}.call", payload, headers, **kw)


def text_of(final: dict) -> str:
    assert final["status"] == "ok", final
    return "".join(block.get("text", "") for block in final["result"]["content"])


async def wait_presence(nc, name: str, status: str, timeout: float) -> dict:
    sub = await nc.subscribe(f"hostmcp.presence.{name}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            beat = json.loads(msg.data)
            if beat["status"] == status:
                return beat
    finally:
        await sub.unsubscribe()


async def test_presence_beats_within_seconds_and_discovery_answers(fleet):
    nc = await connect(fleet)
    try:
        beat = await wait_presence(nc, "web-1", "online", timeout=20)
        assert beat["host"] == "web-1"
        assert beat["labels"] == {"env": "test", "role": "web"}
        assert beat["facts"]["cpus"] >= 1 and beat["facts"]["arch"]
        assert abs(beat["seen_at_ms"] - time.time() * 1000) < 30_000
        await wait_presence(nc, "web-2", "online", timeout=20)
        # A discover request: every host answers on the inbox.
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("hostmcp.discover", b"", reply=inbox)
        seen = set()
        deadline = time.monotonic() + 10
        while seen != {"web-1", "web-2"} and time.monotonic() < deadline:
            try:
                msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            except nats.errors.TimeoutError:
                break
            seen.add(json.loads(msg.data)["host"])
        assert seen == {"web-1", "web-2"}
    finally:
        await nc.close()


async def test_a_signed_call_runs_and_is_audited_on_the_host(fleet):
    nc = await connect(fleet)
    try:
        await wait_presence(nc, "web-1", "online", timeout=20)
        _, final, _ = await call(nc, fleet, request("web-1", "run_command", {"command": "echo fleet-hello"},
                                                     signer=fleet.signer))
        assert final["host"] == "web-1"
        assert "fleet-hello" in text_of(final)
        _, final, _ = await call(nc, fleet, request("web-1", "host_info", signer=fleet.signer,
                                                    principal="reader", role="read"))
        assert "kernel" in text_of(final)
    finally:
        await nc.close()
    audit = fleet.host_procs["web-1"].audit
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
        started = [r for r in records if r.get("principal") == "fleet:alice"
                   and r.get("tool") == "run_command" and r.get("event") == "command_started"]
        if started:
            break
        time.sleep(0.1)
    assert started, audit.read_text()[-2000:]


async def test_every_trust_near_miss_is_refused_and_its_twin_runs(fleet):
    nc = await connect(fleet)
    try:
        await wait_presence(nc, "web-1", "online", timeout=20)

        async def refused(subject: str, payload: bytes, headers: dict | None) -> str:
            _, final, _ = await exchange(nc, subject, payload, headers)
            assert final["status"] == "error", final
            return final["error"]

        echo = {"command": "echo twin-ok"}
        # Unsigned; its twin (the same request signed) runs.
        body = request("web-1", "run_command", echo, signer=fleet.signer)
        assert await refused("hostmcp.host.web-1.call", json.dumps(body).encode(), None) == "unsigned"
        assert "twin-ok" in text_of((await call(nc, fleet, body))[1])
        # Replayed: the very same signed bytes a second time.
        body = request("web-1", "run_command", echo, signer=fleet.signer)
        payload, headers = seal(body, fleet.signer)
        assert "twin-ok" in text_of((await exchange(nc, "hostmcp.host.web-1.call", payload, headers))[1])
        assert await refused("hostmcp.host.web-1.call", payload, headers) == "replayed"
        # A flipped bit in the signed payload.
        body = request("web-1", "run_command", echo, signer=fleet.signer)
        payload, headers = seal(body, fleet.signer)
        flipped = payload.replace(b"twin-ok", b"twin-oj")
        assert await refused("hostmcp.host.web-1.call", flipped, headers) == "bad_signature"
        # Signed by a key the host does not trust.
        body = request("web-1", "run_command", echo, signer=fleet.stranger)
        payload, headers = seal(body, fleet.stranger)
        assert await refused("hostmcp.host.web-1.call", payload, headers) == "not_trusted"
        # Expired (issued two minutes ago); its twin issued now runs (above).
        body = request("web-1", "run_command", echo, signer=fleet.signer, issued_delta=-120)
        payload, headers = seal(body, fleet.signer)
        assert await refused("hostmcp.host.web-1.call", payload, headers) == "expired"
        # Signed for web-1, delivered to web-2; the twin for web-2 runs there.
        body = request("web-1", "run_command", echo, signer=fleet.signer)
        payload, headers = seal(body, fleet.signer)
        assert await refused("hostmcp.host.web-2.call", payload, headers) == "wrong_host"
        body = request("web-2", "run_command", echo, signer=fleet.signer)
        assert "twin-ok" in text_of((await call(nc, fleet, body))[1])
        # A principal nobody mapped on this host; a mapped reader may read but not run.
        body = request("web-1", "host_info", signer=fleet.signer, principal="mallory")
        payload, headers = seal(body, fleet.signer)
        assert await refused("hostmcp.host.web-1.call", payload, headers) == "denied"
        body = request("web-1", "run_command", echo, signer=fleet.signer, principal="reader")
        _, final, _ = await call(nc, fleet, body)
        assert final["result"]["isError"] is True and "denied" in text_of(final)
    finally:
        await nc.close()
    log = fleet.host_procs["web-1"].log()
    assert "fleet request refused" in log


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


async def test_a_cancel_kills_the_command_on_the_host(fleet):
    marker = f"fleet-cancel-{uuid.uuid4().hex[:8]}"
    nc = await connect(fleet)
    try:
        await wait_presence(nc, "web-1", "online", timeout=20)
        body = request("web-1", "run_command", {"command": f"sleep 300; echo {marker}", "timeout_secs": 600},
                       signer=fleet.signer)
        running = asyncio.ensure_future(call(nc, fleet, body, timeout=60))
        deadline = time.monotonic() + 20
        while not processes_with(marker) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert processes_with(marker), "the command started"
        now = int(time.time() * 1000)
        cancel = {"id": body["id"], "host": "web-1", "gateway": fleet.signer.public_key.decode(),
                  "issued_at_ms": now, "expires_at_ms": now + 30_000, "nonce": uuid.uuid4().hex}
        # The near miss: a call's signature context does not sign a cancel.
        payload, headers = seal(cancel, fleet.signer, kind="call")
        _, answer, _ = await exchange(nc, "hostmcp.host.web-1.cancel", payload, headers)
        assert answer["error"] == "bad_signature"
        assert processes_with(marker)
        payload, headers = seal(cancel, fleet.signer, kind="cancel")
        _, answer, _ = await exchange(nc, "hostmcp.host.web-1.cancel", payload, headers)
        assert answer["status"] == "ok" and answer["result"] == {"cancelled": True}
        _, final, _ = await asyncio.wait_for(running, 60)
        assert final["status"] == "error" and final["error"] == "cancelled", final
        deadline = time.monotonic() + 15
        while processes_with(marker) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert processes_with(marker) == [], "no process left"
    finally:
        await nc.close()


async def test_a_large_output_arrives_complete_in_chunks(fleet):
    nc = await connect(fleet)
    try:
        await wait_presence(nc, "web-1", "online", timeout=20)
        size = 300_000
        body = request("web-1", "run_command",
                       {"command": f"head -c {size} /dev/zero | tr '\\0' x; echo; echo END-OF-OUTPUT"},
                       signer=fleet.signer)
        _, final, messages = await call(nc, fleet, body, timeout=60)
        assert messages >= 5, messages
        text = text_of(final)
        assert "x" * size in text and "END-OF-OUTPUT" in text
        # The twin: a small answer is one message.
        _, final, messages = await call(nc, fleet, request("web-1", "run_command", {"command": "echo small"},
                                                           signer=fleet.signer))
        assert messages == 1 and "small" in text_of(final)
    finally:
        await nc.close()


async def test_progress_frames_come_before_the_final_reply_when_asked_for(fleet):
    nc = await connect(fleet)
    try:
        await wait_presence(nc, "web-1", "online", timeout=20)
        command = {"command": "for i in 1 2 3 4; do echo tick-$i; sleep 0.7; done"}
        progress, final, messages = await call(
            nc, fleet, request("web-1", "run_command", command, signer=fleet.signer, progress=True))
        assert progress, "progress frames arrived"
        assert any("tick-" in (p.get("message") or "") for p in progress), progress
        assert "tick-4" in text_of(final) and messages == len(progress) + 1
        # The twin: without asking, no progress frame.
        progress, final, _ = await call(
            nc, fleet, request("web-1", "run_command", command, signer=fleet.signer))
        assert progress == [] and "tick-4" in text_of(final)
    finally:
        await nc.close()


async def test_a_stopped_host_goes_offline_and_calls_to_it_fail_fast(fleet):
    host = fleet.host_procs["web-2"]
    nc = await connect(fleet)
    try:
        await wait_presence(nc, "web-2", "online", timeout=20)
        pid = host.process.pid
        watch = asyncio.ensure_future(wait_presence(nc, "web-2", "offline", timeout=20))
        await asyncio.sleep(0.2)
        host.process.send_signal(signal.SIGTERM)
        beat = await watch
        assert beat["host"] == "web-2"
        assert host.process.wait(timeout=15) == 0
        assert not pid_alive(pid) and not descendants(pid)
        # Nobody serves web-2 now: NATS says so at once (no responders), no 30 s wait.
        payload, headers = seal(request("web-2", "host_info", signer=fleet.signer), fleet.signer)
        started = time.monotonic()
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("hostmcp.host.web-2.call", payload, headers=headers, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        await nc.close()
