//! One-click unsubscribe links (RFC 8058) for email reminders.
//!
//! A link is `{public_url}/u/{token}`. The token is opaque and unforgeable: base64url of the
//! client id followed by a 16-byte HMAC-SHA256 tag over the client id and the email address the
//! message went to, keyed with a random secret kept in `{data_dir}/unsubscribe-key` (0600). A
//! token stops working when the client's email address changes (the tag no longer matches), so
//! an old message can never unsubscribe a new address.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{ClientId, Contact};

const TAG_LEN: usize = 16;
const CONTEXT: &[u8] = b"plazo-unsubscribe-v1\0";

/// Makes and checks unsubscribe links.
#[derive(Clone)]
pub struct UnsubscribeLinks {
    base: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for UnsubscribeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsubscribeLinks")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A token that decoded and whose tag is well-formed (not yet checked against an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeToken {
    /// The client the link was made for.
    pub client_id: ClientId,
    tag: [u8; TAG_LEN],
}

impl UnsubscribeLinks {
    /// Links under `public_base` (no trailing slash) signed with `key` (at least 16 bytes).
    pub fn new(public_base: &str, key: &[u8]) -> Self {
        UnsubscribeLinks {
            base: public_base.trim_end_matches('/').to_owned(),
            key: key.to_vec(),
        }
    }

    fn tag(&self, client: &ClientId, email: &str) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return out;
        };
        mac.update(CONTEXT);
        mac.update(client.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(Contact::normalize(email).as_bytes());
        out.copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        out
    }

    /// The token for `client` at `email`.
    pub fn token(&self, client: &ClientId, email: &str) -> String {
        let mut raw = client.as_str().as_bytes().to_vec();
        raw.extend_from_slice(&self.tag(client, email));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The one-click URL for `client` at `email`.
    pub fn url(&self, client: &ClientId, email: &str) -> String {
        format!("{}/u/{}", self.base, self.token(client, email))
    }

    /// Decodes a token; `None` when it is not one of ours in shape.
    pub fn decode(&self, token: &str) -> Option<UnsubscribeToken> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if raw.len() <= TAG_LEN {
            return None;
        }
        let (id, tag) = raw.split_at(raw.len() - TAG_LEN);
        let client_id = ClientId::new(std::str::from_utf8(id).ok()?).ok()?;
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        Some(UnsubscribeToken { client_id, tag: t })
    }

    /// True when `token` was made for its client at `email` (constant-time).
    pub fn matches(&self, token: &UnsubscribeToken, email: &str) -> bool {
        bool::from(self.tag(&token.client_id, email).ct_eq(&token.tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> UnsubscribeLinks {
        UnsubscribeLinks::new(
            "https://cobros.example.co/",
            b"0123456789abcdef0123456789abcdef",
        )
    }

    #[test]
    fn round_trip_and_tamper() {
        let l = links();
        let c = ClientId::new("c-42").unwrap();
        let url = l.url(&c, "Ana@Example.co");
        assert!(url.starts_with("https://cobros.example.co/u/"));
        let token = url.rsplit('/').next().unwrap();
        assert!(
            !token.contains("ana"),
            "the address must not appear: {token}"
        );
        let t = l.decode(token).unwrap();
        assert_eq!(t.client_id, c);
        assert!(l.matches(&t, "ana@example.co"));
        // A changed address no longer matches.
        assert!(!l.matches(&t, "ana@new.example.co"));
        // Another key cannot forge it.
        let other = UnsubscribeLinks::new("https://x", b"another key of enough length!!!!");
        assert!(!other.matches(&t, "ana@example.co"));
        // Flipping any byte breaks it (or the decoding).
        let mut raw = URL_SAFE_NO_PAD.decode(token).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let forged = l.decode(&URL_SAFE_NO_PAD.encode(&raw)).unwrap();
        assert!(!l.matches(&forged, "ana@example.co"));
        assert_eq!(l.decode("not a token!"), None);
        assert_eq!(l.decode(""), None);
    }
}
