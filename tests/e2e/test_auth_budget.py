"""The failed-authentication budget against the real binary: a flood of bad tokens from one
address does not lock out a valid client of that address, the refusals leave one audit
record, and forwarding headers name the client only when they come from a trusted proxy."""

from __future__ import annotations

import json
import time

import httpx2
import pytest

from conftest import config_text, start_server
from mcp_clients import connect

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
WRONG = {**ACCEPT, "Authorization": "Bearer wrong-guess"}


def records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_records(server, event: str, count: int) -> list[dict]:
    """The audit records once `count` of kind `event` are there (at most ~5 s)."""
    for _ in range(50):
        lines = records(server)
        if sum(r["event"] == event for r in lines) >= count:
            return lines
        time.sleep(0.1)
    return records(server)


@pytest.fixture
def budget_server():
    srv = start_server(config=config_text(limits={"auth_failures_per_minute": 30}))
    yield srv
    srv.stop()


@pytest.mark.anyio
async def test_a_flood_of_bad_tokens_does_not_lock_out_a_valid_client_of_the_same_address(budget_server):
    server = budget_server
    with httpx2.Client() as http:
        codes = [http.post(server.mcp_url, json=INIT, headers=WRONG).status_code for _ in range(40)]
    assert codes == [401] * 30 + [429] * 10
    # A real client with a valid token, from the same 127.0.0.1, is served.
    async with connect(server, "streamable", "legacy") as client:
        result = await client.call_tool("run_command", {"command": "echo served"})
        assert "served" in result.content[0].text
    # Near miss: a bad token from that address is still refused, with a time to wait.
    refused = httpx2.post(server.mcp_url, json=INIT, headers=WRONG)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    lines = wait_for_records(server, "command_finished", 1)
    kinds = [r["event"] for r in lines]
    assert kinds.count("auth_failed") == 30
    throttled = [r for r in lines if r["event"] == "auth_throttled"]
    assert len(throttled) == 1, "11 refusals, one record"
    assert throttled[0]["client"].startswith("127.0.0.1:")
    assert throttled[0]["refused_in_previous_window"] == 0
    assert kinds.index("auth_throttled") == 30, "written at the first refusal"


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["flag", "env", "file"])
async def test_forwarded_for_names_the_client_only_from_a_trusted_proxy(how):
    args, env, top = [], {}, config_text().split("\n", 1)[0]
    if how == "flag":
        args = ["--trusted-proxy", "127.0.0.0/8"]
    elif how == "env":
        env = {"HOSTMCP_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1"}
    else:
        top = 'trusted_proxies = ["127.0.0.1"]\n' + top
    server = start_server(args=args, env=env,
                          config=config_text(limits={"auth_failures_per_minute": 3}, top=top))
    try:
        forwarded = {"X-Forwarded-For": "198.51.100.66, 203.0.113.9"}
        async with connect(server, "streamable", "legacy", headers={**server.headers(), **forwarded}) as client:
            await client.call_tool("run_command", {"command": "true"})
        with httpx2.Client() as http:
            codes = [http.post(server.mcp_url, json=INIT, headers={**WRONG, **forwarded}).status_code
                     for _ in range(4)]
            assert codes == [401] * 3 + [429]
            # Another client behind the same proxy has its own budget.
            other = http.post(server.mcp_url, json=INIT, headers={**WRONG, "X-Forwarded-For": "203.0.113.10"})
            assert other.status_code == 401
        lines = wait_for_records(server, "command_finished", 1)
        started = next(r for r in lines if r["event"] == "command_started")
        assert started["client"] == "203.0.113.9"
        assert [r["client"] for r in lines if r["event"] == "auth_throttled"] == ["203.0.113.9"]
    finally:
        server.stop()


@pytest.mark.anyio
async def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    server = start_server(config=config_text(limits={"auth_failures_per_minute": 3}))
    try:
        async with connect(server, "streamable", "legacy",
                           headers={**server.headers(), "X-Forwarded-For": "203.0.113.9"}) as client:
            await client.call_tool("run_command", {"command": "true"})
        with httpx2.Client() as http:
            # A new forged address each time: still one client, limited.
            codes = [http.post(server.mcp_url, json=INIT,
                               headers={**WRONG, "X-Forwarded-For": f"198.51.100.{n}",
                                        "Forwarded": f"for=198.51.100.{n}"}).status_code
                     for n in range(4)]
        assert codes == [401] * 3 + [429]
        lines = wait_for_records(server, "command_finished", 1)
        started = next(r for r in lines if r["event"] == "command_started")
        assert started["client"].startswith("127.0.0.1:")
    finally:
        server.stop()
