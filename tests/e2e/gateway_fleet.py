"""Real hosts behind a real gateway on a real NATS (one node or a 3-node cluster), for the gateway
end-to-end tests (test_gateway_cancel.py, test_gateway_cluster.py, test_gateway_clients.py).

This module owns that setup: the NATS servers of docs/fleet.md's configuration (natsproc and
natsconf: TLS with a test CA, one nkey user per host, a gateway user), `hostmcp serve --fleet
--no-http` hosts given every NATS URL, and `hostmcp gateway` processes given every NATS URL too,
each with its own home (state directory, so its own key; a restarted gateway reuses its home and
so its key). Every process it starts it stops by PID in `close()`, which the `gateway_fleet`
context manager calls even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from conftest import BIN, RUN_AS_ROOT, TOKENS, Server, config_text, wait_for_port

sys.path.insert(0, str(Path(__file__).resolve().parent / "nats"))
import natsproc  # noqa: E402

HEADERS_2026 = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class GatewayFleet:
    """The NATS servers, the hosts and the gateways of one test."""

    def __init__(self, workdir: Path, host_names: list[str], nodes: int = 1) -> None:
        self.dir = workdir
        self.nats = natsproc.new_fleet(workdir / "nats", host_names)
        if nodes == 1:
            natsproc.start_single(self.nats)
        else:
            natsproc.start_cluster(self.nats, nodes)
        self.gateway_seed = self.nats.seed_file("gateway")
        self.hosts: dict[str, subprocess.Popen] = {}
        self.gateways: list[Server] = []
        self.processes: list[subprocess.Popen] = []
        self.trusted: list[str] = []

    @property
    def urls(self) -> list[str]:
        return self.nats.urls

    def env(self, home: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                "XDG_STATE_HOME": str(home / "state"), "HOSTMCP_LOG": "info"}

    def gateway_home(self, name: str) -> Path:
        """A gateway's home; its key (created by `hostmcp gateway key`) is trusted by hosts
        started after this call."""
        home = self.dir / name
        if not home.exists():
            home.mkdir()
            (home / "config.toml").write_text(config_text())
            out = subprocess.run([BIN, "gateway", "key"], env=self.env(home), capture_output=True,
                                 text=True, timeout=30, check=True)
            self.trusted.append(out.stdout.strip())
        return home

    def start_host(self, name: str, extra_principals: str = "") -> subprocess.Popen:
        home = self.dir / name
        home.mkdir(exist_ok=True)
        trusted = ", ".join(f'"{key}"' for key in self.trusted)
        config = home / "config.toml"
        config.write_text(
            RUN_AS_ROOT + f'[audit]\npath = "{home / "audit.jsonl"}"\n'
            + "[limits]\ntool_calls_per_minute = 100000\nmax_concurrent_per_principal = 64\n"
            + f"[fleet]\ntrusted_gateways = [{trusted}]\n"
            + '[fleet.principals]\nalice = "operator"\nreader = "read"\n' + extra_principals)
        log = open(home / "host.log", "ab")
        process = subprocess.Popen(
            [BIN, "serve", "--config", str(config), "--fleet", ",".join(self.urls),
             "--fleet-name", name, "--fleet-nkey", str(self.nats.seed_file(name)),
             "--fleet-ca", str(self.nats.tls.ca), "--no-http"],
            stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL, env=self.env(home))
        log.close()
        self.processes.append(process)
        self.hosts[name] = process
        return process

    def host_audit(self, name: str) -> list[dict]:
        path = self.dir / name / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def host_log(self, name: str) -> str:
        return (self.dir / name / "host.log").read_text(errors="replace")

    def gateway_argv(self, home: Path, *transport: str) -> list[str]:
        """`hostmcp gateway` on every NATS URL with this home's config; `transport` picks
        `--listen ADDR` or `--stdio`."""
        return [BIN, "gateway", "--nats", ",".join(self.urls), "--nats-nkey", str(self.gateway_seed),
                "--nats-ca", str(self.nats.tls.ca), "--config", str(home / "config.toml"),
                "--audit-log", str(home / "audit.jsonl"), *transport]

    def start_gateway(self, name: str, port: int = 0) -> Server:
        home = self.gateway_home(name)
        log_path = home / "gateway.log"
        log = open(log_path, "ab")
        offset = log.tell()
        process = subprocess.Popen(self.gateway_argv(home, "--listen", f"127.0.0.1:{port}"),
                                   stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                                   env=self.env(home))
        log.close()
        self.processes.append(process)
        port = wait_for_port(process, _Tail(log_path, offset), timeout=60)
        server = Server(process, port, home / "state", log_path,
                        {name: token for name, (token, _) in TOKENS.items()})
        self.gateways.append(server)
        return server

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        self.nats.stop()


class _Tail:
    """A log path read from an offset: a restarted gateway's port is the one it logs last."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path, self.offset = path, offset

    def read_text(self, errors: str = "strict") -> str:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors=errors)


@contextlib.contextmanager
def gateway_fleet(workdir: Path, host_names: list[str], nodes: int = 1, gateways: int = 1):
    """NATS, `gateways` gateways (homes gw-0, gw-1, ...) and one host per name, all hosts online
    on every gateway; everything stopped on exit."""
    fleet = GatewayFleet(workdir, host_names, nodes)
    try:
        homes = [f"gw-{i}" for i in range(gateways)]
        for home in homes:
            fleet.gateway_home(home)
        for name in host_names:
            fleet.start_host(name)
        for home in homes:
            fleet.start_gateway(home)
        for gateway in fleet.gateways:
            wait_online(gateway, set(host_names))
        yield fleet
    finally:
        fleet.close()


def stateless_call(gateway: Server, tool: str, arguments: dict, principal: str = "alice",
                   timeout: float = 60, extra_headers: dict | None = None) -> httpx2.Response:
    """One tools/call on the 2026-07-28 stateless wire (no session, no initialize)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": META}}
    headers = {**HEADERS_2026, "Mcp-Name": tool, **gateway.headers(principal)}
    if "host" in arguments:
        headers["Mcp-Param-Host"] = arguments["host"]
    headers.update(extra_headers or {})
    return httpx2.post(gateway.mcp_url, content=json.dumps(body), headers=headers, timeout=timeout)


def result_of(response: httpx2.Response) -> dict:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads([d for d in data if d][-1])
    else:
        message = response.json()
    assert "result" in message, message
    return message["result"]


def online_hosts(gateway: Server) -> set[str]:
    hosts = result_of(stateless_call(gateway, "host_list", {}, timeout=10))["structuredContent"]["hosts"]
    return {host["name"] for host in hosts if host["online"]}


def wait_online(gateway: Server, names: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        online: set[str] | str
        try:
            online = online_hosts(gateway)
        except (httpx2.HTTPError, AssertionError) as error:
            online = repr(error)
        if isinstance(online, set) and names <= online:
            return
        assert time.monotonic() < deadline, (online, gateway.log()[-4000:])
        time.sleep(0.5)


def gateway_records(gateway: Server) -> list[dict]:
    path = gateway.state_dir.parent / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
