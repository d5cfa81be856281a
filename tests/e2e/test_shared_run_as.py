"""Start-up (and reload) warnings about principals that are not separated from each other
(red team F6, F8): tokens sharing a run-as user with a restricted one, a token added by
SIGHUP included, and an audit key owned by a user commands run as. Each has its near miss."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, start_server
from test_token_lifecycle import config_of, wait_for_log

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run-as users need a root server")

SHARED_RUN_AS_WARNING = "TOKENS SHARE A RUN-AS USER"
EXPOSED = "a file of the server is readable by a user commands run as"


def test_a_token_added_by_sighup_on_a_shared_run_as_user_is_warned_about():
    alone = {"alice": 'run_as = "nobody"'}
    server = start_server(config=config_of(["alice", "boss"], extra=alone))
    try:
        assert SHARED_RUN_AS_WARNING not in server.log(), "alice is alone on nobody: no warning"
        shared = {**alone, "bob": 'run_as = "nobody"'}
        (server.state_dir.parent / "config.toml").write_text(config_of(["alice", "bob", "boss"], extra=shared))
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, SHARED_RUN_AS_WARNING)
        line = next(line for line in server.log().splitlines() if SHARED_RUN_AS_WARNING in line)
        assert 'principals="alice, bob"' in line and 'user="nobody"' in line, line
    finally:
        server.stop()


@pytest.mark.parametrize("owner, exposed", [(65534, True), (0, False)])
def test_an_audit_key_owned_by_a_command_user_is_named(owner, exposed):
    base = Path(tempfile.mkdtemp(prefix="hostmcp-e2e-key-"))
    try:
        base.chmod(0o755)
        key = base / "audit.key"
        subprocess.run([BIN, "audit", "keygen", str(key)], check=True, capture_output=True)
        os.chown(key, owner, owner)
        top = f'[audit]\npath = "{base / "audit.jsonl"}"\nkey_file = "{key}"\n'
        server = start_server(config=config_of(["alice"], top=top, extra={"alice": 'run_as = "nobody"'}))
        try:
            lines = [line for line in server.log().splitlines() if EXPOSED in line and str(key) in line]
            if exposed:
                assert lines and 'user="nobody"' in lines[0] and "belongs to nobody" in lines[0], server.log()
            else:
                assert lines == [], lines
        finally:
            server.stop()
    finally:
        shutil.rmtree(base)


def test_a_config_file_given_to_a_command_user_is_named_after_the_next_reload():
    server = start_server(config=config_of(["alice"], extra={"alice": 'run_as = "nobody"'}))
    owned = "a file of the server belongs to a user commands run as"
    try:
        config = server.state_dir.parent / "config.toml"
        config.parent.chmod(0o755)
        assert owned not in server.log(), "root's config, readable or not, is no finding"
        os.chown(config, 65534, 65534)
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, owned)
        line = next(line for line in server.log().splitlines() if owned in line)
        assert 'user="nobody"' in line and str(config) in line, line
    finally:
        server.stop()
