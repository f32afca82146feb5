//! Checksummed record framing.
//!
//! Every value the store writes to any sled tree is `[crc32c(payload) u32 LE][payload]`,
//! where the payload is usually a postcard encoding. Reading checks the crc first, so
//! bit rot surfaces as [`StoreError::Corrupt`] naming the record instead of as a wrong
//! answer. Nothing here panics on any input.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

const CRC_LEN: usize = 4;

/// `[crc32c(payload) LE][payload]`.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CRC_LEN + payload.len());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks the crc of a framed value and returns its payload.
/// `what` names the record for the error message; it is only called on failure.
pub(crate) fn unframe(bytes: &[u8], what: impl FnOnce() -> String) -> Result<&[u8], StoreError> {
    if bytes.len() < CRC_LEN {
        return Err(StoreError::corrupt(
            what(),
            format!(
                "record of {} bytes is shorter than its checksum",
                bytes.len()
            ),
        ));
    }
    let (crc, payload) = bytes.split_at(CRC_LEN);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32c::crc32c(payload);
    if stored != actual {
        return Err(StoreError::corrupt(
            what(),
            format!("checksum mismatch: stored {stored:08x}, computed {actual:08x}"),
        ));
    }
    Ok(payload)
}

/// postcard-encodes `value` without framing.
pub(crate) fn to_payload<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(postcard::to_stdvec(value)?)
}

/// postcard-encodes and frames `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(frame(&to_payload(value)?))
}

/// Decodes an unframed postcard payload; trailing bytes are an error.
pub(crate) fn from_payload<T: DeserializeOwned>(
    payload: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(StoreError::corrupt(
            what(),
            format!("{} trailing bytes after the value", rest.len()),
        )),
        Err(e) => Err(StoreError::corrupt(what(), format!("undecodable: {e}"))),
    }
}

/// Checks the frame and decodes the payload.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl Fn() -> String,
) -> Result<T, StoreError> {
    let payload = unframe(bytes, &what)?;
    from_payload(payload, &what)
}

/// A key as it appears in error messages: `'abc'`, non-printable bytes escaped.
pub(crate) fn show_key(key: &[u8]) -> String {
    format!("'{}'", key.escape_ascii())
}

/// Big-endian so that sled's byte order is numeric order.
pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn parse_u64_key(key: &[u8], what: impl FnOnce() -> String) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        StoreError::corrupt(what(), format!("key of {} bytes, expected 8", key.len()))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use lookout_types::Entry;
    use lookout_types::Response;
    use lookout_types::Versioned;

    use super::*;
    use crate::tests::XorShift;

    #[test]
    fn frame_round_trip() {
        let v = Versioned {
            value: b"hello".to_vec(),
            version: 3,
            create_index: 7,
            mod_index: 9,
        };
        let bytes = encode(&v).unwrap();
        let back: Versioned = decode(&bytes, || "v".into()).unwrap();
        assert_eq!(v, back);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let v = Versioned {
            value: b"hello".to_vec(),
            version: 3,
            create_index: 7,
            mod_index: 9,
        };
        let bytes = encode(&v).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let r = decode::<Versioned>(&b, || "kv value for key 'k'".into());
            match r {
                Err(StoreError::Corrupt { what, .. }) => assert_eq!(what, "kv value for key 'k'"),
                other => panic!("bit {i}: expected Corrupt, got {other:?}"),
            }
        }
    }

    /// Decoding arbitrary, truncated or garbage bytes returns errors, never panics.
    #[test]
    fn decoding_garbage_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let good = encode(&Response::default()).unwrap();
        for round in 0..20_000 {
            let len = (rng.next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round % 2 == 0 && len >= 4 {
                // A valid checksum over garbage exercises the postcard decoders too.
                let crc = crc32c::crc32c(&bytes[4..]).to_le_bytes();
                bytes[..4].copy_from_slice(&crc);
            }
            let _ = decode::<Versioned>(&bytes, || "x".into());
            let _ = decode::<Response>(&bytes, || "x".into());
            let _ = decode::<Entry>(&bytes, || "x".into());
            let _ = decode::<lookout_types::Vote>(&bytes, || "x".into());
            let _ = parse_u64_key(&bytes, || "x".into());
        }
        for cut in 0..good.len() {
            assert!(decode::<Response>(&good[..cut], || "x".into()).is_err());
        }
    }

    #[test]
    fn show_key_escapes() {
        assert_eq!(show_key(b"abc"), "'abc'");
        assert_eq!(show_key(b"a\x00\xff"), "'a\\x00\\xff'");
    }
}
