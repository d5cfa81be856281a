"""In-band approval for clients on the 2026-07-28 wire (issue 14): such a client cannot be sent
`elicitation/create`, so a command that needs approval answers `input_required` (MRTR,
SEP-2322) with the approval form and a sealed `requestState`, and the client's retry decides
the approval. Driven with the real Python SDK client (its elicitation callback answers) and
with raw HTTP for the near misses: an altered state, a state replayed for other arguments or
by another token, each refused on record with nothing run; the right retry still runs."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import HTTPServer

import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from conftest import TOKENS, config_text, start_server
from gateway_fleet import result_of
from mcp_clients import http_client
from test_approval import (WAIT_SECS, Receiver, audit, cli, decision_of, form_nonce, marker,
                           pending_id, policy, shown_command, text_of)

pytestmark = pytest.mark.anyio

V2026 = "2026-07-28"


class Hook(Receiver):
    """test_approval's webhook receiver with a list of its own."""
    received: list[dict] = []


@pytest.fixture(scope="module")
def mrtr_server():
    srv = start_server(config=config_text(extra=policy()))
    yield srv
    srv.stop()


def modern(server, elicitation, principal="alice"):
    """A Python SDK client on the 2026-07-28 wire (no session), with `elicitation` as its callback."""
    http = http_client(server.headers(principal))
    return http, Client(streamable_http_client(server.mcp_url, http_client=http), mode=V2026,
                        elicitation_callback=elicitation)


def requested(server, path) -> dict:
    (record,) = [r for r in audit(server) if r["event"] == "approval_requested"
                 and r.get("argv") == ["touch", str(path)]]
    return record


async def test_the_client_approves_in_band_and_the_command_runs(mrtr_server):
    asked = []

    async def approve(context, params):
        asked.append(params)
        return types.ElicitResult(action="accept", content={"approve": True})

    path = marker("mrtr-approved")
    http, mcp = modern(mrtr_server, approve)
    async with asyncio.timeout(WAIT_SECS), http, mcp as client:
        result = await client.call_tool("run_command", {"argv": ["touch", str(path)]})
        echoed = await client.call_tool("run_command", {"argv": ["echo", "in", "band"]})
    assert not result.is_error, text_of(result)
    assert path.exists()
    assert result.structured_content["exit_code"] == 0
    (params,) = asked
    assert shown_command(path) in params.message
    for shown in ["program: /usr/bin/touch", "rule: allow[0]", "reason: creates a marker file",
                  "asked by token: alice"]:
        assert shown in params.message, params.message
    schema = params.requested_schema
    assert list(schema["properties"]) == ["approve"] and schema["properties"]["approve"]["type"] == "boolean"
    ident = requested(mrtr_server, path)["approval_id"]
    decided = decision_of(mrtr_server, ident)
    assert (decided["decision"], decided["via"], decided["decider"]) == (
        "approved", "elicitation", "client-elicitation:alice")
    events = [r["event"] for r in audit(mrtr_server)
              if r.get("approval_id") == ident or r.get("argv") == ["touch", str(path)]]
    assert events[:3] == ["approval_requested", "approval_decided", "command_started"], events
    # Near miss: a rule without approve asks nothing and runs.
    assert not echoed.is_error and "in band" in echoed.structured_content["stdout"] and len(asked) == 1


async def test_the_client_declines_in_band_and_nothing_runs(mrtr_server):
    async def decline(context, params):
        return types.ElicitResult(action="decline")

    async def say_no(context, params):
        return types.ElicitResult(action="accept", content={"approve": False})

    for answer in [decline, say_no]:
        path = marker("mrtr-denied")
        http, mcp = modern(mrtr_server, answer)
        async with asyncio.timeout(WAIT_SECS), http, mcp as client:
            result = await client.call_tool("run_command", {"argv": ["touch", str(path)]})
        assert result.is_error
        assert "was denied by client-elicitation:alice (via elicitation)" in text_of(result), text_of(result)
        assert not path.exists()
        decided = decision_of(mrtr_server, requested(mrtr_server, path)["approval_id"])
        assert (decided["decision"], decided["via"]) == ("denied", "elicitation")


@pytest.mark.parametrize("path_between", ["page", "cli"])
async def test_a_decision_elsewhere_between_the_rounds_wins_and_the_retry_runs(path_between):
    """The person approves on the page (the webhook's link) or with the CLI while the client's
    form is open; the client then declines, too late: the first decision stands."""
    Hook.received.clear()
    hook = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    srv = start_server(config=config_text(extra=policy(f'webhook_url = "http://127.0.0.1:{hook.server_port}/hook"')))
    try:
        path = marker(f"mrtr-{path_between}")

        async def approve_elsewhere_then_decline(context, params):
            if path_between == "cli":
                ident = await pending_id(srv, path)
                done = await asyncio.to_thread(cli, srv, "approve", ident)
                assert done.returncode == 0, done.stderr
            else:
                for _ in range(WAIT_SECS * 10):
                    if Hook.received:
                        break
                    await asyncio.sleep(0.1)
                link = Hook.received[0]["approve_url"]
                async with httpx2.AsyncClient(timeout=30) as http:
                    nonce = form_nonce((await http.get(link)).text)
                    base, secret = link.split("?t=")[0], link.split("?t=")[1].split("&")[0]
                    done = await http.post(base, data={"t": secret, "nonce": nonce, "token": TOKENS["boss"][0],
                                                        "decision": "approve"})
                    assert done.status_code == 200, done.text
            return types.ElicitResult(action="decline")

        http, mcp = modern(srv, approve_elsewhere_then_decline)
        async with asyncio.timeout(WAIT_SECS * 2), http, mcp as client:
            result = await client.call_tool("run_command", {"argv": ["touch", str(path)]})
        assert not result.is_error, text_of(result)
        assert path.exists()
        decided = decision_of(srv, requested(srv, path)["approval_id"])
        assert decided["decision"] == "approved"
        assert decided["via"] == ("webhook" if path_between == "page" else "cli")
    finally:
        srv.stop()
        hook.shutdown()
        hook.server_close()


# Raw HTTP on the 2026-07-28 wire: what a client could send instead of the SDK's retry.

def meta(elicitation: bool = True) -> dict:
    capabilities = {"elicitation": {"form": {}}} if elicitation else {}
    return {"io.modelcontextprotocol/protocolVersion": V2026,
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": capabilities}


async def raw_call(server, http, arguments: dict, principal: str = "alice", state: str | None = None,
                   responses: dict | None = None, elicitation: bool = True) -> dict:
    params = {"name": "run_command", "arguments": arguments, "_meta": meta(elicitation)}
    if state is not None:
        params["requestState"] = state
    if responses is not None:
        params["inputResponses"] = responses
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": V2026, "Mcp-Method": "tools/call", "Mcp-Name": "run_command",
               **server.headers(principal)}
    return result_of(await http.post(server.mcp_url, content=json.dumps(body), headers=headers))


APPROVE = {"approval": {"action": "accept", "content": {"approve": True}}}


def altered(state: str) -> str:
    middle = len(state) // 2
    return state[:middle] + ("A" if state[middle] != "A" else "B") + state[middle + 1:]


def refusals(server) -> list[dict]:
    return [r for r in audit(server) if r["event"] == "approval_refused"]


async def test_altered_replayed_and_foreign_states_are_refused_and_the_right_retry_runs(mrtr_server):
    path, other = marker("mrtr-raw"), marker("mrtr-raw-other")
    args = {"argv": ["touch", str(path)]}
    async with asyncio.timeout(WAIT_SECS * 2), httpx2.AsyncClient(timeout=60) as http:
        first = await raw_call(mrtr_server, http, args)
        assert first["resultType"] == "input_required", first
        assert list(first["inputRequests"]) == ["approval"]
        assert first["inputRequests"]["approval"]["method"] == "elicitation/create"
        state = first["requestState"]
        ident = requested(mrtr_server, path)["approval_id"]
        before = len(refusals(mrtr_server))

        tampered = await raw_call(mrtr_server, http, args, state=altered(state), responses=APPROVE)
        assert tampered["isError"], tampered
        assert "not one this server issued" in tampered["content"][0]["text"]

        replayed = await raw_call(mrtr_server, http, {"argv": ["touch", str(other)]}, state=state,
                                  responses=APPROVE)
        assert replayed["isError"] and "issued for another call" in replayed["content"][0]["text"], replayed

        foreign = await raw_call(mrtr_server, http, args, principal="bob", state=state, responses=APPROVE)
        assert foreign["isError"] and "issued to another token" in foreign["content"][0]["text"], foreign

        assert not path.exists() and not other.exists()
        reasons = [r["reason"] for r in refusals(mrtr_server)[before:]]
        assert len(reasons) == 3 and all(reason.startswith("mrtr: ") for reason in reasons), reasons
        assert [r["approval_id"] for r in refusals(mrtr_server)[before:]][1:] == [ident, ident]
        assert not [r for r in audit(mrtr_server) if r["event"] == "approval_decided" and r["approval_id"] == ident]

        # A retry without answers is asked again: the same approval, a fresh state.
        again = await raw_call(mrtr_server, http, args, state=state)
        assert again["resultType"] == "input_required" and again["requestState"] != state
        assert len([r for r in audit(mrtr_server) if r["event"] == "approval_requested"
                    and r["approval_id"] == ident]) == 1

        # The near miss: the right token, the same arguments, the unaltered state.
        done = await raw_call(mrtr_server, http, args, state=again["requestState"], responses=APPROVE)
        assert not done.get("isError"), done
        assert done["structuredContent"]["exit_code"] == 0 and path.exists()
        path.unlink()

        # Used once: the same retry again runs nothing.
        replay = await raw_call(mrtr_server, http, args, state=again["requestState"], responses=APPROVE)
        assert replay["isError"] and "no pending approval" in replay["content"][0]["text"], replay
        assert not path.exists()
    decided = decision_of(mrtr_server, ident)
    assert (decided["via"], decided["decider"]) == ("elicitation", "client-elicitation:alice")


async def test_a_2026_client_without_elicitation_still_waits_for_the_page_or_cli(mrtr_server):
    path = marker("mrtr-no-elicitation")
    async with asyncio.timeout(WAIT_SECS * 2), httpx2.AsyncClient(timeout=120) as http:
        call = asyncio.create_task(raw_call(mrtr_server, http, {"argv": ["touch", str(path)]}, elicitation=False))
        ident = await pending_id(mrtr_server, path)
        done = await asyncio.to_thread(cli, mrtr_server, "deny", ident)
        assert done.returncode == 0, done.stderr
        result = await call
    assert result.get("resultType") != "input_required" and result["isError"], result
    assert f"approval {ident} was denied by unix:" in result["content"][0]["text"], result
    assert not path.exists()


async def test_job_start_is_approved_in_band_too(mrtr_server):
    async def approve(context, params):
        return types.ElicitResult(action="accept", content={"approve": True})

    path = marker("mrtr-job")
    http, mcp = modern(mrtr_server, approve)
    async with asyncio.timeout(WAIT_SECS), http, mcp as client:
        started = await client.call_tool("job_start", {"argv": ["touch", str(path)]})
        assert not started.is_error, text_of(started)
        assert started.structured_content["job_id"]
        while not path.exists():
            await asyncio.sleep(0.1)
    decided = decision_of(mrtr_server, requested(mrtr_server, path)["approval_id"])
    assert (decided["via"], decided["decider"]) == ("elicitation", "client-elicitation:alice")
