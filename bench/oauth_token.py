#!/usr/bin/env python3
"""Get an OAuth access token from a running hostmcp (`--oauth`) the way a client would,
without a browser: register (RFC 7591), open the consent page, approve it with a hostmcp
token, exchange the code with its PKCE verifier. Prints the access token on stdout.

    bench/oauth_token.py http://127.0.0.1:PORT   # the hostmcp token in HOSTMCP_TOKEN

Standard library only (bench/oauth.sh runs it with the system python3). Loopback only.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import sys
import urllib.parse

CALLBACK = "http://127.0.0.1:9/callback"


def request(base: str, method: str, path: str, body: bytes | None = None,
            content_type: str | None = None) -> tuple[int, dict, str]:
    url = urllib.parse.urlsplit(base)
    if url.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit(f"oauth_token: {base} is not a loopback URL")
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Content-Type": content_type} if content_type else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def main() -> None:
    base = sys.argv[1].rstrip("/")
    token = os.environ["HOSTMCP_TOKEN"]
    resource = f"{base}/mcp"
    status, _, text = request(base, "POST", "/oauth/register", json.dumps({
        "redirect_uris": [CALLBACK], "client_name": "bench/oauth.sh",
        "token_endpoint_auth_method": "none"}).encode(), "application/json")
    assert status == 201, text
    client_id = json.loads(text)["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "bench",
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": resource})
    status, _, page = request(base, "GET", f"/oauth/authorize?{query}")
    assert status == 200, page
    nonce = re.search(r'name="nonce" value="([^"]+)"', page).group(1)
    status, headers, text = request(base, "POST", "/oauth/authorize", urllib.parse.urlencode({
        "nonce": nonce, "token": token, "decision": "approve"}).encode(),
        "application/x-www-form-urlencoded")
    assert status == 303, text
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["location"]).query)["code"][0]
    status, _, text = request(base, "POST", "/oauth/token", urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
        "client_id": client_id, "code_verifier": verifier, "resource": resource}).encode(),
        "application/x-www-form-urlencoded")
    assert status == 200, text
    print(json.loads(text)["access_token"])


if __name__ == "__main__":
    main()
