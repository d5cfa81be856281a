#!/usr/bin/env python3
"""Rewrite the CSP hashes in the MCP Apps views (assets/dashboard.html, assets/approval.html) after
an edit of their inline script or style.

Each page's <meta> Content-Security-Policy allows its one inline <script> and one inline <style>
by SHA-256 hash only; `cargo test apps::` fails until this has been run.
    scripts/dashboard-csp.py
"""
import base64
import hashlib
import re
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PAGES = [ASSETS / "dashboard.html", ASSETS / "approval.html"]


def digest(text: str, tag: str) -> str:
    body = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S).group(1)
    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


for page in PAGES:
    text = page.read_text(encoding="utf-8")
    for tag in ("script", "style"):
        text = re.sub(rf"{tag}-src 'sha256-[^']*'", f"{tag}-src 'sha256-{digest(text, tag)}'", text)
    page.write_text(text, encoding="utf-8")
    print(f"{page}: CSP hashes updated")
