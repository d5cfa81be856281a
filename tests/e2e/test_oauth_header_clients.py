"""Header clients are never pushed into OAuth (issue 12): Claude Code 2.1.330, configured with
`claude mcp add --transport http NAME URL --header "Authorization: Bearer …"`, against a
server with the OAuth authorization server on. Every request Claude Code makes goes through a
recording proxy on loopback that is also the server's public URL (so the discovery documents
and the `resource_metadata` of a 401 point at it too): with a valid token it connects, gets no
401 and asks for no discovery document; the near miss, a wrong token, gets the 401 naming the
metadata, and even then it does not fall back to OAuth while the header is set; its twin,
the same server added without a header, makes Claude Code fetch the discovery documents
(so the proxy would have seen them). No login, no API key, no traffic but to 127.0.0.1."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import TOKENS, start_server
from test_client_configs import claude, home  # noqa: F401  (the `home` fixture)
from test_oauth import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "host", "content-length"}


class RecordingProxy:
    """HTTP/1.0 on 127.0.0.1:`port`, forwarding to `upstream` and streaming answers back
    (SSE included); records (method, path, status) of every request."""

    def __init__(self, port: int):
        self.upstream: int | None = None
        self.seen: list[tuple[str, str, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", outer.upstream, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    outer.seen.append((self.command, self.path, answer.status))
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    self.end_headers()
                    while chunk := answer.read1(65536):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (OSError, http.client.HTTPException):
                    pass
                finally:
                    upstream.close()

            do_GET = do_POST = do_DELETE = forward  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def proxied():
    proxy, last = None, None
    for _ in range(5):
        port = free_port()
        try:
            proxy = RecordingProxy(port)
            break
        except OSError as error:  # taken in between: try another
            last = error
    if proxy is None:
        raise last
    # The server listens on a port of its own; its public URL is the proxy's.
    server = start_server(["--public-url", f"http://127.0.0.1:{port}", "--oauth"])
    proxy.upstream = server.port
    proxy.base = f"http://127.0.0.1:{port}"
    try:
        yield proxy, server
    finally:
        server.stop()
        proxy.stop()


def test_claude_code_with_a_header_never_starts_oauth_and_the_wrong_token_gets_the_401(proxied, home):  # noqa: F811
    proxy, _ = proxied
    url = f"{proxy.base}/mcp"
    done = claude(home, "mcp", "add", "--transport", "http", "hostmcp", url,
                  "--header", f"Authorization: Bearer {TOKENS['alice'][0]}")
    assert done.returncode == 0, done.stdout + done.stderr
    proxy.seen.clear()
    done = claude(home, "mcp", "list")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("hostmcp:"))
    assert "Connected" in line, done.stdout
    assert proxy.seen, "Claude Code's health check went through the proxy"
    assert all(status != 401 for _, _, status in proxy.seen), proxy.seen
    asked = [path for _, path, _ in proxy.seen if path.startswith(("/.well-known/", "/oauth/"))]
    assert asked == [], f"a header client asked for OAuth documents: {proxy.seen}"

    # The near miss: a wrong token is answered 401 with the metadata URL, which is what
    # would start a client's OAuth discovery.
    done = claude(home, "mcp", "remove", "hostmcp")
    assert done.returncode == 0, done.stdout + done.stderr
    done = claude(home, "mcp", "add", "--transport", "http", "hostmcp-wrong", url,
                  "--header", "Authorization: Bearer wrong-token-0123456789")
    assert done.returncode == 0, done.stdout + done.stderr
    proxy.seen.clear()
    done = claude(home, "mcp", "list")
    line = next(line for line in done.stdout.splitlines() if line.startswith("hostmcp-wrong:"))
    assert "Connected" not in line, done.stdout
    assert ("POST", "/mcp", 401) in proxy.seen, proxy.seen
    # Even then this Claude Code does not fall back to OAuth while the header is set: it
    # says so, and asks for no discovery document.
    assert "OAuth fallback is disabled when headers.Authorization is set" in line, line
    assert not [path for _, path, _ in proxy.seen if path.startswith(("/.well-known/", "/oauth/"))], proxy.seen
    print(f"\nClaude Code with a wrong header token: {line!r}; requests: {proxy.seen}")

    # The twin that shows the proxy would see it: the same server added without a header is
    # an OAuth server to Claude Code, which goes looking for the discovery documents.
    done = claude(home, "mcp", "remove", "hostmcp-wrong")
    assert done.returncode == 0, done.stdout + done.stderr
    done = claude(home, "mcp", "add", "--transport", "http", "hostmcp-oauth", url)
    assert done.returncode == 0, done.stdout + done.stderr
    proxy.seen.clear()
    done = claude(home, "mcp", "list")
    line = next(line for line in done.stdout.splitlines() if line.startswith("hostmcp-oauth:"))
    print(f"Claude Code without a header: {line!r}; requests: {proxy.seen}")
    assert "Connected" not in line, done.stdout
    assert [path for _, path, _ in proxy.seen if path.startswith("/.well-known/oauth-")], proxy.seen

