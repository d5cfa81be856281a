//! Integrity-protected `requestState` for input-required results (SEP-2322).
//!
//! The client echoes `requestState` back verbatim, so a stateless server must not trust
//! it: the state is `base64url(json) "." base64url(HMAC-SHA256(key, base64url(json)))`
//! under a key drawn at startup. A tampered state is a JSON-RPC `-32602` error, which
//! is what `input-required-result-tampered-state` checks.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rmcp::ErrorData as McpError;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SHA256_BLOCK_BYTES: usize = 64;

/// Seals and opens request states with one secret key.
pub struct StateSealer {
    key: [u8; 32],
}

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSealer(<key>)")
    }
}

impl StateSealer {
    /// A sealer with a fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source is available");
        Self { key }
    }

    pub fn seal(&self, state: &Value) -> String {
        let payload = URL_SAFE_NO_PAD.encode(state.to_string());
        let mac = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()));
        format!("{payload}.{mac}")
    }

    /// `Ok(None)` when there is no state (a first round), the state when it is intact,
    /// and `-32602` when it was altered or is not one of ours.
    pub fn open(&self, sealed: Option<&str>) -> Result<Option<Value>, McpError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let tampered =
            || McpError::invalid_params("invalid requestState: integrity check failed", None);
        let (payload, mac) = sealed.split_once('.').ok_or_else(tampered)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| tampered())?;
        if !bool::from(self.mac(payload.as_bytes()).as_slice().ct_eq(&mac)) {
            return Err(tampered());
        }
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| tampered())?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|_| tampered())
    }

    /// HMAC-SHA256 (RFC 2104) of `message`.
    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner_pad = [0x36u8; SHA256_BLOCK_BYTES];
        let mut outer_pad = [0x5cu8; SHA256_BLOCK_BYTES];
        for (index, byte) in self.key.iter().enumerate() {
            inner_pad[index] ^= byte;
            outer_pad[index] ^= byte;
        }
        let inner = Sha256::new()
            .chain_update(inner_pad)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(outer_pad)
            .chain_update(inner)
            .finalize()
            .into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sealed_state_opens_and_its_tampered_twin_does_not() {
        let sealer = StateSealer::random();
        let sealed = sealer.seal(&json!({ "round": 1 }));
        assert_eq!(
            sealer.open(Some(&sealed)).unwrap(),
            Some(json!({ "round": 1 }))
        );
        assert!(sealer.open(Some(&format!("{sealed}-TAMPERED"))).is_err());
        assert!(StateSealer::random().open(Some(&sealed)).is_err());
        assert_eq!(sealer.open(None).unwrap(), None);
    }

    #[test]
    fn the_mac_is_hmac_sha256() {
        // Expected value from Python: hmac.new(b"\x0b" * 32, b"Hi There", "sha256").
        let sealer = StateSealer { key: [0x0b; 32] };
        assert_eq!(
            hex::encode(sealer.mac(b"Hi There")),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }
}
