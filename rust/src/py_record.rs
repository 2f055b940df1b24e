//! `RecordSpec`: builds instances of a frozen, slotted dataclass from a mapping of stored
//! strings (a Redis job hash), following a per-field conversion table made once in Python.
//!
//! Decoding a claimed job in Python (a `.get` and a conversion per field, then the
//! dataclass `__init__` with one `object.__setattr__` per field) was a third of a Redis
//! worker's CPU per job; here each field is one dict lookup, a conversion only for the
//! fields present, and one generic attribute store.

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString, PyTuple, PyType};

/// How a present value is converted (the `kind` of a field).
const KIND_STR: u8 = 0; // the string itself
const KIND_INT: u8 = 1; // decimal integer
const KIND_TIME: u8 = 2; // `extra(value)`, cached in the call's `times` dict by string
const KIND_CALL: u8 = 3; // `extra(value)` (e.g. json.loads)
const KIND_TUPLE: u8 = 4; // `tuple(extra(value))`
const KIND_FLAG: u8 = 5; // value == "1"
const KIND_LOOKUP: u8 = 6; // `extra[0][value]`, else `extra[1](value)` (an enum by value)

/// What an absent field becomes (the `absent` of a field).
const ABSENT_VALUE: u8 = 0; // `default` itself (an immutable value)
const ABSENT_FACTORY: u8 = 1; // `default()` (a fresh mutable value)
const ABSENT_REQUIRED: u8 = 2; // KeyError, as `mapping[name]` would raise

/// One row of the table as Python gives it: (name, kind, absent, default, extra).
type FieldRow = (String, u8, u8, Py<PyAny>, Py<PyAny>);

struct Field {
    name: Py<PyString>,
    kind: u8,
    absent: u8,
    default: Py<PyAny>,
    extra: Py<PyAny>,
    table: Option<Py<PyDict>>,
}

/// A conversion table for one record class; `build(mapping, times)` makes one record.
#[pyclass(frozen, module = "dataqueue._core")]
pub struct RecordSpec {
    cls: Py<PyType>,
    new: Py<PyAny>,
    fields: Vec<Field>,
}

#[pymethods]
impl RecordSpec {
    /// `fields`: (name, kind, absent, default, extra) per attribute of `cls`, all of them.
    #[new]
    fn py_new(py: Python<'_>, cls: Bound<'_, PyType>, fields: Vec<FieldRow>) -> PyResult<Self> {
        let mut out = Vec::with_capacity(fields.len());
        for (name, kind, absent, default, extra) in fields {
            if kind > KIND_LOOKUP || absent > ABSENT_REQUIRED {
                return Err(PyValueError::new_err(format!(
                    "field {name}: unknown kind {kind} or absent rule {absent}"
                )));
            }
            let mut table = None;
            if kind == KIND_LOOKUP {
                let pair = extra.bind(py).downcast::<PyTuple>()?;
                table = Some(pair.get_item(0)?.downcast::<PyDict>()?.clone().unbind());
            }
            out.push(Field {
                name: PyString::intern(py, &name).unbind(),
                kind,
                absent,
                default,
                extra,
                table,
            });
        }
        let new = py
            .get_type::<pyo3::types::PyAny>()
            .getattr("__new__")?
            .unbind();
        Ok(RecordSpec {
            cls: cls.unbind(),
            new,
            fields: out,
        })
    }

    /// One record from `mapping` (str → str); `times` caches the converted times by string
    /// (shared by the records of one read: they share most of their timestamps).
    fn build<'py>(
        &self,
        py: Python<'py>,
        mapping: &Bound<'py, PyDict>,
        times: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let obj = self.new.bind(py).call1((self.cls.bind(py),))?;
        for f in &self.fields {
            let name = f.name.bind(py);
            let value = match mapping.get_item(name)? {
                None => match f.absent {
                    ABSENT_VALUE => f.default.bind(py).clone(),
                    ABSENT_FACTORY => f.default.bind(py).call0()?,
                    _ => return Err(PyKeyError::new_err(name.clone().unbind())),
                },
                Some(v) => convert(py, f, v, times)?,
            };
            // The generic store: a frozen dataclass refuses `setattr`, as its own
            // `__init__` goes around it with `object.__setattr__`.
            // SAFETY: obj, name and value are live references held for the call.
            let rc = unsafe {
                ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr())
            };
            if rc != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }

    /// One record from `row`, a sequence of column values in field order (a database row
    /// whose driver has converted the values already): a `None` follows the field's
    /// `absent` rule, any other value its `kind`.
    fn build_row<'py>(
        &self,
        py: Python<'py>,
        row: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if row.len() != self.fields.len() {
            return Err(PyValueError::new_err(format!(
                "a row of {} values for {} fields",
                row.len(),
                self.fields.len()
            )));
        }
        let times = PyDict::new(py);
        let obj = self.new.bind(py).call1((self.cls.bind(py),))?;
        for (f, v) in self.fields.iter().zip(row.iter()) {
            let value = if v.is_none() {
                match f.absent {
                    ABSENT_VALUE => f.default.bind(py).clone(),
                    ABSENT_FACTORY => f.default.bind(py).call0()?,
                    _ => v,
                }
            } else {
                convert(py, f, v, &times)?
            };
            // SAFETY: as in `build`.
            let rc = unsafe {
                ffi::PyObject_GenericSetAttr(obj.as_ptr(), f.name.as_ptr(), value.as_ptr())
            };
            if rc != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }
}

fn convert<'py>(
    py: Python<'py>,
    f: &Field,
    v: Bound<'py, PyAny>,
    times: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match f.kind {
        KIND_STR => v,
        KIND_INT => {
            let parsed = v
                .downcast::<PyString>()
                .ok()
                .and_then(|s| s.to_str().ok().and_then(|t| t.parse::<i64>().ok()));
            match parsed {
                Some(n) => n.into_pyobject(py)?.into_any(),
                None => py.get_type::<PyInt>().call1((v,))?, // int()'s own rules and errors
            }
        }
        KIND_TIME => match times.get_item(&v)? {
            Some(t) => t,
            None => {
                let t = f.extra.bind(py).call1((&v,))?;
                times.set_item(&v, &t)?;
                t
            }
        },
        KIND_CALL => f.extra.bind(py).call1((v,))?,
        KIND_TUPLE => {
            let loaded = f.extra.bind(py).call1((v,))?;
            py.get_type::<PyTuple>().call1((loaded,))?
        }
        KIND_FLAG => {
            let s = v
                .downcast::<PyString>()
                .map_err(|_| PyTypeError::new_err("a flag field must be a str"))?;
            PyBool::new(py, s.to_str()? == "1").to_owned().into_any()
        }
        _ => {
            let table = f
                .table
                .as_ref()
                .expect("a lookup field has its table")
                .bind(py);
            match table.get_item(&v)? {
                Some(x) => x,
                None => {
                    let pair = f.extra.bind(py).downcast::<PyTuple>()?;
                    pair.get_item(1)?.call1((v,))?
                }
            }
        }
    })
}
