"""HTTPS with rustls: a real client over TLS, plain HTTP refused off loopback, and the
certificate reloaded on SIGHUP."""

from __future__ import annotations

import hashlib
import signal
import socket
import ssl
import subprocess
import time

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import BIN, start_server

pytestmark = pytest.mark.anyio


def make_cert(directory, name: str) -> tuple[str, str]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def served_fingerprint(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw) as tls:
        return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(pem).read())).hexdigest()


async def test_a_client_runs_a_command_over_https_and_the_cert_reloads(tmp_path):
    cert, key = make_cert(tmp_path, "first")
    server = start_server(args=["--tls-cert", cert, "--tls-key", key], ca=cert)
    try:
        assert server.base.startswith("https://")
        async with httpx2.AsyncClient(headers=server.headers(), verify=cert, timeout=30) as http, \
                Client(streamable_http_client(server.mcp_url, http_client=http), mode="legacy") as client:
            result = await client.call_tool("run_command", {"argv": ["echo", "over tls"]})
            assert result.structured_content["stdout"] == "over tls\n"
        with pytest.raises(httpx2.HTTPError):
            httpx2.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert served_fingerprint(server.port) == fingerprint(cert)

        second_cert, second_key = make_cert(tmp_path, "second")
        subprocess.run(["cp", second_cert, cert], check=True)
        subprocess.run(["cp", second_key, key], check=True)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "TLS certificate reloaded" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        assert served_fingerprint(server.port) == fingerprint(second_cert)
    finally:
        server.stop()


def test_plain_http_off_loopback_is_refused_without_the_flag(tmp_path):
    done = subprocess.run([BIN, "serve", "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=10,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HOSTMCP_TOKEN": "t"},
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "--allow-plaintext" in done.stderr and "--tls-cert" in done.stderr


def test_a_bad_certificate_stops_the_server_with_a_hint(tmp_path):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    done = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--tls-cert", str(bogus), "--tls-key", str(bogus)],
                          capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HOSTMCP_TOKEN": "t"})
    assert done.returncode == 1
    assert "certificate" in done.stderr and "hint:" in done.stderr
