"""The file tools through the Python SDK against the real binary: reads, listings and searches
under a read-only root, refusals of paths that leave it (`..`, a symlink out) beside their allowed
twins (a symlink inside), an atomic write guarded by the sha256 a read returned, the role gate on
file_write, and the `file_access` audit record with each resolved path."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest

from conftest import config_text, start_server
from mcp_clients import TRANSPORT_IDS, TRANSPORTS, connect

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tree():
    base = Path(tempfile.mkdtemp(prefix="hostmcp-files-")).resolve()
    (base / "ro" / "etc").mkdir(parents=True)
    (base / "rw").mkdir()
    (base / "ro" / "etc" / "app.conf").write_text("".join(f"line {n}\n" for n in range(1, 51)))
    (base / "ro" / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02\x03")
    (base / "secret.txt").write_text("SECRET\n")
    os.symlink("etc/app.conf", base / "ro" / "link_in")
    os.symlink("../secret.txt", base / "ro" / "link_out")
    (base / "rw" / "notes.txt").write_text("first\n")
    os.chmod(base / "rw" / "notes.txt", 0o640)
    return base


@pytest.fixture(scope="module")
def files_server(tree):
    roots = (f'\n[[files.roots]]\npath = "{tree / "ro"}"\n'
             f'\n[[files.roots]]\npath = "{tree / "rw"}"\nwrite = true\n')
    srv = start_server(config=config_text() + roots)
    yield srv
    srv.stop()


def audit_records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] == "file_access"]


@pytest.mark.parametrize(("name", "transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_reader_lists_reads_and_searches_under_a_root(files_server, tree, name, transport, mode):
    async with connect(files_server, transport, mode, headers=files_server.headers("reader")) as client:
        listed = await client.call_tool("file_list", {"path": str(tree / "ro")})
        assert listed.is_error is not True, listed.content[0].text
        entries = {e["name"]: e for e in listed.structured_content["entries"]}
        assert entries["etc"]["type"] == "dir" and entries["link_out"]["type"] == "symlink"
        assert entries["link_out"]["target"] == "../secret.txt"
        lines = await client.call_tool("file_read", {"path": str(tree / "ro/etc/app.conf"), "line": 10, "lines": 2})
        assert lines.structured_content["content"] == "line 10\nline 11\n"
        assert lines.structured_content["next"] == 12
        assert "lines 10-11" in lines.content[0].text
        binary = await client.call_tool("file_read", {"path": str(tree / "ro/blob.bin")})
        assert binary.structured_content["binary"] is True and binary.structured_content["content"] is None
        assert "not shown" in binary.content[0].text
        found = await client.call_tool("file_search", {"path": str(tree / "ro"), "content": "line 42"})
        assert [(m["path"], m["line"]) for m in found.structured_content["matches"]] == [
            (str(tree / "ro/etc/app.conf"), 42)]


async def test_paths_that_leave_the_root_are_refused_beside_their_allowed_twins(files_server, tree):
    async with connect(files_server, "streamable", "legacy", headers=files_server.headers("reader")) as client:
        pairs = [
            (str(tree / "ro/etc/../../secret.txt"), str(tree / "ro/etc/../etc/app.conf")),
            (str(tree / "ro/link_out"), str(tree / "ro/link_in")),
            (str(tree / "secret.txt"), str(tree / "ro/etc/app.conf")),
        ]
        for refused, allowed in pairs:
            result = await client.call_tool("file_read", {"path": refused})
            assert result.is_error is True, refused
            assert "SECRET" not in result.content[0].text
            twin = await client.call_tool("file_read", {"path": allowed})
            assert twin.is_error is not True, twin.content[0].text
            assert twin.structured_content["content"].startswith("line 1\n")
            assert twin.structured_content["path"] == str(tree / "ro/etc/app.conf")
    records = audit_records(files_server)
    escapes = [r for r in records if r["requested"] == str(tree / "ro/link_out")]
    assert escapes and escapes[-1]["refused"] == "escape" and escapes[-1]["resolved"] is None
    followed = [r for r in records if r["requested"] == str(tree / "ro/link_in")]
    assert followed[-1]["resolved"] == str(tree / "ro/etc/app.conf") and followed[-1]["refused"] is None
    assert followed[-1]["principal"] == "reader"


async def test_an_operator_writes_atomically_with_the_hash_guard_and_a_reader_cannot(files_server, tree):
    path = str(tree / "rw/notes.txt")
    async with connect(files_server, "streamable", "legacy", headers=files_server.headers("reader")) as reader:
        names = [tool.name for tool in (await reader.list_tools()).tools]
        assert "file_write" not in names and "file_read" in names
        refused = await reader.call_tool("file_write", {"path": path, "content": "reader\n"})
        assert refused.is_error is True and "needs the operator role" in refused.content[0].text
    async with connect(files_server, "streamable", "legacy") as alice:
        read = await alice.call_tool("file_read", {"path": path})
        digest = read.structured_content["sha256"]
        assert digest == hashlib.sha256(b"first\n").hexdigest()
        # Someone edits the file after our read: our guarded write is refused.
        Path(path).write_text("theirs\n")
        stale = await alice.call_tool("file_write", {"path": path, "content": "ours\n", "expected_sha256": digest})
        assert stale.is_error is True and "changed" in stale.content[0].text
        assert Path(path).read_text() == "theirs\n"
        # The twin: with the current hash the write goes through and keeps the mode.
        current = hashlib.sha256(b"theirs\n").hexdigest()
        written = await alice.call_tool("file_write", {"path": path, "content": "ours\n", "expected_sha256": current})
        assert written.is_error is not True, written.content[0].text
        assert written.structured_content["previous_sha256"] == current
        assert Path(path).read_text() == "ours\n"
        assert oct(os.stat(path).st_mode & 0o7777) == "0o640"
        assert [p.name for p in (tree / "rw").iterdir() if "hostmcp" in p.name] == []
        ro = await alice.call_tool("file_write", {"path": str(tree / "ro/etc/app.conf"), "content": "x"})
        assert ro.is_error is True and "read-only root" in ro.content[0].text
    writes = [r for r in audit_records(files_server) if r["operation"] == "write" and r["refused"] is None]
    assert writes[-1]["principal"] == "alice" and writes[-1]["resolved"] == path
    assert writes[-1]["sha256"] == hashlib.sha256(b"ours\n").hexdigest()


async def test_without_roots_the_file_tools_say_so(shared_server):
    async with connect(shared_server, "streamable", "legacy", headers=shared_server.headers("reader")) as client:
        result = await client.call_tool("file_read", {"path": "/etc/hostname"})
        assert result.is_error is True
        assert "no file roots are configured" in result.content[0].text


@pytest.fixture(scope="module")
def wide_server():
    """A server whose root (the temp directory) holds its own config file and state."""
    top = Path(tempfile.gettempdir()).resolve()
    srv = start_server(config=config_text() + f'\n[[files.roots]]\npath = "{top}"\n')
    yield srv
    srv.stop()


async def test_the_servers_own_files_are_refused_by_identity_and_a_copy_reads(wide_server):
    workdir = wide_server.state_dir.parent.resolve()
    config = workdir / "config.toml"
    audit = wide_server.state_dir.resolve() / "hostmcp" / "audit.jsonl"
    beside = Path(tempfile.mkdtemp(prefix="hostmcp-beside-")).resolve()
    os.link(config, beside / "alias.toml")
    (beside / "copy.toml").write_text(config.read_text())
    async with connect(wide_server, "streamable", "legacy", headers=wide_server.headers("reader")) as client:
        for refused in (config, audit, beside / "alias.toml", workdir / "state/hostmcp/../hostmcp/audit.jsonl"):
            result = await client.call_tool("file_read", {"path": str(refused)})
            assert result.is_error is True, refused
            assert "hostmcp's own files" in result.content[0].text, result.content[0].text
            with pytest.raises(Exception) as resource:
                await client.read_resource(f"file://{refused}")
            assert "own files" in str(resource.value)
        found = await client.call_tool("file_search", {"path": str(beside), "content": "sha256"})
        assert [m["path"] for m in found.structured_content["matches"]][:1] == [str(beside / "copy.toml")]
        assert all("alias" not in m["path"] for m in found.structured_content["matches"])
        # The twins: a copy of the config, by tool and by resource.
        copy = await client.call_tool("file_read", {"path": str(beside / "copy.toml")})
        assert copy.is_error is not True and copy.structured_content["content"] == config.read_text()
        contents = (await client.read_resource(f"file://{beside}/copy.toml")).contents[0]
        assert contents.text == config.read_text()
    refusals = [r for r in audit_records(wide_server) if r["refused"] == "server_file"]
    assert len(refusals) >= 8


async def test_a_fifo_is_refused_without_being_opened_and_a_file_beside_it_reads(files_server, tree):
    fifo = tree / "ro" / "pipe"
    os.mkfifo(fifo)
    async with connect(files_server, "streamable", "legacy", headers=files_server.headers("reader")) as client:
        result = await client.call_tool("file_read", {"path": str(fifo)})
        assert result.is_error is True and "is a FIFO, not a regular file" in result.content[0].text
        twin = await client.call_tool("file_read", {"path": str(tree / "ro/etc/app.conf"), "line": 1, "lines": 1})
        assert twin.structured_content["content"] == "line 1\n"
        # A partial read does not hash the whole file unless asked; asked, it does.
        assert twin.structured_content["sha256"] is None
        asked = await client.call_tool("file_read", {"path": str(tree / "ro/etc/app.conf"), "line": 1, "lines": 1,
                                                     "sha256": True})
        expected = hashlib.sha256((tree / "ro/etc/app.conf").read_bytes()).hexdigest()
        assert asked.structured_content["sha256"] == expected
    fifo.unlink()


async def test_log_query_file_reads_are_audited_with_their_resolved_path(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("2026-01-01T00:00:00Z INFO started\n")
    (tmp_path / "other.log").write_text("not configured\n")
    srv = start_server(config=config_text(f'\n[logs]\nfiles = ["{log}"]\n'))
    try:
        async with connect(srv, "streamable", "legacy", headers=srv.headers("reader")) as client:
            read = await client.call_tool("log_query", {"source": str(log)})
            assert read.is_error is not True, read.content[0].text
            # The near miss: a file not configured is refused before anything is read.
            unlisted = await client.call_tool("log_query", {"source": str(tmp_path / "other.log")})
            assert unlisted.is_error is True
        records = [r for r in audit_records(srv) if r.get("tool") == "log_query"]
        assert [(r["principal"], r["requested"], r["resolved"], r["refused"]) for r in records] == [
            ("reader", str(log), str(log), None)]
    finally:
        srv.stop()
