//! [`ConfigError`]: every way loading `cluster.toml` can fail, each naming the
//! file, the line and (for anything past syntax) the offending field.

use std::path::Path;
use std::path::PathBuf;

/// Coarse classification of a [`ConfigError`], for callers (and tests) that
/// want to branch on the kind of failure rather than parse the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not valid TOML (includes duplicate keys).
    Syntax,
    /// A required field is absent.
    MissingField,
    /// A field this version does not know (typo, or a newer config file).
    UnknownField,
    /// A field has the wrong TOML type (string where an integer belongs, ...).
    WrongType,
    /// A field has the right type but an unacceptable value (zero, out of
    /// range, unparsable address, unknown site kind, ...).
    InvalidValue,
    /// A value that must be unique appears twice (node id, address, site
    /// name, data directory).
    Duplicate,
    /// A reference to a site that `[[sites]]` does not declare.
    UndeclaredSite,
    /// Raft timing values that are individually fine but inconsistent
    /// (e.g. heartbeat not below the minimum election timeout).
    Timing,
    /// The node set as a whole is unusable (e.g. no voters).
    Topology,
}

/// Why a cluster configuration was refused.
///
/// Display is `FILE:LINE: FIELD: MESSAGE`, e.g.
/// `cluster.toml:14: nodes[2].client_addr: duplicate address 127.0.0.12:7500 (also used by nodes[0].client_addr)`.
/// Lines are 1-based; field paths use 0-based indices into `[[sites]]` /
/// `[[nodes]]` in file order.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{}:{line}: malformed TOML (column {column}): {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The TOML is well-formed but a field is missing, unknown, mistyped or
    /// has a value the cluster cannot run with.
    #[error("{}:{line}: {field}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        /// Dotted path of the offending field, e.g. `nodes[2].client_addr`.
        field: String,
        kind: ErrorKind,
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Io { path, .. }
            | ConfigError::Syntax { path, .. }
            | ConfigError::Invalid { path, .. } => path,
        }
    }

    /// 1-based line of the offending text; `None` for I/O errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => Some(*line),
        }
    }

    /// Dotted path of the offending field; `None` for I/O and syntax errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Io { .. } => ErrorKind::Io,
            ConfigError::Syntax { .. } => ErrorKind::Syntax,
            ConfigError::Invalid { kind, .. } => *kind,
        }
    }
}
