use std::fmt;

use tonic::Code;

use crate::retry::LeaderHint;

/// Why a call failed, after whatever retrying its code allowed.
#[derive(Debug)]
pub enum ClientError {
    /// The last attempt ended with this gRPC status: from the server, or from the
    /// transport (connection refused is `Unavailable`, a local deadline is
    /// `DeadlineExceeded`).
    Status {
        status: tonic::Status,
        /// Where the refusing node said the leader is, if it said.
        leader: Option<LeaderHint>,
        /// The endpoint the last attempt went to.
        endpoint: String,
        /// How many attempts were made in all.
        attempts: u32,
    },
    /// The client was misconfigured (no endpoints, an address that is not `host:port`).
    Config(String),
}

impl ClientError {
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        ClientError::Config(msg.into())
    }

    /// The gRPC code of the final status, or `None` for a configuration error.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Status { status, .. } => Some(status.code()),
            ClientError::Config(_) => None,
        }
    }

    /// The final status's message (or the configuration problem).
    pub fn message(&self) -> &str {
        match self {
            ClientError::Status { status, .. } => status.message(),
            ClientError::Config(msg) => msg,
        }
    }

    /// The final status, if there was one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            ClientError::Status { status, .. } => Some(status),
            ClientError::Config(_) => None,
        }
    }

    /// Where the last refusing node said the leader is.
    pub fn leader_hint(&self) -> Option<&LeaderHint> {
        match self {
            ClientError::Status { leader, .. } => leader.as_ref(),
            ClientError::Config(_) => None,
        }
    }

    /// The endpoint of the last attempt.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            ClientError::Status { endpoint, .. } => Some(endpoint),
            ClientError::Config(_) => None,
        }
    }

    /// The name of the gRPC code (`Unavailable`, `InvalidArgument`, ...), or
    /// `Config` for a configuration error.
    pub fn code_name(&self) -> String {
        match self.code() {
            Some(code) => format!("{code:?}"),
            None => "Config".to_string(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Status {
                status,
                leader,
                endpoint,
                attempts,
            } => {
                write!(f, "{:?}: {}", status.code(), status.message())?;
                if let Some(hint) = leader {
                    write!(f, " ({hint})")?;
                }
                write!(f, " [{endpoint}")?;
                if *attempts > 1 {
                    write!(f, ", {attempts} attempts")?;
                }
                write!(f, "]")
            }
            ClientError::Config(msg) => write!(f, "configuration error: {msg}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Status { status, .. } => Some(status),
            ClientError::Config(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_code_message_hint_and_endpoint() {
        let e = ClientError::Status {
            status: tonic::Status::unavailable("not the leader"),
            leader: Some(LeaderHint {
                id: Some(2),
                addr: Some("127.0.0.1:7102".into()),
            }),
            endpoint: "127.0.0.1:7101".into(),
            attempts: 3,
        };
        assert_eq!(
            e.to_string(),
            "Unavailable: not the leader (leader is node 2 at 127.0.0.1:7102) [127.0.0.1:7101, 3 attempts]"
        );
        assert_eq!(e.code(), Some(Code::Unavailable));
        assert_eq!(e.code_name(), "Unavailable");
        let e = ClientError::Status {
            status: tonic::Status::invalid_argument("key: empty"),
            leader: None,
            endpoint: "h:1".into(),
            attempts: 1,
        };
        assert_eq!(e.to_string(), "InvalidArgument: key: empty [h:1]");
        let e = ClientError::config("no endpoints");
        assert_eq!(e.to_string(), "configuration error: no endpoints");
        assert_eq!(e.code(), None);
    }
}
