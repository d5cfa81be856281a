"""Run-as: when hostmcp runs as root, each token's commands run as its configured user,
and never as root unless configured so explicitly."""

from __future__ import annotations

import hashlib
import os

import pytest

from conftest import TOKENS, config_text, start_server
from mcp_clients import connect

pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")]


def tokens_with(run_as: dict[str, str]) -> str:
    text = ""
    for name, (token, role) in TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        extra = f'run_as = "{run_as[name]}"\n' if name in run_as else ""
        text += f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{extra}\n'
    return text + "[limits]\nauth_failures_per_minute = 100000\n"


async def whoami(server, principal: str):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool("run_command", {"command": 'id -un; id -G; echo "$HOME"'})


async def test_a_token_runs_as_its_user_and_the_default_is_explicit_root():
    server = start_server(config='run_as = "root"\n' + tokens_with({"alice": "nobody"}))
    try:
        alice = await whoami(server, "alice")
        assert alice.is_error is not True, alice.content[0].text
        name, groups, home = alice.structured_content["stdout"].splitlines()
        assert (name, home) == ("nobody", "/nonexistent")
        assert "0" not in groups.split(), "no root group left behind"
        bob = await whoami(server, "bob")
        assert bob.structured_content["stdout"].splitlines()[0] == "root"
    finally:
        server.stop()


async def test_without_a_configured_user_root_is_refused():
    server = start_server(config=tokens_with({"alice": "nobody"}))
    try:
        bob = await whoami(server, "bob")
        assert bob.is_error is True and "run_as" in bob.content[0].text
        alice = await whoami(server, "alice")
        assert alice.structured_content["stdout"].startswith("nobody\n")
        assert "runs as root" in server.log()
    finally:
        server.stop()
