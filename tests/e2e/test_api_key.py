"""The API-key header (`[auth] api_key_header`): a hostmcp token in `X-API-Key`, checked like
`Authorization: Bearer` on /mcp and /sse, with the same lockout; each refusal has its twin."""

from __future__ import annotations

import json

import httpx2
import pytest

from conftest import TOKENS, config_text, start_server
from mcp_clients import TRANSPORTS, TRANSPORT_IDS, connect

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
ALICE = TOKENS["alice"][0]
API_KEY = '\n[auth]\napi_key_header = "X-API-Key"\n'


@pytest.fixture(scope="module")
def keyed():
    srv = start_server(config=config_text(API_KEY))
    yield srv
    srv.stop()


def post(server, headers: dict[str, str], path: str = "/mcp") -> httpx2.Response:
    return httpx2.post(server.base + path, json=INIT, headers={**ACCEPT, **headers})


def test_the_api_key_header_authenticates_and_each_refusal_has_its_twin(keyed):
    bearer = {"Authorization": f"Bearer {ALICE}"}
    assert post(keyed, {"X-API-Key": ALICE}).status_code == 200
    assert post(keyed, {"x-api-key": ALICE, **bearer}).status_code == 200, "the same token twice"
    wrong = post(keyed, {"X-API-Key": "alice-token-0123456789abcdeX"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    empty = post(keyed, {"X-API-Key": ""})
    assert empty.status_code == 401
    assert empty.json()["error"]["data"]["error"] == "invalid_request"
    both = post(keyed, {"X-API-Key": TOKENS["bob"][0], **bearer})
    assert both.status_code == 400
    assert "disagree" in both.json()["error"]["message"]
    # A token in the query string is never read.
    for query in (f"?api_key={ALICE}", f"?X-API-Key={ALICE}", f"?access_token={ALICE}"):
        assert post(keyed, {}, "/mcp" + query).status_code == 401, query
    log = keyed.log()
    assert ALICE not in log and TOKENS["bob"][0] not in log


def test_without_the_setting_an_api_key_is_no_credential(shared_server):
    assert post(shared_server, {"X-API-Key": ALICE}).status_code == 401
    assert post(shared_server, {"Authorization": f"Bearer {ALICE}"}).status_code == 200


@pytest.mark.parametrize("name,transport,mode", TRANSPORTS, ids=TRANSPORT_IDS)
async def test_the_python_sdk_lists_and_calls_with_only_the_api_key(keyed, name, transport, mode):
    async with connect(keyed, transport, mode, headers={"X-API-Key": ALICE}) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" in names
        result = await client.call_tool("run_command", {"argv": ["echo", "keyed"]})
        assert result.is_error is not True
        assert "keyed" in result.content[0].text
    # Near miss: a wrong key on the same transport.
    with pytest.RaisesGroup(pytest.RaisesExc(Exception), flatten_subgroups=True, allow_unwrapped=True):
        async with connect(keyed, transport, mode, headers={"X-API-Key": "nope"}) as client:
            await client.list_tools()


def test_the_legacy_sse_stream_opens_with_the_api_key(keyed):
    with httpx2.stream("GET", keyed.sse_url, headers={"X-API-Key": ALICE}, timeout=10) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "event: endpoint"
    refused = httpx2.get(keyed.sse_url, headers={"X-API-Key": "nope"}, timeout=10)
    assert refused.status_code == 401


def test_a_flood_of_wrong_api_keys_is_locked_out_like_wrong_bearer_tokens():
    srv = start_server(config=config_text(API_KEY, limits={"auth_failures_per_minute": 3}))
    try:
        codes = [post(srv, {"X-API-Key": f"wrong-{i}"}).status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert post(srv, {"Authorization": "Bearer wrong"}).status_code == 429
        # Near miss: the valid key is served whatever its address did.
        assert post(srv, {"X-API-Key": ALICE}).status_code == 200
        records = [json.loads(line) for line in (srv.state_dir / "hostmcp" / "audit.jsonl").read_text().splitlines()]
        events = [record["event"] for record in records]
        assert events.count("auth_failed") == 3 and events.count("auth_throttled") == 1
    finally:
        srv.stop()


def test_a_reserved_header_name_is_refused_at_start(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(config_text('\n[auth]\napi_key_header = "Cookie"\n'))
    with pytest.raises(RuntimeError, match="already has a meaning"):
        start_server(["--config", str(config)], use_tokens=False).stop()
