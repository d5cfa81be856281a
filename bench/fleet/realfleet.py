"""A real fleet on loopback for the benchmark: nats-server, `hostmcp gateway`, N `hostmcp serve --fleet`.

This module owns the lifecycle of the real-agent setup of bench/fleet/agents_bench.py: a
nats-server on a free loopback port with docs/fleet.md's configuration (TLS with a test CA,
one nkey user per host allowed only its own subjects, a gateway user; tests/e2e/nats/natsconf.py),
one `hostmcp gateway` (its key made with `hostmcp gateway key`, one operator token), and N agents
`hostmcp serve --fleet`, each with its own state directory, audit log, nkey and fleet name,
trusting the gateway's key and mapping the gateway's principal to `operator`. Agents run without
an HTTP listener (`--no-http`) except the first, which also listens on a free loopback port with
the same token, for the hop measurement. Every PID it starts is appended to `pidfile` (so
bench/fleet/run.sh can stop leftovers if this process dies); `RealFleet.stop()` stops them all
by PID, agents first, and the `real_fleet` context manager calls it even on failure, then removes
the work directory (kept with BENCH_KEEP=1: the logs of every process are there).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests/e2e/nats"))
import natsproc  # noqa: E402
from mcp_http import McpHttp  # noqa: E402

TOKEN = "bench-fleet-token-0123456789abcdef"
PRINCIPAL = "bench"
RUN_AS_ROOT = 'run_as = "root"\n' if os.geteuid() == 0 else ""
LIMITS = ("[limits]\ntool_calls_per_minute = 1000000\nmax_concurrent_per_principal = 256\n"
          "auth_failures_per_minute = 100000\nresult_budget_bytes = 4000000\n")


class FleetStartError(RuntimeError):
    """A process exited early, never listened, or the gateway never saw every agent online."""


def token_table() -> str:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return f'[[tokens]]\nname = "{PRINCIPAL}"\nrole = "operator"\nsha256 = "{digest}"\n'


def listen_port(process: subprocess.Popen, log: Path, timeout: float) -> int:
    """The loopback port a hostmcp process logged (`address=127.0.0.1:PORT`)."""
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(r"address=127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if process.poll() is not None or time.monotonic() > deadline:
            raise FleetStartError(f"{process.args[:2]} did not listen: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


@dataclass
class RealFleet:
    """The processes of one run and the ports a client reaches them on."""

    work: Path
    hostmcp: str
    names: list[str]
    pidfile: Path | None = None
    fleet: natsproc.Fleet | None = None
    nats: natsproc.NatsServer | None = None
    gateway: subprocess.Popen | None = None
    gateway_port: int = 0
    gateway_key: str = ""
    agents: dict[str, subprocess.Popen] = field(default_factory=dict)
    direct_host: str = ""
    direct_port: int = 0

    def _env(self, state: Path) -> dict:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(state),
                "XDG_STATE_HOME": str(state), "HOSTMCP_LOG": "info"}

    def _spawn(self, argv: list[str], log: Path, env: dict) -> subprocess.Popen:
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL,
                                       env=env)
        if self.pidfile is not None:
            with open(self.pidfile, "a") as f:
                f.write(f"{process.pid}\n")
        return process

    def start_nats(self) -> None:
        self.fleet = natsproc.new_fleet(self.work / "nats", self.names)
        self.nats = natsproc.start_single(self.fleet)
        if self.pidfile is not None:
            with open(self.pidfile, "a") as f:
                f.write(f"{self.nats.process.pid}\n")

    def start_gateway(self, fan_out: int) -> None:
        """Starts the gateway, its key made first (what the agents trust)."""
        state = self.work / "gateway"
        state.mkdir(parents=True)
        env = self._env(state)
        self.gateway_key = subprocess.run([self.hostmcp, "gateway", "key"], env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
        config = state / "gateway.toml"
        config.write_text(RUN_AS_ROOT + token_table() + LIMITS)
        log = state / "gateway.log"
        self.gateway = self._spawn(
            [self.hostmcp, "gateway", "--nats", self.nats.url, "--nats-nkey", str(self.fleet.seed_file("gateway")),
             "--nats-ca", str(self.fleet.tls.ca), "--listen", "127.0.0.1:0", "--config", str(config),
             "--fan-out", str(fan_out), "--audit-log", str(state / "audit.jsonl")], log, env)
        self.gateway_port = listen_port(self.gateway, log, 60)

    def start_agents(self) -> None:
        """Every agent; the first also serves HTTP (for the hop measurement)."""
        for i, name in enumerate(self.names):
            state = self.work / "agents" / name
            state.mkdir(parents=True)
            direct = i == 0
            config = state / "config.toml"
            config.write_text(RUN_AS_ROOT + (token_table() if direct else "") + LIMITS
                              + f'[audit]\npath = "{state / "audit.jsonl"}"\n'
                              + f'[fleet]\ntrusted_gateways = ["{self.gateway_key}"]\n'
                              + f'[fleet.principals]\n{PRINCIPAL} = "operator"\n')
            argv = [self.hostmcp, "serve", "--config", str(config), "--fleet", self.nats.url, "--fleet-name", name,
                    "--fleet-nkey", str(self.fleet.seed_file(name)), "--fleet-ca", str(self.fleet.tls.ca)]
            argv += ["--listen", "127.0.0.1:0"] if direct else ["--no-http"]
            self.agents[name] = self._spawn(argv, state / "agent.log", self._env(state))
        first = self.names[0]
        self.direct_host = first
        self.direct_port = listen_port(self.agents[first], self.work / "agents" / first / "agent.log", 60)

    def wait_online(self, timeout: float) -> None:
        """Until the gateway's host_list says every agent is online."""
        deadline = time.monotonic() + timeout
        with McpHttp(self.gateway_port, TOKEN) as client:
            while True:
                text = client.call("host_list", {}).result["content"][0]["text"]
                match = re.match(r"(\d+) hosts \((\d+) online\)", text)
                if match and int(match.group(2)) >= len(self.names):
                    return
                dead = [n for n, p in self.agents.items() if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    detail = (self.work / "agents" / dead[0] / "agent.log").read_text()[-2000:] if dead else ""
                    raise FleetStartError(f"the gateway saw {text.splitlines()[0]!r}; exited: {dead[:5]} {detail}")
                time.sleep(0.5)

    def stop(self) -> None:
        processes = list(self.agents.values()) + [self.gateway]
        for p in processes:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            if p is None:
                continue
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if self.fleet is not None:
            self.fleet.stop()


@contextlib.contextmanager
def real_fleet(hostmcp: str, agents: int, pidfile: Path | None = None):
    """nats-server and the gateway up, `agents` agents named (the caller starts them with
    `start_agents()` once it has measured the gateway alone); all stopped on exit."""
    work = Path(tempfile.mkdtemp(prefix="hostmcp-fleet-real-"))
    names = [f"agent{i:03d}" for i in range(agents)]
    fleet = RealFleet(work, hostmcp, names, pidfile)
    try:
        fleet.start_nats()
        fleet.start_gateway(fan_out=max(agents, 1))
        yield fleet
    finally:
        fleet.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
