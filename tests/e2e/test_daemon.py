"""Running like a daemon: stopping when stderr's reader is gone, config discovery, `hostmcp
check`, SIGHUP reload of policy and limits, JSON logs and W3C traceparent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx2

from conftest import BIN, config_text


def server_env(workdir: Path, extra: dict | None = None) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "XDG_STATE_HOME": str(workdir / "state"),
        "XDG_CONFIG_HOME": str(workdir / "xdg-config"),
        "HOSTMCP_LOG": "info",
    }
    env.update(extra or {})
    return env


def read_until(stream, pattern: str, timeout: float = 20) -> re.Match:
    """Read lines of `stream` until one matches `pattern`; fail after `timeout` seconds."""
    found: list[re.Match] = []
    seen: list[str] = []

    def reader():
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                found.append(match)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    assert found, f"{pattern!r} not seen in {timeout} s:\n{''.join(seen)}"
    return found[0]


def stop_or_kill(process: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM `process`; True when it exits within `timeout` s (else it is killed)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return False


def test_sigterm_stops_the_server_when_the_reader_of_its_stderr_is_gone():
    # The bug: the "SIGTERM: shutting down" line hit EPIPE, tracing-subscriber reported that
    # with eprintln!, which panicked the signal task, and shutdown never came.
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    (workdir / "config.toml").write_text(config_text())
    process = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(workdir / "config.toml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=server_env(workdir))
    try:
        port = int(read_until(process.stderr, r"address=127\.0\.0\.1:(\d+)").group(1))
        assert httpx2.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        process.stderr.close()  # like `| head -1` exiting
        assert stop_or_kill(process, timeout=15), "hostmcp ignored SIGTERM after its stderr reader left"
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_sigterm_stops_the_server_when_stderr_is_a_file():
    # The near miss: stderr still writable, the shutdown line is logged and the server exits 0.
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    (workdir / "config.toml").write_text(config_text())
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(workdir / "config.toml")],
            stdout=subprocess.DEVNULL, stderr=log, env=server_env(workdir))
    try:
        deadline = time.monotonic() + 20
        while "listening" not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
            time.sleep(0.05)
        assert stop_or_kill(process, timeout=15)
        assert process.returncode == 0
        assert "SIGTERM: shutting down" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
