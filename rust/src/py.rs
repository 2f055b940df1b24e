//! Thin PyO3 layer exposing the core as `dataqueue._core`.
//!
//! Arguments arrive as plain Python objects and are converted here so that every bad input
//! raises one of the library's own exceptions from `dataqueue.errors` (never a bare
//! TypeError/ValueError from PyO3). The heavy work runs with the GIL released.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyInt, PyList, PyString, PyTuple};
use rustc_hash::FxHashMap;

use crate::error::{CoreError, ErrorKind};
use crate::{backoff, batch, tags};

/// The `dataqueue.errors` classes, looked up once per interpreter (indexed by `ErrorKind`).
static ERROR_CLASSES: GILOnceCell<Vec<Py<PyAny>>> = GILOnceCell::new();

fn error_classes(py: Python<'_>) -> PyResult<&Vec<Py<PyAny>>> {
    ERROR_CLASSES.get_or_try_init(py, || {
        let module = py.import("dataqueue.errors")?;
        ErrorKind::ALL
            .iter()
            .map(|kind| module.getattr(kind.python_class()).map(Bound::unbind))
            .collect()
    })
}

/// Turn a core error into the matching `dataqueue.errors` exception.
fn raise(py: Python<'_>, err: CoreError) -> PyErr {
    match error_classes(py).and_then(|classes| classes[err.kind.index()].call1(py, (err.message,)))
    {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(lookup_failed) => lookup_failed,
    }
}

fn error(py: Python<'_>, kind: ErrorKind, message: String) -> PyErr {
    raise(py, CoreError::new(kind, message))
}

/// `repr(obj)`, shortened so a huge argument cannot flood a message.
fn show(obj: &Bound<'_, PyAny>) -> String {
    let text = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".to_owned());
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

/// An `int` (not `bool`) as i64; out-of-range values saturate so the core can judge them.
fn int_arg(obj: &Bound<'_, PyAny>, what: &str, kind: ErrorKind) -> PyResult<i64> {
    let py = obj.py();
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(error(
            py,
            kind,
            format!("{what} must be an integer, got {}", show(obj)),
        ));
    }
    match obj.extract::<i64>() {
        Ok(value) => Ok(value),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            let positive = obj.gt(0_i64)?;
            Ok(if positive { i64::MAX } else { i64::MIN })
        }
        Err(e) => Err(e),
    }
}

fn optional_int_arg(
    obj: Option<&Bound<'_, PyAny>>,
    what: &str,
    kind: ErrorKind,
) -> PyResult<Option<i64>> {
    match obj {
        Some(value) if !value.is_none() => int_arg(value, what, kind).map(Some),
        _ => Ok(None),
    }
}

/// A list/tuple/iterable of ints (not bools); the error names the bad entry.
fn int_list(obj: &Bound<'_, PyAny>, what: &str, kind: ErrorKind) -> PyResult<Vec<i64>> {
    let py = obj.py();
    let mut out = Vec::with_capacity(obj.downcast::<PyList>().map_or(0, |l| l.len()));
    let not_ints = || {
        error(
            py,
            kind,
            format!("{what} must be a list of integers, got {}", show(obj)),
        )
    };
    for_each_item(obj, not_ints, |item| {
        match item.extract::<i64>() {
            Ok(value) if !item.is_instance_of::<PyBool>() => out.push(value),
            // Wrong type, bool, or beyond i64: int_arg names it (or saturates an overflow).
            _ => out.push(int_arg(&item, &format!("{what} entry"), kind)?),
        }
        Ok(())
    })?;
    Ok(out)
}

/// Call `each` for every item of a list, tuple or other non-str iterable (lists and tuples
/// are walked by index, which skips creating an iterator object).
fn for_each_item<'py>(
    obj: &Bound<'py, PyAny>,
    not_iterable: impl Fn() -> PyErr,
    mut each: impl FnMut(Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(list) = obj.downcast::<PyList>() {
        list.iter().try_for_each(each)
    } else if let Ok(tuple) = obj.downcast::<PyTuple>() {
        tuple.iter().try_for_each(each)
    } else if obj.is_instance_of::<PyString>() {
        Err(not_iterable())
    } else {
        for item in obj.try_iter().map_err(|_| not_iterable())? {
            each(item?)?;
        }
        Ok(())
    }
}

/// `depends_on` lists of a batch, copied straight into the flat form.
fn deps_arg(obj: &Bound<'_, PyAny>) -> PyResult<batch::BatchDeps> {
    let py = obj.py();
    let mut deps = batch::BatchDeps::new();
    if let Ok(list) = obj.downcast::<PyList>() {
        deps.reserve(list.len());
    }
    let not_lists = || {
        error(
            py,
            ErrorKind::Dependency,
            format!("deps must be a list of lists of job ids, got {}", show(obj)),
        )
    };
    let mut index = 0_usize;
    for_each_item(obj, not_lists, |entry| {
        let not_ids = || {
            error(
                py,
                ErrorKind::Dependency,
                format!(
                    "depends_on of batch[{index}] must be a list of job ids, got {}",
                    show(&entry)
                ),
            )
        };
        for_each_item(&entry, not_ids, |item| {
            let id = match item.extract::<i64>() {
                Ok(id) if !item.is_instance_of::<PyBool>() => id,
                _ => {
                    return Err(error(
                        py,
                        ErrorKind::Dependency,
                        format!(
                            "depends_on of batch[{index}] must hold integer job ids, got {}",
                            show(&item)
                        ),
                    ))
                }
            };
            deps.push_id(id);
            Ok(())
        })?;
        deps.end_entry();
        index += 1;
        Ok(())
    })?;
    Ok(deps)
}

fn edges_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<FxHashMap<i64, Vec<i64>>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(map) = obj.extract::<FxHashMap<i64, Vec<i64>>>() {
        return Ok(Some(map));
    }
    Err(error(
        obj.py(),
        ErrorKind::Dependency,
        format!(
            "existing_edges must map job ids to lists of prerequisite ids, got {}",
            show(obj)
        ),
    ))
}

/// Encode batch entry `index` as the placeholder id `-(index + 1)`.
#[pyfunction]
fn batch_dep_ref(py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<i64> {
    let invalid = |why: &str| {
        error(
            py,
            ErrorKind::Dependency,
            format!("batch_dep_ref: expected {why}, got {}", show(index)),
        )
    };
    if !index.is_instance_of::<PyInt>() || index.is_instance_of::<PyBool>() {
        return Err(invalid("a non-negative integer index"));
    }
    match index.extract::<i64>() {
        Ok(value) if value < i64::MAX => batch::batch_dep_ref(value).map_err(|e| raise(py, e)),
        Ok(_) => Err(invalid("an index below 2**63 - 1")),
        Err(_) if index.gt(0_i64)? => Err(invalid("an index below 2**63 - 1")),
        Err(_) => Err(invalid("a non-negative integer index")),
    }
}

/// Validate a batch's dependencies and return a topological insertion order.
#[pyfunction]
#[pyo3(signature = (deps, existing_edges=None))]
fn plan_batch(
    py: Python<'_>,
    deps: &Bound<'_, PyAny>,
    existing_edges: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<usize>> {
    let deps = deps_arg(deps)?;
    let edges = edges_arg(existing_edges)?;
    py.allow_threads(|| batch::plan_batch(&deps, edges.as_ref()))
        .map_err(|e| raise(py, e))
}

/// Replace placeholders with the real ids of the batch, de-duplicated.
#[pyfunction]
fn resolve_batch_refs(
    py: Python<'_>,
    deps: &Bound<'_, PyAny>,
    ids: &Bound<'_, PyAny>,
) -> PyResult<Vec<Vec<i64>>> {
    let deps = deps_arg(deps)?;
    let ids = int_list(ids, "ids", ErrorKind::Dependency)?;
    py.allow_threads(|| batch::resolve_batch_refs(&deps, &ids))
        .map_err(|e| raise(py, e))
}

/// The query tags: a sequence of str.
fn query_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if !obj.is_instance_of::<PyString>() {
        if let Ok(values) = obj.extract::<Vec<String>>() {
            return Ok(values);
        }
    }
    Err(error(
        obj.py(),
        ErrorKind::InvalidFilter,
        format!("query tags must be a list of strings, got {}", show(obj)),
    ))
}

/// The UTF-8 view of a str; a lone surrogate cannot be a tag (or a mode).
fn utf8<'a>(text: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    text.to_str().map_err(|_| {
        error(
            text.py(),
            ErrorKind::InvalidFilter,
            format!(
                "tags must be valid Unicode text, got {}",
                show(text.as_any())
            ),
        )
    })
}

fn mode_arg(py: Python<'_>, mode: &Bound<'_, PyAny>) -> PyResult<tags::TagMode> {
    let text = mode.downcast::<PyString>().map_err(|_| {
        error(
            py,
            ErrorKind::InvalidFilter,
            format!("tag mode must be a string, got {}", show(mode)),
        )
    })?;
    utf8(text)?.parse().map_err(|e| raise(py, e))
}

/// Feed one job's tag list (None = untagged) to `query` without copying the strings.
fn match_one(query: &tags::TagQuery, job_tags: &Bound<'_, PyAny>) -> PyResult<bool> {
    let mut state = query.start();
    if job_tags.is_none() {
        return Ok(state.finish());
    }
    let bad = |obj: &Bound<'_, PyAny>| {
        error(
            obj.py(),
            ErrorKind::InvalidFilter,
            format!(
                "job tags must be a list of strings or None, got {}",
                show(obj)
            ),
        )
    };
    let mut feed = |tag: Bound<'_, PyAny>| -> PyResult<Option<bool>> {
        let text = tag.downcast::<PyString>().map_err(|_| bad(&tag))?;
        Ok(state.feed(utf8(text)?))
    };
    if let Ok(list) = job_tags.downcast::<PyList>() {
        for tag in list.iter() {
            if let Some(done) = feed(tag)? {
                return Ok(done);
            }
        }
    } else if let Ok(tuple) = job_tags.downcast::<PyTuple>() {
        for tag in tuple.iter() {
            if let Some(done) = feed(tag)? {
                return Ok(done);
            }
        }
    } else {
        if job_tags.is_instance_of::<PyString>() {
            return Err(bad(job_tags));
        }
        for tag in job_tags.try_iter().map_err(|_| bad(job_tags))? {
            if let Some(done) = feed(tag?)? {
                return Ok(done);
            }
        }
    }
    Ok(state.finish())
}

/// Does one job's tag list match the query under `mode`?
#[pyfunction]
fn tags_match(
    py: Python<'_>,
    job_tags: &Bound<'_, PyAny>,
    query: &Bound<'_, PyAny>,
    mode: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let mode = mode_arg(py, mode)?;
    let query = tags::TagQuery::new(&query_arg(query)?, mode);
    match_one(&query, job_tags)
}

/// Match one query against many jobs' tag lists.
#[pyfunction]
fn tags_match_many(
    py: Python<'_>,
    tag_lists: &Bound<'_, PyAny>,
    query: &Bound<'_, PyAny>,
    mode: &Bound<'_, PyAny>,
) -> PyResult<Vec<bool>> {
    let mode = mode_arg(py, mode)?;
    let query = tags::TagQuery::new(&query_arg(query)?, mode);
    let not_lists = || {
        error(
            py,
            ErrorKind::InvalidFilter,
            format!(
                "tag_lists must be a list of tag lists, got {}",
                show(tag_lists)
            ),
        )
    };
    if let Ok(list) = tag_lists.downcast::<PyList>() {
        let mut out = Vec::with_capacity(list.len());
        for job_tags in list.iter() {
            out.push(match_one(&query, &job_tags)?);
        }
        return Ok(out);
    }
    if tag_lists.is_instance_of::<PyString>() {
        return Err(not_lists());
    }
    tag_lists
        .try_iter()
        .map_err(|_| not_lists())?
        .map(|job_tags| match_one(&query, &job_tags?))
        .collect()
}

/// Validated retry options from Python arguments.
fn policy_arg(
    py: Python<'_>,
    retry_delay: Option<&Bound<'_, PyAny>>,
    retry_backoff: Option<&Bound<'_, PyAny>>,
    retry_delay_max: Option<&Bound<'_, PyAny>>,
) -> PyResult<backoff::RetryPolicy> {
    let delay = optional_int_arg(retry_delay, "retry_delay", ErrorKind::InvalidJob)?;
    let max = optional_int_arg(retry_delay_max, "retry_delay_max", ErrorKind::InvalidJob)?;
    let flag = match retry_backoff.filter(|b| !b.is_none()) {
        None => None,
        Some(b) if b.is_instance_of::<PyBool>() => Some(b.extract::<bool>()?),
        Some(b) => {
            return Err(error(
                py,
                ErrorKind::InvalidJob,
                format!("retry_backoff must be a bool or None, got {}", show(b)),
            ))
        }
    };
    backoff::RetryPolicy::new(delay, flag, max).map_err(|e| raise(py, e))
}

fn float_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(error(
            obj.py(),
            ErrorKind::InvalidJob,
            format!("{what} must be a float in [0, 1), got {}", show(obj)),
        ));
    }
    obj.extract::<f64>().map_err(|_| {
        error(
            obj.py(),
            ErrorKind::InvalidJob,
            format!("{what} must be a float in [0, 1), got {}", show(obj)),
        )
    })
}

/// Delay in seconds before the next attempt (SPEC §5).
#[pyfunction]
#[pyo3(signature = (attempts, retry_delay, retry_backoff, retry_delay_max, rand=None))]
fn retry_delay_seconds(
    py: Python<'_>,
    attempts: &Bound<'_, PyAny>,
    retry_delay: Option<&Bound<'_, PyAny>>,
    retry_backoff: Option<&Bound<'_, PyAny>>,
    retry_delay_max: Option<&Bound<'_, PyAny>>,
    rand: Option<&Bound<'_, PyAny>>,
) -> PyResult<f64> {
    let policy = policy_arg(py, retry_delay, retry_backoff, retry_delay_max)?;
    let attempts = int_arg(attempts, "attempts", ErrorKind::InvalidJob)?;
    let rand = match rand.filter(|r| !r.is_none()) {
        Some(r) => backoff::check_rand(float_arg(r, "rand")?).map_err(|e| raise(py, e))?,
        None => fastrand::f64(),
    };
    policy
        .delay_seconds(attempts, rand)
        .map_err(|e| raise(py, e))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_dep_ref, m)?)?;
    m.add_function(wrap_pyfunction!(plan_batch, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_batch_refs, m)?)?;
    m.add_function(wrap_pyfunction!(tags_match, m)?)?;
    m.add_function(wrap_pyfunction!(tags_match_many, m)?)?;
    m.add_function(wrap_pyfunction!(retry_delay_seconds, m)?)?;
    m.add("MAX_DELAY_SECONDS", backoff::MAX_DELAY_SECONDS)?;
    m.add_class::<crate::py_record::RecordSpec>()?;
    Ok(())
}
