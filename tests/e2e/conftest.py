"""Shared fixtures: start the real hostmcp binary on a free loopback port and stop it.

The binary comes from $HOSTMCP_BIN (set by .ci/run after `cargo build`). Each server gets
its own state directory and config file; every process started here is stopped by PID.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("HOSTMCP_BIN", str(REPO / "target/debug/hostmcp"))

# Tokens every default test server accepts, by principal name.
TOKENS = {
    "alice": ("alice-token-0123456789abcdef", "operator"),
    "bob": ("bob-token-0123456789abcdef", "operator"),
    "reader": ("reader-token-0123456789abcdef", "read"),
    "boss": ("boss-token-0123456789abcdef", "admin"),
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    state_dir: Path
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def sse_url(self) -> str:
        return f"{self.base}/sse"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def headers(self, principal: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[principal]}"}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


# Tests fail authentication on purpose, all from 127.0.0.1: the default limit would lock them
# out; some run more concurrent commands per token than the default allows; and a module's
# shared server may take more than the default 600 tool calls a minute from one token.
DEFAULT_TEST_LIMITS = {"auth_failures_per_minute": 100000, "max_concurrent_per_principal": 64,
                       "tool_calls_per_minute": 1000000}


# As root, hostmcp refuses commands until a run_as user is configured: say root explicitly.
RUN_AS_ROOT = 'run_as = "root"\n' if os.geteuid() == 0 else ""


def config_text(extra: str = "", limits: dict | None = None, top: str = RUN_AS_ROOT) -> str:
    lines = [top]
    for name, (token, role) in TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        lines.append(f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n')
    table = {**DEFAULT_TEST_LIMITS, **(limits or {})}
    lines.append("[limits]\n" + "".join(f"{key} = {value}\n" for key, value in table.items()))
    return "\n".join(lines) + extra


def start_server(args: list[str] | None = None, config: str | None = None, env: dict | None = None,
                 use_tokens: bool = True, ca: str | None = None) -> Server:
    """Start `hostmcp serve` on a free loopback port. With `ca` (a PEM file) it serves HTTPS."""
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    cmd = [BIN, "serve", "--listen", "127.0.0.1:0"]
    if config is None and use_tokens:
        config = config_text()
    if config is not None:
        (workdir / "config.toml").write_text(config)
        cmd += ["--config", str(workdir / "config.toml")]
    cmd += args or []
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "XDG_STATE_HOME": str(workdir / "state"),
        "HOSTMCP_LOG": "info",
    }
    full_env.update(env or {})
    log_path = workdir / "server.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file, env=full_env)
    port = wait_for_port(process, log_path, ca)
    tokens = {name: token for name, (token, _) in TOKENS.items()} if use_tokens and config else {}
    return Server(process, port, workdir / "state", log_path, tokens, "https" if ca else "http")


def wait_for_port(process: subprocess.Popen, log_path: Path, ca: str | None = None, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"address=127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
        if match:
            port = int(match.group(1))
            scheme = "https" if ca else "http"
            if httpx2.get(f"{scheme}://127.0.0.1:{port}/healthz", verify=ca or True).status_code == 200:
                return port
        if process.poll() is not None:
            raise RuntimeError(f"hostmcp exited early:\n{log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"hostmcp did not start:\n{log_path.read_text()}")


@pytest.fixture
def server():
    srv = start_server()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shared_server():
    srv = start_server()
    yield srv
    srv.stop()


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found
