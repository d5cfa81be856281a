"""`hostmcp stdio` with the Python SDK's stdio client: same tool, logs on stderr only."""

from __future__ import annotations

import pytest
from mcp import Client, StdioServerParameters

from conftest import BIN

pytestmark = pytest.mark.anyio


async def test_stdio_serves_run_command():
    params = StdioServerParameters(command=BIN, args=["stdio"], env={"PATH": "/usr/bin:/bin", "HOSTMCP_LOG": "debug"})
    async with Client(params, mode="legacy") as client:
        assert "run_command" in [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("run_command", {"argv": ["echo", "over stdio"]})
        assert result.structured_content["stdout"] == "over stdio\n"
        failed = await client.call_tool("run_command", {"command": "exit 2"})
        assert failed.is_error is True


async def test_stdio_runs_beside_a_server_with_its_own_audit_file(server):
    """A running `serve` holds the default audit log; stdio on the same account still starts."""
    import os
    env = {"PATH": "/usr/bin:/bin", "HOME": str(server.state_dir.parent), "XDG_STATE_HOME": str(server.state_dir)}
    async with Client(StdioServerParameters(command=BIN, args=["stdio"], env=env), mode="legacy") as client:
        result = await client.call_tool("run_command", {"argv": ["echo", "beside serve"]})
        assert result.structured_content["stdout"] == "beside serve\n"
    audit = server.state_dir / "hostmcp" / "audit-stdio.jsonl"
    assert audit.exists() and "beside serve" in audit.read_text()
    assert (server.state_dir / "hostmcp" / "audit.jsonl").exists()
    assert os.stat(audit).st_mode & 0o077 == 0
