"""The Debian package, installed as an operator would.

`packaging/build-deb.sh --no-build` packs the debug binary CI already built (cargo-deb strips
it). `dpkg -i` installs it into a fresh Debian root, made once by `debootstrap
--variant=minbase` from the mirror apt uses on this machine and cached under
$HOSTMCP_TEST_DEPS/debian-roots (each test works on a copy), and everything runs in that root
through chroot (in a private mount namespace, with its own /proc). Checked: the files in
place, `hostmcp --version`, the shipped config served as shipped, a command run as the
package's `hostmcp` user under the unit's capability bounding set with no_new_privs (and its
timeout kill across users), the logrotate snippet, `dpkg -r` keeping config and audit log,
`dpkg -P` leaving nothing, and both units through `systemd-analyze verify` and `security`.

Not here: `dpkg -i` on this machine itself. Other servers run here as root at the same time,
and a root `hostmcp serve` without --config reads /etc/hostmcp/hostmcp.toml once config
discovery lands: an installed package would change their runs while this test holds it.

If the mirror cannot be reached the test fails and says so; it never skips silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx2
import pytest

from conftest import REPO, Server
from mcp_clients import connect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dpkg into a chroot needs root")

DEPS = Path(os.environ.get("HOSTMCP_TEST_DEPS", REPO / ".test-deps"))
# What the cached root holds besides minbase: systemd (its targets, for `verify --root`),
# procps (/bin/kill of ExecReload) and logrotate (to check the snippet).
ROOT_PACKAGES = ["systemd", "procps", "logrotate"]
# Measured: 215 s on an idle machine (minbase + logrotate); allow for a loaded one.
DEBOOTSTRAP_TIMEOUT = 1800
UNITS = ["hostmcp.service", "hostmcp-strict.service"]
# Paths that change on any dpkg run or any useradd/userdel: not the package's files.
BOOKKEEPING = re.compile(
    r"^/(var/lib/dpkg/|var/log/(dpkg|alternatives)\.log|var/cache/debconf/|"
    r"etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$|var/log/(lastlog|faillog)$|tmp/)"
)


# ------------------------------------------------------------------ the Debian root


def apt_mirror() -> tuple[str, str]:
    """(mirror URL, suite) of the first Debian main archive in apt's sources."""
    if os.environ.get("HOSTMCP_DEBIAN_MIRROR"):
        return os.environ["HOSTMCP_DEBIAN_MIRROR"], os.environ.get("HOSTMCP_DEBIAN_SUITE", "bookworm")
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for file in files:
        if not file.is_file():
            continue
        text = file.read_text(errors="replace")
        for block in re.split(r"\n\s*\n", text):  # deb822 stanzas
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.search(r"^Suites:\s*(\S+)", block, re.M)
            if uris and suites and is_debian_main(uris.group(1), suites.group(1)):
                return uris.group(1).rstrip("/"), suites.group(1)
        for line in text.splitlines():  # one-line format
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match and is_debian_main(match.group(1), match.group(2)):
                return match.group(1).rstrip("/"), match.group(2)
    pytest.fail("no Debian archive in /etc/apt/sources.list*: set HOSTMCP_DEBIAN_MIRROR and HOSTMCP_DEBIAN_SUITE")


def is_debian_main(uri: str, suite: str) -> bool:
    return "debian" in uri and "security" not in uri and "-" not in suite and uri.startswith("http")


def check_reachable(mirror: str, suite: str) -> None:
    url = f"{mirror}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=20) as answer:
            assert answer.status == 200
    except Exception as error:  # noqa: BLE001: any failure is the same message
        pytest.fail(f"the Debian mirror is unreachable ({url}: {error}); the package test needs it "
                    "to debootstrap a fresh root (or set HOSTMCP_DEBIAN_MIRROR)")


def debootstrap_command() -> tuple[list[str], dict[str, str]]:
    """The system's debootstrap, else the Debian package's script unpacked under DEPS."""
    if shutil.which("debootstrap"):
        return ["debootstrap"], {}
    home = DEPS / "debootstrap"
    script = home / "x/usr/sbin/debootstrap"
    if not script.exists():
        home.mkdir(parents=True, exist_ok=True)
        run(["apt-get", "download", "debootstrap"], cwd=home, timeout=120)
        (deb,) = home.glob("debootstrap_*.deb")
        run(["dpkg-deb", "-x", str(deb), str(home / "x")])
    return [str(script)], {"DEBOOTSTRAP_DIR": str(home / "x/usr/share/debootstrap")}


@pytest.fixture(scope="module")
def pristine_root() -> Path:
    mirror, suite = apt_mirror()
    name = f"{suite}-minbase-" + hashlib.sha256(f"{mirror} {ROOT_PACKAGES}".encode()).hexdigest()[:8]
    root = DEPS / "debian-roots" / name
    if (root / ".hostmcp-complete").exists():
        return root
    check_reachable(mirror, suite)
    command, env = debootstrap_command()
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{name}.partial-", dir=root.parent))
    partial.chmod(0o755)  # it becomes "/": mkdtemp's 0700 would shut out every user but root
    started = time.monotonic()
    # Its own process group, so that a timeout stops dpkg and everything else it started.
    process = subprocess.Popen([*command, "--variant=minbase", f"--include={','.join(ROOT_PACKAGES)}",
                                suite, str(partial), mirror], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=DEBOOTSTRAP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        remove_root(partial)
        pytest.fail(f"debootstrap from {mirror} took over {DEBOOTSTRAP_TIMEOUT} s")
    if process.returncode != 0:
        remove_root(partial)
        pytest.fail(f"debootstrap from {mirror} failed ({process.returncode}): {output[-2000:]}")
    print(f"debootstrap {suite} minbase: {time.monotonic() - started:.0f} s")
    (partial / ".hostmcp-complete").write_text(f"{mirror} {suite}\n")
    partial.rename(root)
    return root


def remove_root(root: Path) -> None:
    """Unmount what a killed debootstrap left mounted inside `root` (its /proc), then remove
    it; a mount that stays makes this fail rather than delete through it."""
    prefix = str(root.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False, timeout=60)
    left = [m for m in Path("/proc/mounts").read_text().split() if m.startswith(prefix)]
    assert not left, f"still mounted, not removing {root}: {left}"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def debian_root(pristine_root: Path):
    """A copy of the cached root, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="hostmcp-debroot-"))
    root = work / "root"
    run(["cp", "-a", "--reflink=auto", str(pristine_root), str(root)])
    yield root
    for pid in processes_in(root):  # a daemon a command left behind a stopped server
        os.kill(pid, signal.SIGKILL)
    remove_root(work)


@pytest.fixture(scope="module")
def deb() -> Path:
    built = run([str(REPO / "packaging/build-deb.sh"), "--no-build"], timeout=3600)
    path = Path(built.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".deb", built.stdout
    return path


# ------------------------------------------------------------------ helpers


def run(argv: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=timeout, **kwargs)


def in_root(root: Path) -> list[str]:
    """The prefix that runs a command in `root`: a private mount namespace, /proc mounted."""
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', str(root)]


def chroot(root: Path, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([*in_root(root), *argv], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def file_list(root: Path) -> set[str]:
    """Every path in `root` except the pseudo file systems, dpkg's and the user database's."""
    paths = set()
    for directory, dirs, files in os.walk(root):
        rel = "/" + os.path.relpath(directory, root)
        if rel in ("/proc", "/sys", "/dev", "/run"):
            dirs.clear()
            continue
        for name in dirs + files:
            path = os.path.normpath(f"{rel}/{name}")
            if not BOOKKEEPING.match(path):
                paths.add(path)
    return paths


def processes_in(root: Path) -> list[int]:
    """Pids of the processes whose root directory is `root` (other servers run on this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "root") == str(root):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def bounding_set(unit: str) -> str:
    """The unit's CapabilityBoundingSet as a setpriv --bounding-set argument."""
    text = (REPO / "packaging" / unit).read_text()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    return "-all," + ",".join("+" + cap.removeprefix("CAP_").lower() for cap in caps)


def check_in_root(root: Path, config: str) -> subprocess.CompletedProcess:
    """`hostmcp check --config CONFIG` in `root` with the unit's environment, in a network
    namespace of its own (loopback up): its bind check of the shipped 127.0.0.1:8000 then
    does not depend on which ports this shared machine has in use."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "XDG_STATE_HOME": "/var/lib"}
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c",
            'ip link set lo up && mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', str(root),
            "/usr/bin/hostmcp", "check", "--config", config]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def start_in_root(root: Path, prefix: list[str] | None = None, args: list[str] | None = None) -> Server:
    """`hostmcp serve --config /etc/hostmcp/hostmcp.toml` in `root`, with the unit's environment,
    on a free loopback port (the chroot shares this machine's network)."""
    # Beside the root, in the directory the debian_root fixture removes.
    log_path = Path(tempfile.mkdtemp(prefix="log-", dir=root.parent)) / "server.log"
    argv = [*in_root(root), *(prefix or []), "/usr/bin/hostmcp", "serve", "--config",
            "/etc/hostmcp/hostmcp.toml", "--listen", "127.0.0.1:0", *(args or [])]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "XDG_STATE_HOME": "/var/lib", "HOSTMCP_LOG": "info"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"address=127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
        if match:
            return Server(process, int(match.group(1)), root / "var/lib/hostmcp", log_path)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait(timeout=10)
    raise AssertionError(f"hostmcp did not start in the root:\n{log_path.read_text()}")


def add_token(root: Path, name: str) -> str:
    """`hostmcp token create` in the root, its [[tokens]] lines appended to the shipped config."""
    created = chroot(root, "/usr/bin/hostmcp", "token", "create", "--name", name, "--role", "operator")
    token, entry = created.stdout.split("\n", 1)
    with open(root / "etc/hostmcp/hostmcp.toml", "a") as config:
        config.write("\n" + entry)
    return token.strip()


# ------------------------------------------------------------------ tests


def test_deb_installs_serves_rotates_removes_and_purges_cleanly(deb: Path, debian_root: Path):
    root = debian_root
    before = file_list(root)
    passwd_before = (root / "etc/passwd").read_text()
    shutil.copy(deb, root / "tmp/hostmcp.deb")

    installed = chroot(root, "dpkg", "-i", "/tmp/hostmcp.deb")
    # Nothing started, and the next two commands said.
    assert "hostmcp token create" in installed.stdout and "systemctl enable --now hostmcp" in installed.stdout
    assert processes_in(root) == []

    # Files in place.
    for path in ["usr/bin/hostmcp", "etc/hostmcp/hostmcp.toml", "etc/logrotate.d/hostmcp",
                 "usr/lib/systemd/system/hostmcp.service", "usr/lib/systemd/system/hostmcp-strict.service",
                 "usr/share/man/man1/hostmcp.1.gz", "usr/share/man/man1/hostmcp-serve.1.gz",
                 "usr/share/bash-completion/completions/hostmcp", "usr/share/zsh/vendor-completions/_hostmcp",
                 "usr/share/fish/vendor_completions.d/hostmcp.fish", "usr/share/doc/hostmcp/operating.md"]:
        assert (root / path).is_file(), path
    conffiles = (root / "var/lib/dpkg/info/hostmcp.conffiles").read_text().split()
    assert sorted(conffiles) == ["/etc/hostmcp/hostmcp.toml", "/etc/logrotate.d/hostmcp"]
    assert oct((root / "var/lib/hostmcp").stat().st_mode & 0o777) == "0o700"
    assert oct((root / "var/log/hostmcp").stat().st_mode & 0o777) == "0o750"
    assert chroot(root, "getent", "passwd", "hostmcp").stdout.split(":")[6].strip() == "/usr/sbin/nologin"
    version = chroot(root, "/usr/bin/hostmcp", "--version").stdout
    assert re.fullmatch(r"hostmcp \d+\.\d+\.\d+\n", version), version

    # `hostmcp check` passes the shipped config now that the package made its user, and says
    # what it would serve; the near miss, a copy naming a user the root lacks, fails.
    checked = check_in_root(root, "/etc/hostmcp/hostmcp.toml")
    assert checked.returncode == 0, f"{checked.stdout}\n{checked.stderr}"
    lines = checked.stdout.splitlines()
    assert lines[0] == "config: /etc/hostmcp/hostmcp.toml (named by --config or HOSTMCP_CONFIG)", lines
    assert "listen: http://127.0.0.1:8000: Streamable HTTP at /mcp, legacy SSE at /sse" in lines, lines
    assert "audit: /var/log/hostmcp/audit.jsonl" in lines, lines
    assert any(line.startswith("policy: ") for line in lines), lines
    assert lines[-1] == "ok: no problem found" and not any(l.startswith("problem:") for l in lines), lines
    broken = root / "tmp/broken.toml"
    broken.write_text((root / "etc/hostmcp/hostmcp.toml").read_text().replace(
        'run_as = "hostmcp"', 'run_as = "nosuchuser"'))
    try:
        failed = check_in_root(root, "/tmp/broken.toml")
    finally:
        broken.unlink()
    assert failed.returncode == 1, f"{failed.stdout}\n{failed.stderr}"
    assert [l for l in failed.stdout.splitlines() if l.startswith("problem:")] == [
        'problem: run_as: no user named "nosuchuser" on this host'], failed.stdout
    assert "error: 1 problem found" in failed.stderr, failed.stderr

    # The shipped config, served as shipped (loopback, authenticated, audited).
    server = start_in_root(root)
    try:
        assert httpx2.get(f"{server.base}/healthz").status_code == 200
        assert httpx2.post(server.mcp_url, json={}).status_code == 401
        token_file = root / "var/lib/hostmcp/token"
        assert token_file.is_file() and token_file.stat().st_mode & 0o777 == 0o600
    finally:
        assert server.stop() == 0, server.log()
    assert (root / "var/log/hostmcp/audit.jsonl").stat().st_size > 0

    # logrotate accepts the snippet and would rotate exactly the audit log.
    rotate = chroot(root, "logrotate", "--debug", "--state", "/tmp/logrotate.state", "/etc/logrotate.d/hostmcp")
    assert "rotating pattern: /var/log/hostmcp/audit.jsonl" in rotate.stderr, rotate.stderr

    # Remove: config, state and audit log stay; binary, units and man pages go.
    chroot(root, "dpkg", "-r", "hostmcp")
    for kept in ["etc/hostmcp/hostmcp.toml", "etc/logrotate.d/hostmcp", "var/log/hostmcp/audit.jsonl",
                 "var/lib/hostmcp/token"]:
        assert (root / kept).exists(), kept
    for gone in ["usr/bin/hostmcp", "usr/lib/systemd/system/hostmcp.service", "usr/share/man/man1/hostmcp.1.gz"]:
        assert not (root / gone).exists(), gone

    # Purge: nothing left of it, the user included.
    chroot(root, "dpkg", "-P", "hostmcp")
    assert file_list(root) - before == set()
    assert before - file_list(root) == set()
    assert (root / "etc/passwd").read_text() == passwd_before
    assert "hostmcp" not in (root / "etc/group").read_text()


def orphan_reasons(root: Path, count: int) -> list[str]:
    """The reasons of the `orphan_killed` records in the root's audit log, in order, once
    there are `count` of them (the sweeper runs every 2 s; bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        text = (root / "var/log/hostmcp/audit.jsonl").read_text()
        reasons = re.findall(r'"orphan_killed".*?"reason":"([a-z_]+)"', text)
        if len(reasons) >= count or time.monotonic() > deadline:
            return reasons
        time.sleep(0.2)


# A command that leaves a daemon behind (outside its process group) while it runs.
DAEMON = "setsid sleep 30 </dev/null >/dev/null 2>&1 & sleep 4"


@pytest.mark.anyio
@pytest.mark.parametrize("unit", UNITS)
async def test_commands_run_as_the_hostmcp_user_under_the_units_capabilities(unit: str, deb: Path, debian_root: Path):
    """Each unit's bounding set and no_new_privs (as systemd applies them, through
    setpriv; the strict unit's `--run-as hostmcp` too) leave run_as working: the command runs as `hostmcp`, and its timeout kills it.
    What they change: without CAP_SYS_PTRACE the server cannot read the environment of a
    process of another uid, so a daemon a command leaves behind is killed as naming no
    command (`no_command_id`) instead of living until its command ends (docs/operating.md)."""
    root = debian_root
    shutil.copy(deb, root / "tmp/hostmcp.deb")
    chroot(root, "dpkg", "-i", "/tmp/hostmcp.deb")
    token = add_token(root, "ops")
    confine = ["setpriv", f"--bounding-set={bounding_set(unit)}", "--inh-caps=-all",
               "--no-new-privs", "--"]
    exec_start = re.search(r"^ExecStart=/usr/bin/hostmcp serve --config /etc/hostmcp/hostmcp.toml(.*)$",
                           (REPO / "packaging" / unit).read_text(), re.M).group(1).split()
    server = start_in_root(root, prefix=confine, args=exec_start)
    server.tokens = {"ops": token}
    try:
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
        async with connect(server, "streamable", "legacy", headers=server.headers("ops")) as client:
            who = await client.call_tool("run_command", {"command": "id -un; grep NoNewPrivs /proc/self/status"})
            assert who.is_error is not True, who.content[0].text
            name, nnp = who.structured_content["stdout"].splitlines()
            assert name == "hostmcp" and nnp.split() == ["NoNewPrivs:", "1"], who.structured_content
            started = time.monotonic()
            slow = await client.call_tool("run_command", {"command": "sleep 60", "timeout_secs": 1})
            assert slow.structured_content["timed_out"] is True, slow.content[0].text
            assert time.monotonic() - started < 30
            await client.call_tool("run_command", {"command": DAEMON})
            confined = orphan_reasons(root, 1)
            assert confined and set(confined) == {"no_command_id"}, confined
    finally:
        assert server.stop() == 0, server.log()
    # Near miss: without the unit's confinement the same command runs as the same user
    # (the bounding set changes nothing that run_as needs).
    server = start_in_root(root)
    server.tokens = {"ops": token}
    try:
        async with connect(server, "streamable", "legacy", headers=server.headers("ops")) as client:
            who = await client.call_tool("run_command", {"command": "id -un"})
            assert who.structured_content["stdout"] == "hostmcp\n"
            await client.call_tool("run_command", {"command": DAEMON})
            # ... and with every capability the daemon lives until its command ends.
            unconfined = orphan_reasons(root, len(confined) + 1)[len(confined):]
            assert unconfined and set(unconfined) == {"command_ended"}, unconfined
    finally:
        server.stop()


def test_units_pass_systemd_analyze_verify_and_score(deb: Path, debian_root: Path):
    root = debian_root
    shutil.copy(deb, root / "tmp/hostmcp.deb")
    chroot(root, "dpkg", "-i", "/tmp/hostmcp.deb")
    # verify resolves ExecStart, ExecReload and the man: links in the root (man through MANPATH).
    env = {**os.environ, "MANPATH": str(root / "usr/share/man")}
    verify = subprocess.run(["systemd-analyze", "verify", f"--root={root}", *UNITS],
                            capture_output=True, text=True, env=env, timeout=120)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    scores = {}
    for unit in UNITS:
        security = run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", unit])
        scores[unit] = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout).group(1))
    print(f"systemd-analyze security: {scores}")
    # docs/operating.md gives these scores; a change to a unit must update them.
    documented = (REPO / "docs/operating.md").read_text()
    for unit, score in scores.items():
        assert f"| `{unit}` | {score:.1f} |" in documented, (unit, score)
    assert scores["hostmcp-strict.service"] < scores["hostmcp.service"]
    # Near miss: verify does fail on a unit whose binary is missing.
    (root / "usr/bin/hostmcp").unlink()
    broken = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "hostmcp.service"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert broken.returncode != 0 and "/usr/bin/hostmcp" in broken.stderr


@pytest.mark.parametrize("journal", [True, False])
def test_under_systemd_the_generated_token_stays_out_of_the_journal(journal: bool, tmp_path: Path):
    """With stderr the journal (JOURNAL_STREAM names it, as systemd sets it), the server
    names the token file but never prints the token; near miss: a JOURNAL_STREAM that names
    another file (stderr redirected since) leaves the terminal message as it was."""
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        stat = os.fstat(log.fileno())
        stream = f"{stat.st_dev}:{stat.st_ino}" if journal else f"{stat.st_dev}:{stat.st_ino + 1}"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_STATE_HOME": str(tmp_path / "state"),
               "HOSTMCP_LOG": "info", "JOURNAL_STREAM": stream}
        process = subprocess.Popen([os.environ.get("HOSTMCP_BIN", str(REPO / "target/debug/hostmcp")), "serve",
                                    "--listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=log, env=env)
    server = Server(process, 0, tmp_path / "state", log_path)
    try:
        deadline = time.monotonic() + 30
        while "listening" not in server.log() or ("mode 0600" not in server.log()):
            assert process.poll() is None and time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        token = (tmp_path / "state/hostmcp/token").read_text().strip()
        assert len(token) >= 32
        assert (token in server.log()) is not journal, server.log()
        assert str(tmp_path / "state/hostmcp/token") in server.log()
    finally:
        server.stop()
