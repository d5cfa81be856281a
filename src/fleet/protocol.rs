//! The fleet wire contract (docs/fleet.md, "The message format"): what a gateway and a host
//! say to each other on NATS, as typed values, and the pure functions that turn them into
//! bytes and back. No I/O: the host agent and the gateway both build on this file.
//!
//! - Subjects and host names ([`HostName`], [`call_subject`], ...).
//! - Requests a gateway signs: [`CallRequest`] and [`CancelRequest`], carried as JSON
//!   payloads whose exact bytes are signed with the gateway's ed25519 (nkey) key; the
//!   signature and the signer's public key travel in NATS headers ([`Signature`]).
//! - What a host answers on the request's reply inbox: a stream of [`ReplyFrame`]s —
//!   progress, then the [`FinalReply`] split into parts that each fit NATS's
//!   `max_payload` ([`split_final`]); [`Reassembly`] puts them back together and checks
//!   their order and length, so a lost or reordered part is an error, never a silently
//!   shorter result.
//! - [`Presence`] beats, published by each host and answered to `hostmcp.discover`.

use std::{collections::BTreeMap, fmt, str::FromStr};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Every request is valid for at most this long after it was issued.
pub const MAX_VALIDITY_MS: u64 = 60_000;
/// How far the clocks of a gateway and a host may disagree.
pub const CLOCK_SKEW_MS: u64 = 10_000;
/// Room left in each reply message for its NATS headers and protocol line.
pub const REPLY_OVERHEAD: usize = 1024;
/// The largest reassembled reply a receiver accepts (a host's result budget is far below).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// The header naming the signer's public key (nkey text).
pub const SIGNER_HEADER: &str = "Hostmcp-Signer";
/// The header carrying the ed25519 signature, base64url without padding.
pub const SIGNATURE_HEADER: &str = "Hostmcp-Signature";
/// The header of every reply message saying which frame it is: progress, chunk, final.
pub const REPLY_HEADER: &str = "Hostmcp-Reply";
/// The header numbering the messages of one reply stream from 0.
pub const SEQ_HEADER: &str = "Hostmcp-Seq";
/// The header numbering the parts of a final reply from 0.
pub const PART_HEADER: &str = "Hostmcp-Part";
/// On the last part: how many parts the final reply has.
pub const PARTS_HEADER: &str = "Hostmcp-Parts";
/// On the last part: the final reply's length in bytes.
pub const LENGTH_HEADER: &str = "Hostmcp-Length";

/// The subject gateways ask every host's presence on.
pub const DISCOVER_SUBJECT: &str = "hostmcp.discover";
/// The subjects of every host's presence beats.
pub const PRESENCE_WILDCARD: &str = "hostmcp.presence.>";

/// A fleet host's name: one NATS subject token of `[A-Za-z0-9_-]`, 1 to 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostName(String);

/// Why a text is not a [`HostName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostNameError {
    #[error("a fleet host name is 1 to 63 characters, not {0}")]
    Length(usize),
    #[error(
        "a fleet host name has only letters, digits, '-' and '_' (one NATS subject token); {0:?} has {1:?}"
    )]
    Character(String, char),
}

impl HostName {
    /// The name a host with this hostname gets by default: its first label.
    pub fn from_hostname(hostname: &str) -> Result<Self, HostNameError> {
        hostname.split('.').next().unwrap_or_default().parse()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HostName {
    type Err = HostNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.is_empty() || name.len() > 63 {
            return Err(HostNameError::Length(name.len()));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(HostNameError::Character(name.to_owned(), bad));
        }
        Ok(Self(name.to_owned()))
    }
}

impl TryFrom<String> for HostName {
    type Error = HostNameError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl From<HostName> for String {
    fn from(name: HostName) -> Self {
        name.0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `hostmcp.host.<name>.call`: gateway -> host, request/reply.
pub fn call_subject(host: &HostName) -> String {
    format!("hostmcp.host.{host}.call")
}

/// `hostmcp.host.<name>.cancel`: gateway -> host.
pub fn cancel_subject(host: &HostName) -> String {
    format!("hostmcp.host.{host}.cancel")
}

/// `hostmcp.host.<name>.>`: every subject a host listens on besides discovery.
pub fn host_wildcard(host: &HostName) -> String {
    format!("hostmcp.host.{host}.>")
}

/// `hostmcp.presence.<name>`: host -> all.
pub fn presence_subject(host: &HostName) -> String {
    format!("hostmcp.presence.{host}")
}

/// What a signature is for: each kind signs under its own context, so the signature of
/// one kind of message never verifies another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedKind {
    Call,
    Cancel,
}

impl SignedKind {
    /// The bytes signed: `hostmcp-fleet-v1 <kind>\n` followed by the payload's exact bytes.
    pub fn signed_bytes(self, payload: &[u8]) -> Vec<u8> {
        let context: &[u8] = match self {
            Self::Call => b"hostmcp-fleet-v1 call\n",
            Self::Cancel => b"hostmcp-fleet-v1 cancel\n",
        };
        let mut bytes = Vec::with_capacity(context.len() + payload.len());
        bytes.extend_from_slice(context);
        bytes.extend_from_slice(payload);
        bytes
    }
}

/// An ed25519 public key: an nkey (`A…`, `U…`, …) or the 32 raw bytes in base64.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

/// A text that is not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ed25519 public key (an nkey such as A… or 32 bytes in base64): {0:?}")]
pub struct BadPublicKey(pub String);

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for PublicKey {
    type Err = BadPublicKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok((_prefix, raw)) = nkeys::from_public_key(text) {
            return Ok(Self(raw));
        }
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ];
        let no_pad = [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .filter_map(|engine| engine.decode(text).ok())
            .chain(no_pad.iter().filter_map(|engine| engine.decode(text).ok()))
            .find_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Self)
            .ok_or_else(|| BadPublicKey(text.to_owned()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..8]))
    }
}

/// The signature headers of one signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signer's public key as the signer wrote it (nkey text).
    pub signer: String,
    /// The ed25519 signature, base64url without padding.
    pub signature: String,
}

/// Why a signature does not stand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed (no Hostmcp-Signer and Hostmcp-Signature headers)")]
    Unsigned,
    #[error("the signer {0:?} is not a public key")]
    BadSigner(String),
    #[error("the signature does not verify under the signer's key")]
    BadSignature,
    #[error("the signing key cannot sign: {0}")]
    CannotSign(String),
}

/// Sign `payload` as a message of `kind` with `key` (an nkey pair with its seed).
pub fn sign(
    kind: SignedKind,
    payload: &[u8],
    key: &nkeys::KeyPair,
) -> Result<Signature, SignatureError> {
    let signature = key
        .sign(&kind.signed_bytes(payload))
        .map_err(|error| SignatureError::CannotSign(error.to_string()))?;
    Ok(Signature {
        signer: key.public_key(),
        signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature),
    })
}

/// A request as the bytes to publish and the signature headers to send with them (what a
/// gateway does before publishing on [`call_subject`] or [`cancel_subject`]).
pub fn seal<T: Envelope + Serialize>(
    request: &T,
    key: &nkeys::KeyPair,
) -> Result<(bytes::Bytes, Signature), SignatureError> {
    let payload = serde_json::to_vec(request)
        .map_err(|error| SignatureError::CannotSign(error.to_string()))?;
    let signature = sign(T::KIND, &payload, key)?;
    Ok((bytes::Bytes::from(payload), signature))
}

/// Check that `signature` signs `payload` as a message of `kind` under the key it names;
/// the signer's key on success. Whether that key is trusted is [`super::trust`]'s question.
pub fn verify(
    kind: SignedKind,
    payload: &[u8],
    signature: Option<&Signature>,
) -> Result<PublicKey, SignatureError> {
    let signature = signature.ok_or(SignatureError::Unsigned)?;
    let signer: PublicKey = signature
        .signer
        .parse()
        .map_err(|_| SignatureError::BadSigner(signature.signer.clone()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature.signature.trim_end_matches('='))
        .map_err(|_| SignatureError::BadSignature)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::BadSignature)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(signer.as_bytes())
        .map_err(|_| SignatureError::BadSigner(signature.signer.clone()))?;
    key.verify_strict(
        &kind.signed_bytes(payload),
        &ed25519_dalek::Signature::from_bytes(&bytes),
    )
    .map_err(|_| SignatureError::BadSignature)?;
    Ok(signer)
}

impl Signature {
    /// The signature as NATS headers.
    pub fn to_headers(&self, headers: &mut async_nats::HeaderMap) {
        headers.insert(SIGNER_HEADER, self.signer.as_str());
        headers.insert(SIGNATURE_HEADER, self.signature.as_str());
    }

    /// The signature in a message's headers, if it has both.
    pub fn from_headers(headers: Option<&async_nats::HeaderMap>) -> Option<Self> {
        let headers = headers?;
        Some(Self {
            signer: headers.get(SIGNER_HEADER)?.as_str().to_owned(),
            signature: headers.get(SIGNATURE_HEADER)?.as_str().to_owned(),
        })
    }
}

/// A tool call a gateway asks a host to make, signed by the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// Unique per gateway; a cancel names it. 1 to 128 characters.
    pub id: String,
    /// The host this request is for; a host refuses a request for another.
    pub host: HostName,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
    /// Who called the gateway, as the gateway authenticated them.
    pub principal: String,
    /// That caller's role on the gateway (`read`, `operator`, `admin`): a host grants at
    /// most this, and at most what it maps the principal to.
    pub role: String,
    /// The signing gateway's public key (the same as the signer header).
    pub gateway: String,
    /// Unix milliseconds.
    pub issued_at_ms: u64,
    /// The request is refused after this (Unix ms); at most [`MAX_VALIDITY_MS`] after
    /// `issued_at_ms`.
    pub expires_at_ms: u64,
    /// When set, the call is ended (its command killed) at this time (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Random, at least 16 characters; a host acts on a (gateway, nonce) once.
    pub nonce: String,
    /// Whether the gateway wants progress frames.
    #[serde(default)]
    pub progress: bool,
}

/// A gateway asking a host to end the running call `id`, signed by the same gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The request id of the call to end.
    pub id: String,
    pub host: HostName,
    pub gateway: String,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
    pub nonce: String,
}

/// What a signed request says about itself that a host checks before anything else.
pub trait Envelope {
    const KIND: SignedKind;
    fn host(&self) -> &HostName;
    fn gateway(&self) -> &str;
    fn issued_at_ms(&self) -> u64;
    fn expires_at_ms(&self) -> u64;
    fn nonce(&self) -> &str;
}

impl Envelope for CallRequest {
    const KIND: SignedKind = SignedKind::Call;
    fn host(&self) -> &HostName {
        &self.host
    }
    fn gateway(&self) -> &str {
        &self.gateway
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
    fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
    fn nonce(&self) -> &str {
        &self.nonce
    }
}

impl Envelope for CancelRequest {
    const KIND: SignedKind = SignedKind::Cancel;
    fn host(&self) -> &HostName {
        &self.host
    }
    fn gateway(&self) -> &str {
        &self.gateway
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
    fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
    fn nonce(&self) -> &str {
        &self.nonce
    }
}

/// Why a host refuses a request or how a call ended without a tool result: the `error`
/// of a [`FinalReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The payload is not a request of this protocol.
    Malformed,
    /// No signature headers.
    Unsigned,
    /// The signature does not verify (a changed byte, a wrong signer header).
    BadSignature,
    /// Signed by a key this host does not trust.
    NotTrusted,
    /// Signed for another host.
    WrongHost,
    /// Outside its validity window.
    Expired,
    /// A (gateway, nonce) this host has seen.
    Replayed,
    /// The fleet principal has no rights here, or not for this tool.
    Denied,
    /// The host is at its limit of calls or remembered nonces.
    Busy,
    /// The tool refused the call (unknown tool, bad arguments, internal error).
    ToolError,
    /// A cancel ended the call.
    Cancelled,
    /// The call's deadline passed.
    Timeout,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::NotTrusted => "not_trusted",
            Self::WrongHost => "wrong_host",
            Self::Expired => "expired",
            Self::Replayed => "replayed",
            Self::Denied => "denied",
            Self::Busy => "busy",
            Self::ToolError => "tool_error",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&SignatureError> for ErrorKind {
    fn from(error: &SignatureError) -> Self {
        match error {
            SignatureError::Unsigned => Self::Unsigned,
            SignatureError::BadSigner(_)
            | SignatureError::BadSignature
            | SignatureError::CannotSign(_) => Self::BadSignature,
        }
    }
}

/// A refusal of a request, before or instead of a tool result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Refusal {
    pub kind: ErrorKind,
    pub message: String,
}

impl Refusal {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<SignatureError> for Refusal {
    fn from(error: SignatureError) -> Self {
        Self::new(ErrorKind::from(&error), error.to_string())
    }
}

/// Decode and verify a signed request: the signature under the key it names, the payload,
/// the signer named inside it, the host it is for, its validity window at `now_ms`. What
/// remains for the host is whether it trusts the signer and has seen the nonce.
pub fn open<T: Envelope + serde::de::DeserializeOwned>(
    payload: &[u8],
    signature: Option<&Signature>,
    host: &HostName,
    now_ms: u64,
) -> Result<(T, PublicKey), Refusal> {
    let signer = verify(T::KIND, payload, signature)?;
    let request: T = serde_json::from_slice(payload)
        .map_err(|error| Refusal::new(ErrorKind::Malformed, error.to_string()))?;
    let named: PublicKey = request.gateway().parse().map_err(|_| {
        Refusal::new(
            ErrorKind::Malformed,
            "the request's gateway is not a public key",
        )
    })?;
    if named != signer {
        return Err(Refusal::new(
            ErrorKind::BadSignature,
            "the request names another gateway than its signer",
        ));
    }
    if request.host() != host {
        return Err(Refusal::new(
            ErrorKind::WrongHost,
            format!("the request is for host {}, this is {host}", request.host()),
        ));
    }
    check_window(request.issued_at_ms(), request.expires_at_ms(), now_ms)?;
    let nonce = request.nonce();
    if nonce.len() < 16 || nonce.len() > 128 {
        return Err(Refusal::new(
            ErrorKind::Malformed,
            "a nonce is 16 to 128 characters",
        ));
    }
    Ok((request, signer))
}

/// A request issued at `issued` and valid until `expires` is acceptable at `now`.
pub fn check_window(issued: u64, expires: u64, now: u64) -> Result<(), Refusal> {
    if expires < issued || expires - issued > MAX_VALIDITY_MS {
        return Err(Refusal::new(
            ErrorKind::Expired,
            format!("a request is valid for at most {MAX_VALIDITY_MS} ms"),
        ));
    }
    if issued > now.saturating_add(CLOCK_SKEW_MS) {
        return Err(Refusal::new(
            ErrorKind::Expired,
            "the request is issued in the future (clock skew?)",
        ));
    }
    if now > expires.saturating_add(CLOCK_SKEW_MS) {
        return Err(Refusal::new(ErrorKind::Expired, "the request has expired"));
    }
    Ok(())
}

/// Progress of a running call, as the tool reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub progress: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a call ended: the tool's result (an MCP `CallToolResult`, which may itself be an
/// error result), or an error of this protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok { result: serde_json::Value },
    Error { error: ErrorKind, message: String },
}

/// The last message of a reply stream (reassembled from its parts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReply {
    /// The request id, or empty when the request could not be read.
    pub id: String,
    /// Which host answered.
    pub host: HostName,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl FinalReply {
    pub fn refused(id: &str, host: &HostName, refusal: &Refusal) -> Self {
        Self {
            id: id.to_owned(),
            host: host.clone(),
            outcome: Outcome::Error {
                error: refusal.kind,
                message: refusal.message.clone(),
            },
        }
    }
}

/// One message of a reply stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyFrame {
    Progress(Progress),
    /// A part of the final reply's JSON that is not the last.
    Chunk {
        part: u32,
        bytes: bytes::Bytes,
    },
    /// The last part of the final reply's JSON, with the count and length to check.
    Final {
        part: u32,
        parts: u32,
        length: u64,
        bytes: bytes::Bytes,
    },
}

/// A reply message that is not a frame of this protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the reply has no {0} header or a bad one")]
    Header(&'static str),
    #[error("unknown reply kind {0:?}")]
    Kind(String),
    #[error("progress frame: {0}")]
    Progress(String),
    #[error("reply message {got} arrived where {expected} was due (lost or reordered)")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("reply part {got} arrived where {expected} was due")]
    PartOutOfOrder { expected: u32, got: u32 },
    #[error(
        "the reply has {got} parts and {got_bytes} bytes; its last part says {parts} and {length}"
    )]
    Incomplete {
        got: u32,
        got_bytes: u64,
        parts: u32,
        length: u64,
    },
    #[error("the reply exceeds 64 MiB")]
    TooLarge,
    #[error("the final reply is not JSON of this protocol: {0}")]
    Final(String),
}

impl ReplyFrame {
    /// This frame as the `seq`-th message of its reply stream: headers and payload.
    pub fn to_message(&self, seq: u64) -> (async_nats::HeaderMap, bytes::Bytes) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        let payload = match self {
            Self::Progress(progress) => {
                headers.insert(REPLY_HEADER, "progress");
                bytes::Bytes::from(serde_json::to_vec(progress).unwrap_or_default())
            }
            Self::Chunk { part, bytes } => {
                headers.insert(REPLY_HEADER, "chunk");
                headers.insert(PART_HEADER, part.to_string().as_str());
                bytes.clone()
            }
            Self::Final {
                part,
                parts,
                length,
                bytes,
            } => {
                headers.insert(REPLY_HEADER, "final");
                headers.insert(PART_HEADER, part.to_string().as_str());
                headers.insert(PARTS_HEADER, parts.to_string().as_str());
                headers.insert(LENGTH_HEADER, length.to_string().as_str());
                bytes.clone()
            }
        };
        (headers, payload)
    }

    /// The frame and sequence number of a reply message.
    pub fn from_message(
        headers: Option<&async_nats::HeaderMap>,
        payload: bytes::Bytes,
    ) -> Result<(u64, Self), FrameError> {
        let header = |name: &'static str| {
            headers
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().to_owned())
                .ok_or(FrameError::Header(name))
        };
        let number = |name: &'static str| -> Result<u64, FrameError> {
            header(name)?.parse().map_err(|_| FrameError::Header(name))
        };
        let seq = number(SEQ_HEADER)?;
        let part = || -> Result<u32, FrameError> {
            u32::try_from(number(PART_HEADER)?).map_err(|_| FrameError::Header(PART_HEADER))
        };
        let frame = match header(REPLY_HEADER)?.as_str() {
            "progress" => Self::Progress(
                serde_json::from_slice(&payload)
                    .map_err(|error| FrameError::Progress(error.to_string()))?,
            ),
            "chunk" => Self::Chunk {
                part: part()?,
                bytes: payload,
            },
            "final" => Self::Final {
                part: part()?,
                parts: u32::try_from(number(PARTS_HEADER)?)
                    .map_err(|_| FrameError::Header(PARTS_HEADER))?,
                length: number(LENGTH_HEADER)?,
                bytes: payload,
            },
            other => return Err(FrameError::Kind(other.to_owned())),
        };
        Ok((seq, frame))
    }
}

/// The frames that carry `reply` in parts of at most `max_payload - REPLY_OVERHEAD` bytes
/// each (at least 1 KiB): chunks, then the final part.
pub fn split_final(reply: &FinalReply, max_payload: usize) -> Vec<ReplyFrame> {
    let bytes = bytes::Bytes::from(serde_json::to_vec(reply).unwrap_or_default());
    let size = max_payload.saturating_sub(REPLY_OVERHEAD).max(1024);
    let length = bytes.len() as u64;
    let parts = bytes.len().div_ceil(size).max(1);
    (0..parts)
        .map(|index| {
            let piece = bytes.slice(index * size..((index + 1) * size).min(bytes.len()));
            let part = u32::try_from(index).unwrap_or(u32::MAX);
            if index + 1 == parts {
                ReplyFrame::Final {
                    part,
                    parts: u32::try_from(parts).unwrap_or(u32::MAX),
                    length,
                    bytes: piece,
                }
            } else {
                ReplyFrame::Chunk { part, bytes: piece }
            }
        })
        .collect()
}

/// What a [`Reassembly`] makes of one more frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Assembled {
    Progress(Progress),
    /// A part was kept; more are due.
    Pending,
    Done(FinalReply),
}

/// A reply stream put back together, message by message, checking that none is missing,
/// repeated or out of order and that the final reply is as long as its last part says.
#[derive(Debug, Default)]
pub struct Reassembly {
    next_seq: u64,
    next_part: u32,
    body: Vec<u8>,
}

impl Reassembly {
    pub fn new() -> Self {
        Self::default()
    }

    /// Take the `seq`-th message of the stream.
    pub fn push(&mut self, seq: u64, frame: ReplyFrame) -> Result<Assembled, FrameError> {
        if seq != self.next_seq {
            return Err(FrameError::OutOfOrder {
                expected: self.next_seq,
                got: seq,
            });
        }
        self.next_seq += 1;
        match frame {
            ReplyFrame::Progress(progress) => Ok(Assembled::Progress(progress)),
            ReplyFrame::Chunk { part, bytes } => {
                self.take_part(part, &bytes)?;
                Ok(Assembled::Pending)
            }
            ReplyFrame::Final {
                part,
                parts,
                length,
                bytes,
            } => {
                self.take_part(part, &bytes)?;
                let got_bytes = self.body.len() as u64;
                if self.next_part != parts || got_bytes != length {
                    return Err(FrameError::Incomplete {
                        got: self.next_part,
                        got_bytes,
                        parts,
                        length,
                    });
                }
                let reply = serde_json::from_slice(&std::mem::take(&mut self.body))
                    .map_err(|error| FrameError::Final(error.to_string()))?;
                Ok(Assembled::Done(reply))
            }
        }
    }

    fn take_part(&mut self, part: u32, bytes: &[u8]) -> Result<(), FrameError> {
        if part != self.next_part {
            return Err(FrameError::PartOutOfOrder {
                expected: self.next_part,
                got: part,
            });
        }
        if self.body.len() + bytes.len() > MAX_REPLY_BYTES {
            return Err(FrameError::TooLarge);
        }
        self.next_part += 1;
        self.body.extend_from_slice(bytes);
        Ok(())
    }
}

/// Whether a host is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Offline,
}

/// A few facts about a host, for selectors and `host_list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    pub arch: String,
    pub cpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
}

/// A presence beat: on `hostmcp.presence.<name>` and as the answer to discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub host: HostName,
    pub status: Status,
    /// hostmcp's version on the host.
    pub version: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When this beat was sent (Unix ms): the host's "last seen".
    pub seen_at_ms: u64,
    /// When the agent started (Unix ms).
    pub started_at_ms: u64,
    /// The next beat is due within this many ms (a gateway marks the host offline after
    /// missing a few).
    pub interval_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Facts>,
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A fresh random nonce: 128 bits, hex.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests;
