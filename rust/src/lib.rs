//! Pure-Rust core of dataqueue: dependency DAG checks, batch planning, tag matching and
//! retry backoff. The optional `python` feature adds a thin PyO3 layer (`dataqueue._core`).

pub mod batch;
pub mod error;

#[cfg(feature = "python")]
mod py;
