"""The fleet wire format as a gateway speaks it, in Python: signed call requests, reply streams.

An independent implementation of docs/fleet.md's message format (src/fleet/protocol.rs is the
Rust one), for tests and the fan-out benchmark: `seal_call` builds a CallRequest signed with a
gateway's nkey (ed25519 over `hostmcp-fleet-v1 call\\n` + the payload's exact bytes, the
signature base64url without padding in the Hostmcp-Signature header, the signer's public nkey
in Hostmcp-Signer); `Reply` puts a host's reply stream (progress, chunks, final) back together
and checks its order and length.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field

import nkeys

SIGNER_HEADER = "Hostmcp-Signer"
SIGNATURE_HEADER = "Hostmcp-Signature"
REPLY_HEADER = "Hostmcp-Reply"
SEQ_HEADER = "Hostmcp-Seq"
PART_HEADER = "Hostmcp-Part"
PARTS_HEADER = "Hostmcp-Parts"
LENGTH_HEADER = "Hostmcp-Length"
CALL_CONTEXT = b"hostmcp-fleet-v1 call\n"
VALIDITY_MS = 30_000


class ReplyError(ValueError):
    """A reply stream out of order, with a missing part, or of the wrong length."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Gateway:
    """A gateway's signing key (an nkey seed)."""

    def __init__(self, seed: str):
        self._pair = nkeys.from_seed(bytearray(seed.encode()))
        self.public = self._pair.public_key.decode()

    def sign(self, payload: bytes) -> dict[str, str]:
        sig = self._pair.sign(CALL_CONTEXT + payload)
        return {SIGNER_HEADER: self.public,
                SIGNATURE_HEADER: base64.urlsafe_b64encode(sig).rstrip(b"=").decode()}

    def seal_call(self, host: str, tool: str, arguments: dict | None, principal: str = "bench",
                  role: str = "operator", request_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        issued = now_ms()
        request = {"id": request_id or os.urandom(8).hex(), "host": host, "tool": tool, "principal": principal,
                   "role": role, "gateway": self.public, "issued_at_ms": issued,
                   "expires_at_ms": issued + VALIDITY_MS, "nonce": os.urandom(16).hex(), "progress": False}
        if arguments is not None:
            request["arguments"] = arguments
        payload = json.dumps(request, separators=(",", ":")).encode()
        return payload, self.sign(payload)


@dataclass
class Reply:
    """The messages of one reply stream, checked as they come; `final` once complete."""

    next_seq: int = 0
    parts: list[bytes] = field(default_factory=list)
    progress: list[dict] = field(default_factory=list)
    final: dict | None = None

    def push(self, headers: dict[str, str] | None, data: bytes) -> dict | None:
        headers = headers or {}
        seq = int(headers.get(SEQ_HEADER, "-1"))
        if seq != self.next_seq:
            raise ReplyError(f"message {seq} where {self.next_seq} was due")
        self.next_seq += 1
        kind = headers.get(REPLY_HEADER)
        if kind == "progress":
            self.progress.append(json.loads(data))
            return None
        part = int(headers.get(PART_HEADER, "-1"))
        if part != len(self.parts):
            raise ReplyError(f"part {part} where {len(self.parts)} was due")
        self.parts.append(data)
        if kind == "chunk":
            return None
        if kind != "final":
            raise ReplyError(f"unknown reply kind {kind!r}")
        body = b"".join(self.parts)
        if int(headers[PARTS_HEADER]) != len(self.parts) or int(headers[LENGTH_HEADER]) != len(body):
            raise ReplyError("the final reply's part count or length does not match")
        self.final = json.loads(body)
        return self.final
