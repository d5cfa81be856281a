"""[tls.acme] against Pebble, Let's Encrypt's test CA (Debian package `pebble`), with a real
TLS-ALPN-01 validation on loopback: Pebble's `tlsPort` is hostmcp's listener, and
pebble-challtestsrv answers Pebble's DNS queries for the test domain with 127.0.0.1.
The server orders a certificate, a client trusting Pebble's root calls a tool over it; the
near miss: a `ca_file` that does not sign the directory's HTTPS ends the server with the
CA's error, before it ever served anything (in plain text or otherwise)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import BIN, TOKENS, config_text

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("pebble") is None or shutil.which("pebble-challtestsrv") is None,
                       reason="Debian package pebble not installed (apt-get install pebble)"),
]

DOMAIN = "hostmcp.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca_and_leaf(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A test CA, and a certificate it signs for 127.0.0.1/localhost (Pebble's HTTPS)."""
    ca_key, ca = directory / f"{name}-ca.key", directory / f"{name}-ca.pem"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", f"/CN={name} test CA", "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr))
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


class Pebble:
    """pebble-challtestsrv (DNS only) and pebble, validating TLS-ALPN-01 on `tls_port`."""

    def __init__(self, workdir: Path, tls_port: int, validity_secs: int | None = None):
        self.workdir = workdir
        self.ca, cert, key = make_ca_and_leaf(workdir, "pebble")
        self.port, self.management, dns = free_port(), free_port(), free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": free_port(), "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        if validity_secs is not None:
            config["pebble"]["certificateValidityPeriod"] = validity_secs
        (workdir / "pebble.json").write_text(json.dumps(config))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               # No sleeps before validating; every nonce accepted (no random badNonce).
               "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        self.processes = []
        self.log = open(workdir / "pebble.log", "wb")
        self.processes.append(subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.log, stderr=subprocess.STDOUT, env=env))
        self.processes.append(subprocess.Popen(
            ["pebble", "-config", str(workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(self.directory, verify=str(self.ca), timeout=5).raise_for_status()
                break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, (workdir / "pebble.log").read_text()
                assert all(p.poll() is None for p in self.processes), (workdir / "pebble.log").read_text()
                time.sleep(0.1)

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def root(self) -> str:
        """The root of the certificates this run of Pebble issues (made at its start)."""
        return httpx2.get(f"https://127.0.0.1:{self.management}/roots/0", verify=str(self.ca),
                          timeout=10).text

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        self.log.close()


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="hostmcp-acme-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def acme_table(directory: str, ca_file: Path, cache_dir: Path) -> str:
    return (f'\n[tls.acme]\ndomains = ["{DOMAIN}"]\ncontact = ["ops@{DOMAIN}"]\n'
            f'directory_url = "{directory}"\nca_file = "{ca_file}"\ncache_dir = "{cache_dir}"\n')


def start_hostmcp(workdir: Path, port: int, table: str) -> tuple[subprocess.Popen, Path]:
    (workdir / "config.toml").write_text(config_text(table))
    log_path = workdir / "server.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
           "XDG_STATE_HOME": str(workdir / "state"), "HOSTMCP_LOG": "info"}
    process = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--config",
                                str(workdir / "config.toml")],
                               stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"), env=env)
    return process, log_path


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for_log(process: subprocess.Popen, log_path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text(errors="replace"):
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


def served_chain(port: int) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
        return tls.getpeercert(binary_form=True)


async def test_the_server_gets_a_certificate_from_pebble_and_a_client_calls_a_tool_over_it(workdir):
    port = free_port()
    pebble = Pebble(workdir, tls_port=port)
    process = None
    try:
        cache = workdir / "acme-cache"
        process, log_path = start_hostmcp(workdir, port, acme_table(pebble.directory, pebble.ca, cache))
        wait_for_log(process, log_path, "DeployedNewCert")
        root = workdir / "pebble-root.pem"
        root.write_text(pebble.root())
        context = ssl.create_default_context(cafile=str(root))

        async def sni(request):
            # Connect to 127.0.0.1, verify the certificate as hostmcp.test.
            request.extensions["sni_hostname"] = DOMAIN

        headers = {"Authorization": f"Bearer {TOKENS['alice'][0]}"}
        async with httpx2.AsyncClient(headers=headers, verify=context, timeout=30,
                                      event_hooks={"request": [sni]}) as http, \
                Client(streamable_http_client(f"https://127.0.0.1:{port}/mcp", http_client=http),
                       mode="legacy") as client:
            result = await client.call_tool("run_command", {"argv": ["echo", "over acme"]})
            assert result.structured_content["stdout"] == "over acme\n"
        # Near miss of the trust: the same connection without Pebble's root fails.
        with pytest.raises(httpx2.HTTPError):
            async with httpx2.AsyncClient(verify=ssl.create_default_context(), timeout=10,
                                          event_hooks={"request": [sni]}) as untrusting:
                await untrusting.get(f"https://127.0.0.1:{port}/healthz")
        # The key and certificate are kept, in a directory only the server's user reads.
        assert (cache.stat().st_mode & 0o777) == 0o700
        assert any(path.name.startswith("cached_cert_") for path in cache.iterdir())
        first = served_chain(port)
        stop(process)

        # Restarted: the cached certificate is served at once, nothing new is ordered.
        process, log_path = start_hostmcp(workdir, port, acme_table(pebble.directory, pebble.ca, cache))
        wait_for_log(process, log_path, "DeployedCachedCert", timeout=30)
        assert served_chain(port) == first
        assert "DeployedNewCert" not in log_path.read_text()
    finally:
        if process is not None:
            stop(process)
        pebble.stop()


def test_a_short_lived_certificate_is_renewed_and_swapped_while_the_server_runs(workdir):
    """Pebble issues 15-second certificates: renewal is due after two thirds (10 s); the
    next handshake gets the new certificate, from the same process."""
    port = free_port()
    pebble = Pebble(workdir, tls_port=port, validity_secs=15)
    process = None
    try:
        process, log_path = start_hostmcp(workdir, port,
                                          acme_table(pebble.directory, pebble.ca, workdir / "cache"))
        wait_for_log(process, log_path, "DeployedNewCert")
        first = served_chain(port)
        deadline = time.monotonic() + 90
        while log_path.read_text().count("DeployedNewCert") < 2:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            # Still served meanwhile: the old certificate until the new one is in.
            assert served_chain(port)
            time.sleep(0.5)
        second = served_chain(port)
        assert second != first
        assert process.poll() is None
    finally:
        if process is not None:
            stop(process)
        pebble.stop()


def test_a_ca_file_that_does_not_sign_the_directory_ends_the_server_with_a_clear_error(workdir):
    port = free_port()
    pebble = Pebble(workdir, tls_port=port)
    process = None
    try:
        wrong_ca, _, _ = make_ca_and_leaf(workdir, "wrong")
        process, log_path = start_hostmcp(workdir, port,
                                          acme_table(pebble.directory, wrong_ca, workdir / "cache"))
        # Three failed orders, 1 s and 2 s of back-off between them: well under a minute.
        code = process.wait(timeout=90)
        log = log_path.read_text()
        assert code == 1, log
        assert f"no certificate from the ACME directory {pebble.directory}" in log, log
        assert "UnknownIssuer" in log or "certificate" in log.split("no certificate from")[1], log
        assert "hint:" in log and "ca_file" in log
        # It listened for HTTPS only: never a plain-HTTP listener.
        assert re.search(r'listening.*scheme="?https\b', log), log
        assert not re.search(r'scheme="?http\b(?!s)', log), log
        # Near miss of the failure: the directory was up and trusted with the right CA file.
        assert httpx2.get(pebble.directory, verify=str(pebble.ca), timeout=10).status_code == 200
    finally:
        if process is not None:
            stop(process)
        pebble.stop()


def test_a_plain_http_request_gets_no_http_answer_while_the_certificate_is_ordered(workdir):
    """Before any certificate, the listener speaks only TLS: plain HTTP is never answered."""
    port = free_port()
    pebble = Pebble(workdir, tls_port=port)
    process = None
    try:
        process, log_path = start_hostmcp(workdir, port,
                                          acme_table(pebble.directory, pebble.ca, workdir / "cache"))
        deadline = time.monotonic() + 30
        while "listening" not in log_path.read_text():
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                answer = raw.recv(1024)
            except (ConnectionResetError, TimeoutError):
                answer = b""
        assert not answer.startswith(b"HTTP/"), answer
        wait_for_log(process, log_path, "DeployedNewCert")
    finally:
        if process is not None:
            stop(process)
        pebble.stop()


