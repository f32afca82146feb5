//! The one error type of the store.

use std::io;

/// Why a store operation failed.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The storage engine failed (I/O below sled, or sled's own corruption checks).
    #[error("storage engine: {0}")]
    Sled(#[from] sled::Error),

    /// A file operation (snapshots, data directory) failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),

    /// Stored bytes failed their checksum or could not be decoded.
    /// `what` names the record: e.g. `kv value for key 'abc'`, `log entry 17`.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },

    /// The data directory was written by a format this build does not read.
    #[error("unknown on-disk format version {found}; this build supports version {supported}")]
    UnknownFormat { found: u32, supported: u32 },

    /// A value could not be serialized.
    #[error("encoding: {0}")]
    Codec(#[from] postcard::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> io::Error {
        match e {
            StoreError::Io(e) => e,
            StoreError::Corrupt { .. } | StoreError::UnknownFormat { .. } => {
                io::Error::new(io::ErrorKind::InvalidData, e)
            }
            other => io::Error::other(other),
        }
    }
}
