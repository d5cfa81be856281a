"""Resource-server mode against an OpenID provider nobody here wrote: panva's oidc-provider
(tests/e2e/oidc/provider.mjs) issues JWT access tokens by client_credentials with a resource
indicator naming hostmcp's /mcp URL; hostmcp fetches its keys by discovery and maps the
`roles` claim. Each refusal sits next to the token it differs from by one thing; the forged
ones are signed with the provider's own key (the test made it), so only the named flaw fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import BIN, Server, config_text, wait_for_port
from mcp_clients import connect

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update(kid=kid, alg="RS256", use="sig")
    return key, jwk


class Provider:
    """oidc-provider on a free loopback port; `rotate` restarts it with a new signing key."""

    def __init__(self) -> None:
        node = os.environ.get("HOSTMCP_NODE")
        modules = os.environ.get("HOSTMCP_OIDC")
        if not node or not modules:
            pytest.fail("HOSTMCP_NODE / HOSTMCP_OIDC are not set: eval \"$(scripts/install-test-deps.sh)\"")
        self.node, self.modules = node, modules
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="hostmcp-oidc-"))
        self.process: subprocess.Popen | None = None
        self.key, self.kid = None, None
        self.rotate("k1")

    def rotate(self, kid: str) -> None:
        self.stop()
        self.key, jwk = new_key(kid)
        self.kid = kid
        keys = self.dir / f"{kid}.json"
        keys.write_text(json.dumps({"keys": [jwk]}))
        log = open(self.dir / f"{kid}.log", "wb")
        self.process = subprocess.Popen(
            [self.node, str(HERE / "oidc" / "provider.mjs"), str(self.port), str(keys)],
            stdout=subprocess.PIPE, stderr=log, env={**os.environ, "HOSTMCP_OIDC": self.modules})
        line = self.process.stdout.readline().decode()
        assert line.startswith("listening"), (self.dir / f"{kid}.log").read_text()

    def token(self, client: str, resource: str) -> str:
        response = httpx2.post(f"{self.issuer}/token", data={
            "grant_type": "client_credentials", "client_id": client, "client_secret": "secret",
            "resource": resource})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def issuer_table(issuer: str, audience: str) -> str:
    return f"""
[[auth.issuers]]
name = "idp"
issuer = "{issuer}"
audience = ["{audience}"]
role_claim = "roles"
leeway_secs = 0
jwks_min_refresh_secs = 1

[auth.issuers.roles]
"hostmcp-ops" = "operator"
"hostmcp-read" = "read"
"""


@pytest.fixture(scope="module")
def idp():
    provider = Provider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def rs(idp):
    """hostmcp on a port chosen first, so its /mcp URL is the tokens' audience."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    audience = f"http://127.0.0.1:{port}/mcp"
    (workdir / "config.toml").write_text(config_text(issuer_table(idp.issuer, audience)))
    log_path = workdir / "server.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
           "XDG_STATE_HOME": str(workdir / "state"), "HOSTMCP_LOG": "info"}
    process = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--config", str(workdir / "config.toml")],
                               stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"), env=env)
    server = Server(process, wait_for_port(process, log_path), workdir / "state", log_path)
    yield server
    server.stop()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(idp: Provider, rs: Server, **changes) -> dict:
    now = int(time.time())
    base = {"iss": idp.issuer, "aud": rs.mcp_url, "sub": "forged-client", "iat": now, "exp": now + 300,
            "roles": ["hostmcp-ops"]}
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def forge(idp: Provider, payload: dict, key=None, kid: str | None = None) -> str:
    return jwt.encode(payload, key or idp.key, algorithm="RS256", headers={"kid": kid or idp.kid})


def status(rs: Server, token: str) -> int:
    return httpx2.post(rs.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {token}"}).status_code


def audit(rs: Server) -> list[dict]:
    path = rs.state_dir / "hostmcp" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_provider_token_lists_and_calls_through_the_python_sdk(idp, rs):
    token = idp.token("ops-client", rs.mcp_url)
    assert token.count(".") == 2
    async with connect(rs, "streamable", "legacy", headers={"Authorization": f"Bearer {token}"}) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" in names
        result = await client.call_tool("run_command", {"argv": ["echo", "from-the-idp"]})
        assert result.is_error is not True
        assert "from-the-idp" in result.content[0].text
    started = [r for r in audit(rs) if r["event"] == "command_started" and r["principal"] == "idp:ops-client"]
    assert started, "the command's record names the issuer and the subject"
    assert token not in rs.log()


async def test_a_read_mapped_token_cannot_run_commands(idp, rs):
    token = idp.token("read-client", rs.mcp_url)
    async with connect(rs, "streamable", "2026-07-28", headers={"Authorization": f"Bearer {token}"}) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" not in names and "host_info" in names
        result = await client.call_tool("run_command", {"command": "id"})
        assert result.is_error is True
        assert "needs the operator role" in result.content[0].text


def test_a_token_without_a_mapped_role_is_forbidden(idp, rs):
    assert status(rs, idp.token("ops-client", rs.mcp_url)) == 200
    response = httpx2.post(rs.mcp_url, json=INIT, headers={
        **ACCEPT, "Authorization": f"Bearer {idp.token('norole-client', rs.mcp_url)}"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_a_token_for_another_audience_is_refused(idp, rs):
    assert status(rs, idp.token("ops-client", rs.mcp_url)) == 200
    assert status(rs, idp.token("ops-client", "https://other.example/mcp")) == 401
    reasons = [r["reason"] for r in audit(rs) if r["event"] == "auth_failed"]
    assert any("audience not accepted" in reason for reason in reasons)


def test_forged_near_misses_each_with_its_accepted_twin(idp, rs):
    public_pem = idp.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    other_key, _ = new_key("other")
    header_none = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": idp.kid}).encode())
    body = b64(json.dumps(claims(idp, rs)).encode())
    header_hs = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": idp.kid}).encode())
    hs_signature = b64(hmac.new(public_pem, f"{header_hs}.{body}".encode(), hashlib.sha256).digest())
    now = int(time.time())
    accepted = forge(idp, claims(idp, rs))
    assert status(rs, accepted) == 200, "a token signed with the provider's key is accepted"
    refused = {
        "wrong issuer": forge(idp, claims(idp, rs, iss="http://127.0.0.1:1")),
        "issuer with a trailing slash": forge(idp, claims(idp, rs, iss=idp.issuer + "/")),
        "expired": forge(idp, claims(idp, rs, exp=now - 30, iat=now - 330)),
        "no exp": forge(idp, claims(idp, rs, exp=None)),
        "alg none": f"{header_none}.{body}.",
        "HS256 with the public key as secret": f"{header_hs}.{body}.{hs_signature}",
        "signed by another key": forge(idp, claims(idp, rs), key=other_key),
        "unknown kid": forge(idp, claims(idp, rs), key=other_key, kid="other"),
    }
    for name, token in refused.items():
        assert status(rs, token) == 401, name
    assert status(rs, accepted) == 200, "the twin still works after the flood"


def test_key_rotation_at_the_provider_is_picked_up_by_the_new_kid(idp, rs):
    old = idp.token("ops-client", rs.mcp_url)
    assert status(rs, old) == 200
    idp.rotate("k2")
    new = idp.token("ops-client", rs.mcp_url)
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == "k2"
    time.sleep(1.2)  # past jwks_min_refresh_secs: an unknown kid may fetch again
    assert status(rs, new) == 200
    assert status(rs, old) == 401, "the retired key is gone from the fetched set"
