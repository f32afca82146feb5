//! Checksummed postcard framing of openraft messages on the peer wire.

use lookout_proto::v1::PeerFrame;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn encode<T: Serialize>(value: &T) -> PeerFrame {
    // postcard serialisation of openraft's own types cannot fail for in-memory values;
    // an error here would be a programming error in a Serialize impl.
    let payload = postcard::to_stdvec(value).expect("postcard encoding of a peer message");
    let crc = crc32c::crc32c(&payload);
    PeerFrame { payload, crc }
}

pub fn decode<T: DeserializeOwned>(frame: &PeerFrame) -> Result<T, FrameError> {
    let actual = crc32c::crc32c(&frame.payload);
    if actual != frame.crc {
        return Err(FrameError::Checksum { expected: frame.crc, actual });
    }
    postcard::from_bytes(&frame.payload).map_err(|e| FrameError::Decode(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("peer frame checksum mismatch: frame says {expected:#010x}, payload hashes to {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
    #[error("peer frame does not decode: {0}")]
    Decode(String),
}

impl From<FrameError> for tonic::Status {
    fn from(e: FrameError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let frame = encode(&(7u64, "hello".to_string()));
        let back: (u64, String) = decode(&frame).unwrap();
        assert_eq!(back, (7, "hello".to_string()));

        let mut bad = frame.clone();
        bad.payload[0] ^= 1;
        assert!(matches!(decode::<(u64, String)>(&bad), Err(FrameError::Checksum { .. })));

        // Arbitrary payloads with a valid checksum, decoded as every peer message type,
        // must error (or decode), never panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let payload: Vec<u8> = (0..(len % 300))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let f = PeerFrame { crc: crc32c::crc32c(&payload), payload };
            let _ = decode::<openraft::raft::AppendEntriesRequest<lookout_types::TypeConfig>>(&f);
            let _ = decode::<openraft::raft::VoteRequest<lookout_types::TypeConfig>>(&f);
            let _ = decode::<openraft::raft::TransferLeaderRequest<lookout_types::TypeConfig>>(&f);
            let _ = decode::<(lookout_types::Vote, lookout_types::SnapshotMeta)>(&f);
        }

        // Truncated-but-consistent frames must error, not panic.
        for n in 0..frame.payload.len() {
            let p = frame.payload[..n].to_vec();
            let f = PeerFrame { crc: crc32c::crc32c(&p), payload: p };
            assert!(decode::<(u64, String)>(&f).is_err());
        }
    }
}
