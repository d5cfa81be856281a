"""run_command through the Python SDK over /mcp (both eras) and /sse."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest

from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import config_text, descendants, pid_alive, start_server
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect, http_client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_lists_run_command_with_schemas_and_annotations(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode) as client:
        tools = (await client.list_tools()).tools
        assert [tool.name for tool in tools] == [
            "host_info", "process_list", "process_tree", "disk_usage", "network_info",
            "service_status", "log_query", "file_read", "file_list", "file_search", "run_command",
            "job_start", "job_output", "job_signal", "job_list", "file_write", "process_signal",
            "terminal_open", "terminal_send", "terminal_read", "terminal_resize", "terminal_close"]
        tool = next(tool for tool in tools if tool.name == "run_command")
        assert set(tool.input_schema["properties"]) >= {"command", "argv", "working_dir", "timeout_secs", "env", "stdin"}
        assert set(tool.output_schema["properties"]) >= {
            "exit_code", "signal", "stdout", "stderr", "timed_out", "truncated", "duration_ms"}
        assert tool.annotations.destructive_hint is True
        assert tool.annotations.open_world_hint is True


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_runs_a_command_and_returns_structured_output(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode) as client:
        result = await client.call_tool("run_command", {"command": "echo hello; echo oops >&2"})
        assert result.is_error is not True
        assert result.structured_content["exit_code"] == 0
        assert result.structured_content["stdout"] == "hello\n"
        assert result.structured_content["stderr"] == "oops\n"
        assert result.structured_content["timed_out"] is False
        assert "exit code 0" in result.content[0].text
        assert "hello" in result.content[0].text


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_non_zero_exit_is_an_error_result(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode) as client:
        result = await client.call_tool("run_command", {"command": "echo failing >&2; exit 3"})
        assert result.is_error is True
        assert result.structured_content["exit_code"] == 3
        assert "exit code 3" in result.content[0].text
        assert "failing" in result.content[0].text


async def test_argv_env_stdin_and_working_dir(shared_server, tmp_path):
    (tmp_path / "marker").write_text("x")
    async with connect(shared_server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {
            "argv": ["sh", "-c", 'echo "$GREETING"; cat; ls', "ignored"],
            "env": {"GREETING": "hi there"},
            "stdin": "from stdin\n",
            "working_dir": str(tmp_path),
        })
        assert result.structured_content["stdout"] == "hi there\nfrom stdin\nmarker\n"


async def test_argv_is_not_interpreted_by_a_shell(shared_server):
    async with connect(shared_server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {"argv": ["echo", "$(id)", ";", "uname"]})
        assert result.structured_content["stdout"] == "$(id) ; uname\n"


async def test_server_secrets_do_not_reach_commands(shared_server):
    async with connect(shared_server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {"command": "env"})
        names = {line.split("=", 1)[0] for line in result.structured_content["stdout"].splitlines()}
        assert "HOSTMCP_LOG" not in names and "XDG_STATE_HOME" not in names
        assert "PATH" in names


async def test_missing_working_dir_is_an_error_result(shared_server):
    async with connect(shared_server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {"command": "pwd", "working_dir": "/nonexistent/dir"})
        assert result.is_error is True
        assert "/nonexistent/dir" in result.content[0].text


async def test_bad_arguments_are_invalid_params(shared_server):
    from mcp import MCPError
    async with connect(shared_server, "streamable", "legacy") as client:
        for arguments in ({}, {"command": "true", "argv": ["true"]}, {"command": "true", "bogus": 1},
                          {"command": "true", "timeout_secs": 0}):
            with pytest.raises(MCPError) as raised:
                await client.call_tool("run_command", arguments)
            assert raised.value.code == -32602, arguments


async def test_timeout_kills_the_command_and_its_grandchild(shared_server):
    async with connect(shared_server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {
            "command": "sleep 300 & echo $!; trap '' TERM; sleep 300",
            "timeout_secs": 1,
        })
        assert result.is_error is True
        assert result.structured_content["timed_out"] is True
        assert result.structured_content["exit_code"] is None
        grandchild = int(result.structured_content["stdout"].split()[0])
        assert not pid_alive(grandchild)
        assert "timed out" in result.content[0].text


@pytest.fixture(scope="module")
def small_cap_server():
    # A result budget above the cap: this tests the capture cap alone.
    srv = start_server(config=config_text(limits={"max_output_bytes": 65536, "result_budget_bytes": 1_000_000}))
    yield srv
    srv.stop()


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_output_is_capped_and_says_so(small_cap_server, name, transport, mode):
    async with connect(small_cap_server, transport, mode) as client:
        result = await client.call_tool("run_command", {"command": "head -c 5000000 /dev/zero | tr '\\0' a; echo; echo END"})
        out = result.structured_content
        assert out["truncated"] is True
        assert out["stdout_bytes"] == 5000005
        assert out["stdout"].startswith("aaaa") and out["stdout"].endswith("END\n")
        assert 60_000 < len(out["stdout"]) < 70_000
        omitted = out["stdout_omitted_bytes"]
        marker = f"\n[... {omitted} bytes (0 lines) omitted here ...]\n"
        assert marker in out["stdout"] and marker in result.content[0].text
        assert omitted + len(out["stdout"]) - len(marker) == 5000005, "exact: shown + omitted = written"
        assert result.content[0].text.endswith("(grep, head, tail, a filter of the command's own)]")


@pytest.fixture(scope="module")
def big_budget_server():
    srv = start_server(config=config_text(limits={"result_budget_bytes": 8 << 20}))
    yield srv
    srv.stop()


async def test_default_cap_is_one_mib_per_stream(big_budget_server):
    """The default capture cap, seen through a result budget larger than it; text and
    structured content show the same head and tail, with the exact bytes left out."""
    async with http_client(big_budget_server.headers()) as http, Client(
            streamable_http_client(big_budget_server.mcp_url, http_client=http, max_sse_event_size=16 << 20),
            mode="legacy") as client:
        result = await client.call_tool("run_command", {"command": "head -c 3000000 /dev/zero | tr '\\0' b"})
        out = result.structured_content
        assert out["truncated"] is True and out["stdout_bytes"] == 3_000_000
        assert 1_040_000 < len(out["stdout"]) < 1_060_000
        assert out["stdout_omitted_bytes"] == 3_000_000 - 1024 * 1024
        assert f"[... {3_000_000 - 1024 * 1024} bytes (0 lines) omitted here ...]" in result.content[0].text


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_progress_notifications_carry_latest_output(shared_server, name, transport, mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, message))

    async with connect(shared_server, transport, mode) as client:
        result = await client.call_tool(
            "run_command", {"command": "for i in 1 2 3 4; do echo line$i; sleep 0.4; done"},
            progress_callback=on_progress)
        assert result.structured_content["exit_code"] == 0
    assert len(seen) >= 2, seen
    progresses = [p for p, _ in seen]
    assert progresses == sorted(progresses) and len(set(progresses)) == len(progresses)
    assert any("line" in (message or "") for _, message in seen), seen


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_cancelling_a_call_kills_the_command(server, name, transport, mode):
    async with connect(server, transport, mode) as client:
        with anyio.move_on_after(1.5):
            await client.call_tool("run_command", {"command": "sleep 300", "timeout_secs": 600})
        deadline = anyio.current_time() + 8
        while anyio.current_time() < deadline:
            sleeps = [pid for pid in descendants(server.process.pid) if pid_alive(pid)]
            if not sleeps:
                break
            await anyio.sleep(0.1)
        assert sleeps == [], f"still running after cancel: {sleeps}"


def live_descendants(server) -> list[int]:
    return [pid for pid in descendants(server.process.pid) if pid_alive(pid)]


def processes_running(marker: str) -> list[int]:
    """Live processes anywhere on the machine whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def describe(pids: list[int]) -> str:
    """State, parent and command line of each pid, for a failure message."""
    lines = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            lines.append(f"{pid}: gone")
            continue
        fields = stat.rsplit(")", 1)[1].split()
        lines.append(f"{pid}: state {fields[0]} ppid {fields[1]} pgid {fields[2]} {cmdline}")
    return "\n".join(lines)


def unique_sleep() -> str:
    """A sleep duration no other test uses, to find its processes wherever they went."""
    return f"{300 + random.random():.9f}"


async def settle(server, marker: str, seconds: float = 6) -> tuple[list[int], list[int]]:
    """Wait until nothing with `marker` runs and the server has no descendants (zombies count)."""
    deadline = anyio.current_time() + seconds
    while anyio.current_time() < deadline and (processes_running(marker) or descendants(server.process.pid)):
        await anyio.sleep(0.1)
    return processes_running(marker), descendants(server.process.pid)


async def test_a_setsid_daemon_does_not_outlive_its_command(server):
    marker = unique_sleep()
    async with connect(server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {
            "command": f"setsid sh -c 'sleep {marker}' </dev/null >/dev/null 2>&1 & (sleep {marker} &) ; sleep 0.2; echo started"})
        assert result.structured_content["stdout"] == "started\n"
    assert await settle(server, marker) == ([], [])


async def test_a_daemon_that_clears_its_environment_is_caught_too(server):
    marker = unique_sleep()
    async with connect(server, "streamable", "legacy") as client:
        await client.call_tool("run_command", {
            "command": f"setsid env -i /bin/sleep {marker} </dev/null >/dev/null 2>&1 & sleep 0.2; echo ok"})
    assert await settle(server, marker) == ([], [])


async def test_a_daemon_lives_while_its_job_runs_and_dies_with_it(server):
    marker = unique_sleep()
    async with connect(server, "streamable", "legacy") as client:
        job = (await client.call_tool("job_start", {
            "command": f"setsid sleep {marker} </dev/null >/dev/null 2>&1 & sleep 3"})).structured_content["job_id"]
        await anyio.sleep(1.5)
        assert processes_running(marker), "the daemon should live while its job runs"
        assert await settle(server, marker, 8) == ([], [])
        assert (await client.call_tool("job_output", {"job_id": job})).structured_content["state"] == "exited"


async def test_nothing_is_left_after_a_mix_of_timeouts_cancels_and_disconnects(server):
    marker = unique_sleep()
    async with connect(server, "streamable", "legacy") as client:
        for command in (f"sleep {marker} & sleep {marker}", f"trap '' TERM; sleep {marker} & sleep {marker}",
                        f"setsid sleep {marker} & sleep {marker}"):
            result = await client.call_tool("run_command", {"command": command, "timeout_secs": 1})
            assert result.structured_content["timed_out"] is True
        with anyio.move_on_after(1):
            await client.call_tool("run_command", {"command": f"sleep {marker} & setsid sleep {marker} & wait"})
    async with connect(server, "sse", "legacy") as client:
        with anyio.move_on_after(1):
            await client.call_tool("run_command", {"command": f"setsid sleep {marker} & sleep {marker}"})
    left = await settle(server, marker, 20)
    assert left == ([], []), describe(left[0] + left[1]) + "\n" + server.log()[-3000:]
