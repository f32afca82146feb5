//! The state digest: an order-independent fingerprint of the state machine content.
//!
//! `Digest = Σ term(record)  (mod 2^128)` over every record of the data trees (kv and
//! dedup), where `term = first 16 bytes (LE) of blake3(tree tag || key len u64 LE || key
//! || payload)` and `payload` is the record's stored value without its checksum. A sum is
//! independent of order and can be maintained incrementally: a write subtracts the old
//! record's term and adds the new one. Two nodes that applied the same entries have the
//! same digest; a snapshot carries the digest of its content.

use std::fmt;

/// Tree tag of the kv records (also their tag in snapshot files).
pub(crate) const TAG_KV: u8 = 1;
/// Tree tag of the de-duplication records (also their tag in snapshot files).
pub(crate) const TAG_DEDUP: u8 = 2;

/// Order-independent digest of the state machine content. Displays as 32 lowercase hex chars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Digest(pub u128);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Digest {
    /// Accounts for a record that now exists.
    pub(crate) fn add(&mut self, tag: u8, key: &[u8], payload: &[u8]) {
        self.0 = self.0.wrapping_add(record_term(tag, key, payload));
    }

    /// Accounts for a record that no longer exists.
    pub(crate) fn remove(&mut self, tag: u8, key: &[u8], payload: &[u8]) {
        self.0 = self.0.wrapping_sub(record_term(tag, key, payload));
    }
}

/// One record's contribution to the digest.
pub(crate) fn record_term(tag: u8, key: &[u8], payload: &[u8]) -> u128 {
    let mut h = blake3::Hasher::new();
    h.update(&[tag]);
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(payload);
    let hash = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_32_hex_chars() {
        assert_eq!(Digest(0).to_string(), "00000000000000000000000000000000");
        assert_eq!(
            Digest(0xabc).to_string(),
            "00000000000000000000000000000abc"
        );
        assert_eq!(Digest(u128::MAX).to_string().len(), 32);
    }

    #[test]
    fn order_independent_and_invertible() {
        let mut a = Digest::default();
        a.add(TAG_KV, b"x", b"1");
        a.add(TAG_KV, b"y", b"2");
        let mut b = Digest::default();
        b.add(TAG_KV, b"y", b"2");
        b.add(TAG_KV, b"x", b"1");
        assert_eq!(a, b);
        b.remove(TAG_KV, b"x", b"1");
        b.remove(TAG_KV, b"y", b"2");
        assert_eq!(b, Digest::default());
        // The tag and the key/payload boundary are part of the term.
        assert_ne!(
            record_term(TAG_KV, b"k", b"v"),
            record_term(TAG_DEDUP, b"k", b"v")
        );
        assert_ne!(
            record_term(TAG_KV, b"ab", b"c"),
            record_term(TAG_KV, b"a", b"bc")
        );
    }
}
