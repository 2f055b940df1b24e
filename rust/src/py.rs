//! Thin PyO3 layer exposing the core as `dataqueue._core`.

use pyo3::prelude::*;

use crate::batch;
use crate::error::{CoreError, ErrorKind};

fn to_py_err(py: Python<'_>, err: CoreError) -> PyErr {
    let class = match err.kind {
        ErrorKind::Dependency => "DependencyError",
        ErrorKind::Cycle => "DependencyCycleError",
        ErrorKind::UnknownPrerequisite => "UnknownPrerequisiteError",
        ErrorKind::InvalidFilter => "InvalidFilterError",
        ErrorKind::InvalidJob => "InvalidJobError",
    };
    match py
        .import("dataqueue.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call1((err.message,)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

#[pyfunction]
fn batch_dep_ref(py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<i64> {
    let value: i64 = match index.extract::<i64>() {
        Ok(v) if !index.is_instance_of::<pyo3::types::PyBool>() => v,
        _ => {
            let shown = index.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(to_py_err(
                py,
                CoreError::new(
                    ErrorKind::Dependency,
                    format!("batch index must be a non-negative integer, got {shown}"),
                ),
            ));
        }
    };
    batch::batch_dep_ref(value).map_err(|e| to_py_err(py, e))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_dep_ref, m)?)?;
    Ok(())
}
