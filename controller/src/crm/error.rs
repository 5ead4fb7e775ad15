//! The CRM's error: what went wrong talking to Redis or with a record.

use redis::RedisError;
use tierflow_api::model::FieldError;

/// What went wrong talking to the CRM.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CrmError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("redis did not answer in time")]
    Timeout,
    #[error("{key}: stored record is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("no {kind} {id:?}")]
    NotFound { kind: &'static str, id: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(FieldError),
}

impl CrmError {
    /// Redis is unreachable or too slow (as opposed to a bad request).
    pub fn is_unavailable(&self) -> bool {
        match self {
            CrmError::Timeout => true,
            CrmError::Redis(e) => e.is_io_error() || e.is_timeout() || e.is_connection_dropped(),
            _ => false,
        }
    }
}

impl From<FieldError> for CrmError {
    fn from(e: FieldError) -> Self {
        CrmError::Invalid(e)
    }
}

pub type Result<T, E = CrmError> = std::result::Result<T, E>;
