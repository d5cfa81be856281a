"""The MCP Apps confirmation view beside job_start and terminal_open, and an approver's view
(issue 14). job_start and terminal_open link ui://hostmcp/approval like run_command; in a real
Chromium the view approves a job_start (the job then runs and job_output reads its output) and
denies a terminal_open (no terminal, nothing started), showing for each what was asked and what
came of it (the job id and job_output, the refusal). An approver's view (boss, an admin: by
the page's rule) lists and decides another token's (alice's) waiting request, recorded as
mcp-app:boss, and stays open for it after its own call ended; its near miss: a plain token's view (bob) does not see that request, and
approval_decide with its id and a guessed secret is refused and audited as approval_refused.
Runs like test_approval_app.py (HOSTMCP_BROWSER_NODE_MODULES, HOSTMCP_NODE, /usr/bin/chromium)."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest

from conftest import config_text, start_server
from test_approval_app import URI, WAIT_SECS, Waiting, audit, client, decision_of, drive, marker, text_of

pytestmark = pytest.mark.anyio

CONFIG = '''
[approval]
timeout_secs = 120
app_view_tokens = ["alice", "bob", "boss"]

[policy]
default = "deny"

[[policy.allow]]
program = "/usr/bin/touch"
approve = true
approve_reason = "creates a marker file"

[[policy.allow]]
program = "/usr/bin/echo"
approve = true
approve_reason = "says something"
'''


@pytest.fixture(scope="module")
def tools_server():
    srv = start_server(config=config_text(extra=CONFIG))
    yield srv
    srv.stop()


def started_commands(server, word: str) -> list[dict]:
    return [r for r in audit(server) if r["event"] == "command_started" and word in json.dumps(r)]


async def test_job_start_and_terminal_open_link_the_view_for_the_model(tools_server):
    http, mcp = client(tools_server, apps=True)
    async with http, mcp as session:
        tools = {t.name: t.model_dump(by_alias=True) for t in (await session.list_tools()).tools}
    for name in ("run_command", "job_start", "terminal_open"):
        meta = tools[name]["_meta"]
        assert meta["ui"]["resourceUri"] == URI and meta["ui/resourceUri"] == URI, name
        assert "visibility" not in meta["ui"], f"the model calls {name}"
    # Near miss: the tools that read a job or a terminal wait for nobody and link nothing.
    for name in ("job_output", "terminal_read", "terminal_send"):
        assert not (tools[name].get("_meta") or {}).get("ui"), name


async def test_a_real_browser_approves_a_job_start_and_the_job_runs(tools_server):
    word = f"job-{secrets.token_hex(4)}"
    args = {"argv": ["echo", word]}
    report = await asyncio.to_thread(drive, tools_server, marker("unused"), "approve",
                                     HOSTMCP_TOOL="job_start", HOSTMCP_ARGS=json.dumps(args))
    shown = report["shown"]
    assert (shown["tool"], shown["kind"], shown["command"]) == ("job_start", "Start a background job",
                                                                json.dumps(args["argv"]))
    assert (shown["program"], shown["reason"], shown["principal"]) == ("/usr/bin/echo", "says something", "alice")
    assert report["decided"] == "approve"
    result = report["result"]
    assert not result["isError"], result
    job_id = result["structuredContent"]["job_id"]
    # The view shows the job, and what to call next, rather than an exit code.
    assert report["resultKind"] == "job" and report["resultTitle"] == f"Job {job_id} started"
    assert "job_output" in report["resultNext"] and job_id in report["resultNext"]
    assert report["toolCalls"]["job_start"] == 1 and report["toolCalls"]["approval_decide"] == 1
    decided = decision_of(tools_server, shown["id"])
    assert (decided["decision"], decided["via"], decided["decider"]) == ("approved", "mcp-app", "mcp-app:alice")
    # The job ran: its output is readable with job_output (another session of the same token).
    http, mcp = client(tools_server)
    async with http, mcp as session:
        output = await session.call_tool("job_output", {"job_id": job_id, "wait_secs": 20})
    assert not output.is_error, text_of(output)
    assert word in output.structured_content["stdout"], output.structured_content
    assert started_commands(tools_server, word), "command_started on record"


async def test_a_real_browser_denies_a_terminal_open_and_nothing_starts(tools_server):
    word = f"terminal-{secrets.token_hex(4)}"
    args = {"argv": ["echo", word]}
    report = await asyncio.to_thread(drive, tools_server, marker("unused"), "deny",
                                     HOSTMCP_TOOL="terminal_open", HOSTMCP_ARGS=json.dumps(args))
    shown = report["shown"]
    assert (shown["tool"], shown["kind"], shown["command"]) == ("terminal_open", "Open an interactive terminal",
                                                                json.dumps(args["argv"]))
    result = report["result"]
    assert result["isError"] and "denied by mcp-app:alice (via mcp-app)" in result["text"], result
    assert report["resultKind"] == "refused" and report["resultTitle"] == "The terminal did not open"
    assert report["resultNext"] is None
    decided = decision_of(tools_server, shown["id"])
    assert (decided["decision"], decided["via"], decided["decider"]) == ("denied", "mcp-app", "mcp-app:alice")
    assert not started_commands(tools_server, word), "a denied terminal starts nothing"


async def test_an_approvers_view_decides_another_tokens_request_in_a_real_browser(tools_server):
    theirs, own = marker("alices"), marker("boss-own")
    waiting = Waiting(tools_server, theirs, principal="alice")
    async with asyncio.timeout(WAIT_SECS * 4):
        task = asyncio.create_task(waiting.run())
        ident = await waiting.approval_id()
        # boss is an admin: an approver by the page's rule, and (policy) its own commands run
        # without approval. Its view opens beside its own run_command, which ends at once; the
        # view stays while alice's request waits, lists it, and boss approves it there.
        report = await asyncio.to_thread(drive, tools_server, own, "none", principal="boss",
                                         HOSTMCP_OTHER="alice", HOSTMCP_OTHER_DECISION="approve")
        await task
    other = report["other"]
    assert other["shown"]["id"] == ident and other["shown"]["principal"] == "alice"
    assert other["shown"]["own"] == "false" and other["shown"]["tool"] == "run_command"
    assert other["shown"]["kind"] == "Run a command (asked by another token: alice)"
    assert other["shown"]["command"] == json.dumps(["touch", str(theirs)])
    assert other["outcome"].startswith("Approved"), other
    assert not waiting.result.is_error, text_of(waiting.result)
    assert theirs.exists()
    decided = decision_of(tools_server, ident)
    assert (decided["decision"], decided["via"], decided["decider"]) == ("approved", "mcp-app", "mcp-app:boss")
    # boss's own call waited for nobody and its result reached the view.
    assert report["shown"] is None and not report["result"]["isError"] and own.exists()
    assert (report["resultKind"], report["resultTitle"]) == ("command", "The command ran: exit 0")
    assert report["toolCalls"]["approval_decide"] == 1


async def test_a_plain_tokens_view_neither_sees_nor_decides_another_tokens_request(tools_server):
    path = marker("plain")
    waiting = Waiting(tools_server, path, principal="alice")
    async with asyncio.timeout(WAIT_SECS * 2):
        task = asyncio.create_task(waiting.run())
        ident = await waiting.approval_id()
        http, mcp = client(tools_server, principal="bob", apps=True)
        async with http, mcp as session:
            pending = await session.call_tool("approval_pending", {})
            assert not pending.is_error, text_of(pending)
            assert pending.structured_content == {"requests": [], "approver": False}
            assert ident not in json.dumps(pending.model_dump(by_alias=True))
            guessed = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "approve",
                                                                   "view_secret": secrets.token_hex(32)})
            assert guessed.is_error and "no pending approval" in text_of(guessed), text_of(guessed)
        assert not task.done() and not path.exists()
        refused = [r for r in audit(tools_server) if r["event"] == "approval_refused" and r["approval_id"] == ident]
        assert len(refused) == 1 and refused[0]["principal"] == "bob", refused
        assert refused[0]["reason"].startswith("mcp-app:"), refused
        # Near miss: the approver's view (boss, by SDK this time) lists it and denies it.
        http, mcp = client(tools_server, principal="boss", apps=True)
        async with http, mcp as session:
            pending = await session.call_tool("approval_pending", {})
            assert pending.structured_content["approver"] is True
            [request] = [r for r in pending.structured_content["requests"] if r["id"] == ident]
            assert (request["principal"], request["own"], request["tool"]) == ("alice", False, "run_command")
            secret = pending.model_dump(by_alias=True)["_meta"]["hostmcp/viewSecrets"][ident]
            denied = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "deny",
                                                                 "view_secret": secret})
            assert not denied.is_error and denied.structured_content["decider"] == "mcp-app:boss"
        await task
    assert waiting.result.is_error and "denied by mcp-app:boss (via mcp-app)" in text_of(waiting.result)
    assert not path.exists()
