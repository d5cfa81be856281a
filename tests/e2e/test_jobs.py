"""Background jobs through a real client: start, page output with cursors, signal, isolation."""

from __future__ import annotations

import anyio
import pytest

from conftest import descendants, pid_alive
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect

pytestmark = pytest.mark.anyio


async def read_all(client, job_id: str) -> tuple[str, dict]:
    cursor, out = 0, []
    for _ in range(200):
        page = (await client.call_tool("job_output", {"job_id": job_id, "stdout_cursor": cursor,
                                                      "max_bytes": 4096, "wait_secs": 2})).structured_content
        out.append(page["stdout"])
        cursor = page["stdout_cursor"]
        if page["state"] != "running" and not page["stdout"]:
            return "".join(out), page
    raise AssertionError("job did not finish")


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_job_outlives_its_call_and_pages_without_gaps(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"job_start", "job_output", "job_signal", "job_list"} <= tools
        started = await client.call_tool("job_start", {"command": "for i in $(seq 1 3000); do echo line-$i; done; sleep 1; echo done"})
        job_id = started.structured_content["job_id"]
        assert started.structured_content["state"] == "running"
        text, last = await read_all(client, job_id)
        assert text == "".join(f"line-{i}\n" for i in range(1, 3001)) + "done\n"
        assert last["state"] == "exited" and last["exit_code"] == 0
        listed = (await client.call_tool("job_list", {})).structured_content["jobs"]
        assert job_id in [job["job_id"] for job in listed]


async def test_jobs_belong_to_their_principal(shared_server):
    async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("alice")) as alice:
        job_id = (await alice.call_tool("job_start", {"command": "sleep 60"})).structured_content["job_id"]
        async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("bob")) as bob:
            assert job_id not in [j["job_id"] for j in (await bob.call_tool("job_list", {})).structured_content["jobs"]]
            for tool, args in (("job_output", {"job_id": job_id}), ("job_signal", {"job_id": job_id})):
                result = await bob.call_tool(tool, args)
                assert result.is_error is True and "no job" in result.content[0].text
        stopped = await alice.call_tool("job_signal", {"job_id": job_id})
        assert stopped.is_error is not True
        _, last = await read_all(alice, job_id)
        assert last["state"] == "cancelled"


async def test_a_signal_reaches_the_job_and_kill_leaves_nothing_behind(server):
    async with connect(server, "streamable", "legacy") as client:
        job_id = (await client.call_tool("job_start", {
            "command": "sleep 300 & trap 'echo hup; exit 9' HUP; while :; do sleep 0.1; done"})).structured_content["job_id"]
        await anyio.sleep(0.5)
        assert (await client.call_tool("job_signal", {"job_id": job_id, "signal": "HUP"})).is_error is not True
        text, last = await read_all(client, job_id)
        assert last["state"] == "exited" and last["exit_code"] == 9 and "hup" in text
        await anyio.sleep(0.5)
        assert [p for p in descendants(server.process.pid) if pid_alive(p)] == []


async def test_shutdown_kills_running_jobs(server):
    async with connect(server, "streamable", "legacy") as client:
        await client.call_tool("job_start", {"command": "trap '' TERM; sleep 300"})
        await anyio.sleep(0.5)
    children = [p for p in descendants(server.process.pid) if pid_alive(p)]
    assert children, "the job is not running"
    assert server.stop() == 0
    await anyio.sleep(0.5)
    assert [p for p in children if pid_alive(p)] == []


async def test_the_concurrency_limit_gives_a_clear_error(tmp_path):
    from conftest import config_text, start_server
    srv = start_server(config=config_text(limits={"max_concurrent_per_principal": 2}))
    try:
        async with connect(srv, "streamable", "legacy") as client:
            for _ in range(2):
                assert (await client.call_tool("job_start", {"command": "sleep 30"})).is_error is not True
            refused = await client.call_tool("run_command", {"command": "true"})
            assert refused.is_error is True and "maximum of 2 commands" in refused.content[0].text
            async with connect(srv, "streamable", "legacy", headers=srv.headers("bob")) as bob:
                assert (await bob.call_tool("run_command", {"command": "true"})).is_error is not True
    finally:
        srv.stop()
