"""hostmcp holds under attack (issue 10): a command that runs as the server's own uid
cannot read the server's secrets out of /proc, the server says loudly when a policy
cannot protect its files, and malformed HTTP framing gets a 4xx. Every attack has its
near-miss twin: the allowed case still works."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from conftest import BIN, TOKENS, Server, config_text, start_server, wait_for_port
from mcp_clients import connect

pytestmark = pytest.mark.anyio

ADMIN_TOKEN = "hostmcp-admin-secret-in-the-environment-0123456789"
SHARED_UID_WARNING = "RESTRICTED TOKENS RUN COMMANDS AS THE SERVER'S OWN USER"
CAT = os.path.realpath(shutil.which("cat") or "/usr/bin/cat")

# As root the server is started as `nobody`, whose commands then run as `nobody` too (the
# non-root default): root could read /proc/<pid>/environ of anything, so only a non-root
# server on its own uid proves what non-dumpable protects. Not as root: as ourselves.
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []


def give_to_nobody(path: Path) -> None:
    if os.geteuid() == 0:
        for entry in [path, *path.rglob("*")]:
            os.chown(entry, 65534, 65534)


def start_unprivileged(config: str, env: dict[str, str] | None = None) -> Server:
    """`hostmcp serve` as `nobody` (as root) on a free loopback port; stop it with .stop()."""
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-"))
    (workdir / "config.toml").write_text(config)
    give_to_nobody(workdir)
    full_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "XDG_STATE_HOME": str(workdir / "state"),
        "HOSTMCP_LOG": "info",
        **(env or {}),
    }
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [*AS_NOBODY, BIN, "serve", "--listen", "127.0.0.1:0", "--config", str(workdir / "config.toml")],
            stdout=subprocess.DEVNULL, stderr=log_file, env=full_env,
        )
    port = wait_for_port(process, log_path)
    tokens = {name: token for name, (token, _) in TOKENS.items()}
    return Server(process, port, workdir / "state", log_path, tokens)


ONLY_CAT = f'''
[policy]
default = "deny"

[[policy.allow]]
program = "{CAT}"
args = ["*"]
'''


async def cat(server: Server, path: str, principal: str = "alice"):
    async with connect(server, "streamable", "legacy", headers=server.headers(principal)) as client:
        return await client.call_tool("run_command", {"argv": ["cat", path]})


def text_of(result) -> str:
    return "".join(getattr(part, "text", "") for part in result.content) + str(result.structured_content)


async def test_a_cat_only_operator_cannot_read_the_servers_environment_but_reads_its_own():
    server = start_unprivileged(config_text(extra=ONLY_CAT, top=""), env={"HOSTMCP_TOKEN": ADMIN_TOKEN})
    try:
        # The attacker finds the server: the parent of its own command.
        own = await cat(server, "/proc/self/status")
        assert own.is_error is not True, text_of(own)
        server_pid = int(re.search(r"^PPid:\s*(\d+)", own.structured_content["stdout"], re.M).group(1))
        assert server_pid == server.process.pid
        assert Path(f"/proc/{server_pid}/status").read_text().count("hostmcp") >= 1
        attack = await cat(server, f"/proc/{server_pid}/environ")
        assert attack.is_error is True
        assert "Permission denied" in attack.structured_content["stderr"]
        assert ADMIN_TOKEN not in text_of(attack)
        for secret_file in ["mem", "maps"]:
            refused = await cat(server, f"/proc/{server_pid}/{secret_file}")
            assert refused.is_error is True and "Permission denied" in refused.structured_content["stderr"]
        # The near miss: the command's own environment (execve made it dumpable again).
        mine = await cat(server, "/proc/self/environ")
        assert mine.is_error is not True, text_of(mine)
        assert "PATH=" in mine.structured_content["stdout"]
        assert ADMIN_TOKEN not in mine.structured_content["stdout"]
        # The server warned once that the policy cannot protect its files from alice and bob.
        log = server.log()
        assert log.count(SHARED_UID_WARNING) == 1, log
        warning = next(line for line in log.splitlines() if SHARED_UID_WARNING in line)
        assert "alice, bob" in warning and "boss" not in warning and "run_as" in warning
        assert ADMIN_TOKEN not in log
    finally:
        server.stop()


async def test_an_admin_only_server_does_not_warn_about_its_own_uid():
    admin_only = "\n".join(
        f'[[tokens]]\nname = "{name}"\nrole = "admin"\nsha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
        for name, (token, role) in TOKENS.items() if role == "admin"
    )
    server = start_unprivileged(admin_only)
    try:
        assert SHARED_UID_WARNING not in server.log()
        assert (await cat(server, "/proc/self/status", principal="boss")).is_error is not True
    finally:
        server.stop()


async def test_stdio_is_non_dumpable_too():
    """Over stdio the client's secrets are in the server's environment: a command (here a
    shell, the stdio owner is admin) cannot read them through its parent's /proc entry."""
    env = {"PATH": "/usr/bin:/bin", "CLIENT_API_KEY": ADMIN_TOKEN, "HOME": "/tmp", "XDG_STATE_HOME": tempfile.mkdtemp()}
    give_to_nobody(Path(env["XDG_STATE_HOME"]))
    params = StdioServerParameters(command=AS_NOBODY[0] if AS_NOBODY else BIN,
                                   args=[*AS_NOBODY[1:], BIN, "stdio"] if AS_NOBODY else ["stdio"], env=env)
    async with Client(params, mode="legacy") as client:
        attack = await client.call_tool("run_command", {"command": 'cat "/proc/$PPID/environ"'})
        assert attack.is_error is True
        assert "Permission denied" in attack.structured_content["stderr"]
        assert ADMIN_TOKEN not in text_of(attack)
        mine = await client.call_tool("run_command", {"command": "cat /proc/self/environ"})
        assert mine.is_error is not True, text_of(mine)
        assert "PATH=" in mine.structured_content["stdout"]


@pytest.mark.skipif(os.geteuid() != 0, reason="commands as another user need a root server")
@pytest.mark.parametrize("state_mode, exposed", [(0o755, True), (0o700, False)])
def test_a_state_dir_readable_by_the_command_user_is_named_with_a_hint(state_mode, exposed):
    """alice's commands run as nobody: a state directory nobody can list is reported, with
    the chmod that fixes it; a 0700 one is not (the near miss)."""
    base = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-modes-"))  # under /tmp: every step searchable
    base.chmod(0o755)
    state = base / "state"
    (state / "hostmcp").mkdir(parents=True)
    os.chmod(state / "hostmcp", state_mode)
    config = 'run_as = "root"\n' + config_text(top="").replace(
        'name = "alice"\n', 'name = "alice"\nrun_as = "nobody"\n')
    server = start_server(config=config, env={"XDG_STATE_HOME": str(state)})
    try:
        log = server.log()
        line = next((line for line in log.splitlines() if "readable by a user commands run as" in line), None)
        if exposed:
            assert line is not None, log
            assert 'user="nobody"' in line and f"chmod o-rwx {state / 'hostmcp'}" in line
        else:
            assert line is None, line
        # root's own tokens (bob, boss on run_as root) share the server's uid: bob is restricted.
        assert SHARED_UID_WARNING in log
    finally:
        server.stop()
        shutil.rmtree(base)


INITIALIZE = (b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
              b'"capabilities":{},"clientInfo":{"name":"raw-socket","version":"1"}}}')


def raw_request(server: Server, head: str, body: bytes, expect: bytes) -> tuple[int, bytes]:
    """Send bytes on a fresh socket; read until `expect` shows up, the server closes, or 15 s."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        deadline = time.monotonic() + 15
        while expect not in received and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else 0
    return status, received


def post_head(server: Server, path: str, framing: str, hosts: tuple[str, ...] = ("127.0.0.1",)) -> str:
    lines = [f"POST {path} HTTP/1.1", *(f"Host: {host}" for host in hosts),
             f"Authorization: Bearer {server.tokens['alice']}", "Content-Type: application/json",
             "Accept: application/json, text/event-stream", framing, "Connection: close"]
    return "\r\n".join(lines) + "\r\n\r\n"


def chunked(body: bytes, size_line: str | None = None) -> bytes:
    return f"{size_line or format(len(body), 'x')}\r\n".encode() + body + b"\r\n0\r\n\r\n"


@pytest.fixture(scope="module")
def http_server():
    server = start_server()
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["/mcp", "/messages?sessionId=00000000-0000-0000-0000-000000000000"])
def test_a_malformed_chunked_body_is_a_400_parse_error(http_server, path):
    for size_line in ["zz", "ffffffffffffffffffff", "-5"]:
        status, answer = raw_request(http_server, post_head(http_server, path, "Transfer-Encoding: chunked"),
                                     chunked(INITIALIZE, size_line), b"}")
        assert status == 400, (size_line, answer)
        assert b'"code":-32700' in answer and b"cannot be read" in answer, answer


def test_a_valid_chunked_body_is_still_served(http_server):
    status, answer = raw_request(http_server, post_head(http_server, "/mcp", "Transfer-Encoding: chunked"),
                                 chunked(INITIALIZE), b"protocolVersion")
    assert status == 200, answer
    assert b'"protocolVersion"' in answer


def test_two_host_headers_are_refused_and_one_is_served(http_server):
    framing = f"Content-Length: {len(INITIALIZE)}"
    for hosts in [("127.0.0.1", "evil.example"), ("127.0.0.1", "127.0.0.1")]:
        status, answer = raw_request(http_server, post_head(http_server, "/mcp", framing, hosts), INITIALIZE, b"}")
        assert status == 400, answer
        assert b"duplicate_host" in answer and b"2 Host headers" in answer, answer
    status, answer = raw_request(http_server, post_head(http_server, "/mcp", framing), INITIALIZE, b"protocolVersion")
    assert status == 200 and b'"protocolVersion"' in answer, answer
