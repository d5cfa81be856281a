"""service_status and log_query through the Python SDK, checked against systemd's own tools.

A real systemd runs here as a user manager (`systemd --user`, not PID 1): systemd refuses to
start one unless /run/systemd/system exists, which only a host booted with systemd has, so
the manager runs in a mount namespace of its own (`unshare -m`) with a tmpfs over
/run/systemd holding that directory; the host's /run is untouched. Its units come from unit
files in a temporary XDG_CONFIG_HOME; its user bus (dbus.service, started by the test) is
$XDG_RUNTIME_DIR/bus, where hostmcp reaches it (config `[systemd] bus_address`), as it reaches
the system manager on the system bus. The answers are compared with `systemctl --user` on
the same manager.

The journal is a journal file written by systemd-journal-remote from export format, read by
hostmcp through `[logs] journal_directory` and compared with `journalctl --directory`.
"""

from __future__ import annotations

import asyncio

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import config_text, start_server
from mcp_clients import connect

pytestmark = pytest.mark.anyio

SYSTEMD = "/lib/systemd/systemd"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"

def units(root: Path) -> dict[str, str]:
    return {
    "sleeper.service": "[Unit]\nDescription=Sleeps\n[Service]\nExecStart=/bin/sleep 1000\n",
    "failer.service": "[Unit]\nDescription=Fails\n[Service]\nExecStart=/bin/false\n",
    # Fails twice, then runs: NRestarts ends at 2.
    "restarter.service": (
        "[Unit]\nDescription=Restarts twice\nStartLimitIntervalSec=0\n[Service]\n"
        f"ExecStart=/bin/sh -c 'n=$(cat {root}/count 2>/dev/null || echo 0); echo $((n+1)) > {root}/count; "
        "[ $n -ge 2 ] && exec sleep 1000; exit 3'\nRestart=on-failure\nRestartSec=100ms\n"
    ),
    }


class UserManager:
    """`systemd --user` in its own mount namespace; stopped by PID."""

    def __init__(self, root: Path):
        self.root = root
        self.runtime = root / "run"
        self.runtime.mkdir(mode=0o700)
        unit_dir = root / "config/systemd/user"
        unit_dir.mkdir(parents=True)
        for name, text in units(root).items():
            (unit_dir / name).write_text(text)
        (root / "home").mkdir()
        self.env = {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(root / "home"),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "XDG_CONFIG_HOME": str(root / "config"),
        }
        script = (
            "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && "
            f"exec {SYSTEMD} --user"
        )
        self.log = open(root / "manager.log", "wb")
        self.process = subprocess.Popen(["unshare", "-m", "sh", "-c", script], env=self.env,
                                        stdout=self.log, stderr=self.log)
        self.bus = f"unix:path={self.runtime / 'bus'}"
        deadline = time.monotonic() + 30
        while not (self.runtime / "systemd/private").exists() or not self.owns_its_name():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"systemd --user did not start: {(root / 'manager.log').read_text()}")
            if (self.runtime / "systemd/private").exists():
                self.systemctl("start", "dbus.service")
            time.sleep(0.1)

    def owns_its_name(self) -> bool:
        """The manager answers as org.freedesktop.systemd1 on its user bus."""
        return subprocess.run(
            ["busctl", f"--address={self.bus}", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
             "org.freedesktop.DBus.Properties", "Get", "ss", "org.freedesktop.systemd1.Manager", "Version"],
            env=self.env, capture_output=True, timeout=30).returncode == 0

    def systemctl(self, *args: str) -> str:
        return subprocess.run(["systemctl", "--user", "--no-pager", *args], env=self.env,
                              capture_output=True, text=True, timeout=30).stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        text = self.systemctl("show", unit, "--timestamp=unix", "-p", ",".join(properties))
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def wait_for(self, unit: str, prop: str, value: str) -> None:
        deadline = time.monotonic() + 30
        while self.show(unit, prop).get(prop) != value:
            assert time.monotonic() < deadline, f"{unit}: {prop} never became {value}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def can_run_a_user_manager() -> str | None:
    if os.geteuid() != 0:
        return "needs root for unshare -m"
    for tool in (SYSTEMD, shutil.which("unshare"), shutil.which("systemctl"), shutil.which("busctl")):
        if not tool or not Path(tool).exists():
            return f"missing {tool}"
    if not Path("/run/systemd").is_dir():
        return "no /run/systemd to mount over"
    if not Path("/usr/lib/systemd/user/dbus.service").exists():
        return "no user bus unit (Debian package dbus-user-session)"
    return None


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    why = can_run_a_user_manager()
    if why:
        pytest.skip(why)
    manager = UserManager(tmp_path_factory.mktemp("systemd-user"))
    try:
        manager.systemctl("start", "sleeper.service", "failer.service", "restarter.service")
        manager.wait_for("failer.service", "ActiveState", "failed")
        manager.wait_for("restarter.service", "SubState", "running")
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="module")
def systemd_server(manager):
    server = start_server(config=config_text(f'\n[systemd]\nbus_address = "{manager.bus}"\n'))
    yield server
    server.stop()


def units_of(text: str) -> dict[str, tuple[str, str, str]]:
    """`systemctl list-units --plain --no-legend` rows: name -> (load, active, sub)."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            rows[parts[0]] = (parts[1], parts[2], parts[3])
    return rows


async def test_the_unit_list_is_what_systemctl_lists(manager, systemd_server):
    async with connect(systemd_server, "streamable", "legacy", headers=systemd_server.headers("reader")) as client:
        # Two readings of a live manager agree once no unit is between states (a restarting
        # unit can be read `activating auto-restart` by one and `active running` by the
        # other): read both again, a bounded number of times, until they do.
        for _ in range(25):
            listed = await client.call_tool("service_status", {"type": "service"})
            assert listed.is_error is not True, listed.content[0].text
            ours = {u["name"]: (u["load"], u["active"], u["sub"]) for u in listed.structured_content["units"]}
            theirs = units_of(manager.systemctl("list-units", "--all", "--type=service", "--plain", "--no-legend"))
            if ours == theirs:
                break
            await asyncio.sleep(0.2)
        failed = await client.call_tool("service_status", {"state": ["failed"]})
        globbed = await client.call_tool("service_status", {"pattern": "s*er.service", "limit": 1})
    assert ours == theirs
    assert ours["sleeper.service"] == ("loaded", "active", "running")
    assert ours["failer.service"] == ("loaded", "failed", "failed")
    assert listed.structured_content["total"] == len(theirs)
    text = listed.content[0].text
    assert "sleeper.service" in text and "loaded active running  Sleeps" in text

    failed_names = [u["name"] for u in failed.structured_content["units"]]
    assert failed_names == sorted(units_of(manager.systemctl("list-units", "--state=failed", "--plain", "--no-legend")))
    assert failed_names == ["failer.service"]

    assert [u["name"] for u in globbed.structured_content["units"]] == ["sleeper.service"]
    assert globbed.structured_content["total"] == 1


async def test_one_unit_is_what_systemctl_shows(manager, systemd_server):
    props = ("MainPID", "ActiveState", "SubState", "LoadState", "NRestarts", "MemoryCurrent",
             "StateChangeTimestamp", "Result", "TasksCurrent")
    async with connect(systemd_server, "streamable", "legacy", headers=systemd_server.headers("reader")) as client:
        answers = {name: await client.call_tool("service_status", {"unit": name.removesuffix(".service")})
                   for name in ("sleeper.service", "failer.service", "restarter.service")}
        missing = await client.call_tool("service_status", {"unit": "nosuch"})
    for name, answer in answers.items():
        assert answer.is_error is not True, answer.content[0].text
        unit = answer.structured_content["unit"]
        shown = manager.show(name, *props)
        assert unit["name"] == name
        assert (unit["load_state"], unit["active_state"], unit["sub_state"]) == (
            shown["LoadState"], shown["ActiveState"], shown["SubState"])
        assert unit.get("main_pid", 0) == int(shown["MainPID"])
        assert unit["restarts"] == int(shown["NRestarts"])
        assert unit["result"] == shown["Result"]
        assert unit["since_us"] // 1_000_000 == int(shown["StateChangeTimestamp"].lstrip("@"))
        if shown["MemoryCurrent"] not in ("[not set]", ""):
            # Memory moves; the same order of magnitude is the check.
            assert 0 < unit["memory_bytes"] < 10 * int(shown["MemoryCurrent"]) + 1_000_000
    sleeper = answers["sleeper.service"]
    assert sleeper.structured_content["unit"]["main_pid"] > 0
    assert "active (running) since" in sleeper.content[0].text
    assert f"main PID {sleeper.structured_content['unit']['main_pid']}" in sleeper.content[0].text
    assert answers["restarter.service"].structured_content["unit"]["restarts"] == 2
    assert "2 restarts" in answers["restarter.service"].content[0].text
    assert answers["failer.service"].structured_content["unit"]["result"] == "exit-code"
    assert missing.is_error is not True
    assert missing.structured_content["unit"]["load_state"] == "not-found"
    assert "not found" in missing.content[0].text


async def test_where_systemd_is_not_running_the_answer_says_so(server):
    async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        started = time.monotonic()
        result = await client.call_tool("service_status", {})
        elapsed = time.monotonic() - started
    assert {"service_status", "log_query"} <= set(tools)
    for name in ("service_status", "log_query"):
        schema = json.dumps(tools[name].output_schema) + json.dumps(tools[name].input_schema)
        assert '"format"' not in schema and '"items": true' not in schema
    if Path("/run/systemd/system").is_dir():
        pytest.skip("this host runs systemd: the absent-systemd answer cannot be seen here")
    assert result.is_error is True
    assert result.content[0].text.startswith("systemd is not running on this host: PID 1 is")
    assert elapsed < 10


async def test_a_bus_where_nobody_owns_systemd(tmp_path):
    if not shutil.which("dbus-daemon"):
        pytest.skip("dbus-daemon is not installed")
    socket = tmp_path / "bus"
    conf = tmp_path / "bus.conf"
    conf.write_text(
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" '
        '"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
        f"<busconfig><type>session</type><listen>unix:path={socket}</listen><auth>EXTERNAL</auth>"
        '<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>'
        '<allow own="*"/></policy></busconfig>\n')
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile"])
    server = None
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert time.monotonic() < deadline and bus.poll() is None, "dbus-daemon did not start"
            time.sleep(0.05)
        server = start_server(config=config_text(f'\n[systemd]\nbus_address = "unix:path={socket}"\n'))
        async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
            result = await client.call_tool("service_status", {"unit": "ssh"})
        assert result.is_error is True
        assert result.content[0].text.startswith(f"no systemd manager answers on the bus at unix:path={socket}")
    finally:
        if server:
            server.stop()
        bus.terminate()
        bus.wait(timeout=10)


def write_journal(directory: Path) -> None:
    now = int(time.time() * 1_000_000)
    entries = []
    for i in range(6):
        entries.append(
            f"__REALTIME_TIMESTAMP={now - (6 - i) * 60_000_000}\n__MONOTONIC_TIMESTAMP={1000 + i}\n"
            "_BOOT_ID=0123456789abcdef0123456789abcdef\n_SYSTEMD_UNIT=web.service\n"
            f"SYSLOG_IDENTIFIER=web\n_PID=77\nPRIORITY={3 if i % 2 else 6}\n"
            f"MESSAGE={'request failed' if i % 2 else 'request ok'} #{i}\n")
    subprocess.run([JOURNAL_REMOTE, f"--output={directory}/test.journal", "-"],
                   input="\n".join(entries) + "\n", text=True, check=True, timeout=30,
                   capture_output=True)


@pytest.fixture(scope="module")
def logs_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    app = root / "app.log"
    now = time.time()
    app.write_text("".join(
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - minutes * 60))
        + f" {'ERROR' if minutes % 4 == 0 else 'INFO'} job {minutes}\n"
        for minutes in range(40, 0, -1)))
    (root / "secret").write_text("root:x:0:0:do not show\n")
    (root / "other.log").write_text("not configured\n")
    journal = root / "journal"
    journal.mkdir()
    has_journal = Path(JOURNAL_REMOTE).exists()
    if has_journal:
        write_journal(journal)
    extra = (f'\n[logs]\njournal_directory = "{journal}"\nfiles = ["{app}"]\n'
             f'[logs.sources]\nswapped = "{root / "swapped.log"}"\n')
    (root / "swapped.log").write_text("fine\n")
    server = start_server(config=config_text(extra))
    yield server, root, has_journal
    server.stop()


async def test_log_files_grep_cap_since_and_refusals(logs_server):
    server, root, _ = logs_server
    app = str(root / "app.log")
    async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
        errors = await client.call_tool("log_query", {"source": app, "grep": "ERROR", "lines": 3})
        recent = await client.call_tool("log_query", {"source": app, "since": "5m"})
        unlisted = await client.call_tool("log_query", {"source": str(root / "other.log")})
        dotted = await client.call_tool("log_query", {"source": f"{root}/../{root.name}/app.log"})
        swapped_before = await client.call_tool("log_query", {"source": "swapped"})
        (root / "swapped.log").unlink()
        (root / "swapped.log").symlink_to(root / "secret")
        swapped_after = await client.call_tool("log_query", {"source": "swapped"})
    lines = [line["message"] for line in errors.structured_content["lines"]]
    assert [line.split()[-1] for line in lines] == ["12", "8", "4"]
    assert errors.structured_content["older_matches_left_out"] == 7
    assert errors.content[0].text.splitlines()[0].startswith(f"3 lines from {app} ({app})")
    assert [line["message"].split()[-1] for line in recent.structured_content["lines"]][-4:] == ["4", "3", "2", "1"]
    assert all(int(line["message"].split()[-1]) <= 5 for line in recent.structured_content["lines"])
    for refused in (unlisted, dotted):
        assert refused.is_error is True
        assert refused.content[0].text.startswith("refused:") and "the sources are: journal" in refused.content[0].text
    assert swapped_before.is_error is not True
    assert [line["message"] for line in swapped_before.structured_content["lines"]] == ["fine"]
    assert swapped_after.is_error is True and "is a symlink" in swapped_after.content[0].text
    assert "do not show" not in swapped_after.content[0].text


async def test_the_journal_matches_journalctl(logs_server):
    server, root, has_journal = logs_server
    if not has_journal:
        pytest.skip("systemd-journal-remote is not installed (scripts/install-test-deps.sh installs it)")
    async with connect(server, "streamable", "legacy", headers=server.headers("reader")) as client:
        result = await client.call_tool("log_query", {"unit": "web", "priority": "err", "lines": 2})
        grepped = await client.call_tool("log_query", {"grep": "ok #[0-9]"})
    theirs = [json.loads(line) for line in subprocess.run(
        ["journalctl", f"--directory={root / 'journal'}", "--unit=web.service", "--priority=3",
         "--output=json", "--lines=2", "--no-pager"],
        capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()]
    ours = result.structured_content["lines"]
    assert [line["message"] for line in ours] == [entry["MESSAGE"] for entry in theirs]
    assert [line["message"] for line in ours] == ["request failed #3", "request failed #5"]
    assert all(line["priority"] == 3 and line["unit"] == "web.service" and line["pid"] == 77 for line in ours)
    assert "web.service web[77] err: request failed #5" in result.content[0].text
    assert [line["message"] for line in grepped.structured_content["lines"]] == [
        "request ok #0", "request ok #2", "request ok #4"]
