//! The one error type of the cloud domain. It knows its *kind* (the name Concertim clients see
//! in `error`) and the HTTP status that fits it, as a plain number: this crate never depends on
//! an HTTP framework, the listener maps the number to a response.

/// A failure of a cloud operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// A required field is absent (the message names it).
    #[error("{0}")]
    MissingField(String),
    /// A field is present but has the wrong type or an unacceptable value (the message names it).
    #[error("{0}")]
    InvalidField(String),
    /// The call itself does not exist (unknown object type or action).
    #[error("{0}")]
    InvalidCall(String),
    /// The credentials (JWT or `cloud_env`) were refused.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Uniqueness, referential or state conflict.
    #[error("{0}")]
    Conflict(String),
    /// A service this backend needs (Docker engine, database) does not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A failure with its own status and kind: an upstream cloud's answer passed on (its
    /// status and message), an unreachable cloud (502/504), or a route a backend lacks (501).
    #[error("{message}")]
    Status {
        status: u16,
        kind: &'static str,
        message: String,
    },
}

pub type CloudResult<T> = Result<T, CloudError>;

impl CloudError {
    /// The name clients see in `error` (the original service sent exception class names).
    pub fn kind(&self) -> &'static str {
        match self {
            CloudError::MissingField(_) => "MissingRequiredArgs",
            CloudError::InvalidField(_) => "InvalidArguments",
            CloudError::InvalidCall(_) => "InvalidAPICall",
            CloudError::Unauthenticated(_) => "AuthenticationFailed",
            CloudError::Forbidden(_) => "Forbidden",
            CloudError::NotFound(_) => "NotFound",
            CloudError::Conflict(_) => "Conflict",
            CloudError::Unavailable(_) => "ServiceUnavailable",
            CloudError::Internal(_) => "InternalError",
            CloudError::Status { kind, .. } => kind,
        }
    }

    /// The HTTP status that fits this failure.
    pub fn http_status(&self) -> u16 {
        match self {
            CloudError::MissingField(_) | CloudError::InvalidField(_) => 400,
            CloudError::InvalidCall(_) => 400,
            CloudError::Unauthenticated(_) => 401,
            CloudError::Forbidden(_) => 403,
            CloudError::NotFound(_) => 404,
            CloudError::Conflict(_) => 409,
            CloudError::Unavailable(_) => 503,
            CloudError::Internal(_) => 500,
            CloudError::Status { status, .. } => *status,
        }
    }

    pub fn missing(field: &str) -> Self {
        CloudError::MissingField(format!("missing required field `{field}`"))
    }

    pub fn invalid(field: &str, why: impl std::fmt::Display) -> Self {
        CloudError::InvalidField(format!("field `{field}` {why}"))
    }
}

impl From<sqlx::Error> for CloudError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                CloudError::Unavailable(format!("cloud store unavailable: {e}"))
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                CloudError::Conflict("already exists".into())
            }
            _ => CloudError::Internal(format!("cloud store: {e}")),
        }
    }
}

impl From<lookout_probe::ProbeError> for CloudError {
    fn from(e: lookout_probe::ProbeError) -> Self {
        use lookout_probe::ProbeError;
        match e {
            ProbeError::NoSuchContainer(m) => CloudError::NotFound(format!("no such device: {m}")),
            ProbeError::Conflict(m) => CloudError::Conflict(m),
            ProbeError::Docker(m) => CloudError::Unavailable(format!("docker engine: {m}")),
            other => CloudError::Internal(other.to_string()),
        }
    }
}
