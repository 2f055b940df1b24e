//! The error type shared by every module. Each [`ErrorKind`] maps to one class of
//! `dataqueue.errors` in the PyO3 layer, so Python callers only ever see the library's own
//! exceptions.

use std::fmt;

/// Which `dataqueue.errors` class an error becomes in Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `DependencyError`: an invalid `depends_on` value (e.g. a negative batch index).
    Dependency,
    /// `DependencyCycleError`: a self reference or a cycle.
    Cycle,
    /// `UnknownPrerequisiteError`: a placeholder outside the batch.
    UnknownPrerequisite,
    /// `InvalidFilterError`: an unknown tag query mode or a malformed tag list.
    InvalidFilter,
    /// `InvalidJobError`: invalid retry options.
    InvalidJob,
}

impl ErrorKind {
    /// Every kind, in the order of [`ErrorKind::index`].
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Dependency,
        ErrorKind::Cycle,
        ErrorKind::UnknownPrerequisite,
        ErrorKind::InvalidFilter,
        ErrorKind::InvalidJob,
    ];

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name of the matching exception class in `dataqueue.errors`.
    pub fn python_class(self) -> &'static str {
        match self {
            ErrorKind::Dependency => "DependencyError",
            ErrorKind::Cycle => "DependencyCycleError",
            ErrorKind::UnknownPrerequisite => "UnknownPrerequisiteError",
            ErrorKind::InvalidFilter => "InvalidFilterError",
            ErrorKind::InvalidJob => "InvalidJobError",
        }
    }
}

/// An error with its kind and a message that names the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CoreError {
    /// Build an error of `kind` with `message`.
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

/// Result alias used throughout the crate.
pub type CoreResult<T> = Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message_and_kinds_map_to_classes() {
        let err = CoreError::new(ErrorKind::Cycle, "dependency cycle: batch[0] -> batch[0]");
        assert_eq!(err.to_string(), "dependency cycle: batch[0] -> batch[0]");
        assert_eq!(ErrorKind::Cycle.python_class(), "DependencyCycleError");
        assert_eq!(
            ErrorKind::UnknownPrerequisite.python_class(),
            "UnknownPrerequisiteError"
        );
        assert_eq!(ErrorKind::Dependency.python_class(), "DependencyError");
        assert_eq!(
            ErrorKind::InvalidFilter.python_class(),
            "InvalidFilterError"
        );
        assert_eq!(ErrorKind::InvalidJob.python_class(), "InvalidJobError");
    }
}
