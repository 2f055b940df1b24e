//! Pure-Rust core of dataqueue: batch planning (placeholders, cycle checks, topological order),
//! tag set matching and the retry-delay formula. The optional `python` feature adds a thin PyO3 layer exposed
//! as `dataqueue._core`; everything else builds and tests without Python.

pub mod backoff;
pub mod batch;
pub mod dag;
pub mod error;
pub mod tags;

pub use backoff::{retry_delay_seconds, RetryPolicy, MAX_DELAY_SECONDS};
pub use batch::{batch_dep_ref, placeholder_index, plan_batch, resolve_batch_refs, BatchDeps};
pub use error::{CoreError, CoreResult, ErrorKind};
pub use tags::{tags_match, tags_match_many, TagMode, TagQuery};

#[cfg(feature = "python")]
mod py;
#[cfg(feature = "python")]
mod py_record;
