"""Forwarded headers through real reverse proxies (Debian's nginx-light and caddy), running the
very configs of docs/exposing.md (ports, certificate and upstream substituted): with outside
issuers and no public URL, the protected-resource metadata and the 401's `resource_metadata`
name the origin the proxy reports, and the audit log names the client the proxy saw. The
near miss of each: the same headers sent straight to hostmcp by a peer that is not a trusted
proxy are ignored.

Loopback addresses stand for the machines: hostmcp trusts 127.0.0.1 (where the proxies
connect from); the test's clients connect from 127.0.0.4 (straight to hostmcp) and 127.0.0.5
(to the proxy), so neither is trusted."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import REPO, RUN_AS_ROOT, TOKENS, config_text, start_server

pytestmark = pytest.mark.anyio

PUBLIC = "mcp.example.test"
FORGED = "198.51.100.7"
DOCS = (REPO / "docs" / "exposing.md").read_text()


def docs_block(language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", DOCS, re.S).group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(local_address: str, **kwargs) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.HTTPTransport(local_address=local_address, verify=False),
                         timeout=30, **kwargs)


@pytest.fixture(scope="module")
def hostmcp():
    top = RUN_AS_ROOT + 'allowed_hosts = ["mcp.example.test"]\ntrusted_proxies = ["127.0.0.1"]\n'
    issuer = """
[[auth.issuers]]
name = "idp"
issuer = "http://127.0.0.1:9/idp"
audience = ["hostmcp-e2e"]
default_role = "read"
"""
    server = start_server(config=config_text(issuer, top=top))
    yield server
    server.stop()


def audit_clients(server) -> list[str]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    return [record.get("client") or "" for record in map(json.loads, path.read_text().splitlines())
            if record["event"] == "auth_failed"]


def wait_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def metadata_and_challenge(http: httpx2.Client, base: str, host: str, forged: dict) -> tuple[str, str]:
    headers = {"Host": host, **forged}
    document = http.get(f"{base}/.well-known/oauth-protected-resource/mcp", headers=headers)
    assert document.status_code == 200, document.text
    refused = http.post(f"{base}/mcp", headers=headers, json={})
    assert refused.status_code == 401, refused.text
    found = re.search(r'resource_metadata="([^"]+)"', refused.headers["www-authenticate"])
    assert found, refused.headers["www-authenticate"]
    return document.json()["resource"], found.group(1)


FORGED_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
                  "Forwarded": "for=198.51.100.7;proto=https;host=evil.example",
                  "X-Forwarded-For": FORGED}


def test_headers_from_a_peer_that_is_no_trusted_proxy_are_ignored(hostmcp):
    """The near miss on its own: forged headers straight to hostmcp from 127.0.0.4."""
    direct = f"http://127.0.0.1:{hostmcp.port}"
    with client("127.0.0.4") as http:
        resource, metadata = metadata_and_challenge(http, direct, f"127.0.0.1:{hostmcp.port}",
                                                    FORGED_HEADERS)
    assert resource == f"{direct}/mcp"
    assert metadata == f"{direct}/.well-known/oauth-protected-resource"
    clients = audit_clients(hostmcp)
    assert clients and clients[-1].startswith("127.0.0.4:"), clients
    assert not any(FORGED in entry for entry in clients)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (apt-get install nginx-light)")
async def test_nginx_from_the_docs_forwards_the_origin_and_the_client(hostmcp, tmp_path):
    openssl = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-nodes", "-days", "2", "-subj", f"/CN={PUBLIC}", "-addext", f"subjectAltName=DNS:{PUBLIC}",
               "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")]
    subprocess.run(openssl, check=True, capture_output=True)
    port = free_port()
    site = (docs_block("nginx")
            .replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
            .replace("listen [::]:443 ssl;", "")
            .replace("server_name mcp.example.com;", f"server_name {PUBLIC};")
            .replace("/etc/letsencrypt/live/mcp.example.com/fullchain.pem", str(tmp_path / "cert.pem"))
            .replace("/etc/letsencrypt/live/mcp.example.com/privkey.pem", str(tmp_path / "key.pem"))
            .replace("http://127.0.0.1:8000", f"http://127.0.0.1:{hostmcp.port}"))
    assert f"127.0.0.1:{hostmcp.port}" in site and str(tmp_path) in site
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp_path}/body;\n proxy_temp_path {tmp_path}/proxy;\n"
        f" include {tmp_path}/site.conf;\n}}\n")
    log = tmp_path / "nginx.out"
    nginx = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
                             stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(port, nginx, log)
        base = f"https://127.0.0.1:{port}"
        host = f"{PUBLIC}:{port}"
        with client("127.0.0.5") as http:
            # The client forges its own X-Forwarded-For; nginx appends the address it saw.
            resource, metadata = metadata_and_challenge(http, base, host, {"X-Forwarded-For": FORGED})
        assert resource == f"https://{host}/mcp"
        assert metadata == f"https://{host}/.well-known/oauth-protected-resource"
        clients = audit_clients(hostmcp)
        assert clients[-1] == "127.0.0.5", clients
        assert not any(FORGED in entry for entry in clients)

        # An MCP client runs a tool through the proxy, over TLS (the test certificate).
        async def sni(request):
            request.extensions["sni_hostname"] = PUBLIC

        headers = {"Authorization": f"Bearer {TOKENS['alice'][0]}", "Host": host}
        async with httpx2.AsyncClient(headers=headers, verify=str(tmp_path / "cert.pem"), timeout=30,
                                      event_hooks={"request": [sni]}) as http, \
                Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as mcp:
            result = await mcp.call_tool("run_command", {"argv": ["echo", "through nginx"]})
            assert result.structured_content["stdout"] == "through nginx\n"
    finally:
        stop(nginx)


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed (apt-get install caddy)")
def test_caddy_from_the_docs_forwards_the_origin_and_the_client(hostmcp, tmp_path):
    port = free_port()
    site = (docs_block("caddyfile")
            .replace("mcp.example.com {", f"http://{PUBLIC}:{port} {{")
            .replace("reverse_proxy 127.0.0.1:8000", f"reverse_proxy 127.0.0.1:{hostmcp.port}"))
    assert f"127.0.0.1:{hostmcp.port}" in site
    caddyfile = tmp_path / "Caddyfile"
    # Plain HTTP on loopback, no admin endpoint, no certificate business.
    caddyfile.write_text("{\n\tadmin off\n\tauto_https off\n}\n" + site)
    log = tmp_path / "caddy.out"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    caddy = subprocess.Popen(["caddy", "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                             stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, caddy, log)
        host = f"{PUBLIC}:{port}"
        with client("127.0.0.5") as http:
            resource, metadata = metadata_and_challenge(http, f"http://127.0.0.1:{port}", host,
                                                        {"X-Forwarded-For": FORGED})
        assert resource == f"http://{host}/mcp"
        assert metadata == f"http://{host}/.well-known/oauth-protected-resource"
        clients = audit_clients(hostmcp)
        assert clients[-1] == "127.0.0.5", clients
        assert not any(FORGED in entry for entry in clients)
    finally:
        stop(caddy)

