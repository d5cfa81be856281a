"""Hosts in their own network and UTS namespaces, for fleet tests where a partition is a cut link.

This module owns the network harness: a bridge in the root namespace (one private /24, its first
address the root side, where the NATS server listens), and per host a network namespace
(`ip netns add`) joined to the bridge by a veth pair, with its own address and, through
`unshare --uts`, its own hostname. `Host.cut()` and `Host.restore()` take the host's link down and
up (`ip link set`), a partition that heals without restarting anything. Everything it made
(processes by PID, namespaces, links, the bridge) is removed by `FleetNet.close()`, which the
`fleet_net` context manager calls even when a test fails; namespaces left by a run that died
(their owner PID gone) are removed on the next start.

Needs root and iproute2's `ip` and util-linux's `unshare`; `available()` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

NETNS_PREFIX = "hmfleet"
NETNS_RE = re.compile(rf"^{NETNS_PREFIX}-(\d+)-(\d+)$")
MAX_HOSTS = 250


class FleetNetError(RuntimeError):
    """A namespace, link or address could not be set up."""


def available() -> str | None:
    """None when the harness can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth, bridge)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise FleetNetError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete namespaces (and so their veth pairs) and bridges left by runs whose process is gone."""
    removed = []
    names = ip("netns", "list", check=False).stdout.split()
    for name in names:
        m = NETNS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            ip("netns", "del", name, check=False)
            removed.append(name)
    for line in ip("-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        m = re.match(r"^\d+: (hfb(\d+))[:@]", line)
        if m and not _pid_alive(int(m.group(2))):
            ip("link", "del", m.group(1), check=False)
            removed.append(m.group(1))
    return removed


@dataclass
class Host:
    """One namespaced host: its namespace, hostname, address and the processes started in it."""

    name: str
    netns: str
    veth_root: str
    address: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        """argv run inside this host's network namespace under its own UTS namespace and hostname.
        `ip netns exec`, `unshare` and `sh -c exec` each exec, so the PID is argv's."""
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.name, *argv]

    def start(self, argv: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
        with open(log_path, "wb") as log:
            p = subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env)
        self.processes.append(p)
        return p

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout)

    def cut(self) -> None:
        """Partition this host: its link to the bridge goes down (no RST, no FIN: packets vanish)."""
        ip("link", "set", self.veth_root, "down")

    def restore(self) -> None:
        ip("link", "set", self.veth_root, "up")

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


@dataclass
class FleetNet:
    """The bridge, the root side's address, and the hosts attached to it."""

    bridge: str
    network: ipaddress.IPv4Network
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def root_address(self) -> str:
        return str(self.network.network_address + 1)

    def add_host(self, name: str) -> Host:
        index = len(self.hosts)
        if index >= MAX_HOSTS:
            raise FleetNetError(f"at most {MAX_HOSTS} hosts on one bridge")
        netns = f"{NETNS_PREFIX}-{os.getpid()}-{index}"
        veth_root, veth_host = f"{self.bridge}r{index}", f"{self.bridge}h{index}"
        address = str(self.network.network_address + 2 + index)
        # Registered before it exists, so close() removes a half-made host too.
        host = Host(name, netns, veth_root, address)
        self.hosts[name] = host
        ip("netns", "add", netns)
        ip("link", "add", veth_root, "type", "veth", "peer", "name", veth_host)
        ip("link", "set", veth_root, "master", self.bridge)
        ip("link", "set", veth_root, "up")
        ip("link", "set", veth_host, "netns", netns)
        ip("addr", "add", f"{address}/{self.network.prefixlen}", "dev", veth_host, netns=netns)
        ip("link", "set", veth_host, "up", netns=netns)
        ip("link", "set", "lo", "up", netns=netns)
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop()
        for host in self.hosts.values():
            # Deleting the namespace deletes the veth pair; the root end too, in case it lingers.
            ip("netns", "del", host.netns, check=False)
            ip("link", "del", host.veth_root, check=False)
        ip("link", "del", self.bridge, check=False)


def _network() -> ipaddress.IPv4Network:
    # A /24 of 10.64.0.0/10 picked by PID, so concurrent runs on one machine do not collide.
    pid = os.getpid()
    return ipaddress.IPv4Network(f"10.{64 + (pid >> 8) % 64}.{pid % 256}.0/24")


@contextlib.contextmanager
def fleet_net(names: list[str]):
    """A bridge with one namespaced host per name; all of it removed on exit, failure or not."""
    reason = available()
    if reason:
        raise FleetNetError(reason)
    remove_stale()
    net = FleetNet(bridge=f"hfb{os.getpid()}", network=_network())
    if len(net.bridge) > 12:
        raise FleetNetError(f"bridge name {net.bridge} too long for veth names")
    try:
        ip("link", "add", "name", net.bridge, "type", "bridge")
        ip("addr", "add", f"{net.root_address}/{net.network.prefixlen}", "dev", net.bridge)
        ip("link", "set", net.bridge, "up")
        for name in names:
            net.add_host(name)
        yield net
    finally:
        net.close()


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll predicate() until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)
