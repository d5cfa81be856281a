"""The Debian package installed on this machine itself, then purged, within one test.

test_package.py installs the package into a fresh Debian root; this one installs it where CI
runs, as an operator would on their host: `dpkg -i` starts nothing and prints the next two
commands, the files are in place, `hostmcp check` passes on the shipped config, `dpkg -r` keeps
the config and the audit log directory, and `dpkg -P` leaves no file, directory or user behind.

It refuses to run (fails, saying why) where a hostmcp package, /etc/hostmcp or a `hostmcp` user
is already there: it would change what an operator installed. The package is purged whatever
happens, and only for the seconds this test runs does /etc/hostmcp/hostmcp.toml exist (tests
run one at a time, and every other root server in the suite is started with --config).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from test_package import deb  # noqa: F401: the fixture that builds the .deb

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dpkg") is None, reason="dpkg -i on this machine needs root and dpkg")

OWNED = [Path("/etc/hostmcp"), Path("/var/lib/hostmcp"), Path("/var/log/hostmcp"),
         Path("/usr/bin/hostmcp"), Path("/etc/logrotate.d/hostmcp"),
         Path("/usr/lib/systemd/system/hostmcp.service"), Path("/usr/lib/systemd/system/hostmcp-strict.service")]


def dpkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def installed() -> bool:
    status = dpkg("-s", "hostmcp")
    return status.returncode == 0 and "Status: install ok installed" in status.stdout


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def serving_from_package() -> list[str]:
    """Command lines of processes running the packaged binary (there must be none)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "exe") == "/usr/bin/hostmcp":
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_dpkg_install_on_this_host_then_remove_and_purge_leave_nothing(deb: Path):  # noqa: F811
    leftovers = [str(path) for path in OWNED if path.exists()]
    if installed() or leftovers or user_exists("hostmcp"):
        pytest.fail(f"hostmcp is already installed here ({leftovers or 'package or user'}): "
                    "this test installs and purges the package and would change that")
    try:
        done = dpkg("-i", str(deb))
        assert done.returncode == 0, done.stdout + done.stderr
        # Installing starts nothing and says what to do next.
        said = done.stdout + done.stderr
        assert "hostmcp token create" in said and "systemctl enable --now hostmcp" in said, said
        assert serving_from_package() == []
        # The files where operators look.
        version = subprocess.run(["/usr/bin/hostmcp", "--version"], capture_output=True, text=True, timeout=30)
        assert version.returncode == 0 and version.stdout.startswith("hostmcp "), version
        for path in OWNED:
            assert path.exists(), path
        assert user_exists("hostmcp")
        assert "/etc/hostmcp/hostmcp.toml" in dpkg("-s", "hostmcp").stdout  # a conffile
        # The shipped config passes `hostmcp check` here (its run-as user exists now).
        check = subprocess.run(["/usr/bin/hostmcp", "check", "--config", "/etc/hostmcp/hostmcp.toml"],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "problem:" not in check.stdout + check.stderr
        # Near miss: a broken copy of the shipped config fails the check with a problem line.
        broken = Path("/etc/hostmcp/broken.toml")
        broken.write_text(Path("/etc/hostmcp/hostmcp.toml").read_text() + "\n[limits]\nnot_a_key = 1\n")
        broken.chmod(0o600)
        failed = subprocess.run(["/usr/bin/hostmcp", "check", "--config", str(broken)],
                                capture_output=True, text=True, timeout=60)
        broken.unlink()
        assert failed.returncode != 0, failed.stdout + failed.stderr

        # Remove: the program goes, the configuration and the audit log directory stay.
        removed = dpkg("-r", "hostmcp")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert not Path("/usr/bin/hostmcp").exists()
        assert Path("/etc/hostmcp/hostmcp.toml").exists()
        assert Path("/var/log/hostmcp").is_dir()
    finally:
        purged = dpkg("-P", "hostmcp")
    # Purge: nothing of it is left, not even its user.
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert [str(path) for path in OWNED if path.exists()] == []
    assert not user_exists("hostmcp")
    assert dpkg("-s", "hostmcp").returncode != 0
