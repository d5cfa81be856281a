"""Resources and prompts through the Python SDK against the real binary: the host resources with
their MIME types, the file template through the file roots' containment, a host://load
subscription that delivers updates on a session (streamable HTTP and legacy SSE) and whose task
ends once the session is gone, and the diagnosis prompts."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from conftest import config_text, start_server
from mcp_clients import connect, http_client

# resources/subscribe is a session-era method; the SDK warns that 2026-07-28 replaced it.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:resources/.*subscribe is removed")]


@pytest.fixture(scope="module")
def root():
    base = Path(tempfile.mkdtemp(prefix="hostmcp-resources-")).resolve()
    (base / "root").mkdir()
    (base / "root" / "motd").write_text("hello from the root\n")
    (base / "outside.txt").write_text("SECRET\n")
    return base


@pytest.fixture(scope="module")
def server(root):
    srv = start_server(config=config_text() + f'\n[[files.roots]]\npath = "{root / "root"}"\n')
    yield srv
    srv.stop()


async def test_host_resources_are_listed_and_read_with_their_mime_types(server):
    async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
        assert client.server_capabilities.resources.subscribe is True
        listed = {str(r.uri): r.mime_type for r in (await client.list_resources()).resources}
        assert listed == {"host://info": "application/json", "host://load": "application/json",
                          "host://os-release": "text/plain",
                          "ui://hostmcp/dashboard": "text/html;profile=mcp-app",
                          "ui://hostmcp/approval": "text/html;profile=mcp-app"}
        load = (await client.read_resource("host://load")).contents[0]
        assert load.mime_type == "application/json"
        figures = json.loads(load.text)
        proc = Path("/proc/loadavg").read_text().split()
        assert abs(figures["load15"] - float(proc[2])) < 1.0
        info = json.loads((await client.read_resource("host://info")).contents[0].text)
        assert info["hostname"] == Path("/proc/sys/kernel/hostname").read_text().strip()
        os_release = (await client.read_resource("host://os-release")).contents[0]
        assert os_release.text == Path("/etc/os-release").read_text()


async def test_the_file_template_reads_inside_the_roots_only(server, root):
    async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["file:///{path}"]
        motd = (await client.read_resource(f"file://{root}/root/motd")).contents[0]
        assert motd.text == "hello from the root\n"
        # The near misses: out of the root by `..`, and a file beside it.
        for uri in (f"file://{root}/root/../outside.txt", f"file://{root}/outside.txt"):
            with pytest.raises(Exception) as refused:
                await client.read_resource(uri)
            assert "SECRET" not in str(refused.value)


async def subscribed_updates(client_factory, server) -> list[str]:
    """Subscribe to host://load and collect update URIs for up to 10 s (stops at two)."""
    updates: list[str] = []

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    async with client_factory(on_message) as client:
        await client.subscribe_resource("host://load")
        with anyio.move_on_after(10):
            while len(updates) < 2:
                await anyio.sleep(0.1)
        await client.unsubscribe_resource("host://load")
    return updates


def ended_subscriptions(server) -> int:
    return server.log().count("resource subscription ended")


async def test_a_subscription_gets_updates_and_its_task_ends_with_the_session(server):
    headers = server.headers()

    def streamable(handler):
        return _streamable(server, headers, handler)

    def sse(handler):
        return Client(sse_client(server.sse_url, headers=headers), mode="legacy", message_handler=handler)

    for factory in (streamable, sse):
        before = ended_subscriptions(server)
        updates = await subscribed_updates(factory, server)
        assert updates[:2] == ["host://load", "host://load"], factory.__name__
        assert ended_subscriptions(server) >= before + 1 or _wait_ended(server, before + 1)

    # The client goes away without unsubscribing: the task ends within a few intervals.
    before = ended_subscriptions(server)
    async with _streamable(server, headers, None) as client:
        await client.subscribe_resource("host://load")
        assert "resource subscription started" in server.log()
    assert _wait_ended(server, before + 1), server.log()[-2000:]
    assert "client gone" in server.log()


def _wait_ended(server, count: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ended_subscriptions(server) >= count:
            return True
        time.sleep(0.2)
    return False


class _streamable:
    """A session-era streamable HTTP client with a message handler."""

    def __init__(self, server, headers, handler):
        self.server, self.headers, self.handler = server, headers, handler

    async def __aenter__(self):
        self.http = http_client(self.headers)
        await self.http.__aenter__()
        self.client = Client(streamable_http_client(self.server.mcp_url, http_client=self.http),
                             mode="legacy", message_handler=self.handler)
        return await self.client.__aenter__()

    async def __aexit__(self, *exc):
        await self.client.__aexit__(*exc)
        await self.http.__aexit__(*exc)


async def test_the_stateless_era_has_no_subscribe_and_reads_still_work(server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "host://load", "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/subscribe",
               "Mcp-Name": "host://load", **server.headers()}
    response = httpx2.post(server.mcp_url, json=body, headers=headers, timeout=30)
    # 2026-07-28 has no resources/subscribe (subscriptions/listen replaced it).
    assert response.json()["error"]["code"] == -32601, response.text
    async with connect(server, "streamable", "2026-07-28") as client:
        load = (await client.read_resource("host://load")).contents[0]
        assert json.loads(load.text)["threads"] > 0


LISTEN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
               "io.modelcontextprotocol/clientCapabilities": {}}


def _listen(server, request_id, notifications, read_timeout: float):
    """Open a raw 2026-07-28 subscriptions/listen stream (SEP-2575) as the reader."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": "subscriptions/listen",
            "params": {"_meta": LISTEN_META, "notifications": notifications}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen",
               **server.headers("reader")}
    timeout = httpx2.Timeout(10, read=read_timeout)
    return httpx2.stream("POST", server.mcp_url, json=body, headers=headers, timeout=timeout)


def _messages(response):
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield json.loads(line[len("data:"):])


def test_a_listen_stream_acks_then_carries_tagged_load_updates_and_ends_with_the_client(server):
    before = ended_subscriptions(server)
    with _listen(server, "sub-1", {"resourceSubscriptions": ["host://load", "host://info"],
                                   "toolsListChanged": True}, read_timeout=15) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = _messages(response)
        ack = next(messages)
        # The ack comes first, names what was accepted (only host://load is subscribable, and no
        # list ever changes), and carries the subscription id: the listen request's id.
        assert ack["method"] == "notifications/subscriptions/acknowledged", ack
        assert ack["params"]["notifications"] == {"resourceSubscriptions": ["host://load"]}
        assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"
        updates = [next(messages) for _ in range(2)]
        for update in updates:
            assert update["method"] == "notifications/resources/updated", update
            assert update["params"]["uri"] == "host://load"
            assert update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"
        assert "subscriber=reader:listen#" in server.log()
    # The client closed the stream: the updates end with it, no task left behind.
    assert _wait_ended(server, before + 1), server.log()[-2000:]
    assert "stream closed" in server.log()


def test_a_listen_stream_sends_nothing_the_filter_did_not_ask_for(server):
    # The near miss: the same stream for a resource that cannot be subscribed to and a list
    # that never changes is acknowledged with an empty filter and then stays quiet (the load
    # updates come every 2 s to a stream that asked for them).
    before = ended_subscriptions(server)
    with _listen(server, 9, {"resourceSubscriptions": ["host://info"], "promptsListChanged": True},
                 read_timeout=5) as response:
        messages = _messages(response)
        ack = next(messages)
        assert ack["method"] == "notifications/subscriptions/acknowledged", ack
        assert ack["params"]["notifications"] == {}
        assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 9
        with pytest.raises(httpx2.ReadTimeout):
            extra = next(messages)
            pytest.fail(f"an unrequested notification arrived: {extra}")
    assert ended_subscriptions(server) == before


async def test_prompts_are_listed_and_name_the_tools_in_order(server):
    async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"diagnose_high_load", "diagnose_full_disk", "diagnose_failing_service",
                                "diagnose_slow_host"}
        assert [a.name for a in prompts["diagnose_failing_service"].arguments] == ["unit"]
        got = await client.get_prompt("diagnose_failing_service", {"unit": "nginx.service"})
        text = got.messages[0].content.text
        assert text.index("1. service_status with unit=nginx.service") < text.index("log_query")
        disk = (await client.get_prompt("diagnose_full_disk", {"path": "/var"})).messages[0].content.text
        assert "disk_usage with path=/var" in disk and "file_list" in disk
        with pytest.raises(Exception):
            await client.get_prompt("diagnose_failing_service", {})


async def test_stdio_subscriptions_get_updates_too(tmp_path):
    from mcp import StdioServerParameters

    from conftest import BIN
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    params = StdioServerParameters(command=BIN, args=["stdio"], env=env)
    updates = await subscribed_updates(lambda handler: Client(params, mode="legacy", message_handler=handler), None)
    assert updates[:2] == ["host://load", "host://load"]


async def test_resource_reads_spend_the_tool_call_budget_per_principal(root):
    srv = start_server(config=config_text(limits={"tool_calls_per_minute": 3})
                       + f'\n[[files.roots]]\npath = "{root / "root"}"\n')
    try:
        async with connect(srv, "streamable", "legacy", headers=srv.headers("reader")) as client:
            assert json.loads((await client.read_resource("host://load")).contents[0].text)["threads"] > 0
            await client.read_resource(f"file://{root}/root/motd")
            await client.call_tool("host_info", {})
            # The fourth call this minute, a resource read, is refused like a fourth tool call.
            with pytest.raises(Exception) as limited:
                await client.read_resource(f"file://{root}/root/motd")
            assert "rate limited" in str(limited.value)
        # The near miss: another principal has its own budget.
        async with connect(srv, "streamable", "legacy", headers=srv.headers("alice")) as other:
            motd = (await other.read_resource(f"file://{root}/root/motd")).contents[0]
            assert motd.text == "hello from the root\n"
        records = [json.loads(line) for line in
                   (srv.state_dir / "hostmcp" / "audit.jsonl").read_text().splitlines()]
        reads = [r for r in records if r["event"] == "file_access" and r.get("tool") == "resources/read"]
        assert [r["principal"] for r in reads] == ["reader", "alice"]
        assert reads[0]["resolved"] == str(root / "root" / "motd")
        denied = [r for r in records if r["event"] == "tool_denied" and r["rule"] == "tool_calls_per_minute"]
        assert [(r["principal"], r["tool"]) for r in denied] == [("reader", "resources/read")]
    finally:
        srv.stop()
