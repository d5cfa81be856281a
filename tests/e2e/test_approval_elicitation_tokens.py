"""`[approval] elicitation_tokens`: only the tokens it names are asked to approve their own
commands through their client by form (`elicitation/create` in a session, `input_required`
on the 2026-07-28 wire). A token left out waits for the page, the CLI, the webhook or an
approver's view even when its client declared form elicitation and would answer yes: whoever
holds a token can write such a client, so the form cannot stand for a person there."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from mcp import types

from conftest import config_text, start_server
from test_approval import (WAIT_SECS, audit, cli, client, decision_of, marker, pending_id, policy,
                           text_of)
from test_approval_mrtr import raw_call

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def limited_server():
    srv = start_server(config=config_text(extra=policy('elicitation_tokens = ["alice"]')))
    yield srv
    srv.stop()


def yes_counting(asked: list):
    """An elicitation callback that answers every form with yes; `asked` gets each request's
    mode (`form`, or `url` for the page's URL, which approves nothing by itself)."""
    async def approve(context, params):
        asked.append(getattr(params, "mode", None) or ("url" if getattr(params, "url", None) else "form"))
        return types.ElicitResult(action="accept", content={"approve": True})
    return approve


async def test_a_token_left_out_of_elicitation_tokens_is_not_asked_by_form(limited_server):
    asked: list[str] = []
    path = marker("left-out")
    http, mcp = client(limited_server, principal="bob", elicitation=yes_counting(asked))
    async with asyncio.timeout(WAIT_SECS * 2), http, mcp as session:
        call = asyncio.create_task(session.call_tool("run_command", {"argv": ["touch", str(path)]}))
        ident = await pending_id(limited_server, path)
        denied = await asyncio.to_thread(cli, limited_server, "deny", ident)
        assert denied.returncode == 0, denied.stderr
        result = await call
    # bob's client declared both modes: it is offered the page's URL, never the form.
    assert "form" not in asked, f"bob was asked by form although elicitation_tokens leaves him out: {asked}"
    assert asked == ["url"], asked
    assert result.is_error and f"approval {ident} was denied by unix:" in text_of(result), text_of(result)
    assert not path.exists()
    assert decision_of(limited_server, ident)["via"] == "cli"

    # Near miss: alice, named, is asked by form and her answer runs the command.
    path = marker("named")
    http, mcp = client(limited_server, principal="alice", elicitation=yes_counting(asked))
    async with asyncio.timeout(WAIT_SECS), http, mcp as session:
        result = await session.call_tool("run_command", {"argv": ["touch", str(path)]})
    assert not result.is_error, text_of(result)
    assert asked == ["url", "form"] and path.exists()


async def test_the_same_holds_in_band_on_the_2026_07_28_wire(limited_server):
    path = marker("left-out-2026")
    async with asyncio.timeout(WAIT_SECS * 2), httpx2.AsyncClient(timeout=120) as http:
        # bob declares form elicitation, yet his call is not answered `input_required`: it waits.
        call = asyncio.create_task(raw_call(limited_server, http, {"argv": ["touch", str(path)]},
                                            principal="bob"))
        ident = await pending_id(limited_server, path)
        assert not call.done()
        denied = await asyncio.to_thread(cli, limited_server, "deny", ident)
        assert denied.returncode == 0, denied.stderr
        result = await call
        assert result.get("resultType") != "input_required" and result["isError"], result
        assert not path.exists()

        # Near miss: alice, named, gets the form in band.
        path = marker("named-2026")
        first = await raw_call(limited_server, http, {"argv": ["touch", str(path)]})
        assert first.get("resultType") == "input_required", first
        state = first["requestState"]
        retry = await raw_call(limited_server, http, {"argv": ["touch", str(path)]}, state=state,
                               responses={"approval": {"action": "accept", "content": {"approve": True}}})
        assert not retry.get("isError"), retry
        assert path.exists()
    requested = [r for r in audit(limited_server) if r["event"] == "approval_requested"
                 and r.get("argv") == ["touch", str(path)]]
    assert len(requested) == 1
    decided = decision_of(limited_server, requested[0]["approval_id"])
    assert (decided["via"], decided["decider"]) == ("elicitation", "client-elicitation:alice")
