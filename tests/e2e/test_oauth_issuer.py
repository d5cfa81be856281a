"""hostmcp as the issuer of a second hostmcp (issue 12): server A runs the embedded
authorization server (`--oauth`) and issues an access token by the flow of test_oauth.py
(register, consent with a hostmcp token, code, token); servers B run in resource-server
mode with `[[auth.issuers]]` naming A (plain http allowed on loopback), mapping A's `role`
claim, keys found by A's RFC 8414 metadata. Near misses beside their allowed twins: B with
the default audience (its own MCP URL, from --public-url) refuses A's token, which names
A's resource, while B with A's resource as audience accepts it; B's protected-resource
metadata names A, while a server without issuers serves none (401 like any unknown path) and its 401 names none; an
issuer without audience and without a public URL is a configuration error naming the fix.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx2
import pytest

from conftest import BIN, config_text, start_server
from mcp_clients import connect
from test_oauth import free_port, start_on_port, tokens_for

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PRM = "/.well-known/oauth-protected-resource"


def issuer_table(issuer: str, audience: str | None) -> str:
    audience_line = f'audience = ["{audience}"]\n' if audience else ""
    return f"""
[[auth.issuers]]
name = "hostmcp-a"
issuer = "{issuer}"
{audience_line}role_claim = "role"
jwks_min_refresh_secs = 1

[auth.issuers.roles]
operator = "operator"
read = "read"
"""


def start_b(issuer: str, audience: str | None):
    """A resource server on a port chosen first, whose public URL names that port."""
    return start_on_port_with(lambda port: (["--public-url", f"http://127.0.0.1:{port}"],
                                            config_text(issuer_table(issuer, audience))))


def start_on_port_with(make):
    last = None
    for _ in range(5):
        port = free_port()
        args, config = make(port)
        try:
            srv = start_server(["--listen", f"127.0.0.1:{port}", *args], config=config)
        except RuntimeError as error:  # the port was taken in between: try another
            last = error
            continue
        srv.port = port
        return srv
    raise last


@pytest.fixture(scope="module")
def a():
    srv = start_on_port()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def b_default(a):
    """B whose audience is the default: its own MCP URL."""
    srv = start_b(f"{a.base}/", None)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def b_for_a(a):
    """B that accepts tokens naming A's resource."""
    srv = start_b(f"{a.base}/", a.mcp_url)
    yield srv
    srv.stop()


def status(server, token: str) -> int:
    return httpx2.post(server.mcp_url, json=INIT,
                       headers={**ACCEPT, "Authorization": f"Bearer {token}"}).status_code


async def test_a_token_of_hostmcp_a_lists_and_calls_on_b(a, b_for_a):
    _, body = tokens_for(a, "alice")
    token = body["access_token"]
    assert status(a, token) == 200, "A accepts its own token"
    async with connect(b_for_a, "streamable", "legacy",
                       headers={"Authorization": f"Bearer {token}"}) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" in names
        result = await client.call_tool("run_command", {"argv": ["echo", "issued-by-a"]})
        assert result.is_error is not True
        assert "issued-by-a" in result.content[0].text
    audit = (b_for_a.state_dir / "hostmcp" / "audit.jsonl").read_text()
    assert '"principal":"hostmcp-a:' in audit.replace(" ", "")
    assert token not in b_for_a.log()


async def test_a_read_grant_of_a_maps_to_read_on_b(a, b_for_a):
    _, body = tokens_for(a, "reader")
    async with connect(b_for_a, "streamable", "legacy",
                       headers={"Authorization": f"Bearer {body['access_token']}"}) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" not in names and "host_info" in names


def test_a_token_for_a_is_refused_by_b_with_its_default_audience(a, b_default, b_for_a):
    _, body = tokens_for(a, "alice")
    token = body["access_token"]
    assert status(b_for_a, token) == 200
    refused = httpx2.post(b_default.mcp_url, json=INIT,
                          headers={**ACCEPT, "Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    assert f'resource_metadata="{b_default.base}{PRM}"' in refused.headers["www-authenticate"]
    audit = (b_default.state_dir / "hostmcp" / "audit.jsonl").read_text()
    assert "audience not accepted" in audit
    # Header clients of B are untouched.
    assert status(b_default, b_default.tokens["alice"]) == 200


def test_b_publishes_metadata_naming_a_and_a_server_without_issuers_none(a, b_default):
    for path in (PRM, f"{PRM}/mcp"):
        prm = httpx2.get(f"{b_default.base}{path}")
        assert prm.status_code == 200, path
        document = prm.json()
        assert document["resource"] == b_default.mcp_url
        assert document["authorization_servers"] == [f"{a.base}/"]
        assert "scopes_supported" not in document, "A's scopes are not B's to announce"
    # B runs no authorization server: the path is an unknown one, behind authentication.
    assert httpx2.get(f"{b_default.base}/.well-known/oauth-authorization-server").status_code == 401
    challenge = httpx2.post(b_default.mcp_url, json=INIT, headers=ACCEPT)
    assert challenge.status_code == 401
    assert f'resource_metadata="{b_default.base}{PRM}"' in challenge.headers["www-authenticate"]

    plain = start_server()
    try:
        assert httpx2.get(f"{plain.base}{PRM}").status_code == 401, "not served, so authenticated"
        challenge = httpx2.post(plain.mcp_url, json=INIT, headers=ACCEPT)
        assert challenge.status_code == 401
        assert "resource_metadata" not in challenge.headers["www-authenticate"]
    finally:
        plain.stop()


def test_an_issuer_without_audience_needs_a_public_url(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(config_text(issuer_table("http://127.0.0.1:9/", None)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    refused = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(config)],
                             capture_output=True, text=True, env=env, timeout=30)
    assert refused.returncode != 0
    assert "no audience, and no public URL to default it to" in refused.stderr
    assert "--public-url" in refused.stderr
    # The twin: the same table with --public-url starts (and is stopped).
    srv = start_on_port_with(lambda port: (["--public-url", f"http://127.0.0.1:{port}"],
                                           config.read_text()))
    try:
        assert httpx2.get(f"{srv.base}{PRM}").json()["resource"] == srv.mcp_url
    finally:
        srv.stop()
