"""Real clients of the gateway beyond the Python SDK over HTTP: the MCP Inspector CLI (over /mcp and
/sse) and the Python SDK's stdio client on `hostmcp gateway --stdio`.

A real NATS (TLS, nkeys) and two real `hostmcp serve --fleet` hosts: `i-1` maps the stdio
gateway's principal (`stdio`) to the operator role, `i-2` does not. The Inspector lists the
gateway's tools (host_list, fleet_run, run_command with `host`), lists the hosts and runs a
command on one; a reader token does not see run_command (the near miss of the operator's list).
Over stdio the SDK lists hosts and runs a command on `i-1`; `i-2` refuses the unmapped principal;
stdout carries only JSON-RPC, the logs go to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from gateway_fleet import GatewayFleet, gateway_records, stop, wait_online

pytestmark = pytest.mark.anyio

NODE_BIN = os.environ.get("HOSTMCP_NODE_BIN")
HOSTS = ["i-1", "i-2"]


@pytest.fixture(scope="module")
def fleet():
    fleet = GatewayFleet(Path(tempfile.mkdtemp(prefix="hostmcp-gwclients-")), HOSTS)
    try:
        fleet.gateway_home("gw-http")
        fleet.gateway_home("gw-stdio")
        fleet.start_host("i-1", extra_principals='stdio = "operator"\n')
        fleet.start_host("i-2")
        wait_online(fleet.start_gateway("gw-http"), set(HOSTS))
        yield fleet
    finally:
        fleet.close()


def inspector(url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    if not NODE_BIN:
        pytest.fail("HOSTMCP_NODE_BIN is not set: run the tests through .ci/run")
    env = {**os.environ, "PATH": f"{NODE_BIN}:{os.environ['PATH']}", "HOME": tempfile.mkdtemp()}
    return subprocess.run(
        [f"{NODE_BIN}/mcp-inspector", "--cli", url, "--header", f"Authorization: Bearer {token}",
         "--stored-auth-only", *args, "--format", "json"],
        capture_output=True, text=True, timeout=90, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_the_inspector_lists_the_gateways_tools_and_runs_a_command_on_a_host(fleet, path):
    gateway = fleet.gateways[0]
    url, token = gateway.base + path, gateway.tokens["alice"]
    listed = inspector(url, token, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    tools = {tool["name"]: tool for tool in json.loads(listed.stdout)["result"]["tools"]}
    assert {"host_list", "fleet_run", "run_command"} <= set(tools), sorted(tools)
    assert "host" in tools["run_command"]["inputSchema"]["properties"]
    assert "host" in tools["run_command"]["inputSchema"]["required"]

    hosts = inspector(url, token, "--method", "tools/call", "--tool-name", "host_list")
    assert hosts.returncode == 0, hosts.stderr
    result = json.loads(hosts.stdout)["result"]
    assert {h["name"]: h["online"] for h in result["structuredContent"]["hosts"]} == {"i-1": True, "i-2": True}

    ran = inspector(url, token, "--method", "tools/call", "--tool-name", "run_command",
                    "--tool-args-json", json.dumps({"host": "i-2", "command": "echo from-inspector"}))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["result"]["structuredContent"]["stdout"] == "from-inspector\n"
    assert any(r["event"] == "fleet_call" and r["hosts"] == ["i-2"] and r["outcome"] == "ok"
               for r in gateway_records(gateway))


def test_the_inspector_with_a_reader_token_sees_no_run_command(fleet):
    gateway = fleet.gateways[0]
    listed = inspector(gateway.mcp_url, gateway.tokens["reader"], "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    names = {tool["name"] for tool in json.loads(listed.stdout)["result"]["tools"]}
    assert "host_list" in names and "run_command" not in names and "fleet_run" not in names


def stdio_params(fleet) -> StdioServerParameters:
    home = fleet.gateway_home("gw-stdio")
    argv = fleet.gateway_argv(home, "--stdio")
    return StdioServerParameters(command=argv[0], args=argv[1:], env=fleet.env(home))


async def test_the_sdks_stdio_client_lists_hosts_and_runs_a_command_on_one(fleet, tmp_path):
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as errlog:
        async with Client(stdio_client(stdio_params(fleet), errlog=errlog), mode="legacy") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert {"host_list", "fleet_run", "run_command"} <= set(tools)
            assert tools["run_command"].input_schema["required"][0] == "host"
            # Presence arrives within a few seconds of start (discovery, then beats).
            for _ in range(60):
                listed = await client.call_tool("host_list", {"online_only": True})
                names = [host["name"] for host in listed.structured_content["hosts"]]
                if names == HOSTS:
                    break
                await anyio.sleep(0.5)
            assert names == HOSTS, listed
            ran = await client.call_tool("run_command", {"host": "i-1", "command": "echo over gateway stdio"})
            assert not ran.is_error, ran
            assert ran.structured_content["stdout"] == "over gateway stdio\n"
            # The near miss: a host that maps no role to the `stdio` principal refuses it.
            refused = await client.call_tool("run_command", {"host": "i-2", "command": "echo no"})
            assert refused.is_error and "no role on this host" in refused.content[0].text, refused
    logs = stderr_path.read_text()
    assert "gateway key" in logs, logs
    audit = [json.loads(line) for line in (fleet.dir / "gw-stdio" / "audit.jsonl").read_text().splitlines()]
    calls = [r for r in audit if r["event"] == "fleet_call"]
    assert [(r["hosts"], r["outcome"], r["principal"]) for r in calls if r["tool"] == "run_command"] == [
        (["i-1"], "ok", "stdio"), (["i-2"], "denied", "stdio")], calls
    host_audit = (fleet.dir / "i-1" / "audit.jsonl").read_text()
    assert "over gateway stdio" in host_audit


def test_the_stdio_gateway_writes_only_json_rpc_on_stdout(fleet):
    params = stdio_params(fleet)
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    process = subprocess.Popen([params.command, *params.args], env=params.env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        replies = []
        for message in messages:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
            if "id" in message:
                replies.append(json.loads(process.stdout.readline()))
        process.stdin.close()
        rest = process.stdout.read()
        assert process.wait(timeout=30) == 0
    finally:
        stop(process)
    assert replies[0]["result"]["serverInfo"]["name"] == "hostmcp-gateway", replies[0]
    assert "run_command" in [tool["name"] for tool in replies[1]["result"]["tools"]]
    assert rest == ""
    assert "gateway key" in process.stderr.read()
