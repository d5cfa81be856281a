"""Human approval of commands (issue 14): a rule with `approve = true` makes its commands wait
for a person, through a real client's elicitation, the one-time page (plain HTTP and a real
Chromium), `hostmcp approvals` on the host, and a webhook's link; the timeout denies. Every
path's decision and decider is in the audit log, and each refusal has its near miss."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from conftest import BIN, TOKENS, config_text, start_server
from mcp_clients import http_client

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("HOSTMCP_CHROMIUM", "/usr/bin/chromium")
# Bounds for every wait below (the machine may be loaded).
WAIT_SECS = 60


def policy(extra: str = "") -> str:
    return f'''
[approval]
timeout_secs = 120
{extra}

[policy]
default = "deny"

[[policy.allow]]
program = "/usr/bin/touch"
approve = true
approve_reason = "creates a marker file"

[[policy.allow]]
program = "/usr/bin/echo"

[[policy.allow]]
program = "/usr/bin/tee"
approve = true
approve_reason = "writes what it reads to a file"
'''


@pytest.fixture(scope="module")
def approval_server():
    srv = start_server(config=config_text(extra=policy()))
    yield srv
    srv.stop()


def marker(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix="hostmcp-approval-")) / name


def audit(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def decision_of(server, approval_id: str) -> dict:
    decided = [r for r in audit(server) if r["event"] == "approval_decided" and r["approval_id"] == approval_id]
    assert len(decided) == 1, decided
    return decided[0]


def shown_command(path: Path) -> str:
    """How an argv is shown to the approver: as a JSON list, each argument exact."""
    return json.dumps(["touch", str(path)])


def text_of(result) -> str:
    return "".join(block.text for block in result.content if getattr(block, "text", None))


def client(server, principal="alice", elicitation=None):
    http = http_client(server.headers(principal))
    return http, Client(streamable_http_client(server.mcp_url, http_client=http), mode="legacy",
                        elicitation_callback=elicitation)


class Waiting:
    """A run_command call (from a client without elicitation) that waits for approval, with
    the progress messages it received."""

    def __init__(self, server, path: Path, principal="alice", arguments=None):
        self.server, self.path, self.principal = server, path, principal
        self.arguments = arguments or {"argv": ["touch", str(path)]}
        self.messages: list[str] = []
        self.result = None

    async def progress(self, progress, total, message):
        if message:
            self.messages.append(message)

    async def run(self):
        http, mcp = client(self.server, self.principal)
        async with http, mcp as session:
            self.result = await session.call_tool(
                "run_command", self.arguments,
                progress_callback=self.progress)

    async def url(self) -> str:
        for _ in range(WAIT_SECS * 10):
            for message in self.messages:
                found = re.search(r"(http://127\.0\.0\.1:\d+/approvals/ap-[0-9a-f]+\?t=[0-9a-f]+)", message)
                if found:
                    return found.group(1)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no approval URL in progress: {self.messages}")


def approval_id(url: str) -> str:
    return re.search(r"/approvals/(ap-[0-9a-f]+)", url).group(1)


def form_nonce(page: str) -> str:
    return html.unescape(re.search(r'name="nonce" value="([^"]+)"', page).group(1))


async def test_an_elicitation_approves_and_the_command_runs(approval_server):
    asked = []

    async def approve(context, params):
        asked.append(params)
        return types.ElicitResult(action="accept", content={"approve": True})

    path = marker("approved")
    http, mcp = client(approval_server, elicitation=approve)
    async with http, mcp as session:
        result = await session.call_tool("run_command", {"argv": ["touch", str(path)]})
    assert not result.is_error, text_of(result)
    assert path.exists()
    (params,) = asked
    assert shown_command(path) in params.message
    for shown in ["program: /usr/bin/touch", "runs as:", "rule: allow[0]", "reason: creates a marker file",
                  "asked by token: alice", "stdin: none"]:
        assert shown in params.message, params.message
    schema = params.requested_schema
    assert list(schema["properties"]) == ["approve"] and schema["properties"]["approve"]["type"] == "boolean"
    requested = [r for r in audit(approval_server) if r["event"] == "approval_requested"
                 and r.get("argv") == ["touch", str(path)]]
    assert len(requested) == 1 and requested[0]["rule"] == "allow[0]" and requested[0]["principal"] == "alice"
    assert "stdin" not in requested[0], requested[0]
    decided = decision_of(approval_server, requested[0]["approval_id"])
    assert (decided["decision"], decided["via"], decided["decider"]) == (
        "approved", "elicitation", "client-elicitation:alice")
    # Near miss: a rule without approve asks nothing.
    async with http_client(approval_server.headers()) as http2, Client(
            streamable_http_client(approval_server.mcp_url, http_client=http2), mode="legacy",
            elicitation_callback=approve) as session:
        result = await session.call_tool("run_command", {"argv": ["echo", "hi"]})
    assert not result.is_error and len(asked) == 1


async def test_an_elicitation_denies_and_nothing_runs(approval_server):
    async def decline(context, params):
        return types.ElicitResult(action="decline")

    async def say_no(context, params):
        return types.ElicitResult(action="accept", content={"approve": False})

    for answer in [decline, say_no]:
        path = marker("denied")
        http, mcp = client(approval_server, elicitation=answer)
        async with http, mcp as session:
            result = await session.call_tool("run_command", {"argv": ["touch", str(path)]})
        assert result.is_error
        assert "was denied by client-elicitation:alice" in text_of(result), text_of(result)
        assert not path.exists()


async def test_without_elicitation_the_url_comes_and_the_page_decides_once(approval_server):
    path = marker("page")
    waiting = Waiting(approval_server, path)
    async with asyncio.timeout(WAIT_SECS * 2):
        task = asyncio.create_task(waiting.run())
        url = await waiting.url()
        ident = approval_id(url)
        base = url.split("?")[0]
        async with httpx2.AsyncClient(timeout=30) as http:
            page = await http.get(url)
            assert page.status_code == 200
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
            assert shown_command(path) in html.unescape(page.text)
            # Near misses: a wrong secret, no secret.
            assert (await http.get(base + "?t=" + "0" * 64)).status_code == 404
            assert (await http.get(base)).status_code == 404
            secret = url.split("?t=")[1]
            # Missing CSRF nonce: refused, nothing decided.
            no_nonce = await http.post(base, data={"t": secret, "token": TOKENS["boss"][0], "decision": "approve"})
            assert no_nonce.status_code == 400
            # The requesting token cannot approve its own command; an operator is no approver.
            for who in ["alice", "bob"]:
                nonce = form_nonce((await http.get(url)).text)
                refused = await http.post(base, data={"t": secret, "nonce": nonce, "token": TOKENS[who][0],
                                                       "decision": "approve"})
                assert refused.status_code == 403, refused.text
            assert not task.done() and not path.exists()
            # An admin approves.
            nonce = form_nonce((await http.get(url)).text)
            done = await http.post(base, data={"t": secret, "nonce": nonce, "token": TOKENS["boss"][0],
                                                "decision": "approve"})
            assert done.status_code == 200 and "Approved" in done.text
            await task
            # Used once: the URL is gone.
            assert (await http.get(url)).status_code == 404
    assert not waiting.result.is_error, text_of(waiting.result)
    assert path.exists()
    decided = decision_of(approval_server, ident)
    assert (decided["decision"], decided["via"], decided["decider"]) == ("approved", "page", "boss")
    refusals = [r for r in audit(approval_server) if r["event"] == "approval_refused" and r["approval_id"] == ident]
    assert len(refusals) == 2


def browser_decides(url: str, decision: str) -> dict:
    modules = os.environ.get("HOSTMCP_BROWSER_NODE_MODULES")
    node = os.environ.get("HOSTMCP_NODE")
    if not modules or not node:
        pytest.fail("HOSTMCP_BROWSER_NODE_MODULES / HOSTMCP_NODE are not set: run through .ci/run")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.mkdtemp(prefix="hostmcp-approval-home-"),
           "HOSTMCP_BROWSER_NODE_MODULES": modules, "HOSTMCP_APPROVAL_URL": url,
           "HOSTMCP_TOKEN": TOKENS["boss"][0], "HOSTMCP_DECISION": decision, "HOSTMCP_CHROMIUM": CHROMIUM}
    done = subprocess.run([node, str(HERE / "approval" / "page.mjs")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_a_real_browser_decides_on_the_page(approval_server, decision):
    path = marker(f"browser-{decision}")
    waiting = Waiting(approval_server, path)
    async with asyncio.timeout(WAIT_SECS * 4):
        task = asyncio.create_task(waiting.run())
        url = await waiting.url()
        report = await asyncio.to_thread(browser_decides, url, decision)
        await task
    assert report["status"] == 200 and "frame-ancestors 'none'" in report["csp"]
    assert report["command"] == shown_command(path) and report["tool"] == "run_command"
    assert report["stdin"] == "none"
    assert report["rule"] == "allow[0]" and report["reason"] == "creates a marker file"
    assert report["title"] == ("Approved" if decision == "approve" else "Denied"), json.dumps({k: report.get(k) for k in ("answer_status", "title", "error")})
    assert report["again_status"] == 404
    assert waiting.result.is_error == (decision == "deny")
    assert path.exists() == (decision == "approve")
    decided = decision_of(approval_server, approval_id(url))
    assert (decided["via"], decided["decider"]) == ("page", "boss")


def cli(server, *args) -> subprocess.CompletedProcess:
    socket = server.state_dir / "hostmcp" / "approvals.sock"
    return subprocess.run([BIN, "approvals", "--socket", str(socket), *args], capture_output=True, text=True,
                          timeout=30)


async def pending_id(server, path: Path) -> str:
    for _ in range(WAIT_SECS * 10):
        listed = await asyncio.to_thread(cli, server, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        mine = [p for p in json.loads(listed.stdout or "[]") if str(path) in p["command"]]
        if mine:
            assert mine[0]["tool"] == "run_command", mine[0]
            assert mine[0]["stdin"] is None, mine[0]
            return mine[0]["id"]
        await asyncio.sleep(0.2)
    raise AssertionError("the request never showed in `hostmcp approvals list`")


@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_the_cli_decides(approval_server, decision):
    socket = approval_server.state_dir / "hostmcp" / "approvals.sock"
    assert socket.stat().st_mode & 0o777 == 0o600
    path = marker(f"cli-{decision}")
    waiting = Waiting(approval_server, path)
    async with asyncio.timeout(WAIT_SECS * 2):
        task = asyncio.create_task(waiting.run())
        ident = await pending_id(approval_server, path)
        # Near miss: an id that is not pending is refused.
        unknown = await asyncio.to_thread(cli, approval_server, decision, "ap-0000000000000000")
        assert unknown.returncode != 0 and "no pending approval" in unknown.stderr
        done = await asyncio.to_thread(cli, approval_server, decision, ident)
        assert done.returncode == 0, done.stderr
        await task
    again = cli(approval_server, "approve", ident)
    assert again.returncode != 0, "decided once"
    assert waiting.result.is_error == (decision == "deny")
    assert path.exists() == (decision == "approve")
    decided = decision_of(approval_server, ident)
    assert decided["via"] == "cli" and decided["decider"].startswith("unix:")
    assert decided["decision"] == ("approved" if decision == "approve" else "denied")


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: each POSTed body in the class's `received` (a subclass with a list
    of its own keeps its bodies apart)."""
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_a_webhook_gets_the_request_and_its_link_approves():
    hook = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    srv = start_server(config=config_text(extra=policy(f'webhook_url = "http://127.0.0.1:{hook.server_port}/hook"')))
    try:
        path = marker("webhook")
        waiting = Waiting(srv, path)
        async with asyncio.timeout(WAIT_SECS * 2):
            task = asyncio.create_task(waiting.run())
            while not Receiver.received:
                await asyncio.sleep(0.1)
            body = Receiver.received[0]
            assert body["command"] == shown_command(path) and body["principal"] == "alice"
            assert body["rule"] == "allow[0]" and body["reason"] == "creates a marker file"
            assert body["tool"] == "run_command"
            assert "stdin" in body and body["stdin"] is None
            link = body["approve_url"]
            page_url = await waiting.url()
            assert link.split("&")[0] != page_url, "the webhook has its own secret"
            async with httpx2.AsyncClient(timeout=30) as http:
                nonce = form_nonce((await http.get(link)).text)
                base, secret = link.split("?t=")[0], link.split("?t=")[1].split("&")[0]
                done = await http.post(base, data={"t": secret, "nonce": nonce, "token": TOKENS["boss"][0],
                                                    "decision": "approve"})
                assert done.status_code == 200
            await task
        assert not waiting.result.is_error and path.exists()
        decided = decision_of(srv, body["approval_id"])
        assert (decided["via"], decided["decider"]) == ("webhook", "boss")
        assert secret not in srv.log(), "the one-time secret is never logged"
    finally:
        srv.stop()
        hook.shutdown()
        hook.server_close()


CRON_LINE = "* * * * * root /tmp/evil\n"


def stdin_shown(stdin: bytes) -> dict:
    return {"bytes": len(stdin), "sha256": hashlib.sha256(stdin).hexdigest(), "preview": stdin.decode()}


async def test_every_path_shows_the_stdin_the_command_will_read():
    """F1: a command given stdin (tee writing a cron line) is approved with that stdin in view on
    every path: the form message, the webhook's body, `approvals list` (--json and text), the
    page in a real browser; the audit record keeps its size and digest, never its content."""
    hook = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    srv = start_server(config=config_text(extra=policy(f'webhook_url = "http://127.0.0.1:{hook.server_port}/hook"')))
    try:
        want = stdin_shown(CRON_LINE.encode())
        path = marker("stdin-page")
        waiting = Waiting(srv, path, arguments={"argv": ["tee", str(path)], "stdin": CRON_LINE})
        async with asyncio.timeout(WAIT_SECS * 4):
            task = asyncio.create_task(waiting.run())
            url = await waiting.url()
            ident = approval_id(url)
            while not [b for b in Receiver.received if b["approval_id"] == ident]:
                await asyncio.sleep(0.1)
            (body,) = [b for b in Receiver.received if b["approval_id"] == ident]
            assert body["stdin"] == want, body
            listed = await asyncio.to_thread(cli, srv, "list", "--json")
            (mine,) = [p for p in json.loads(listed.stdout) if p["id"] == ident]
            assert mine["stdin"] == want, mine
            text = await asyncio.to_thread(cli, srv, "list")
            assert f"stdin {want['bytes']} bytes" in text.stdout, text.stdout
            report = await asyncio.to_thread(browser_decides, url, "approve")
            await task
        assert report["stdin"] == f"{want['bytes']} bytes, sha256 {want['sha256']}\n{CRON_LINE}", report
        assert not waiting.result.is_error and path.read_text() == CRON_LINE

        asked = []

        async def deny(context, params):
            asked.append(params.message)
            return types.ElicitResult(action="accept", content={"approve": False})

        denied = marker("stdin-elicitation")
        http, mcp = client(srv, elicitation=deny)
        async with http, mcp as session:
            result = await session.call_tool("run_command", {"argv": ["tee", str(denied)], "stdin": CRON_LINE})
        assert result.is_error and not denied.exists()
        (message,) = asked
        assert f"stdin: {want['bytes']} bytes, sha256 {want['sha256']}:\n{CRON_LINE}" in message, message

        requested = [r for r in audit(srv) if r["event"] == "approval_requested"]
        assert len(requested) == 2
        for record in requested:
            assert record["stdin"] == {"bytes": want["bytes"], "sha256": want["sha256"]}, record
        log = (srv.state_dir / "hostmcp" / "audit.jsonl").read_text()
        assert "/tmp/evil" not in log, "the audit log never stores stdin's content"
    finally:
        srv.stop()
        hook.shutdown()
        hook.server_close()


async def test_the_timeout_denies():
    srv = start_server(config=config_text(extra=policy().replace("timeout_secs = 120", "timeout_secs = 2")))
    try:
        path = marker("timeout")
        waiting = Waiting(srv, path)
        async with asyncio.timeout(WAIT_SECS):
            await waiting.run()
        assert waiting.result.is_error
        assert "nobody approved" in text_of(waiting.result) and "within 2 s" in text_of(waiting.result)
        assert "/approvals/ap-" in text_of(waiting.result), "the URL is in the text the model reads"
        assert not path.exists()
        decided = [r for r in audit(srv) if r["event"] == "approval_decided"]
        assert [(d["decision"], d["via"]) for d in decided] == [("timed_out", "timeout")]
        started = [r for r in audit(srv) if r["event"] == "command_started"]
        assert started == []
    finally:
        srv.stop()


async def test_wrong_tokens_on_the_page_are_rate_limited_and_a_right_one_works_after_the_window():
    srv = start_server(config=config_text(extra=policy("page_failures = 2\npage_failure_window_secs = 8")))
    try:
        path = marker("budget")
        waiting = Waiting(srv, path)
        async with asyncio.timeout(WAIT_SECS * 2):
            task = asyncio.create_task(waiting.run())
            url = await waiting.url()
            ident = approval_id(url)
            base, secret = url.split("?")[0], url.split("?t=")[1]

            async def submit(http, token):
                nonce = form_nonce((await http.get(url)).text)
                return await http.post(base, data={"t": secret, "nonce": nonce, "token": token,
                                                   "decision": "approve"})

            elsewhere = httpx2.AsyncHTTPTransport(local_address="127.0.0.2")
            async with httpx2.AsyncClient(timeout=30) as http, \
                    httpx2.AsyncClient(timeout=30, transport=elsewhere) as other:
                for wrong in ["not-a-token", TOKENS["bob"][0]]:
                    assert (await submit(http, wrong)).status_code == 403
                # Over budget: even an approver's token is not looked at.
                over = await submit(http, TOKENS["boss"][0])
                assert over.status_code == 429, over.text
                retry = int(over.headers["retry-after"])
                assert 1 <= retry <= 8
                # The approval's own budget holds from another address too.
                from_elsewhere = await submit(other, TOKENS["boss"][0])
                assert from_elsewhere.status_code == 429, from_elsewhere.text
                assert not task.done() and not path.exists()
                # Near miss: after the window the approver's token decides.
                await asyncio.sleep(retry + 1)
                done = await submit(http, TOKENS["boss"][0])
                assert done.status_code == 200 and "Approved" in done.text, done.text
            await task
        assert not waiting.result.is_error and path.exists()
        refusals = [r["reason"] for r in audit(srv) if r["event"] == "approval_refused" and r["approval_id"] == ident]
        assert len(refusals) == 4, refusals
        assert refusals[2].startswith("too many failed submissions for this address"), refusals
        assert refusals[3].startswith("too many failed submissions for this approval"), refusals
        assert TOKENS["bob"][0] not in (srv.state_dir / "hostmcp" / "audit.jsonl").read_text()
        assert decision_of(srv, ident)["decider"] == "boss"
    finally:
        srv.stop()


async def logged(srv, text: str) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while text not in srv.log():
        assert time.monotonic() < deadline and srv.process.poll() is None, srv.log()
        await asyncio.sleep(0.1)


async def test_sighup_applies_the_approval_table_and_a_broken_one_keeps_the_old():
    srv = start_server(config=config_text(extra=policy()))
    config = srv.state_dir.parent / "config.toml"
    try:
        config.write_text(config_text(extra=policy().replace("timeout_secs = 120", "timeout_secs = 0")))
        srv.process.send_signal(signal.SIGHUP)
        await logged(srv, "reload failed")
        kept_path = marker("reload-kept")
        kept = Waiting(srv, kept_path)
        async with asyncio.timeout(WAIT_SECS * 2):
            kept_task = asyncio.create_task(kept.run())
            kept_id = await pending_id(srv, kept_path)
            config.write_text(config_text(extra=policy().replace("timeout_secs = 120", "timeout_secs = 2")))
            srv.process.send_signal(signal.SIGHUP)
            await logged(srv, "[approval] reloaded")
            fresh = Waiting(srv, marker("reload-new"))
            await fresh.run()
            assert fresh.result.is_error and "within 2 s" in text_of(fresh.result), text_of(fresh.result)
            # Waiting approvals keep the timeout they started with.
            assert not kept_task.done()
            denied = await asyncio.to_thread(cli, srv, "deny", kept_id)
            assert denied.returncode == 0, denied.stderr
            await kept_task
        assert kept.result.is_error and "denied" in text_of(kept.result)
        records = audit(srv)
        timeouts = {r["approval_id"]: r["timeout_secs"] for r in records if r["event"] == "approval_requested"}
        # Near miss: the broken reload changed nothing, the request after it still got 120 s.
        assert timeouts[kept_id] == 120 and sorted(timeouts.values()) == [2, 120], timeouts
        refused = [r for r in records if r["event"] == "config_reload_refused"]
        assert len(refused) == 1 and "timeout_secs" in refused[0]["reason"], refused
        assert len([r for r in records if r["event"] == "config_reloaded"]) == 1
    finally:
        srv.stop()
