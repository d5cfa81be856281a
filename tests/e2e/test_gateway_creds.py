"""The fleet in NATS operator (JWT) mode: `.creds` files instead of nkey seeds, without `nsc`.

nats-server runs in operator mode (an operator JWT, one account preloaded in a memory resolver);
each host and the gateway get a user JWT of that account with the same permissions as the nkey
setup (natsconf.py), written as a `.creds` file (tests/e2e/nats/natsjwt.py mints them). A real
`hostmcp serve --fleet-creds` host and a real `hostmcp gateway --nats-creds` serve run_command
through the gateway. Near misses: a creds file signed by an account the server does not know is
refused at connect, and a host's creds do not let it answer on another host's subject.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, RUN_AS_ROOT, TOKENS, Server, config_text, wait_for_port
from gateway_fleet import result_of, stateless_call, stop, wait_online

sys.path.insert(0, str(Path(__file__).resolve().parent / "nats"))
import natsconf  # noqa: E402
import natsjwt  # noqa: E402
import natsproc  # noqa: E402

nats = pytest.importorskip("nats")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(natsproc.nats_server_bin() is None, reason="nats-server not installed"),
]

HOST = "jwt-1"


class CredsFleet:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.setup = natsjwt.new_operator()
        self.tls = natsconf.make_tls(workdir / "tls")
        (self.port,) = natsproc.free_ports(1)
        text = natsconf.server_config(port=self.port, hosts={}, gateways=[], tls=self.tls,
                                      operator=self.setup.server_settings(workdir))
        self.server = natsproc.start(text, self.port, workdir, "nats-operator")
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return self.server.url

    def creds(self, who: str, permissions: dict) -> Path:
        return self.setup.user_creds(self.dir / f"{who}.creds", who, permissions)

    def env(self, home: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                "XDG_STATE_HOME": str(home / "state"), "HOSTMCP_LOG": "info"}

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        self.server.stop()


@pytest.fixture(scope="module")
def fleet():
    fleet = CredsFleet(Path(tempfile.mkdtemp(prefix="hostmcp-gwcreds-")))
    try:
        gw_home = fleet.dir / "gw"
        gw_home.mkdir()
        (gw_home / "config.toml").write_text(config_text())
        key = subprocess.run([BIN, "gateway", "key"], env=fleet.env(gw_home), capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
        host_home = fleet.dir / HOST
        host_home.mkdir()
        (host_home / "config.toml").write_text(
            RUN_AS_ROOT + f'[audit]\npath = "{host_home / "audit.jsonl"}"\n'
            + f'[fleet]\ntrusted_gateways = ["{key}"]\n[fleet.principals]\nalice = "operator"\n')
        host_creds = fleet.creds(HOST, natsconf.host_permissions(HOST))
        fleet.processes.append(subprocess.Popen(
            [BIN, "serve", "--config", str(host_home / "config.toml"), "--fleet", fleet.url,
             "--fleet-name", HOST, "--fleet-creds", str(host_creds), "--fleet-ca", str(fleet.tls.ca),
             "--no-http"],
            stdout=subprocess.DEVNULL, stderr=open(host_home / "host.log", "wb"), env=fleet.env(host_home)))
        gw_creds = fleet.creds("gateway", natsconf.gateway_permissions())
        log_path = gw_home / "gateway.log"
        process = subprocess.Popen(
            [BIN, "gateway", "--nats", fleet.url, "--nats-creds", str(gw_creds), "--nats-ca", str(fleet.tls.ca),
             "--listen", "127.0.0.1:0", "--config", str(gw_home / "config.toml"),
             "--audit-log", str(gw_home / "audit.jsonl")],
            stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"), env=fleet.env(gw_home))
        fleet.processes.append(process)
        port = wait_for_port(process, log_path, timeout=60)
        fleet.gateway = Server(process, port, gw_home / "state", log_path,
                               {name: token for name, (token, _) in TOKENS.items()})
        wait_online(fleet.gateway, {HOST})
        yield fleet
    finally:
        fleet.close()


def test_hosts_and_the_gateway_log_in_with_creds_files_and_serve_calls(fleet):
    result = result_of(stateless_call(fleet.gateway, "run_command", {"host": HOST, "command": "echo via-jwt"}))
    assert result["structuredContent"]["stdout"] == "via-jwt\n"


async def connect(fleet, creds: Path, **kw):
    tls = ssl.create_default_context(cafile=str(fleet.tls.ca))
    return await nats.connect(fleet.url, user_credentials=str(creds), tls=tls, connect_timeout=5,
                              allow_reconnect=False, max_reconnect_attempts=0, **kw)


async def test_creds_of_an_account_the_server_does_not_know_are_refused(fleet, tmp_path):
    stranger = natsjwt.new_operator()
    creds = stranger.user_creds(tmp_path / "stranger.creds", HOST, natsconf.host_permissions(HOST))
    with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):
        nc = await connect(fleet, creds)
        await nc.close()
    # The near miss: the same kind of file from this server's account connects.
    nc = await connect(fleet, fleet.creds("jwt-2", natsconf.host_permissions("jwt-2")))
    await nc.close()


async def test_a_hosts_creds_cannot_take_another_hosts_subject(fleet):
    errors: list[Exception] = []

    async def error_cb(e):
        errors.append(e)

    nc = await connect(fleet, fleet.creds("jwt-2", natsconf.host_permissions("jwt-2")), error_cb=error_cb)
    try:
        await nc.subscribe(f"hostmcp.host.{HOST}.call")
        await nc.subscribe("hostmcp.host.jwt-2.call")  # its own: allowed
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.05)
        assert len(errors) == 1 and "permissions violation" in str(errors[0]).lower(), errors
        assert HOST in str(errors[0]) and "jwt-2" not in str(errors[0]), errors
    finally:
        await nc.close()
