//! Batch placeholders: a `depends_on` entry `-(k+1)` names entry `k` of the same batch.

use crate::error::{CoreError, CoreResult, ErrorKind};

/// Encode batch index `index` as a placeholder id `-(index+1)`.
pub fn batch_dep_ref(index: i64) -> CoreResult<i64> {
    if index < 0 {
        return Err(CoreError::new(
            ErrorKind::Dependency,
            format!("batch index must be a non-negative integer, got {index}"),
        ));
    }
    Ok(-(index + 1))
}
