//! Error type shared by every module; the PyO3 layer maps each kind to a `dataqueue.errors` class.

use std::fmt;

/// Which `dataqueue.errors` class an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Generic invalid `depends_on` (e.g. a negative batch index).
    Dependency,
    /// A self reference or cycle.
    Cycle,
    /// A placeholder outside the batch or an unknown prerequisite.
    UnknownPrerequisite,
    /// An unknown tag query mode.
    InvalidFilter,
    /// Invalid job options (e.g. negative retry delays).
    InvalidJob,
}

/// An error with its kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;
