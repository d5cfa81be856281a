"""NATS server configuration for a hostmcp fleet: nkey users, their permissions, TLS, clusters.

This module owns the text of the configuration that docs/fleet.md ("NATS server setup") gives
and that the fleet tests run: one account (FLEET) whose users are nkeys, a host user per host
allowed only its own subjects (FLEETWIRE.md), a gateway user, a TLS block with a test CA whose
server certificate names 127.0.0.1, and the cluster block of a 3-node cluster on loopback.

It also works as a script that writes a complete example setup into a directory:

    python3 tests/e2e/nats/natsconf.py DIR --hosts web1,db1 [--port 4222] [--listen ADDR]

With --cluster-port 6222 --route nats-route://HOST:6222 ... it writes one node of a cluster
(the other nodes take the same users and keys: copy the accounts block, not new seeds).
It writes DIR/nats.conf, DIR/ca.pem, DIR/server.pem, DIR/server-key.pem, and the nkey seeds
DIR/<host>.nk and DIR/gateway.nk, readable only by their owner.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nkeys

# One NATS subject token: what FLEETWIRE.md allows as a host name.
HOST_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")

# A host may answer each request it received this many times (progress and output chunks),
# for this long: NATS's allow_responses.
RESPONSES_MAX = 100000
RESPONSES_EXPIRE = "15m"

ACCOUNT = "FLEET"


class ConfigError(ValueError):
    """A host name or option that the fleet's subjects cannot carry."""


@dataclass(frozen=True)
class NkeyUser:
    """An nkey user: the seed (secret, the client's) and its public key (the server's)."""

    seed: str
    public: str

    def write_seed(self, path: Path) -> Path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.seed + "\n")
        return path


def new_user() -> NkeyUser:
    """A fresh user nkey (the same key kind `nsc`/`nk -gen user` make)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    pair = nkeys.from_seed(bytearray(seed))
    public = pair.public_key.decode()
    pair.wipe()
    return NkeyUser(seed=seed.decode(), public=public)


def check_host_name(name: str) -> str:
    if not HOST_NAME.match(name):
        raise ConfigError(f"host name {name!r} is not one NATS token ([A-Za-z0-9_-], 1..63 chars)")
    return name


def host_permissions(name: str) -> dict:
    """A host: its own call/cancel subjects and discovery in, its own presence out, and replies
    only to the inboxes of requests it received."""
    check_host_name(name)
    return {
        "publish": {"allow": [f"hostmcp.presence.{name}"]},
        "subscribe": {"allow": [f"hostmcp.host.{name}.>", "hostmcp.discover"]},
        "allow_responses": {"max": RESPONSES_MAX, "expires": RESPONSES_EXPIRE},
    }


def gateway_permissions(inbox_prefix: str = "_INBOX") -> dict:
    """A gateway: requests to any host and discovery out; presence and its own inboxes in."""
    return {
        "publish": {"allow": ["hostmcp.host.>", "hostmcp.discover"]},
        "subscribe": {"allow": ["hostmcp.presence.>", f"{inbox_prefix}.>"]},
    }


def simhosts_permissions() -> dict:
    """The benchmark's simulated hosts (examples/fleet_simhosts.rs): one connection answering as
    many hosts. For a bench server only: a real host gets `host_permissions`."""
    return {
        "publish": {"allow": ["hostmcp.presence.>"]},
        "subscribe": {"allow": ["hostmcp.host.*.call", "hostmcp.host.*.cancel", "hostmcp.discover"]},
        "allow_responses": {"max": RESPONSES_MAX, "expires": RESPONSES_EXPIRE},
    }


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A test CA and a server certificate it signed for `names` (IP addresses or DNS names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostmcp fleet test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))

    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server-key.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return files


@dataclass(frozen=True)
class Cluster:
    """This node's route listener and the route URLs of the other nodes (nats-route://HOST:PORT)."""

    name: str
    port: int
    routes: tuple[str, ...]


def _value(v, indent: str) -> str:
    if isinstance(v, dict):
        inner = indent + "  "
        body = "".join(f"{inner}{k}: {_value(x, inner)}\n" for k, x in v.items())
        return "{\n" + body + indent + "}"
    if isinstance(v, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in v):
            return "[" + ", ".join(_value(x, indent) for x in v) + "]"
        inner = indent + "  "
        return "[\n" + "".join(f"{inner}{_value(x, inner)}\n" for x in v) + indent + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def server_config(*, port: int, hosts: dict[str, str], gateways: list[str],
                  tls: TlsFiles | None, host: str = "127.0.0.1", cluster: Cluster | None = None,
                  http_port: int | None = None, extra: dict | None = None, simhosts: list[str] = (),
                  operator: dict | None = None) -> str:
    """nats-server configuration text. `hosts` maps host name -> its user's public nkey;
    `gateways` lists the gateway users' public nkeys, `simhosts` the benchmark's simulated-hosts
    users; `extra` adds top-level settings. `operator` (natsjwt.OperatorSetup.server_settings)
    is operator (JWT) mode instead: the users are the account's JWTs, no accounts block."""
    users = [{"nkey": pub, "permissions": host_permissions(name)} for name, pub in hosts.items()]
    users += [{"nkey": pub, "permissions": gateway_permissions()} for pub in gateways]
    users += [{"nkey": pub, "permissions": simhosts_permissions()} for pub in simhosts]
    conf: dict = {"listen": f"{host}:{port}"}
    if http_port is not None:
        conf["http"] = f"{host}:{http_port}"
    if tls is not None:
        # Clients must speak TLS and trust this CA; they authenticate with their nkey, not a
        # client certificate (verify: false).
        conf["tls"] = {"cert_file": str(tls.cert), "key_file": str(tls.key), "ca_file": str(tls.ca),
                       "verify": False, "timeout": 5}
    conf.update(extra or {})
    if operator is not None:
        conf.update(operator)
    else:
        conf["accounts"] = {ACCOUNT: {"users": users}}
    if cluster is not None:
        conf["cluster"] = {"name": cluster.name, "listen": f"{host}:{cluster.port}",
                           "routes": list(cluster.routes)}
    lines = [f"# hostmcp fleet: one account, nkey users; see docs/fleet.md (NATS server setup)\n"]
    for k, v in conf.items():
        lines.append(f"{k}: {_value(v, '')}\n")
    return "".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--hosts", required=True, help="comma-separated host names")
    parser.add_argument("--port", type=int, default=4222)
    parser.add_argument("--listen", default="127.0.0.1", help="address the server listens on")
    parser.add_argument("--cluster-port", type=int, help="this node's route port (a cluster node)")
    parser.add_argument("--route", action="append", default=[], help="nats-route://HOST:PORT of another node")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        names = [check_host_name(n) for n in args.hosts.split(",") if n]
    except ConfigError as e:
        print(f"natsconf: {e}", file=sys.stderr)
        return 2
    hosts = {}
    for name in names:
        user = new_user()
        user.write_seed(args.dir / f"{name}.nk")
        hosts[name] = user.public
    gateway = new_user()
    gateway.write_seed(args.dir / "gateway.nk")
    tls = make_tls(args.dir, names=(args.listen, "localhost"))
    cluster = Cluster("hostmcp-fleet", args.cluster_port, tuple(args.route)) if args.cluster_port else None
    text = server_config(port=args.port, hosts=hosts, gateways=[gateway.public], tls=tls, host=args.listen,
                         cluster=cluster)
    (args.dir / "nats.conf").write_text(text)
    print(args.dir / "nats.conf")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
