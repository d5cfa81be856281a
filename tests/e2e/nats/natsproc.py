"""Real `nats-server` processes for the fleet tests: free loopback ports, start, ready, stop by PID.

This module owns the lifecycle of the servers (one node or a 3-node cluster on loopback) that
tests/e2e/test_fleet_nats.py and the fleet harness (tests/e2e/fleet_net.py) run; the text of
their configuration comes from natsconf.py.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import natsconf


class NatsServerError(RuntimeError):
    """nats-server is missing, exited early, or did not become ready in time."""


def nats_server_bin() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct free TCP ports (all held open until every one is chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class NatsServer:
    process: subprocess.Popen
    port: int
    conf: Path
    log_path: Path
    http_port: int | None = None
    host: str = "127.0.0.1"
    scheme: str = "tls"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop this server (SIGKILL: die as a crashed node would) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def start(conf_text: str, port: int, workdir: Path, name: str = "nats", http_port: int | None = None,
          tls: bool = True, timeout: float = 15) -> NatsServer:
    binary = nats_server_bin()
    if binary is None:
        raise NatsServerError("nats-server not found (apt-get install nats-server)")
    conf = workdir / f"{name}.conf"
    conf.write_text(conf_text)
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = NatsServer(process, port, conf, log_path, http_port, scheme="tls" if tls else "nats")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NatsServerError(f"nats-server exited ({process.returncode}):\n{server.log()}")
        if "Server is ready" in server.log():
            return server
        time.sleep(0.05)
    server.stop()
    raise NatsServerError(f"nats-server not ready within {timeout}s:\n{server.log()}")


@dataclass
class Fleet:
    """The keys and TLS files one NATS setup uses: a user per host and one gateway user."""

    workdir: Path
    hosts: dict[str, natsconf.NkeyUser]
    gateway: natsconf.NkeyUser
    tls: natsconf.TlsFiles | None
    simhosts: natsconf.NkeyUser | None = None
    servers: list[NatsServer] = field(default_factory=list)

    def seed_file(self, who: str) -> Path:
        user = {"gateway": self.gateway, "simhosts": self.simhosts}.get(who) or self.hosts[who]
        return user.write_seed(self.workdir / f"{who}.nk")

    def config(self, port: int, cluster: natsconf.Cluster | None = None, http_port: int | None = None,
               listen: str = "127.0.0.1", extra: dict | None = None) -> str:
        return natsconf.server_config(port=port, hosts={n: u.public for n, u in self.hosts.items()},
                                      gateways=[self.gateway.public], tls=self.tls, host=listen,
                                      cluster=cluster, http_port=http_port, extra=extra,
                                      simhosts=[self.simhosts.public] if self.simhosts else [])

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def new_fleet(workdir: Path, host_names: list[str], tls: bool = True,
              tls_names: tuple[str, ...] = ("127.0.0.1", "localhost"), simhosts: bool = False) -> Fleet:
    """Keys for these hosts and a gateway (and, with `simhosts`, the benchmark's simulated-hosts
    user); with `tls`, a CA and a server certificate for `tls_names`."""
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = {natsconf.check_host_name(n): natsconf.new_user() for n in host_names}
    files = natsconf.make_tls(workdir / "tls", tls_names) if tls else None
    return Fleet(workdir, hosts, natsconf.new_user(), files, natsconf.new_user() if simhosts else None)


def start_single(fleet: Fleet, listen: str = "127.0.0.1", extra: dict | None = None) -> NatsServer:
    (port,) = free_ports(1, listen)
    server = start(fleet.config(port, listen=listen, extra=extra), port, fleet.workdir, "nats",
                   tls=fleet.tls is not None)
    server.host = listen
    fleet.servers.append(server)
    return server


def start_cluster(fleet: Fleet, nodes: int = 3, timeout: float = 30) -> list[NatsServer]:
    """`nodes` servers routed to each other on loopback; returns once every node sees all routes."""
    ports = free_ports(3 * nodes)
    client, route, http = ports[:nodes], ports[nodes:2 * nodes], ports[2 * nodes:]
    for i in range(nodes):
        cluster = natsconf.Cluster("hostmcp-fleet", route[i],
                                   tuple(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(route) if j != i))
        fleet.servers.append(start(fleet.config(client[i], cluster=cluster, http_port=http[i]), client[i],
                                   fleet.workdir, f"nats-{i}", http_port=http[i], tls=fleet.tls is not None))
    deadline = time.monotonic() + timeout
    routes: list[int] = []
    while time.monotonic() < deadline:
        routes = []
        for s in fleet.servers:
            with urllib.request.urlopen(f"http://127.0.0.1:{s.http_port}/routez", timeout=5) as r:
                routes.append(json.load(r)["num_routes"])
        if all(n >= nodes - 1 for n in routes):
            return fleet.servers
        time.sleep(0.1)
    raise NatsServerError(f"cluster routes not all up within {timeout}s: {routes}")
