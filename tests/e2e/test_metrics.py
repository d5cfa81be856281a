"""/metrics scraped by a real Prometheus server (Debian package `prometheus`): tool calls made
through the Python SDK show up in Prometheus's query API with the right values, and the scraped
text passes `promtool check metrics`. Who may scrape, through the real binary: each refusal with
its near miss. Every process started here is stopped by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2
import pytest

from conftest import config_text, start_server
from mcp_clients import connect

pytestmark = pytest.mark.anyio

SCRAPE_TOKEN = "scrape-token-0123456789abcdefghijklmnopqrstuvwxyz"

# A policy that allows what the tests run and refuses `rm` by its first deny rule.
POLICY = """
[policy]
default = "allow"

[[policy.deny]]
program = "/usr/bin/rm"
"""


def binary(variable: str, name: str) -> str:
    found = os.environ.get(variable) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run scripts/install-test-deps.sh (apt-get install prometheus)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("metrics") / "metrics.token"
    path.write_text(SCRAPE_TOKEN + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def metrics_server(token_file):
    extra = POLICY + f'\n[metrics]\ntoken_file = "{token_file}"\n'
    srv = start_server(config=config_text(extra=extra), args=["--trusted-proxy", "127.0.0.1"])
    yield srv
    srv.stop()


class Prometheus:
    """A Prometheus server scraping one target every second, on a free loopback port."""

    def __init__(self, target_port: int, token_file: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="hostmcp-prometheus-"))
        self.port = free_port()
        config = self.dir / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hostmcp
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
""")
        self.log_path = self.dir / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [binary("HOSTMCP_PROMETHEUS", "prometheus"), f"--config.file={config}",
                 f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=subprocess.DEVNULL, stderr=log)
        self.wait_ready()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log_path.read_text()}")
            try:
                if httpx2.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready:\n{self.log_path.read_text()}")

    def query(self, expression: str) -> dict[str, float]:
        """The instant vector of `expression`, by its labels (without `__name__`, `instance` and `job`)."""
        answer = httpx2.get(f"{self.api}/query", params={"query": expression}, timeout=10).json()
        assert answer["status"] == "success", answer
        values = {}
        for sample in answer["data"]["result"]:
            labels = {k: v for k, v in sample["metric"].items() if k not in ("__name__", "instance", "job")}
            key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            values[key] = float(sample["value"][1])
        return values

    def wait_for(self, expression: str, expected: dict[str, float], timeout: float = 60) -> None:
        """Wait until `expression` holds exactly `expected` (a scrape every second)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.query(expression)
            if seen == expected:
                return
            time.sleep(0.5)
        raise AssertionError(f"{expression}: expected {expected}, last seen {seen}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def prometheus(metrics_server, token_file):
    server = Prometheus(metrics_server.port, token_file)
    yield server
    server.stop()


async def test_prometheus_scrapes_the_tool_calls_made_through_a_real_client(metrics_server, prometheus):
    # Scraped with the token (Prometheus sends it; a wrong one would be refused): up.
    prometheus.wait_for('up{job="hostmcp"}', {"": 1.0})
    async with connect(metrics_server, "streamable", "legacy") as client:
        for _ in range(2):
            ok = await client.call_tool("run_command", {"argv": ["echo", "hi"]})
            assert not ok.is_error
        failed = await client.call_tool("run_command", {"argv": ["false"]})
        assert failed.is_error
        refused = await client.call_tool("run_command", {"argv": ["rm", "/nonexistent"]})
        assert refused.is_error and "deny[0]" in refused.content[0].text
        assert not (await client.call_tool("job_list", {})).is_error
        with pytest.raises(Exception, match="either `command` or `argv`"):
            await client.call_tool("run_command", {"argv": ["echo"], "command": "echo"})
    async with connect(metrics_server, "streamable", "legacy", headers=metrics_server.headers("reader")) as client:
        denied = await client.call_tool("run_command", {"argv": ["echo", "hi"]})
        assert denied.is_error and "needs the operator role" in denied.content[0].text
    bad = httpx2.post(metrics_server.mcp_url, headers={"Authorization": "Bearer not-a-token"}, json={})
    assert bad.status_code == 401

    prometheus.wait_for('hostmcp_tool_calls_total{tool="run_command"} > 0', {
        "outcome=ok,tool=run_command": 2.0,
        "outcome=error,tool=run_command": 2.0,
        "outcome=denied,tool=run_command": 1.0,
        "outcome=invalid,tool=run_command": 1.0,
    })
    assert prometheus.query('hostmcp_tool_calls_total{tool="job_list",outcome="ok"}') == {
        "outcome=ok,tool=job_list": 1.0}
    # Latency: the five calls that reached run_command (the role-denied one did not).
    assert prometheus.query('hostmcp_tool_call_duration_seconds_count{tool="run_command"}') == {
        "tool=run_command": 5.0}
    assert prometheus.query("hostmcp_policy_refusals_total") == {"rule=deny[0]": 1.0}
    assert prometheus.query('hostmcp_auth_failures_total{reason="invalid"}') == {"reason=invalid": 1.0}
    # Each command's start and end, and each refusal, went through fdatasync.
    syncs = prometheus.query("hostmcp_audit_sync_duration_seconds_count")
    assert syncs[""] >= 1, syncs
    assert prometheus.query("hostmcp_audit_queue_depth") == {"": 0.0}
    build = prometheus.query("hostmcp_build_info")
    assert len(build) == 1 and "version=0.1.0" in next(iter(build)), build


async def test_sessions_commands_and_jobs_running_are_seen_while_they_last(metrics_server, prometheus):
    async with connect(metrics_server, "streamable", "legacy") as streamable, \
            connect(metrics_server, "sse", "legacy") as sse:
        started = await sse.call_tool("job_start", {"argv": ["sleep", "60"]})
        assert not started.is_error, started
        job_id = started.structured_content["job_id"]
        try:
            assert not (await streamable.call_tool("job_list", {})).is_error
            prometheus.wait_for("hostmcp_sessions_open", {"transport=mcp": 1.0, "transport=sse": 1.0})
            prometheus.wait_for("hostmcp_jobs_running", {"": 1.0})
            prometheus.wait_for("hostmcp_commands_running", {"": 1.0})
        finally:
            stopped = await sse.call_tool("job_signal", {"job_id": job_id, "signal": "KILL"})
            assert not stopped.is_error, stopped
    prometheus.wait_for("hostmcp_jobs_running", {"": 0.0})
    prometheus.wait_for("hostmcp_commands_running", {"": 0.0})
    prometheus.wait_for("hostmcp_sessions_open", {"transport=mcp": 0.0, "transport=sse": 0.0})


def test_promtool_accepts_the_scraped_text(metrics_server, prometheus):
    scraped = httpx2.get(f"{metrics_server.base}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    check = subprocess.run([binary("HOSTMCP_PROMTOOL", "promtool"), "check", "metrics"],
                           input=scraped.content, capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # Nothing secret in it: no token, no principal, no command line.
    text = scraped.text
    for secret in [SCRAPE_TOKEN, *metrics_server.tokens.values(), *metrics_server.tokens, "echo hi", "/nonexistent"]:
        assert secret not in text


def test_who_may_scrape_through_the_real_server(metrics_server):
    url = f"{metrics_server.base}/metrics"
    remote = {"X-Forwarded-For": "192.0.2.9"}  # 127.0.0.1 is a trusted proxy here
    token = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    # A remote client without the scrape token: 401; with it: 200.
    refused = httpx2.get(url, headers=remote)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert httpx2.get(url, headers={**remote, **token}).status_code == 200
    # An MCP token (even admin's) does not open /metrics; loopback needs none.
    assert httpx2.get(url, headers={**remote, **metrics_server.headers("boss")}).status_code == 401
    assert httpx2.get(url).status_code == 200


def test_metrics_are_off_by_default_and_loopback_only_without_a_token():
    off = start_server()
    try:
        # Off, /metrics is an unknown path: 401 without a token, 404 with one.
        assert httpx2.get(f"{off.base}/metrics").status_code == 401
        assert httpx2.get(f"{off.base}/metrics", headers=off.headers()).status_code == 404
    finally:
        off.stop()
    on = start_server(args=["--metrics", "--trusted-proxy", "127.0.0.1"])
    try:
        url = f"{on.base}/metrics"
        assert httpx2.get(url).status_code == 200
        assert httpx2.get(url, headers={"X-Forwarded-For": "192.0.2.9"}).status_code == 403
        assert "serving Prometheus metrics at /metrics" in on.log()
    finally:
        on.stop()


def test_a_token_file_others_can_read_is_warned_about(metrics_server, tmp_path):
    # Near miss: the module's server has a 0600 token file and says nothing.
    assert "readable by other users" not in metrics_server.log()
    loose = tmp_path / "metrics.token"
    loose.write_text(SCRAPE_TOKEN)
    loose.chmod(0o644)
    srv = start_server(config=config_text(extra=f'[metrics]\ntoken_file = "{loose}"\n'))
    try:
        assert "the metrics token file is readable by other users" in srv.log()
        assert SCRAPE_TOKEN not in srv.log()
    finally:
        srv.stop()


def sample(text: str, series: str) -> float | None:
    """The value of `series` (name and labels exactly as written) in scraped text."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


async def test_rate_limited_calls_and_lockouts_are_counted():
    srv = start_server(config=config_text(limits={"tool_calls_per_minute": 1, "auth_failures_per_minute": 1}),
                       args=["--metrics"])
    try:
        async with connect(srv, "streamable", "legacy") as client:
            assert not (await client.call_tool("job_list", {})).is_error
            limited = await client.call_tool("job_list", {})
            assert limited.is_error and "rate limited" in limited.content[0].text
        bad = {"Authorization": "Bearer not-a-token"}
        assert httpx2.post(srv.mcp_url, headers=bad, json={}).status_code == 401
        assert httpx2.post(srv.mcp_url, headers=bad, json={}).status_code == 429
        text = httpx2.get(f"{srv.base}/metrics").text
        assert sample(text, 'hostmcp_tool_calls_total{tool="job_list",outcome="ok"}') == 1
        assert sample(text, 'hostmcp_tool_calls_total{tool="job_list",outcome="rate_limited"}') == 1
        assert sample(text, 'hostmcp_tool_call_duration_seconds_count{tool="job_list"}') == 1
        assert sample(text, 'hostmcp_auth_failures_total{reason="invalid"}') == 2
        assert sample(text, "hostmcp_auth_lockouts_total") == 1
    finally:
        srv.stop()
