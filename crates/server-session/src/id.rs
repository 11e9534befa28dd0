//! Session ids: generation from the operating system's CSPRNG, strict
//! validation, and a redacted form for logs.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use sha2::Sha256;

/// An opaque session id: `id_length` random bytes, base64url without padding
/// (43 characters for the default 32 bytes), as Flask-Session makes them.
///
/// `Debug` never shows the id itself, so a `SessionId` can sit in structs that
/// get logged. Use [`SessionId::as_str`] where the raw value is really needed.
///
/// Cloning one is cheap: the text is shared.
#[derive(Clone)]
pub struct SessionId {
    /// The store's key prefix followed by the id, in one allocation, so that
    /// the key a store call needs is at hand (empty for an id made without
    /// a prefix).
    keyed: Arc<str>,
    /// Where the id starts in `keyed`.
    start: usize,
}

impl SessionId {
    /// A fresh id of `bytes` bytes (at most 256) from the thread's
    /// cryptographically secure generator, which the operating system seeds.
    pub(crate) fn generate(bytes: usize) -> Self {
        SessionId::generate_under("", bytes)
    }

    /// [`generate`](Self::generate), keeping the store key `prefix` with it.
    pub(crate) fn generate_under(prefix: &str, bytes: usize) -> Self {
        let mut raw = [0u8; 256];
        let raw = &mut raw[..bytes.min(256)];
        rand::rng().fill_bytes(raw);
        let mut text = [0u8; 344];
        let len = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut text)
            .expect("344 bytes hold the text of 256");
        SessionId::joined(prefix, &text[..len]).expect("base64 is ASCII")
    }

    /// Accepts `value` only when it is exactly what [`SessionId::generate`]
    /// makes for `bytes`: the right length and only base64url characters.
    #[cfg(test)]
    pub(crate) fn parse(value: impl AsRef<[u8]>, bytes: usize) -> Option<Self> {
        SessionId::parse_under("", value, bytes)
    }

    /// Accepts `value` only when it is exactly what
    /// [`generate_under`](Self::generate_under) makes for `bytes`: the right
    /// length and only base64url characters. Keeps the store key `prefix`
    /// with the id.
    pub(crate) fn parse_under(prefix: &str, value: impl AsRef<[u8]>, bytes: usize) -> Option<Self> {
        let value = value.as_ref();
        // The length first, so that a long forged value is not scanned; then
        // one pass without a branch per byte.
        let valid = value.len() == encoded_len(bytes)
            && value.iter().fold(true, |ok, b| ok & BASE64URL[usize::from(*b)]);
        // Only ASCII passes the check above, so the id is always text.
        valid.then(|| SessionId::joined(prefix, value)).flatten()
    }

    /// `prefix` and the text `id` in one shared allocation, built without a
    /// copy in between for the usual lengths; `None` if `id` is not text.
    fn joined(prefix: &str, id: &[u8]) -> Option<Self> {
        let len = prefix.len() + id.len();
        let keyed: Arc<str> = if len <= 128 {
            let mut buf = [0u8; 128];
            buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
            buf[prefix.len()..len].copy_from_slice(id);
            std::str::from_utf8(&buf[..len]).ok()?.into()
        } else {
            [prefix, std::str::from_utf8(id).ok()?].concat().into()
        };
        Some(SessionId {
            keyed,
            start: prefix.len(),
        })
    }

    /// The id as it appears in the cookie and in the store key.
    pub fn as_str(&self) -> &str {
        &self.keyed[self.start..]
    }

    /// The store key of this id under `prefix`, if it was made with that
    /// prefix.
    pub(crate) fn key_under(&self, prefix: &str) -> Option<&str> {
        (&self.keyed[..self.start] == prefix).then_some(&*self.keyed)
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SessionId {}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// Which bytes are base64url characters.
static BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// Length of the base64url (no padding) text of `bytes` bytes.
pub(crate) fn encoded_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// Turns ids into short keyed hashes for logs, so a log line can be matched
/// to a session by someone who holds the key but never reveals the id.
#[derive(Clone)]
pub(crate) struct LogHasher {
    /// The MAC with its key already absorbed, cloned for each id.
    mac: Hmac<Sha256>,
}

impl LogHasher {
    /// A hasher with a key derived from `secret`, or a random one.
    pub(crate) fn new(secret: Option<&[u8]>) -> Self {
        let mut key = [0u8; 32];
        match secret {
            Some(secret) => {
                let mut mac =
                    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
                mac.update(b"server-session log id");
                key.copy_from_slice(&mac.finalize().into_bytes());
            }
            None => rand::rng().fill_bytes(&mut key),
        }
        LogHasher {
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes keys of any length"),
        }
    }

    /// 12 hex characters identifying `id` in logs.
    pub(crate) fn hash(&self, id: &SessionId) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(id.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..6]
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
            .map(char::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_flask_lengths() {
        for (bytes, len) in [(8, 11), (16, 22), (32, 43), (64, 86)] {
            let id = SessionId::generate(bytes);
            assert_eq!(id.as_str().len(), len);
            assert!(SessionId::parse(id.as_str(), bytes).is_some());
        }
    }

    #[test]
    fn ids_are_unique() {
        let a = SessionId::generate(32);
        let b = SessionId::generate(32);
        assert_ne!(a, b);
    }

    #[test]
    fn parse_is_strict() {
        let good = "sWxbru0qwIXHLvgoSunaZCqne0pfluGo_Mb-RUPTSB0";
        assert!(SessionId::parse(good, 32).is_some());
        assert!(SessionId::parse(good, 16).is_none());
        assert!(SessionId::parse(&good[1..], 32).is_none());
        assert!(SessionId::parse(format!("{good}A"), 32).is_none());
        let bad = good.replace('_', "/");
        assert!(SessionId::parse(&bad, 32).is_none());
        assert!(SessionId::parse("attacker-chosen-sid-0123456789", 32).is_none());
        let with_dot = format!("{}.", &good[..42]);
        assert!(SessionId::parse(&with_dot, 32).is_none());
        let non_ascii = format!("{}é", &good[..41]);
        assert!(SessionId::parse(&non_ascii, 32).is_none());
    }

    #[test]
    fn an_id_keeps_its_store_key() {
        let good = "sWxbru0qwIXHLvgoSunaZCqne0pfluGo_Mb-RUPTSB0";
        let keyed = SessionId::parse_under("session:", good, 32).unwrap();
        assert_eq!(keyed.as_str(), good);
        assert_eq!(
            keyed.key_under("session:"),
            Some(format!("session:{good}").as_str())
        );
        assert_eq!(keyed.key_under("other:"), None);
        assert!(SessionId::parse_under("session:", &good[1..], 32).is_none());
        // The same id, whatever prefix it was made with.
        let plain = SessionId::parse(good, 32).unwrap();
        assert_eq!(plain, keyed);
        let hasher = std::hash::RandomState::new();
        assert_eq!(
            std::hash::BuildHasher::hash_one(&hasher, &plain),
            std::hash::BuildHasher::hash_one(&hasher, &keyed)
        );
        let long = "p".repeat(600);
        let fresh = SessionId::generate_under(&long, 32);
        assert_eq!(fresh.as_str().len(), 43);
        assert_eq!(fresh.key_under(&long).map(str::len), Some(643));
    }

    #[test]
    fn debug_redacts() {
        let id = SessionId::generate(32);
        assert!(!format!("{id:?}").contains(id.as_str()));
    }

    #[test]
    fn log_hash_is_stable_and_short() {
        let hasher = LogHasher::new(Some(b"k"));
        let id = SessionId::generate(32);
        assert_eq!(hasher.hash(&id), hasher.hash(&id));
        assert_eq!(hasher.hash(&id).len(), 12);
        assert!(!hasher.hash(&id).contains(id.as_str()));
        // HMAC-SHA256(HMAC-SHA256("k", "server-session log id"), id), first 6 bytes.
        let known = SessionId::parse("sWxbru0qwIXHLvgoSunaZCqne0pfluGo_Mb-RUPTSB0", 32).unwrap();
        assert_eq!(hasher.hash(&known), "84887c95d46e");
    }
}
