"""The embedded OAuth authorization server (issue 12) in a real browser: Debian's chromium,
driven by playwright-core from `oauth_browser/flow.mjs`, approves three clients on the
consent page with the owner's token, and each client's access token then lists the tools and
calls run_command over /mcp:

- a claude.ai-like client: Dynamic Client Registration, callback
  https://claude.ai/api/mcp/auth_callback (intercepted in the browser: nothing leaves the
  machine), `code`, `state` and `iss` read from the redirect;
- a ChatGPT-like client: a Client ID Metadata Document served over TLS by this test with a
  test CA that hostmcp trusts (`[oauth] cimd_ca_file`), callback
  https://chatgpt.com/connector_platform_oauth_redirect, never a `scope` (authorize,
  re-authorize and refresh all without one);
- the TypeScript SDK's own OAuth client (@modelcontextprotocol/client 2.3.1): its
  redirectToAuthorization hands the URL to the browser.

The time from pressing Approve to the first run_command answer is measured and printed
(a reported number, not a timed assertion). Needs HOSTMCP_BROWSER_NODE_MODULES and
HOSTMCP_NODE (scripts/install-test-deps.sh) and /usr/bin/chromium."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import TOKENS
from test_dashboard import CHROMIUM, required_env
from test_oauth_cimd import DocumentServer, make_ca_and_leaf, oauth_records, start_oauth_server

HERE = Path(__file__).resolve().parent
CLAUDE_CALLBACK = "https://claude.ai/api/mcp/auth_callback"
CHATGPT_CALLBACK = "https://chatgpt.com/connector_platform_oauth_redirect"
SDK_CALLBACK = "http://127.0.0.1:33418/oauth/callback"


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    modules = required_env("HOSTMCP_BROWSER_NODE_MODULES")
    node = required_env("HOSTMCP_NODE")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/install-test-deps.sh does)")
    ca, leaf, leaf_key = make_ca_and_leaf(tmp_path_factory.mktemp("oauth-browser-ca"))
    documents = DocumentServer(leaf, leaf_key)
    # The metadata document sits on 127.0.0.1 here, so the server allows private networks.
    server = start_oauth_server(ca, allow_private=True)
    try:
        cimd_url = documents.publish("/clients/chatgpt.json", {
            "client_name": "ChatGPT", "redirect_uris": [CHATGPT_CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]},
            headers={"Cache-Control": "max-age=600"})
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tempfile.mkdtemp(prefix="hostmcp-oauth-browser-home-"),
            "HOSTMCP_BROWSER_NODE_MODULES": modules,
            "HOSTMCP_BASE": server.base,
            "HOSTMCP_TOKEN": TOKENS["alice"][0],
            "HOSTMCP_CIMD_URL": cimd_url,
            "HOSTMCP_CHROMIUM": CHROMIUM,
        }
        # flow.mjs bounds each step (30 s) and has its own watchdog (240 s).
        done = subprocess.run([node, str(HERE / "oauth_browser" / "flow.mjs")], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"flow.mjs failed ({done.returncode}):\n{done.stderr}\n{server.log()[-3000:]}"
        report = json.loads(done.stdout)
        report["audit"] = oauth_records(server)
        report["audit_text"] = (server.state_dir / "hostmcp" / "audit.jsonl").read_text()
        report["document_hits"] = list(documents.hits)
        report["issuer"] = f"{server.base}/"
        yield report
    finally:
        server.stop()
        documents.stop()


def medians(report) -> dict[str, float]:
    return {
        "claude.ai-like (DCR)": statistics.median(r["consentToFirstCallMs"] for r in report["claude"]["rounds"]),
        "ChatGPT-like (CIMD)": statistics.median(r["consentToFirstCallMs"] for r in report["chatgpt"]["rounds"]),
        "TypeScript SDK": report["sdk"]["consentToFirstCallMs"],
    }


def test_the_consent_page_in_the_browser_is_the_server_rendered_form(flow):
    page = flow["claude"]["rounds"][0]["page"]
    assert page["status"] == 200
    assert page["shown"]["scripts"] == 0
    # What the owner is told: the client's name, where it will be sent, what it asks for.
    assert "Claude" in page["shown"]["text"] and "claude.ai" in page["shown"]["text"]
    assert "hostmcp" in page["shown"]["text"]
    assert "frame-ancestors 'none'" in page["csp"] and page["frameOptions"] == "DENY"
    # Chromium followed the 303 to the callback under form-action: the callback origin is listed.
    assert "form-action 'self' https://claude.ai" in page["csp"]
    chatgpt_page = flow["chatgpt"]["rounds"][0]["page"]
    assert "ChatGPT" in chatgpt_page["shown"]["text"] and "chatgpt.com" in chatgpt_page["shown"]["text"]


def test_a_claude_ai_like_client_registers_is_approved_in_the_browser_and_runs_a_command(flow):
    claude = flow["claude"]
    assert claude["registeredStatus"] == 201
    for round_ in claude["rounds"]:
        assert round_["callbackOrigin"] == CLAUDE_CALLBACK
        assert round_["hasCode"] and round_["stateMatches"] and round_["iss"] == flow["issuer"]
        assert round_["tokenStatus"] == 200 and round_["scope"] == "hostmcp"
        assert not round_["isError"] and round_["stdout"] == "via-claude\n"
    issued = [r for r in flow["audit"] if r["step"] == "token_issued" and r["client_id"] == claude["clientId"]]
    assert len(issued) == len(claude["rounds"])


def test_a_chatgpt_like_client_by_metadata_document_without_scope_reauthorizes_and_refreshes(flow):
    chatgpt = flow["chatgpt"]
    assert len(chatgpt["rounds"]) >= 2  # re-authorized, each time without scope
    for round_ in chatgpt["rounds"]:
        assert round_["callbackOrigin"] == CHATGPT_CALLBACK
        assert round_["hasCode"] and round_["stateMatches"] and round_["iss"] == flow["issuer"]
        # No scope asked: the default scope granted.
        assert round_["tokenStatus"] == 200 and round_["scope"] == "hostmcp"
        assert not round_["isError"] and round_["stdout"] == "via-chatgpt\n"
    assert chatgpt["refresh"] == {"status": 200, "scope": "hostmcp", "stdout": "via-chatgpt-refreshed\n"}
    # The document was fetched over TLS from the test server (once: cached by max-age).
    assert flow["document_hits"].count("/clients/chatgpt.json") == 1
    steps = [(r["step"], r["client_id"]) for r in flow["audit"]]
    assert ("cimd_fetched", chatgpt["clientId"]) in steps
    assert steps.count(("consent_approved", chatgpt["clientId"])) == len(chatgpt["rounds"])


def test_the_typescript_sdk_oauth_client_completes_the_flow_and_calls_tools(flow):
    sdk = flow["sdk"]
    assert sdk["unauthorized"]  # its first connection was refused, and it started OAuth
    asked = sdk["authorizeParams"]
    assert asked["code_challenge_method"] == "S256" and asked["redirect_uri"] == SDK_CALLBACK
    assert asked["resource"].endswith("/mcp")
    assert sdk["registeredClientId"] and asked["client_id"] == sdk["registeredClientId"]
    assert sdk["stateMatches"] and sdk["iss"] == flow["issuer"]
    assert "run_command" in sdk["tools"]
    assert not sdk["isError"] and sdk["stdout"] == "via-sdk\n"
    assert sdk["hasRefreshToken"]


def test_nothing_left_the_machine_and_no_secret_reached_the_audit_log(flow):
    assert flow["blocked"] == []
    assert flow["callbacks"] == len(flow["claude"]["rounds"]) + len(flow["chatgpt"]["rounds"]) + 1
    assert TOKENS["alice"][0] not in flow["audit_text"]


def test_consent_to_first_call_is_reported(flow):
    """Reported, not asserted against a target: the medians go to the report (and
    bench/results/oauth-browser-*.md); the issue's target is under 2 s."""
    measured = medians(flow)
    print("\nconsent-to-first-call (Approve pressed -> run_command answered), debug build:")
    for name, value in measured.items():
        print(f"  {name}: {value:.0f} ms")
    # Every round was measured: five of each backend-like client, one of the SDK's.
    assert len(flow["claude"]["rounds"]) == len(flow["chatgpt"]["rounds"]) == 5
    assert all(0 < value < 60_000 for value in measured.values()), measured
