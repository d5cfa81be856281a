"""NATS decentralized (operator mode) credentials without `nsc`: an operator, one account and its
users as signed JWTs, and the `.creds` files `hostmcp serve --fleet-creds` and `hostmcp gateway
--nats-creds` read.

This module owns that minting: NATS JWT v2 claims (operator, account, user with the same
publish/subscribe permissions natsconf.py gives nkey users), signed ed25519 by the issuer's nkey
(`nkeys`), the server configuration of operator mode with a memory resolver preloaded with the
account, and the creds file format (`nsc generate creds`). For tests and the example in
docs/fleet.md; a real deployment would use `nsc`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import nkeys

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


@dataclass(frozen=True)
class Key:
    seed: str
    public: str


def new_key(prefix: int) -> Key:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    public = pair.public_key.decode()
    pair.wipe()
    return Key(seed.decode(), public)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def encode(claims: dict, issuer: Key) -> str:
    """A NATS JWT of `claims` (iat, iss and jti filled in) signed by `issuer`."""
    claims = {**claims, "iat": int(time.time()), "iss": issuer.public}
    body = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    claims["jti"] = base64.b32encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    signing_input = f"{_b64(json.dumps(HEADER).encode())}.{_b64(json.dumps(claims).encode())}"
    pair = nkeys.from_seed(bytearray(issuer.seed.encode()))
    signature = pair.sign(signing_input.encode())
    pair.wipe()
    return f"{signing_input}.{_b64(signature)}"


def operator_jwt(operator: Key, name: str = "hostmcp") -> str:
    return encode({"sub": operator.public, "name": name, "nats": {"type": "operator", "version": 2}},
                  operator)


def account_jwt(account: Key, operator: Key, name: str = "FLEET") -> str:
    limits = {"subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1, "data": -1,
              "payload": -1, "wildcards": True}
    return encode({"sub": account.public, "name": name,
                   "nats": {"type": "account", "version": 2, "limits": limits}}, operator)


def user_jwt(user: Key, account: Key, name: str, permissions: dict) -> str:
    """A user of `account` with natsconf-style `permissions` (publish/subscribe allow lists,
    allow_responses)."""
    nats: dict = {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1,
                  "pub": {"allow": permissions.get("publish", {}).get("allow", [])},
                  "sub": {"allow": permissions.get("subscribe", {}).get("allow", [])}}
    responses = permissions.get("allow_responses")
    if responses:
        ttl = responses["expires"]
        seconds = int(ttl[:-1]) * {"s": 1, "m": 60, "h": 3600}[ttl[-1]]
        nats["resp"] = {"max": responses["max"], "ttl": seconds * 1_000_000_000}
    return encode({"sub": user.public, "name": name, "nats": nats}, account)


def write_creds(path: Path, jwt: str, user: Key) -> Path:
    """The creds file (`nsc generate creds` format): the user JWT, then its seed; mode 0600."""
    text = ("-----BEGIN NATS USER JWT-----\n" + jwt + "\n------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n\n"
            "-----BEGIN USER NKEY SEED-----\n" + user.seed + "\n------END USER NKEY SEED------\n\n"
            "*************************************************************\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@dataclass(frozen=True)
class OperatorSetup:
    operator: Key
    account: Key
    operator_jwt: str
    account_jwt: str

    def server_settings(self, directory: Path) -> dict:
        """Top-level nats-server settings of operator mode (natsconf.server_config's `extra`)."""
        path = directory / "operator.jwt"
        path.write_text(self.operator_jwt + "\n")
        return {"operator": str(path), "resolver": "MEMORY",
                "resolver_preload": {self.account.public: self.account_jwt}}

    def user_creds(self, path: Path, name: str, permissions: dict) -> Path:
        user = new_key(nkeys.PREFIX_BYTE_USER)
        return write_creds(path, user_jwt(user, self.account, name, permissions), user)


def new_operator() -> OperatorSetup:
    operator = new_key(nkeys.PREFIX_BYTE_OPERATOR)
    account = new_key(nkeys.PREFIX_BYTE_ACCOUNT)
    return OperatorSetup(operator, account, operator_jwt(operator), account_jwt(account, operator))
