"""The MCP Apps confirmation view (issue 14): a run_command that waits for approval is approved
or denied in the view ui://hostmcp/approval, through the app-only tools approval_pending and
approval_decide. The view is served as a resource; the tools are hidden from the model
(visibility ["app"]), refused to a client that renders no apps, to a token not named in
[approval] app_view_tokens, and without the view's one-time secret; each refusal has its near
miss. A real Chromium runs the view inside a host page built from the official ext-apps
AppBridge (approval_app/drive.mjs) and approves or denies; the audit log records the decider
as "mcp-app:<token>". The browser test needs HOSTMCP_BROWSER_NODE_MODULES and HOSTMCP_NODE
(scripts/install-test-deps.sh) and /usr/bin/chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from mcp import Client
from mcp.client import advertise
from mcp.client.streamable_http import streamable_http_client

from conftest import TOKENS, config_text, start_server
from mcp_clients import http_client

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("HOSTMCP_CHROMIUM", "/usr/bin/chromium")
URI = "ui://hostmcp/approval"
MIME = "text/html;profile=mcp-app"
EXTENSION = "io.modelcontextprotocol/ui"
WAIT_SECS = 60

CONFIG = '''
[approval]
timeout_secs = 120
app_view_tokens = ["alice"]

[policy]
default = "deny"

[[policy.allow]]
program = "/usr/bin/touch"
approve = true
approve_reason = "creates a marker file"
'''


@pytest.fixture(scope="module")
def app_server():
    srv = start_server(config=config_text(extra=CONFIG))
    yield srv
    srv.stop()


def marker(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix="hostmcp-approval-app-")) / name


def audit(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def decision_of(server, approval_id: str) -> dict:
    decided = [r for r in audit(server) if r["event"] == "approval_decided" and r["approval_id"] == approval_id]
    assert len(decided) == 1, decided
    return decided[0]


def text_of(result) -> str:
    return "".join(block.text for block in result.content if getattr(block, "text", None))


def client(server, principal="alice", apps=False):
    """A client of `principal`; with `apps` it declares that it renders MCP Apps views."""
    http = http_client(server.headers(principal))
    extensions = [advertise(EXTENSION, {"mimeTypes": [MIME]})] if apps else None
    return http, Client(streamable_http_client(server.mcp_url, http_client=http), mode="legacy",
                        extensions=extensions)


class Waiting:
    """A run_command (from a client that renders no apps and has no elicitation) waiting for
    approval, with its progress messages; `tool` and `arguments` name another call."""

    def __init__(self, server, path: Path, principal="alice", tool="run_command", arguments=None):
        self.server, self.path, self.principal = server, path, principal
        self.tool = tool
        self.arguments = arguments or {"argv": ["touch", str(path)]}
        self.messages: list[str] = []
        self.result = None

    async def progress(self, progress, total, message):
        if message:
            self.messages.append(message)

    async def run(self):
        http, mcp = client(self.server, self.principal)
        async with http, mcp as session:
            self.result = await session.call_tool(self.tool, self.arguments, progress_callback=self.progress)

    async def approval_id(self) -> str:
        for _ in range(WAIT_SECS * 10):
            for message in self.messages:
                found = re.search(r"approval (ap-[0-9a-f]+)", message)
                if found:
                    return found.group(1)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no approval id in progress: {self.messages}")


async def test_the_view_is_served_as_a_resource_and_linked_from_run_command(app_server):
    http, mcp = client(app_server, apps=True)
    async with http, mcp as session:
        listed = {r.uri: r for r in (await session.list_resources()).resources}
        assert listed[URI].mime_type == MIME
        read = await session.read_resource(URI)
        content = read.contents[0]
        assert content.mime_type == MIME
        assert content.text.startswith("<!DOCTYPE html>")
        assert "default-src 'none'" in content.text and "connect-src 'none'" in content.text
        meta = content.model_dump(by_alias=True)["_meta"]["ui"]
        assert meta["csp"] == {"connectDomains": [], "resourceDomains": [], "frameDomains": [],
                               "baseUriDomains": []}
        tools = {t.name: t.model_dump(by_alias=True) for t in (await session.list_tools()).tools}
    assert tools["run_command"]["_meta"]["ui"]["resourceUri"] == URI
    assert "visibility" not in tools["run_command"]["_meta"]["ui"], "the model calls run_command"
    for name in ("approval_pending", "approval_decide"):
        assert tools[name]["_meta"]["ui"]["visibility"] == ["app"], name
    # A client that renders no apps is not even shown them (its model would be the caller).
    http, mcp = client(app_server)
    async with http, mcp as session:
        plain = [t.name for t in (await session.list_tools()).tools]
    assert "run_command" in plain and not [name for name in plain if name.startswith("approval_")], plain


async def test_the_models_own_calls_are_refused_and_the_views_approve(app_server):
    path = marker("approved")
    waiting = Waiting(app_server, path)
    async with asyncio.timeout(WAIT_SECS * 2):
        task = asyncio.create_task(waiting.run())
        ident = await waiting.approval_id()
        # The model's own call, from a client that renders no apps: refused even though it
        # knows the id (the progress text names it) and holds the requesting token.
        http, mcp = client(app_server)
        async with http, mcp as session:
            listed = await session.call_tool("approval_pending", {})
            assert listed.is_error and "did not declare that it renders MCP Apps" in text_of(listed)
            decided = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "approve",
                                                                   "view_secret": "0" * 64})
            assert decided.is_error and "did not declare" in text_of(decided)
        # A client that says it renders apps but has no view secret: refused too.
        http, mcp = client(app_server, apps=True)
        async with http, mcp as session:
            for secret in ["", "0" * 64]:
                refused = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "approve",
                                                                      "view_secret": secret})
                assert refused.is_error and "no pending approval" in text_of(refused), text_of(refused)
        # A token the server does not name in app_view_tokens: refused (bob has nothing pending
        # either, but the refusal comes first).
        http, mcp = client(app_server, principal="bob", apps=True)
        async with http, mcp as session:
            bobs = await session.call_tool("approval_pending", {})
            assert bobs.is_error and "app_view_tokens" in text_of(bobs)
        assert not task.done() and not path.exists()
        # Near miss: the view's call, which gets the secret from approval_pending's _meta.
        http, mcp = client(app_server, apps=True)
        async with http, mcp as session:
            pending = await session.call_tool("approval_pending", {})
            assert not pending.is_error, text_of(pending)
            [request] = [r for r in pending.structured_content["requests"] if r["id"] == ident]
            assert request["argv"] == ["touch", str(path)]
            assert (request["program"], request["rule"], request["reason"], request["principal"]) == (
                "/usr/bin/touch", "allow[0]", "creates a marker file", "alice")
            assert 0 < request["expires_in_secs"] <= 120
            secret = pending.model_dump(by_alias=True)["_meta"]["hostmcp/viewSecrets"][ident]
            # The secret is in _meta only, never in the text or the structured content.
            assert secret not in text_of(pending) and secret not in json.dumps(pending.structured_content)
            approved = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "approve",
                                                                   "view_secret": secret})
            assert not approved.is_error, text_of(approved)
            assert approved.structured_content["decider"] == "mcp-app:alice"
            # Decided once: the same click again is refused.
            again = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "deny",
                                                                "view_secret": secret})
            assert again.is_error
        await task
    assert not waiting.result.is_error, text_of(waiting.result)
    assert path.exists()
    decided = decision_of(app_server, ident)
    assert (decided["decision"], decided["via"], decided["decider"]) == ("approved", "mcp-app", "mcp-app:alice")
    refusals = [r for r in audit(app_server) if r["event"] == "approval_refused" and r["approval_id"] == ident]
    assert len(refusals) >= 4, refusals
    assert not any(secret in json.dumps(record) for record in audit(app_server))
    assert secret not in app_server.log()


async def test_the_view_denies_and_nothing_runs(app_server):
    path = marker("denied")
    waiting = Waiting(app_server, path)
    async with asyncio.timeout(WAIT_SECS * 2):
        task = asyncio.create_task(waiting.run())
        ident = await waiting.approval_id()
        http, mcp = client(app_server, apps=True)
        async with http, mcp as session:
            pending = await session.call_tool("approval_pending", {})
            secret = pending.model_dump(by_alias=True)["_meta"]["hostmcp/viewSecrets"][ident]
            denied = await session.call_tool("approval_decide", {"approval_id": ident, "decision": "deny",
                                                                 "view_secret": secret})
            assert not denied.is_error, text_of(denied)
        await task
    assert waiting.result.is_error and "denied by mcp-app:alice (via mcp-app)" in text_of(waiting.result)
    assert not path.exists()
    decided = decision_of(app_server, ident)
    assert (decided["decision"], decided["via"], decided["decider"]) == ("denied", "mcp-app", "mcp-app:alice")


def drive(server, path: Path, decision: str, principal="alice", **extra: str) -> dict:
    """Run drive.mjs as `principal`'s host; `extra` adds its optional settings (HOSTMCP_TOOL,
    HOSTMCP_ARGS, HOSTMCP_OTHER, HOSTMCP_OTHER_DECISION)."""
    modules = os.environ.get("HOSTMCP_BROWSER_NODE_MODULES")
    node = os.environ.get("HOSTMCP_NODE")
    if not modules or not node:
        pytest.fail("HOSTMCP_BROWSER_NODE_MODULES / HOSTMCP_NODE are not set: run through .ci/run")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": tempfile.mkdtemp(prefix="hostmcp-approval-app-home-"),
           "HOSTMCP_BROWSER_NODE_MODULES": modules, "HOSTMCP_MCP_URL": server.mcp_url,
           "HOSTMCP_TOKEN": TOKENS[principal][0], "HOSTMCP_CHROMIUM": CHROMIUM,
           "HOSTMCP_DECISION": decision, "HOSTMCP_MARKER": str(path), **extra}
    # drive.mjs bounds each wait (45 s) and has its own watchdog (150 s).
    done = subprocess.run([node, str(HERE / "approval_app" / "drive.mjs")], env=env, capture_output=True,
                          text=True, timeout=200)
    assert done.returncode == 0, f"drive.mjs failed ({done.returncode}):\n{done.stderr}\n{server.log()[-3000:]}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_a_real_browser_decides_in_the_view(app_server, decision):
    path = marker(f"browser-{decision}")
    report = await asyncio.to_thread(drive, app_server, path, decision)
    shown = report["shown"]
    assert shown["command"] == json.dumps(["touch", str(path)])
    assert (shown["program"], shown["rule"], shown["reason"], shown["principal"]) == (
        "/usr/bin/touch", "allow[0]", "creates a marker file", "alice")
    # As root, conftest's config names run_as = "root" (hostmcp refuses commands otherwise).
    assert shown["workingDir"] == "(the server's)"
    assert shown["runAs"] == ("root" if os.geteuid() == 0 else "(the server's user)")
    assert re.fullmatch(r"\d+ s", shown["expires"]) and 0 < int(shown["expires"].split()[0]) <= 120
    assert report["decided"] == decision
    assert (shown["tool"], shown["own"], shown["kind"]) == ("run_command", "true", "Run a command")
    assert report["resultKind"] == ("command" if decision == "approve" else "refused")
    # The waiting call ended as decided, and its result reached the view.
    assert report["result"]["isError"] == (decision == "deny"), report["result"]
    assert report["viewResult"] == ("ok" if decision == "approve" else "error")
    assert path.exists() == (decision == "approve")
    decided = decision_of(app_server, shown["id"])
    assert (decided["decision"], decided["via"], decided["decider"]) == (
        "approved" if decision == "approve" else "denied", "mcp-app", "mcp-app:alice")
    # The view called only the two app-only tools through the host; the host page called
    # run_command (as a model's turn would).
    assert report["toolCalls"]["approval_decide"] == 1
    assert report["toolCalls"]["approval_pending"] >= 1
    assert report["toolCalls"]["run_command"] == 1
    # What the host offers its model: run_command, and neither app-only tool.
    assert "run_command" in report["modelTools"]
    assert not [name for name in report["modelTools"] if name.startswith("approval_")], report["modelTools"]
    # The view loaded nothing itself.
    assert all(r["frameDepth"] < 2 for r in report["requests"]), report["requests"]
