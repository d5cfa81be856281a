#!/usr/bin/env python3
"""The Ansible side of the fleet benchmark (issue 16): N real sshd on loopback, `ansible all -m
command -a uptime` at forks 5 and 50, wall-clock medians.

This script owns the SSH baseline: it starts N `sshd -D` instances (Debian openssh-server), each on
its own loopback port with its own ed25519 host key, key authentication only, for one user (by
default the one running the script; BENCH_SSH_USER to change), writes an inventory and a
known_hosts file listing every instance's host key (host key checking stays on), runs the ad-hoc
command RUNS times per forks setting, checks every host answered, and stops every sshd by PID,
also when a run fails. Two connection modes are measured: `cold` (a fresh ControlPath directory
per run, so every run opens N new SSH connections, as a first run of the day does) and `warm`
(ControlPersist masters reused from the previous run, Ansible's best case). The SSH sessions get
an empty HOME (sshd `SetEnv`), so the machine user's rc files (read by the shell sshd starts for
each remote command) are not part of the measurement; --user-home measures with them. With --pidfile it
appends each sshd's PID there, for bench/fleet/run.sh to stop if this script itself is killed.

    bench/fleet/ansible_baseline.py --hosts 50 --runs 3 --forks 5,50 --json out.json

Prints one JSON object (the medians and every run) and writes it to --json.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class BaselineError(RuntimeError):
    """A tool is missing, an sshd did not start, or a run did not reach every host."""


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def sshd_bin() -> str:
    for path in (shutil.which("sshd"), "/usr/sbin/sshd"):
        if path and os.path.exists(path):
            return path
    raise BaselineError("sshd not found (apt-get install openssh-server)")


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BaselineError(f"sshd on {port} exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BaselineError(f"sshd on {port} not answering within {timeout}s")


class SshFleet:
    """N sshd instances on loopback and the files Ansible needs to reach them."""

    def __init__(self, workdir: Path, n: int, user: str, pidfile: Path | None = None, clean_home: bool = True):
        self.workdir, self.n, self.user, self.pidfile = workdir, n, user, pidfile
        # HOME of the SSH sessions: an empty directory, so that the shell sshd starts for each of
        # Ansible's remote commands reads no rc file of this machine's user (bash started by
        # sshd reads ~/.bashrc; here root's runs `pyenv init`, ~130 ms of CPU per command).
        self.home = workdir / "home" if clean_home else None
        self.procs: list[subprocess.Popen] = []
        self.ports = free_ports(n)
        self.client_key = workdir / "id_ed25519"
        self.inventory = workdir / "inventory.ini"
        self.known_hosts = workdir / "known_hosts"

    def start(self) -> None:
        sshd = sshd_bin()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        authorized = self.workdir / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        authorized.chmod(0o600)
        if self.home is not None:
            self.home.mkdir(mode=0o700)
            if self.user != getpass.getuser():
                shutil.chown(self.home, self.user)
        known, inventory = [], ["[fleet]"]
        for i, port in enumerate(self.ports):
            hostkey = self.workdir / f"host{i:03d}_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
            known.append(f"[127.0.0.1]:{port} {Path(f'{hostkey}.pub').read_text().split(' ')[0]} "
                         f"{Path(f'{hostkey}.pub').read_text().split(' ')[1]}")
            conf = self.workdir / f"sshd{i:03d}.conf"
            conf.write_text("\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {hostkey}",
                f"PidFile {self.workdir}/sshd{i:03d}.pid", f"AuthorizedKeysFile {authorized}",
                f"AllowUsers {self.user}", "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
                "PasswordAuthentication no", "StrictModes no", "KbdInteractiveAuthentication no", "UsePAM no",
                "MaxStartups 200:30:400", "MaxSessions 100", "Subsystem sftp internal-sftp",
                *([f"SetEnv HOME={self.home}"] if self.home is not None else []), ""]))
            log = self.workdir / f"sshd{i:03d}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
            self.procs.append(proc)
            if self.pidfile is not None:
                with open(self.pidfile, "a") as f:
                    f.write(f"{proc.pid}\n")
            inventory.append(f"h{i:03d} ansible_host=127.0.0.1 ansible_port={port}")
        for i, (port, proc) in enumerate(zip(self.ports, self.procs)):
            wait_listening(port, proc, self.workdir / f"sshd{i:03d}.log")
        self.known_hosts.write_text("\n".join(known) + "\n")
        inventory += ["", "[fleet:vars]", f"ansible_user={self.user}",
                      f"ansible_ssh_private_key_file={self.client_key}",
                      "ansible_python_interpreter=/usr/bin/python3",
                      f"ansible_ssh_common_args='-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes'"]
        self.inventory.write_text("\n".join(inventory) + "\n")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def run_ansible(fleet: SshFleet, forks: int, control_dir: Path) -> float:
    env = {**os.environ, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir), "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_LOCAL_TEMP": str(fleet.workdir / "ansible-local"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "False"}
    cmd = ["ansible", "all", "-i", str(fleet.inventory), "-m", "command", "-a", "uptime", "-f", str(forks),
           "--one-line"]
    # Output to a file, not a pipe: the ControlPersist masters ssh leaves behind inherit the
    # pipe and would hold it open long after ansible itself has exited.
    out_path = fleet.workdir / "ansible.out"
    with open(out_path, "wb") as out:
        start = time.perf_counter()
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=900).returncode
        elapsed = time.perf_counter() - start
    output = out_path.read_text(errors="replace")
    ok = sum(1 for line in output.splitlines() if "| CHANGED |" in line and "load average" in line)
    if rc != 0 or ok != fleet.n:
        raise BaselineError(f"ansible -f {forks}: rc={rc}, {ok}/{fleet.n} hosts answered\n{output[-3000:]}")
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--forks", default="5,50")
    parser.add_argument("--pidfile", type=Path, help="append every sshd PID here (run.sh stops leftovers)")
    parser.add_argument("--user-home", action="store_true",
                        help="SSH sessions get the user's own HOME (and its ~/.bashrc), not an empty one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    # SIGTERM (run.sh's trap) unwinds like an exception, so the finally below stops every sshd.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("ansible") is None:
        raise BaselineError("ansible not found (apt-get install ansible)")
    user = os.environ.get("BENCH_SSH_USER", getpass.getuser())
    workdir = Path(tempfile.mkdtemp(prefix="hostmcp-fleet-ssh-"))
    fleet = SshFleet(workdir, args.hosts, user, args.pidfile, clean_home=not args.user_home)
    results: dict = {"hosts": args.hosts, "runs": args.runs, "user": user,
                     "ansible": subprocess.run(["ansible", "--version"], capture_output=True, text=True)
                     .stdout.splitlines()[0],
                     "ssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
                     "cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "modes": {},
                     # sshd runs each of Ansible's remote commands with this shell; bash (Debian's)
                     # also reads ~/.bashrc then, so what is in it costs every remote command.
                     "login_shell": pwd.getpwnam(user).pw_shell,
                     "bashrc": (Path(pwd.getpwnam(user).pw_dir) / ".bashrc").exists(),
                     "remote_home": "user" if args.user_home else "empty"}
    try:
        fleet.start()
        for forks in (int(f) for f in args.forks.split(",")):
            cold = []
            for r in range(args.runs):
                cold.append(run_ansible(fleet, forks, workdir / f"cp-cold-{forks}-{r}"))
            warm_dir = workdir / f"cp-warm-{forks}"
            run_ansible(fleet, forks, warm_dir)  # opens the masters; not measured
            warm = [run_ansible(fleet, forks, warm_dir) for _ in range(args.runs)]
            results["modes"][f"forks{forks}"] = {
                "cold_median_s": statistics.median(cold), "cold_runs_s": cold,
                "warm_median_s": statistics.median(warm), "warm_runs_s": warm}
            print(f"ansible forks={forks}: cold median {statistics.median(cold):.2f} s {cold}, "
                  f"warm median {statistics.median(warm):.2f} s", file=sys.stderr)
    finally:
        # Close any ControlPersist masters before the sshd they talk to go.
        for cp in workdir.glob("cp-*"):
            for sock in cp.iterdir():
                subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=10)
        fleet.stop()
        results["load_after"] = os.getloadavg()[0]
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BaselineError as e:
        print(f"ansible_baseline: {e}", file=sys.stderr)
        sys.exit(1)
