"""Client ID Metadata Documents (issue 12) against the real binary: a ChatGPT-like client
whose `client_id` is an https URL, its document served over TLS by a small Python server
with a test CA, completes the flow and calls run_command. Near misses, each with its
allowed twin: 127.0.0.1 without `cimd_allow_private_networks` refused (allowed with it),
169.254.169.254 refused even with it, a document naming another client_id refused, an
oversized document refused (one just under the cap accepted), a redirect URI off the
allowlist refused (the listed one accepted), a redirect from the document URL not followed."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from conftest import TOKENS, config_text, start_server
from test_oauth import CALLBACK, CHALLENGE, VERIFIER, call_run_command, free_port, nonce_of

pytestmark = pytest.mark.anyio


def make_ca_and_leaf(directory) -> tuple[str, str, str]:
    """A test CA and a leaf for 127.0.0.1 signed by it (webpki refuses a CA as leaf)."""
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    leaf, leaf_key, csr = directory / "leaf.pem", directory / "leaf.key", directory / "leaf.csr"
    ext = directory / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=hostmcp cimd test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", str(leaf_key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(leaf))
    return str(ca), str(leaf), str(leaf_key)


class DocumentServer:
    """HTTPS on 127.0.0.1 serving `documents` (path -> (status, headers, body))."""

    def __init__(self, cert: str, key: str):
        self.documents: dict[str, tuple[int, dict, bytes]] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits.append(self.path)
                status, headers, body = outer.documents.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def publish(self, path: str, document: dict | None = None, status: int = 200,
                headers: dict | None = None, body: bytes | None = None) -> str:
        """Serve a client document at `path` (its client_id defaults to its own URL)."""
        url = self.url(path)
        if body is None:
            document = {"client_id": url, "client_name": "ChatGPT-like", "redirect_uris": [CALLBACK],
                        "token_endpoint_auth_method": "none", **(document or {})}
            body = json.dumps(document).encode()
        self.documents[path] = (status, headers or {}, body)
        return url

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_ca_and_leaf(tmp_path_factory.mktemp("cimd-ca"))


@pytest.fixture(scope="module")
def documents(tls_files):
    _, leaf, leaf_key = tls_files
    server = DocumentServer(leaf, leaf_key)
    yield server
    server.stop()


def start_oauth_server(ca: str, allow_private: bool):
    table = f'\n[oauth]\ncimd_ca_file = "{ca}"\ncimd_allow_private_networks = {str(allow_private).lower()}\n'
    last = None
    for _ in range(5):
        port = free_port()
        try:
            srv = start_server(["--listen", f"127.0.0.1:{port}", "--public-url", f"http://127.0.0.1:{port}"],
                               config=config_text(table))
        except RuntimeError as error:  # the port was taken in between: try another
            last = error
            continue
        srv.port = port
        return srv
    raise last


@pytest.fixture(scope="module")
def allowing(tls_files):
    srv = start_oauth_server(tls_files[0], allow_private=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def guarded(tls_files):
    srv = start_oauth_server(tls_files[0], allow_private=False)
    yield srv
    srv.stop()


def authorize(server, client_id: str, **changes) -> httpx2.Response:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "s",
              "code_challenge": CHALLENGE, "code_challenge_method": "S256", "resource": server.mcp_url}
    params.update(changes)
    return httpx2.get(f"{server.base}/oauth/authorize?{urlencode(params)}", timeout=30)


def oauth_records(server) -> list[dict]:
    path = server.state_dir / "hostmcp" / "audit.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in records if record["event"] == "oauth"]


def refused_for(server, client_id: str) -> list[str]:
    return [record["refused"] for record in oauth_records(server)
            if record["step"] == "cimd_refused" and record["client_id"] == client_id]


async def test_a_metadata_document_client_completes_the_flow_and_calls_tools(allowing, documents):
    server = allowing
    asm = httpx2.get(f"{server.base}/.well-known/oauth-authorization-server").json()
    assert asm["client_id_metadata_document_supported"] is True
    client_id = documents.publish("/clients/chatgpt.json", headers={"Cache-Control": "max-age=600"})

    page = authorize(server, client_id)
    assert page.status_code == 200, page.text
    assert "ChatGPT-like" in page.text
    answer = httpx2.post(f"{server.base}/oauth/authorize", follow_redirects=False, data={
        "nonce": nonce_of(page.text), "token": TOKENS["alice"][0], "decision": "approve"})
    assert answer.status_code == 303, answer.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    token = httpx2.post(f"{server.base}/oauth/token", data={
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": CALLBACK,
        "client_id": client_id, "code_verifier": VERIFIER, "resource": server.mcp_url})
    assert token.status_code == 200, token.text
    result = await call_run_command(server, token.json()["access_token"])
    assert not result.is_error and result.structured_content["stdout"] == "via-oauth\n"

    # A second authorization within max-age comes from the cache: one fetch in all.
    assert authorize(server, client_id).status_code == 200
    assert documents.hits.count("/clients/chatgpt.json") == 1
    steps = [(r["step"], r["client_id"]) for r in oauth_records(server)]
    assert steps.count(("cimd_fetched", client_id)) == 1, steps
    assert ("token_issued", client_id) in steps


def test_loopback_documents_need_the_allowance(guarded, allowing, documents):
    client_id = documents.publish("/clients/loopback.json")
    refused = authorize(guarded, client_id)
    assert refused.status_code == 400
    assert "resolves to 127.0.0.1 (loopback), which is refused" in refused.text
    assert "loopback" in refused_for(guarded, client_id)[0]
    assert "/clients/loopback.json" not in documents.hits  # never connected
    assert authorize(allowing, client_id).status_code == 200


def test_the_cloud_metadata_address_is_refused_even_when_private_networks_are_allowed(allowing):
    client_id = "https://169.254.169.254/latest/meta-data/client.json"
    refused = authorize(allowing, client_id)
    assert refused.status_code == 400
    assert "cloud metadata" in refused_for(allowing, client_id)[0]


def test_a_document_naming_another_client_id_is_refused(allowing, documents):
    other = documents.url("/clients/chatgpt-copy.json")
    client_id = documents.publish("/clients/impostor.json", {"client_id": other})
    assert authorize(allowing, client_id).status_code == 400
    assert "is not its URL" in refused_for(allowing, client_id)[0]
    twin = documents.publish("/clients/chatgpt-copy.json")
    assert authorize(allowing, twin).status_code == 200


def test_an_oversized_document_is_refused_and_one_under_the_cap_accepted(allowing, documents):
    big = documents.publish("/clients/big.json", {"padding": "x" * (64 * 1024)})
    assert authorize(allowing, big).status_code == 400
    assert "larger than" in refused_for(allowing, big)[0]
    under = documents.publish("/clients/under.json", {"padding": "x" * (60 * 1024)})
    assert authorize(allowing, under).status_code == 200


def test_a_redirect_uri_off_the_allowlist_is_refused(allowing, documents):
    evil = documents.publish("/clients/evil.json", {"redirect_uris": ["https://evil.example/cb"]})
    assert authorize(allowing, evil, redirect_uri="https://evil.example/cb").status_code == 400
    assert "allowlist" in refused_for(allowing, evil)[0]
    listed = documents.publish("/clients/listed.json",
                               {"redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"]})
    page = authorize(allowing, listed, redirect_uri="https://chatgpt.com/connector_platform_oauth_redirect")
    assert page.status_code == 200, page.text


def test_a_redirect_from_the_document_url_is_not_followed(allowing, documents):
    target = documents.publish("/clients/target.json")
    moved = documents.url("/clients/moved.json")
    documents.documents["/clients/moved.json"] = (302, {"Location": target}, b"")
    assert authorize(allowing, moved).status_code == 400
    assert "HTTP 302" in refused_for(allowing, moved)[0]
    assert "/clients/target.json" not in documents.hits
    assert authorize(allowing, target).status_code == 200
