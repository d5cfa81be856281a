"""The MCP Apps dashboard (ui://hostmcp/dashboard) in a real browser, inside a host page built
from the official @modelcontextprotocol/ext-apps AppBridge and the TypeScript SDK client.

`dashboard/drive.mjs` serves the host page and its sandbox proxy on loopback, runs Debian's
chromium headless through playwright-core, and reports what it saw as JSON; this test starts
`hostmcp serve` with a `read` token, runs the driver against it and checks the report: the
capability and the tool links, that the view renders the host's real figures (compared with
/proc read at the same moment), that it updates by calling tools through the host, that it
makes no request of its own, and that its CSP is present and enforced. Needs
HOSTMCP_BROWSER_NODE_MODULES and HOSTMCP_NODE (scripts/install-test-deps.sh) and
/usr/bin/chromium (apt package chromium)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import start_server

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("HOSTMCP_CHROMIUM", "/usr/bin/chromium")
URI = "ui://hostmcp/dashboard"


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests through .ci/run (scripts/install-test-deps.sh)")
    return value


@pytest.fixture(scope="module")
def report():
    modules = required_env("HOSTMCP_BROWSER_NODE_MODULES")
    node = required_env("HOSTMCP_NODE")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/install-test-deps.sh does)")
    server = start_server()
    screenshot = Path(tempfile.mkdtemp(prefix="hostmcp-dashboard-")) / "dashboard.png"
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tempfile.mkdtemp(prefix="hostmcp-dashboard-home-"),
            "HOSTMCP_BROWSER_NODE_MODULES": modules,
            "HOSTMCP_MCP_URL": server.mcp_url,
            "HOSTMCP_TOKEN": server.tokens["reader"],
            "HOSTMCP_CHROMIUM": CHROMIUM,
            "HOSTMCP_DASHBOARD_SCREENSHOT": str(screenshot),
        }
        # drive.mjs bounds each wait (45 s) and has its own watchdog (150 s).
        done = subprocess.run([node, str(HERE / "dashboard" / "drive.mjs")], env=env,
                              capture_output=True, text=True, timeout=200)
        assert done.returncode == 0, f"drive.mjs failed ({done.returncode}):\n{done.stderr}\n{server.log()[-3000:]}"
        result = json.loads(done.stdout)
        result["screenshot"] = str(screenshot)
        result["server_log"] = server.log()
        yield result
    finally:
        server.stop()


def test_the_server_declares_the_extension_and_links_the_view_from_both_tools(report):
    host = report["host"]
    assert host["serverExtension"] == {"mimeTypes": ["text/html;profile=mcp-app"]}
    for meta in (host["toolMeta"], host["processListMeta"]):
        assert meta["ui"]["resourceUri"] == URI
        assert meta["ui/resourceUri"] == URI
    # The view is listed for a read token, with the spec's MIME type and its _meta.ui.
    listed = host["listed"]
    assert listed["mimeType"] == "text/html;profile=mcp-app"
    assert listed["_meta"]["ui"]["prefersBorder"] is True
    assert host["csp"] == {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}


def test_the_view_renders_the_hosts_real_figures(report):
    first, proc = report["first"], report["proc"]["first"]
    assert first["initialized"] is True
    assert first["status"].startswith("live"), first["status"]
    assert first["hostname"] == Path("/proc/sys/kernel/hostname").read_text().strip()
    assert first["cpus"] == os.cpu_count()
    # The figures came from host_info a few seconds at most before /proc was read.
    assert abs(first["load1"] - proc["load"]["one"]) <= 1.0 + 0.25 * proc["load"]["one"], (first, proc["load"])
    assert first["memTotal"] == proc["memTotal"]
    assert abs(first["memAvailable"] - proc["memAvailable"]) <= max(512 << 20, proc["memTotal"] // 10)
    assert abs(first["processes"] - proc["pids"]) <= max(25, proc["pids"] // 4), (first["processes"], proc["pids"])
    # The top processes are real ones: most were still running when /proc was read.
    assert len(first["topPids"]) >= 3
    assert len(report["livePids"]) * 2 >= len(first["topPids"]), (first["topPids"], report["livePids"])
    # The root filesystem, with the size statvfs gives.
    stat = os.statvfs("/")
    root = [disk for disk in first["disks"] if disk["mount"] == "/"]
    assert root and root[0]["size"] == stat.f_blocks * stat.f_frsize, first["disks"]


def test_the_view_updates_by_calling_tools_through_the_host(report):
    first, second = report["first"], report["second"]
    assert second["updates"] > first["updates"]
    assert second["uptime"] > first["uptime"]
    # The view's own tools/call went through the bridge to hostmcp: the host page called
    # host_info once for the initial tool result, the view called it (and the others) on
    # each refresh.
    calls = report["toolCalls"]
    assert calls.get("host_info", 0) >= 3, calls
    assert calls.get("process_list", 0) >= 2, calls
    assert calls.get("disk_usage", 0) >= 2, calls
    # The status says "live" only when every call of the last refresh succeeded (with the
    # read token the host connected with).
    assert second["status"].startswith("live"), second["status"]


def test_the_view_makes_no_request_of_its_own(report):
    host_origin, sandbox_origin = report["hostOrigin"], report["sandboxOrigin"]
    allowed = {(host_origin, "/"), (host_origin, "/host.js"), (host_origin, "/mcp"),
               (host_origin, "/favicon.ico"), (sandbox_origin, "/sandbox.html")}
    for request in report["requests"]:
        parts = urlsplit(request["url"])
        assert (f"{parts.scheme}://{parts.netloc}", parts.path) in allowed, request
        # Depth 2 is the view (host page > sandbox proxy > view): it loads nothing.
        assert request["frameDepth"] < 2, request
    # Near miss: the host page itself does talk to hostmcp through its /mcp proxy.
    assert any(r["url"] == f"{host_origin}/mcp" and r["frameDepth"] == 0 for r in report["requests"])


def test_the_csp_is_present_and_enforced(report):
    # The view's own <meta> policy: hash-only script and style, no connection.
    meta = report["first"]["metaCsp"]
    for directive in ("default-src 'none'", "script-src 'sha256-", "connect-src 'none'", "base-uri 'none'"):
        assert directive in meta, meta
    assert "unsafe" not in meta
    # The host's policy, built from the resource's empty _meta.ui.csp lists.
    assert "connect-src 'none'" in report["sandboxCspHeader"], report["sandboxCspHeader"]
    # A fetch from inside the view is blocked before it leaves the browser...
    assert report["viewProbe"]["outcome"] == "blocked", report["viewProbe"]
    assert "connect-src" in report["viewProbe"]["violations"], report["viewProbe"]
    assert report["probeHitsFromView"] == 0
    # ...while the same fetch from the host page (no such policy) reaches the probe.
    assert report["hostProbe"] == 200
    assert report["probeHitsAfterHost"] == 1
