"""Two gateways behind one load balancer serve the same clients (issue 16: "a second gateway
added behind a proxy").

Real NATS (TLS, nkeys), two real `hostmcp serve --fleet` hosts and two real `hostmcp gateway`
processes behind Debian's nginx, which spreads 2026-07-28 requests (they carry an `Mcp-Method`
header) over both gateways (hash of `$request_id`) and pins session-era requests (no such
header) to one gateway per client address, as the spec allows for sessions: `initialize` and
every later request of the session must reach the gateway that holds it. The Python SDK goes through nginx:
- on the 2026-07-28 wire (no session), every call succeeds and both gateways' audit logs show
  calls they forwarded: neither gateway needs anything the other one has;
- in the session era, every call of one session succeeds through the pinned route.
Near miss, the reason sessions are pinned: a session opened on one gateway is unknown (404) on
the other.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2
import pytest

from gateway_fleet import gateway_fleet, gateway_records, stop
from mcp_clients import connect

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("nginx") is None,
                       reason="nginx not installed (apt-get install nginx-light)"),
    pytest.mark.skipif(shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists(),
                       reason="nats-server not installed"),
]

HOSTS = ["lb-1", "lb-2"]
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Proxy:
    """nginx in front of the gateways, shaped like a test Server for the clients."""

    def __init__(self, workdir: Path, gateways: list) -> None:
        self.port = free_port()
        self.gateways = gateways
        upstreams = "".join(f"  server 127.0.0.1:{gateway.port};\n" for gateway in gateways)
        (workdir / "nginx.conf").write_text(
            f"daemon off;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\nevents {{}}\n"
            "http {\n access_log off;\n"
            f" client_body_temp_path {workdir}/body;\n proxy_temp_path {workdir}/proxy;\n"
            # 2026-07-28 (Mcp-Method header): any gateway, a fresh hash per request; the session
            # era: one gateway per client address, from initialize on.
            ' map $http_mcp_method $mcp_route { "" $remote_addr; default $request_id; }\n'
            f" upstream gateways {{\n  hash $mcp_route consistent;\n{upstreams} }}\n"
            f" server {{\n  listen 127.0.0.1:{self.port};\n"
            "  location / {\n   proxy_pass http://gateways;\n   proxy_http_version 1.1;\n"
            '   proxy_set_header Connection "";\n   proxy_set_header Host $http_host;\n'
            "   proxy_buffering off;\n   proxy_read_timeout 300s;\n  }\n }\n}\n")
        self.log = workdir / "nginx.out"
        self.process = subprocess.Popen(
            ["nginx", "-c", str(workdir / "nginx.conf"), "-e", str(workdir / "error.log")],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def headers(self, principal: str = "alice") -> dict[str, str]:
        return self.gateways[0].headers(principal)

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="module")
def balanced():
    with tempfile.TemporaryDirectory(prefix="hostmcp-gateway-proxy-") as tmp:
        workdir = Path(tmp)
        with gateway_fleet(workdir, HOSTS, gateways=2) as fleet:
            proxy = Proxy(workdir, fleet.gateways)
            try:
                yield fleet, proxy
            finally:
                proxy.stop()


def forwarded_calls(gateway) -> int:
    return sum(1 for record in gateway_records(gateway) if record.get("event") == "fleet_call")


async def test_stateless_calls_spread_over_both_gateways_and_all_succeed(balanced):
    fleet, proxy = balanced
    before = [forwarded_calls(gateway) for gateway in fleet.gateways]
    async with connect(proxy, "streamable", "2026-07-28") as client:
        for i in range(16):
            host = HOSTS[i % len(HOSTS)]
            result = await client.call_tool("run_command", {"host": host, "command": f"echo {i} on $(hostname)"})
            assert not result.is_error, result
            assert result.structured_content["stdout"].startswith(f"{i} on "), result
    served = [forwarded_calls(gateway) - count for gateway, count in zip(fleet.gateways, before)]
    # 16 calls hashed on a fresh request id: both gateways answered some (all on one: 2^-15).
    assert sum(served) == 16 and all(count > 0 for count in served), served


async def test_a_session_is_pinned_to_its_gateway_and_every_call_succeeds(balanced):
    fleet, proxy = balanced
    before = [forwarded_calls(gateway) for gateway in fleet.gateways]
    async with connect(proxy, "streamable", "legacy") as client:
        for i in range(6):
            result = await client.call_tool("run_command", {"host": HOSTS[0], "command": f"echo s{i}"})
            assert not result.is_error, result
            assert result.structured_content["stdout"] == f"s{i}\n"
    served = [forwarded_calls(gateway) - count for gateway, count in zip(fleet.gateways, before)]
    assert sorted(served) == [0, 6], served


def test_a_session_opened_on_one_gateway_is_unknown_to_the_other(balanced):
    fleet, _ = balanced
    a, b = fleet.gateways
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    headers = {**ACCEPT, **a.headers("alice")}
    opened = httpx2.post(a.mcp_url, json=init, headers=headers, timeout=30)
    assert opened.status_code == 200, opened.text
    headers = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"],
               "Mcp-Protocol-Version": "2025-06-18"}
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    # Near miss: the gateway that opened it knows it.
    assert httpx2.post(a.mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                       headers=headers, timeout=30).status_code == 202
    assert httpx2.post(a.mcp_url, json=ping, headers=headers, timeout=30).status_code == 200
    assert httpx2.post(b.mcp_url, json=ping, headers=headers, timeout=30).status_code == 404
