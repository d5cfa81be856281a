"""Tokens over time: SIGHUP reload revokes and adds tokens without dropping connections;
expired tokens stop working."""

from __future__ import annotations

import hashlib
import signal
import time

import httpx2
import pytest

from conftest import TOKENS, config_text, start_server

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


def entry(name: str, token: str, role: str = "operator", extra: str = "") -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f'[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{digest}"\n{extra}\n'


def status(server, token: str, session: str | None = None, body=INIT) -> int:
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    if session:
        headers["Mcp-Session-Id"] = session
    return httpx2.post(server.mcp_url, json=body, headers=headers).status_code


def wait_for_log(server, text: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        time.sleep(0.05)


def test_sighup_revokes_and_adds_tokens_without_dropping_sessions():
    server = start_server()
    try:
        alice, bob = TOKENS["alice"][0], TOKENS["bob"][0]
        opened = httpx2.post(server.mcp_url, json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {alice}"})
        session = opened.headers["mcp-session-id"]
        assert status(server, bob) == 200
        assert status(server, "carol-token-0123456789") == 401

        config = server.state_dir.parent / "config.toml"
        config.write_text(entry("alice", alice) + entry("carol", "carol-token-0123456789"))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens reloaded")

        assert status(server, bob) == 401, "a revoked token must stop working on its next request"
        assert status(server, "carol-token-0123456789") == 200
        assert status(server, alice, session, PING) == 200, "alice's open session survives the reload"
        assert server.process.poll() is None
    finally:
        server.stop()


def test_a_broken_config_on_sighup_keeps_the_current_tokens():
    server = start_server()
    try:
        (server.state_dir.parent / "config.toml").write_text("[[tokens]]\nname = \"x\"\nsha256 = \"nope\"\n")
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "reload failed")
        assert status(server, TOKENS["alice"][0]) == 200
    finally:
        server.stop()


@pytest.mark.parametrize("expires,expected", [("2000-01-01T00:00:00Z", 401), ("2999-01-01T00:00:00Z", 200)])
def test_an_expired_token_is_refused_and_its_twin_is_not(expires, expected):
    server = start_server(config=config_text() + entry("temp", "temp-token-0123456789", extra=f"expires = {expires}"))
    try:
        assert status(server, "temp-token-0123456789") == expected
    finally:
        server.stop()
