"""Interactive terminals through the Python SDK: a REPL, `top`, Ctrl-C, ownership, and nothing
left running after close, idle timeout, the session's end and the server's shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from conftest import config_text, start_server
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect

pytestmark = pytest.mark.anyio


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session is `sid`: a terminal's program and all it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state, ppid, pgrp, session.
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(sid: int, seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def read(client, terminal_id: str, **wait) -> dict:
    result = await client.call_tool("terminal_read", {"terminal_id": terminal_id, **wait})
    assert result.is_error is not True, result.content[0].text
    return result.structured_content


async def open_terminal(client, **args) -> dict:
    result = await client.call_tool("terminal_open", args)
    assert result.is_error is not True, result.content[0].text
    return result.structured_content


async def send(client, terminal_id: str, text: str = "", keys: list[str] | None = None, **extra):
    result = await client.call_tool("terminal_send", {"terminal_id": terminal_id, "text": text,
                                                      "keys": keys or [], **extra})
    assert result.is_error is not True, result.content[0].text


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_python_repl_is_driven_to_compute_a_value(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode) as client:
        opened = await open_terminal(client, argv=["python3", "-q"])
        terminal, pid = opened["terminal_id"], opened["pid"]
        assert (await read(client, terminal, wait_for=r"(?m)^>>>$"))["matched"] is True
        await send(client, terminal, "print(6 * 7)", ["Enter"])
        screen = await read(client, terminal, wait_for=r"(?m)^42$")
        assert screen["matched"] is True, screen["screen"]
        assert screen["exit"] is None and screen["cursor_row"] >= 2
        closed = await client.call_tool("terminal_close", {"terminal_id": terminal})
        assert closed.is_error is not True
        assert closed.structured_content["reason"] in ("closed", "exited")
        assert wait_gone(pid) == []


async def test_top_is_rendered_and_quits_with_q(shared_server):
    async with connect(shared_server, "streamable", "legacy") as client:
        opened = await open_terminal(client, argv=["top", "-d", "1"], rows=30, cols=120)
        terminal, pid = opened["terminal_id"], opened["pid"]
        screen = await read(client, terminal, wait_for="load average")
        assert screen["matched"] is True, screen["screen"]
        assert (screen["rows"], screen["cols"]) == (30, 120)
        assert "PID" in screen["screen"] and "COMMAND" in screen["screen"], screen["screen"]
        await send(client, terminal, "q")
        for _ in range(40):
            screen = await read(client, terminal, settle_ms=200, timeout_ms=1000)
            if screen["exit"] is not None:
                break
        assert screen["exit"] == {"exit_code": 0, "signal": None, "reason": "exited"}, screen
        await client.call_tool("terminal_close", {"terminal_id": terminal})
        assert wait_gone(pid) == []


async def test_ctrl_c_interrupts_a_long_command_in_a_shell(shared_server):
    async with connect(shared_server, "streamable", "legacy") as client:
        opened = await open_terminal(client, argv=["bash", "--norc", "--noprofile", "-i"],
                                     env={"PS1": "prompt$ "})
        terminal, pid = opened["terminal_id"], opened["pid"]
        assert (await read(client, terminal, wait_for=r"(?m)^prompt\$$"))["matched"] is True
        await send(client, terminal, "sleep 100", ["Enter"])
        await read(client, terminal, settle_ms=500, timeout_ms=3000)
        sleeping = [p for p in session_members(pid) if Path(f"/proc/{p}/comm").read_text().strip() == "sleep"]
        assert len(sleeping) == 1
        started = time.monotonic()
        await send(client, terminal, "", ["Ctrl-C"])
        await send(client, terminal, "echo status=$?", ["Enter"])
        screen = await read(client, terminal, wait_for=r"(?m)^status=130$")
        assert screen["matched"] is True, screen["screen"]
        assert time.monotonic() - started < 20
        assert screen["exit"] is None, "the shell itself survives Ctrl-C"
        assert not any(p in session_members(pid) for p in sleeping)
        await client.call_tool("terminal_close", {"terminal_id": terminal})
        assert wait_gone(pid) == []


async def test_a_terminal_of_another_principal_is_refused_like_an_unknown_one(shared_server):
    async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("alice")) as alice:
        opened = await open_terminal(alice, argv=["cat"])
        terminal = opened["terminal_id"]
        async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("bob")) as bob:
            for tool, args in (("terminal_read", {}), ("terminal_send", {"text": "x"}),
                               ("terminal_resize", {"rows": 10, "cols": 40}), ("terminal_close", {})):
                foreign = await bob.call_tool(tool, {"terminal_id": terminal, **args})
                unknown = await bob.call_tool(tool, {"terminal_id": "term_000000000000000000000000", **args})
                assert foreign.is_error is True and "no terminal with id" in foreign.content[0].text
                assert foreign.content[0].text.replace(terminal, "ID") == \
                    unknown.content[0].text.replace("term_000000000000000000000000", "ID")
        # Near miss: the owner reads it and types into it.
        await send(alice, terminal, "mine", ["Enter"])
        screen = await read(alice, terminal, wait_for="mine\\s+mine")
        assert screen["matched"] is True
        await alice.call_tool("terminal_close", {"terminal_id": terminal})
        assert wait_gone(opened["pid"]) == []


async def test_input_is_audited_and_redact_keeps_only_its_length(server):
    async with connect(server, "streamable", "legacy") as client:
        opened = await open_terminal(client, argv=["cat"])
        terminal = opened["terminal_id"]
        await send(client, terminal, "visible-text", ["Enter"])
        await send(client, terminal, "secret-passphrase", ["Enter"], redact=True)
        await read(client, terminal, wait_for="secret-passphrase\\s+secret-passphrase")
        await client.call_tool("terminal_close", {"terminal_id": terminal})
    audit = ""
    for _ in range(50):
        audit = (server.state_dir / "hostmcp" / "audit.jsonl").read_text()
        if '"command_finished"' in audit:
            break
        time.sleep(0.1)
    assert '"visible-text"' in audit and '"terminal_input"' in audit
    assert "secret-passphrase" not in audit
    assert '"redacted":true' in audit and '"bytes":18' in audit
    assert '"command_started"' in audit and '"command_finished"' in audit


async def test_the_limit_per_principal_is_a_clear_error():
    srv = start_server(config=config_text("\n[terminals]\nmax_per_principal = 1\n"))
    try:
        async with connect(srv, "streamable", "legacy") as client:
            first = await open_terminal(client, argv=["cat"])
            refused = await client.call_tool("terminal_open", {"argv": ["cat"]})
            assert refused.is_error is True and "already have 1 terminals" in refused.content[0].text
            # Near miss: once the first is closed there is room again.
            await client.call_tool("terminal_close", {"terminal_id": first["terminal_id"]})
            second = await open_terminal(client, argv=["cat"])
            await client.call_tool("terminal_close", {"terminal_id": second["terminal_id"]})
    finally:
        srv.stop()


async def test_nothing_is_left_after_the_idle_timeout():
    srv = start_server(config=config_text("\n[terminals]\nidle_timeout_secs = 2\n"))
    try:
        async with connect(srv, "streamable", "legacy") as client:
            opened = await open_terminal(client, command="sleep 300 & sleep 301")
            pid = opened["pid"]
            await anyio.sleep(0.5)
            assert len(session_members(pid)) >= 2
            assert wait_gone(pid, 30) == []
            screen = await read(client, opened["terminal_id"])
            assert screen["exit"]["reason"] == "idle_timeout"
    finally:
        srv.stop()


@pytest.mark.parametrize(("name", "transport", "mode"), [t for t in TRANSPORTS if t[0] != "mcp-2026"],
                         ids=[i for i in TRANSPORT_IDS if i != "mcp-2026"])
async def test_nothing_is_left_after_the_session_ends(shared_server, name, transport, mode):
    async with connect(shared_server, transport, mode) as client:
        opened = await open_terminal(client, command="sleep 300 & sleep 301")
        pid = opened["pid"]
        await anyio.sleep(0.5)
        assert len(session_members(pid)) >= 2
    assert wait_gone(pid, 30) == []
    audit = (shared_server.state_dir / "hostmcp" / "audit.jsonl").read_text()
    assert '"command_finished"' in audit


async def test_nothing_is_left_after_the_server_shuts_down():
    srv = start_server()
    try:
        async with connect(srv, "streamable", "2026-07-28") as client:
            opened = await open_terminal(client, argv=["bash", "--norc", "--noprofile", "-i"])
            pid = opened["pid"]
            await send(client, opened["terminal_id"], "sleep 300 & sleep 301", ["Enter"])
            await read(client, opened["terminal_id"], settle_ms=500, timeout_ms=3000)
            assert len(session_members(pid)) >= 3
            # Near miss: the terminal outlives the call and (without sessions) the client.
        assert len(session_members(pid)) >= 3
        assert srv.stop() == 0
        assert wait_gone(pid, 20) == []
    finally:
        srv.stop()
