"""Authentication and session binding, seen by real clients and raw HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
from mcp import MCPError

from mcp_clients import connect

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("token", [None, "wrong-token", "alice-token-0123456789abcde"])
async def test_streamable_http_refuses_missing_and_wrong_tokens(shared_server, mode, token):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with pytest.RaisesGroup(pytest.RaisesExc(MCPError), flatten_subgroups=True):
        async with connect(shared_server, "streamable", mode, headers=headers) as client:
            await client.list_tools()


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_sse_refuses_missing_and_wrong_tokens(shared_server, token):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with pytest.raises(httpx2.HTTPStatusError) as raised:
        async with connect(shared_server, "sse", "legacy", headers=headers) as client:
            await client.list_tools()
    assert raised.value.response.status_code == 401


@pytest.mark.parametrize("path,method", [("/mcp", "POST"), ("/mcp", "GET"), ("/mcp", "DELETE"),
                                         ("/sse", "GET"), ("/messages?sessionId=x", "POST")])
def test_every_mcp_endpoint_answers_401_with_a_challenge(shared_server, path, method):
    response = httpx2.request(method, shared_server.base + path, json=INIT, headers=ACCEPT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["data"]["error"] == "invalid_token"


def jsonrpc_response(response: httpx2.Response) -> dict:
    """The JSON-RPC response in a plain JSON body or in an SSE body's data lines."""
    if response.headers["content-type"].startswith("application/json"):
        return response.json()
    messages = [json.loads(line[5:]) for line in response.text.splitlines()
                if line.startswith("data:") and line[5:].strip()]
    return next(m for m in messages if "result" in m or "error" in m)


def test_a_wrong_token_says_invalid_token(shared_server):
    response = httpx2.post(shared_server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_healthz_needs_no_token_and_reveals_nothing(shared_server):
    response = httpx2.get(shared_server.base + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "token" not in response.text


def test_a_session_opened_with_one_token_is_404_for_another(shared_server):
    alice = {**ACCEPT, **shared_server.headers("alice")}
    bob = {**ACCEPT, **shared_server.headers("bob")}
    opened = httpx2.post(shared_server.mcp_url, json=INIT, headers=alice)
    assert opened.status_code == 200
    session = opened.headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    as_bob = httpx2.post(shared_server.mcp_url, json=ping, headers={**bob, "Mcp-Session-Id": session})
    assert as_bob.status_code == 404
    as_nobody = httpx2.post(shared_server.mcp_url, json=ping, headers={**ACCEPT, "Mcp-Session-Id": session})
    assert as_nobody.status_code == 401
    # The near miss: the owner still uses it.
    as_alice = httpx2.post(shared_server.mcp_url, json=ping, headers={**alice, "Mcp-Session-Id": session})
    assert as_alice.status_code == 200
    assert httpx2.delete(shared_server.mcp_url, headers={**bob, "Mcp-Session-Id": session}).status_code == 404
    assert httpx2.delete(shared_server.mcp_url, headers={**alice, "Mcp-Session-Id": session}).status_code in (200, 202, 204)
    gone = httpx2.post(shared_server.mcp_url, json=ping, headers={**alice, "Mcp-Session-Id": session})
    assert gone.status_code == 404


def test_a_foreign_host_or_origin_is_403_naming_the_flag(shared_server):
    alice = {**ACCEPT, **shared_server.headers("alice")}
    response = httpx2.post(shared_server.mcp_url, json=INIT, headers={**alice, "Host": "attacker.example"})
    assert response.status_code == 403
    assert "--allowed-host attacker.example" in response.json()["message"]
    response = httpx2.post(shared_server.mcp_url, json=INIT, headers={**alice, "Origin": "http://attacker.example"})
    assert response.status_code == 403
    assert "--allowed-origin" in response.json()["message"]
    assert httpx2.post(shared_server.mcp_url, json=INIT, headers={**alice, "Host": "localhost:1"}).status_code == 200


async def test_a_read_role_token_sees_no_command_tool_and_cannot_call_it(shared_server):
    async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("reader")) as client:
        tools = (await client.list_tools()).tools
        assert [tool.name for tool in tools] == [
            "host_info", "process_list", "process_tree", "disk_usage", "network_info",
            "service_status", "log_query", "file_read", "file_list", "file_search"]
        assert all(tool.annotations.read_only_hint is True for tool in tools)
        info = await client.call_tool("host_info", {})
        assert info.is_error is not True and info.structured_content["memory"]["total_bytes"] > 0
        result = await client.call_tool("run_command", {"command": "id"})
        assert result.is_error is True
        assert "needs the operator role" in result.content[0].text


async def test_concurrent_valid_and_invalid_tokens_never_cross(shared_server):
    """Many interleaved requests: every valid token succeeds as itself, every invalid one gets 401."""
    who = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "run_command", "arguments": {"command": "echo ok"},
                      "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers_2026 = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "run_command"}

    async with httpx2.AsyncClient(timeout=30) as http:
        async def one(i: int):
            kind = ["alice", "bob", "bad", "none", "reader"][i % 5]
            headers = dict(headers_2026)
            if kind in ("alice", "bob", "reader"):
                headers.update(shared_server.headers(kind))
            elif kind == "bad":
                headers["Authorization"] = f"Bearer {shared_server.tokens['alice']}x"
            response = await http.post(shared_server.mcp_url, json=who, headers=headers)
            return kind, response

        results = await asyncio.gather(*(one(i) for i in range(100)))
    for kind, response in results:
        if kind == "reader":
            assert response.status_code == 200, response.text
            result = jsonrpc_response(response)["result"]
            assert result["isError"] is True and "needs the operator role" in result["content"][0]["text"]
        elif kind in ("alice", "bob"):
            assert response.status_code == 200, response.text
            payload = jsonrpc_response(response)
            assert payload["result"]["structuredContent"]["stdout"] == "ok\n"
        else:
            assert response.status_code == 401, (kind, response.status_code)
    log = shared_server.log()
    for token in (shared_server.tokens["alice"], shared_server.tokens["bob"]):
        assert token not in log
    assert 'principal="alice"' in log and 'principal="bob"' in log


def test_no_token_or_digest_ever_appears_in_the_log(shared_server):
    import hashlib
    httpx2.post(shared_server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": "Bearer guessed-secret-value"})
    log = shared_server.log()
    assert "guessed-secret-value" not in log
    for token in shared_server.tokens.values():
        assert token not in log
        assert hashlib.sha256(token.encode()).hexdigest() not in log
    assert "authentication failed" in log
