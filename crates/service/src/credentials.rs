//! Secrets: 256-bit random tokens, shown once, stored only as SHA-256 hashes.
//!
//! A token carries a prefix naming its kind (`tdm_pt_` for participants, `tdm_key_`
//! for API keys, `tdm_inv_` for invites), which lets secret scanners recognise a
//! leaked one and tells the server where to look it up.

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tandem_domain::{ApiKey, Participant};
use tandem_ports::TokenHash;

/// What a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ApiKey,
    Participant,
    Invite,
    StreamTicket,
}

impl TokenKind {
    /// The token's visible prefix.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "tdm_key_",
            Self::Participant => "tdm_pt_",
            Self::Invite => "tdm_inv_",
            Self::StreamTicket => "tdm_tkt_",
        }
    }
}

/// A freshly generated secret, to be shown to its owner once. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Generates a token of `kind` from 32 bytes of OS randomness, with its hash.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness: no token may be made then.
    pub fn generate(kind: TokenKind) -> (Self, TokenHash) {
        let mut bytes = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut bytes)
            .unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        let mut token = String::with_capacity(kind.prefix().len() + 64);
        token.push_str(kind.prefix());
        for byte in bytes {
            token.push(char::from(HEX[usize::from(byte >> 4)]));
            token.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        let hash = hash_token(&token);
        (Self(token), hash)
    }

    /// Wraps a secret supplied by the operator (the bootstrap admin key).
    pub fn from_operator(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The SHA-256 of a token: what the store keeps and looks up by. The lookup is an
/// exact match on a 256-bit digest of a 256-bit random secret, so its timing tells
/// an attacker nothing about the secret.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash::from_bytes(Sha256::digest(token.as_bytes()).into())
}

/// Who is calling, once their bearer token was recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A script or admin, with its workspace and scopes.
    ApiKey(ApiKey),
    /// A participant of one session (present: a departed participant's token is refused).
    Participant(Participant),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let (a, hash_a) = Secret::generate(TokenKind::Participant);
        let (b, _) = Secret::generate(TokenKind::Participant);
        assert!(a.expose().starts_with("tdm_pt_"));
        assert_eq!(a.expose().len(), "tdm_pt_".len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_token(a.expose()), hash_a);
        assert_ne!(hash_token(b.expose()), hash_a);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let (secret, _) = Secret::generate(TokenKind::ApiKey);
        assert!(!format!("{secret:?}").contains(&secret.expose()[8..]));
    }
}

/// Participant tokens seen before, by hash: which participant a token belongs
/// to never changes, so a request need not look it up again. Bounded: when
/// full, it starts over (a miss costs one lookup).
#[derive(Debug, Default)]
pub(crate) struct KnownTokens(std::sync::Mutex<std::collections::HashMap<TokenHash, Participant>>);

/// How many participant tokens are remembered at most.
const KNOWN_TOKENS: usize = 100_000;

impl KnownTokens {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<TokenHash, Participant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The participant as it was when its token was first recognised; callers
    /// read its presence and role afresh before relying on them.
    pub(crate) fn get(&self, hash: &TokenHash) -> Option<Participant> {
        self.map().get(hash).cloned()
    }

    pub(crate) fn insert(&self, hash: TokenHash, participant: &Participant) {
        let mut map = self.map();
        if map.len() >= KNOWN_TOKENS {
            map.clear();
        }
        map.insert(hash, participant.clone());
    }
}
