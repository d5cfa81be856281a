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
