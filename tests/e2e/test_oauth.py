"""The embedded OAuth 2.1 authorization server (issue 12) against the real binary: the whole
flow by hand with httpx (register, consent page, POST with the form nonce, code, token) and
then run_command over /mcp with the access token through the Python SDK; the SDK's own
OAuthClientProvider completing the flow; header clients beside it unchanged; near misses
with their allowed twins (the Rust router tests in src/oauth/tests.rs cover every one);
`hostmcp oauth grants revoke` reaching a running server; and the cost of a tools/call with
an access token against a static bearer token."""

from __future__ import annotations

import json
import re
import socket
import statistics
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from conftest import BIN, TOKENS, config_text, start_server
from mcp_clients import http_client

pytestmark = pytest.mark.anyio

CALLBACK = "http://127.0.0.1:9/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def oauth_server():
    srv = start_on_port()
    yield srv
    srv.stop()


def start_on_port():
    """A server whose public URL is a loopback port chosen first: start_server listens on
    127.0.0.1:0 too, and the tests use the chosen port (the one the metadata names)."""
    last = None
    for _ in range(5):
        port = free_port()
        try:
            srv = start_server(["--listen", f"127.0.0.1:{port}",
                                "--public-url", f"http://127.0.0.1:{port}", "--oauth"])
        except RuntimeError as error:  # the port was taken in between: try another
            last = error
            continue
        srv.port = port
        return srv
    raise last


def issuer(server) -> str:
    return f"{server.base}/"


def register(server, redirect_uris=(CALLBACK,)) -> str:
    answer = httpx2.post(f"{server.base}/oauth/register", json={
        "redirect_uris": list(redirect_uris), "client_name": "e2e client",
        "token_endpoint_auth_method": "none"})
    assert answer.status_code == 201, answer.text
    return answer.json()["client_id"]


def authorize_params(client_id: str, **changes) -> dict:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
              "state": "st-1", "code_challenge": CHALLENGE, "code_challenge_method": "S256",
              "resource": None}
    params.update(changes)
    return {key: value for key, value in params.items() if value is not None}


def nonce_of(page: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', page).group(1)


def consent(server, url: str, token: str, decision: str = "approve") -> httpx2.Response:
    """Open the consent page at `url` and answer it as a browser would (no JavaScript)."""
    page = httpx2.get(url)
    assert page.status_code == 200, page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    return httpx2.post(f"{server.base}/oauth/authorize",
                       data={"nonce": nonce_of(page.text), "token": token, "decision": decision},
                       follow_redirects=False)


def redirect_params(answer: httpx2.Response) -> dict:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(CALLBACK)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def tokens_for(server, principal: str = "alice", **changes) -> tuple[str, dict]:
    client_id = register(server)
    params = authorize_params(client_id, resource=server.mcp_url, **changes)
    answer = consent(server, f"{server.base}/oauth/authorize?{urlencode(params)}", TOKENS[principal][0])
    code = redirect_params(answer)["code"]
    token = httpx2.post(f"{server.base}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
        "client_id": client_id, "code_verifier": VERIFIER, "resource": server.mcp_url})
    assert token.status_code == 200, token.text
    return client_id, token.json()


def audit_steps(server) -> list[str]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [record["step"] for record in records if record["event"] == "oauth"]


async def call_run_command(server, bearer: str):
    async with http_client({"Authorization": f"Bearer {bearer}"}) as http, Client(
        streamable_http_client(server.mcp_url, http_client=http), mode="legacy"
    ) as client:
        return await client.call_tool("run_command", {"command": "echo via-oauth"})


async def test_the_whole_flow_by_hand_then_run_command_with_the_access_token(oauth_server):
    server = oauth_server
    # Discovery: the 401 names the metadata, which names this server.
    refused = httpx2.post(server.mcp_url, json={})
    assert refused.status_code == 401
    assert (f'resource_metadata="{server.base}/.well-known/oauth-protected-resource"'
            in refused.headers["www-authenticate"])
    prm = httpx2.get(f"{server.base}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["resource"] == server.mcp_url and prm["authorization_servers"] == [issuer(server)]
    asm = httpx2.get(f"{server.base}/.well-known/oauth-authorization-server").json()
    assert asm["issuer"] == issuer(server)
    assert asm["code_challenge_methods_supported"] == ["S256"]

    client_id = register(server)
    params = authorize_params(client_id, resource=server.mcp_url)
    answer = consent(server, f"{server.base}/oauth/authorize?{urlencode(params)}", TOKENS["alice"][0])
    redirect = redirect_params(answer)
    assert redirect["state"] == "st-1" and redirect["iss"] == issuer(server)
    token = httpx2.post(f"{server.base}/oauth/token", data={
        "grant_type": "authorization_code", "code": redirect["code"], "redirect_uri": CALLBACK,
        "client_id": client_id, "code_verifier": VERIFIER, "resource": server.mcp_url})
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "hostmcp" and body["expires_in"] == 3600

    result = await call_run_command(server, body["access_token"])
    assert not result.is_error and result.structured_content["stdout"] == "via-oauth\n"
    steps = audit_steps(server)
    for step in ("client_registered", "consent_shown", "consent_approved", "token_issued"):
        assert step in steps, steps
    audit_text = (server.state_dir / "hostmcp" / "audit.jsonl").read_text()
    assert body["access_token"] not in audit_text and redirect["code"] not in audit_text


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


async def test_the_python_sdk_oauth_client_completes_the_flow_and_calls_tools(oauth_server):
    server = oauth_server
    answered: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        # The "browser": the consent page, approved with a hostmcp token.
        async with httpx2.AsyncClient() as browser:
            page = await browser.get(url)
            assert page.status_code == 200, page.text
            answer = await browser.post(f"{server.base}/oauth/authorize", data={
                "nonce": nonce_of(page.text), "token": TOKENS["alice"][0], "decision": "approve"})
        assert answer.status_code == 303, answer.text
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        answered.update({key: values[0] for key, values in query.items()})

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=answered["code"], state=answered.get("state"),
                                       iss=answered.get("iss"))

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=server.mcp_url,
        client_metadata=OAuthClientMetadata(client_name="sdk e2e", redirect_uris=[CALLBACK],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler)
    async with httpx2.AsyncClient(auth=provider, timeout=60) as http, Client(
        streamable_http_client(server.mcp_url, http_client=http), mode="legacy"
    ) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "run_command" in names
        result = await client.call_tool("run_command", {"command": "echo sdk-oauth"})
        assert not result.is_error and result.structured_content["stdout"] == "sdk-oauth\n"
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert answered["iss"] == issuer(server)


async def test_header_clients_are_never_pushed_into_oauth(oauth_server):
    """A client configured with `Authorization: Bearer` (Claude Code's --header, Cursor, the
    SDKs) gets its answers on /mcp without a 401, so it never starts OAuth discovery."""
    server = oauth_server
    async with http_client(server.headers("alice")) as http:
        seen: list[int] = []
        http.event_hooks["response"].append(lambda response: _record(seen, response))
        async with Client(streamable_http_client(server.mcp_url, http_client=http), mode="legacy") as client:
            result = await client.call_tool("run_command", {"command": "echo header"})
            assert result.structured_content["stdout"] == "header\n"
        assert 401 not in seen and seen, seen


async def _record(seen: list[int], response) -> None:
    seen.append(response.status_code)


async def test_a_read_token_consent_yields_read_rights_only_and_an_operator_consent_runs(oauth_server):
    server = oauth_server
    _, read = tokens_for(server, "reader")
    refused = await call_run_command(server, read["access_token"])
    assert refused.is_error
    _, ops = tokens_for(server, "alice")
    assert not (await call_run_command(server, ops["access_token"])).is_error


async def test_an_open_redirect_attempt_is_shown_on_the_page_and_the_registered_uri_redirects(oauth_server):
    server = oauth_server
    client_id = register(server)
    evil = httpx2.get(f"{server.base}/oauth/authorize",
                      params=authorize_params(client_id, redirect_uri="https://evil.example/cb"),
                      follow_redirects=False)
    assert evil.status_code == 400 and "location" not in evil.headers
    plain = httpx2.get(f"{server.base}/oauth/authorize",
                       params=authorize_params(client_id, code_challenge_method="plain"),
                       follow_redirects=False)
    assert plain.status_code == 303 and "error=invalid_request" in plain.headers["location"]
    good = httpx2.get(f"{server.base}/oauth/authorize", params=authorize_params(client_id))
    assert good.status_code == 200 and "e2e client" in good.text


async def test_code_and_refresh_reuse_revoke_the_grant_and_rotation_works(oauth_server):
    server = oauth_server
    client_id, body = tokens_for(server)
    rotated = httpx2.post(f"{server.base}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": client_id})
    assert rotated.status_code == 200
    new = rotated.json()
    assert not (await call_run_command(server, new["access_token"])).is_error
    reuse = httpx2.post(f"{server.base}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": client_id})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert httpx2.post(server.mcp_url, json={},
                       headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 401
    assert "reuse_detected" in audit_steps(server)


def test_hostmcp_oauth_grants_revoke_reaches_the_running_server(oauth_server):
    server = oauth_server
    _, victim = tokens_for(server)
    _, other = tokens_for(server)
    store = server.state_dir / "hostmcp" / "oauth.redb"
    listed = subprocess.run([BIN, "oauth", "--store", str(store), "grants", "list", "--json"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    grants = json.loads(listed.stdout)
    claims = json.loads(_b64(victim["access_token"].split(".")[1]))
    assert claims["gid"] in [grant["grant_id"] for grant in grants]
    revoked = subprocess.run([BIN, "oauth", "--store", str(store), "grants", "revoke", claims["gid"]],
                             capture_output=True, text=True, timeout=30)
    assert revoked.returncode == 0, revoked.stderr

    def status(token: str) -> int:
        return httpx2.post(server.mcp_url, json={}, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}).status_code

    deadline = time.monotonic() + 20
    while status(victim["access_token"]) != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status(victim["access_token"]) == 401
    assert status(other["access_token"]) != 401
    unknown = subprocess.run([BIN, "oauth", "--store", str(store), "grants", "revoke", "nope"],
                             capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 1 and "no grant" in unknown.stderr


def _b64(segment: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


async def test_a_tools_call_with_an_access_token_costs_about_what_a_static_bearer_costs(oauth_server):
    """Debug-build medians of 200 job_list calls each, interleaved in one run (printed)."""
    server = oauth_server
    _, body = tokens_for(server)
    timings: dict[str, list[float]] = {"bearer": [], "oauth": []}
    bearers = {"bearer": TOKENS["alice"][0], "oauth": body["access_token"]}
    async with http_client({"Authorization": f"Bearer {bearers['bearer']}"}) as h1, \
            http_client({"Authorization": f"Bearer {bearers['oauth']}"}) as h2, \
            Client(streamable_http_client(server.mcp_url, http_client=h1), mode="legacy") as c1, \
            Client(streamable_http_client(server.mcp_url, http_client=h2), mode="legacy") as c2:
        clients = {"bearer": c1, "oauth": c2}
        for _ in range(200):
            for name, client in clients.items():
                started = time.perf_counter()
                result = await client.call_tool("job_list", {})
                timings[name].append(time.perf_counter() - started)
                assert not result.is_error
    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    print(f"\ntools/call job_list median over 200: static bearer {medians['bearer']:.2f} ms, "
          f"OAuth access token {medians['oauth']:.2f} ms "
          f"({(medians['oauth'] / medians['bearer'] - 1) * 100:+.1f}%)")
    # Loose bound for a loaded debug build: a missing verification cache shows as far more.
    assert medians["oauth"] < medians["bearer"] * 1.5 + 1.0
