"""Cancelling a call on the gateway kills the command on the host.

A real NATS (TLS, nkeys), a real `hostmcp serve --fleet` host and a real `hostmcp gateway`. A
client starts `run_command` on the host through the gateway: a shell loop that writes its PID,
then a line to a marker file every 0.2 s. The client then gives up on the call: the Python SDK
(session era: `notifications/cancelled`; 2026-07-28 and /sse likewise), or raw httpx on the
2026-07-28 stateless wire closing the response stream. Within a few seconds the loop's process is
gone, the marker stops growing, and the host's audit log records the command as cancelled. The
near miss: the same loop left alone runs to its end and its result comes back through the gateway.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import pytest

from conftest import pid_alive
from gateway_fleet import HEADERS_2026, META, gateway_fleet, result_of, stateless_call
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect

pytestmark = pytest.mark.anyio

HOST = "cancel-1"
# Seconds the host has to end a cancelled command (the gateway relays the cancel over NATS).
GONE_WITHIN = 10


@pytest.fixture(scope="module")
def fleet():
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-gwcancel-"))
    with gateway_fleet(workdir, [HOST]) as fleet:
        yield fleet


def loop_command(marker: Path, ticks: int | None = None) -> str:
    """A shell loop: its PID to marker.pid, then a line to marker every 0.2 s (`ticks` times, or
    until killed)."""
    condition = f"[ $i -lt {ticks} ]" if ticks else "true"
    return (f"echo $$ > {marker}.pid; i=0; while {condition}; do echo tick >> {marker}; "
            f"i=$((i+1)); sleep 0.2; done; echo loop-done")


def wait_started(marker: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (marker.exists() and Path(f"{marker}.pid").exists()
               and Path(f"{marker}.pid").read_text().strip()):
        assert time.monotonic() < deadline, "the command did not start on the host"
        time.sleep(0.1)
    return int(Path(f"{marker}.pid").read_text())


def cancelled_records(fleet) -> int:
    return len([r for r in fleet.host_audit(HOST) if r["event"] == "command_finished" and r["cancelled"]])


def assert_ended(fleet, pid: int, marker: Path, cancelled_before: int) -> None:
    """The loop's process is gone, its marker stops growing, and the host audited one more
    cancelled command."""
    started = time.monotonic()
    deadline = started + GONE_WITHIN
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still runs {GONE_WITHIN} s after the cancel"
        time.sleep(0.05)
    print(f"command gone {time.monotonic() - started:.2f} s after the client gave up")
    size = marker.stat().st_size
    time.sleep(1.0)
    assert marker.stat().st_size == size, "the marker still grows after the cancel"
    deadline = time.monotonic() + GONE_WITHIN
    while cancelled_records(fleet) != cancelled_before + 1:
        assert time.monotonic() < deadline, fleet.host_audit(HOST)[-5:]
        time.sleep(0.2)


def marker_path(tmp: Path, name: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o777)
    return tmp / name


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_client_that_cancels_ends_the_command_on_the_host(fleet, tmp_path, name, transport, mode):
    gateway = fleet.gateways[0]
    marker = marker_path(tmp_path, "marker")
    before = cancelled_records(fleet)
    async with connect(gateway, transport, mode) as client:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(client.call_tool, "run_command",
                                 {"host": HOST, "command": loop_command(marker), "timeout_secs": 600})
                pid = await anyio.to_thread.run_sync(wait_started, marker)
                tasks.cancel_scope.cancel()
        assert not scope.cancelled_caught, "the call did not start within 30 s"
        # In a thread: the client's event loop must go on to send the cancel.
        await anyio.to_thread.run_sync(assert_ended, fleet, pid, marker, before)
        # The session (where there is one) still serves the next call.
        ran = await client.call_tool("run_command", {"host": HOST, "command": "echo still-here"})
        assert ran.structured_content["stdout"] == "still-here\n"
    assert cancelled_records(fleet) == before + 1


def test_closing_the_stateless_response_stream_ends_the_command_on_the_host(fleet, tmp_path):
    gateway = fleet.gateways[0]
    marker = marker_path(tmp_path, "marker")
    before = cancelled_records(fleet)
    arguments = {"host": HOST, "command": loop_command(marker), "timeout_secs": 600}
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "run_command", "arguments": arguments,
                       "_meta": {**META, "progressToken": 1}}}
    headers = {**HEADERS_2026, "Mcp-Name": "run_command", "Mcp-Param-Host": HOST, **gateway.headers()}
    with httpx2.Client(timeout=httpx2.Timeout(30, read=600)) as http:
        with http.stream("POST", gateway.mcp_url, content=json.dumps(body), headers=headers) as response:
            assert response.status_code == 200
            pid = wait_started(marker)
        # Leaving the block closes the response stream: the client is gone.
    assert_ended(fleet, pid, marker, before)
    records = [r for r in fleet.host_audit(HOST) if r["event"] == "command_finished"]
    assert records[-1]["cancelled"] is True, records[-1]


def test_an_uncancelled_call_through_the_gateway_runs_to_its_end(fleet, tmp_path):
    marker = marker_path(tmp_path, "marker")
    result = result_of(stateless_call(fleet.gateways[0], "run_command",
                                      {"host": HOST, "command": loop_command(marker, ticks=5),
                                       "timeout_secs": 60}))
    assert result["structuredContent"]["exit_code"] == 0, result
    assert result["structuredContent"]["stdout"] == "loop-done\n"
    assert marker.read_text() == "tick\n" * 5
    assert not pid_alive(int(Path(f"{marker}.pid").read_text()))
    finished = [r for r in fleet.host_audit(HOST) if r["event"] == "command_finished"]
    assert finished[-1]["cancelled"] is False and finished[-1]["exit_code"] == 0, finished[-1]
