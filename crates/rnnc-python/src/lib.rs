//! The `rnnc` Python package's native module (`rnnc._rnnc`): the `rnnc` library's
//! models, compiled runs and streams as Python classes, NumPy arrays in and out.
//! `python/rnnc/__init__.py` adds what is easier in Python (PyTorch tensors and
//! `state_dict`s, path-likes) and the type stubs.

use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use rnnc::{BackendKind, Compiled, Dim, Model, Opt, Params, Tensor, TensorTy, Weights};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

pyo3::create_exception!(
    rnnc,
    RnncError,
    PyException,
    "A model that does not parse or lower, weights or inputs that do not fit it, or a \
     backend that cannot run it; the message is rnnc's diagnostic."
);

/// A value a run uses while it has released the GIL. Sound because every class
/// here is `unsendable`: PyO3 refuses any access from a thread other than the one
/// that made the object, so while that thread runs without the GIL no other thread
/// can reach what it uses, and the backends' own threads join before the run
/// returns.
struct OwnerThreadOnly<T>(T);

// SAFETY: see above; the value never leaves its owner thread.
unsafe impl<T> Send for OwnerThreadOnly<T> {}

impl<T> OwnerThreadOnly<T> {
    /// The value (a method, so a closure captures the whole wrapper).
    fn get(self) -> T {
        self.0
    }
}

fn error(e: rnnc::Error) -> PyErr {
    RnncError::new_err(e.text().to_string())
}

/// `"O0"`–`"O2"` or a pass list such as `"fuse-gates,dce"`.
fn pipeline(opt: &str) -> Opt {
    match opt.strip_prefix('O').and_then(|l| l.parse().ok()) {
        Some(level) => Opt::Level(level),
        None => Opt::Passes(opt.to_string()),
    }
}

/// Python keyword values as the hyperparameters' text (`True` is `true`).
fn params(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Params> {
    let mut p = Params::new();
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract()?;
        let text = if v.is_instance_of::<PyBool>() {
            v.extract::<bool>()?.to_string()
        } else if v.is_instance_of::<PyInt>() {
            v.extract::<i64>()?.to_string()
        } else if v.is_instance_of::<PyFloat>() {
            v.extract::<f64>()?.to_string()
        } else if v.is_instance_of::<PyString>() {
            v.extract::<String>()?
        } else {
            return Err(PyTypeError::new_err(format!(
                "hyperparameter `{key}` must be an int, float, bool or str, not {}",
                v.get_type().name()?
            )));
        };
        p = p.set(&key, text);
    }
    Ok(p)
}

/// A NumPy array as a tensor: float32, or int64 token ids and lengths.
fn tensor(what: &str, v: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    if let Ok(a) = v.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        return Ok(Tensor::F32(a.as_array().to_owned()));
    }
    if let Ok(a) = v.extract::<PyReadonlyArrayDyn<'_, i64>>() {
        return Ok(Tensor::I64(a.as_array().to_owned()));
    }
    match v.cast::<PyUntypedArray>() {
        Ok(a) => {
            let dtype = a.dtype().to_string();
            // Integers are token ids or lengths (int64); anything else is values.
            let want = if dtype.contains("int") {
                "int64"
            } else {
                "float32"
            };
            Err(PyTypeError::new_err(format!(
                "{what} is a {dtype} array; rnnc takes float32 values and int64 token ids \
                 and lengths: convert it with .astype(numpy.{want})"
            )))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be a NumPy array, not {}",
            v.get_type().name()?
        ))),
    }
}

fn inputs(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let name: String = k.extract()?;
        let t = tensor(&format!("input `{name}`"), &v)?;
        out.insert(name, t);
    }
    Ok(out)
}

fn outputs<'py>(py: Python<'py>, outs: Vec<(String, Tensor)>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, t) in outs {
        // The arrays move into NumPy: no copy.
        match t {
            Tensor::F32(a) => d.set_item(name, a.into_pyarray(py))?,
            Tensor::I64(a) => d.set_item(name, a.into_pyarray(py))?,
        }
    }
    Ok(d)
}

/// A shape for Python: ints, and "B", "T", "S" for the symbolic dims.
type Shape<'py> = Vec<Bound<'py, PyAny>>;

/// A type's dims as Python sees them: ints, and "B", "T", "S" for the symbolic ones.
fn dims<'py>(py: Python<'py>, ty: &TensorTy) -> PyResult<Shape<'py>> {
    ty.dims
        .iter()
        .map(|d| -> PyResult<Bound<'py, PyAny>> {
            Ok(match d {
                Dim::Fixed(n) => n.into_pyobject(py)?.into_any(),
                other => other.to_string().into_pyobject(py)?.into_any(),
            })
        })
        .collect()
}

/// What a compiled run is kept by: (backend, threads, pipeline).
type RunKey = (String, Option<usize>, String);

/// A recurrent model, lowered for its hyperparameters; run it with NumPy arrays.
#[pyclass(unsendable, module = "rnnc._rnnc")]
struct RnncModel {
    model: Model,
    weights: Option<Weights>,
    /// Compiled runs, kept between calls.
    compiled: RefCell<HashMap<RunKey, Rc<Compiled>>>,
}

impl RnncModel {
    fn weights(&self) -> PyResult<Weights> {
        match (&self.weights, self.model.weights().first()) {
            (Some(w), _) => Ok(w.clone()),
            (None, None) => Ok(Weights::new()),
            (None, Some((key, _))) => Err(RnncError::new_err(format!(
                "{}: the model has {} weights (such as `{key}`): call load_weights() with a \
                 safetensors file, a dict of arrays or a PyTorch state_dict first",
                self.model.origin(),
                self.model.weights().len()
            ))),
        }
    }

    /// The model after the pipeline `opt` names.
    fn optimised(&self, opt: &str) -> PyResult<Model> {
        self.model.optimise(&pipeline(opt)).map_err(error)
    }

    fn compiled(&self, backend: &str, threads: Option<usize>, opt: &str) -> PyResult<Rc<Compiled>> {
        let key = (backend.to_string(), threads, opt.to_string());
        if let Some(c) = self.compiled.borrow().get(&key) {
            return Ok(c.clone());
        }
        let mut kind = BackendKind::from_name(backend)
            .map_err(|why| RnncError::new_err(format!("backend={backend:?}: {why}")))?;
        if let Some(n) = threads {
            kind = kind
                .with_threads(n)
                .map_err(|why| RnncError::new_err(format!("threads={n}: {why}")))?;
        }
        let weights = self.weights()?;
        let c = self.optimised(opt)?.compile(weights, kind).map_err(error)?;
        let c = Rc::new(c);
        self.compiled.borrow_mut().insert(key, c.clone());
        Ok(c)
    }
}

#[pymethods]
impl RnncModel {
    /// The model's name (its `model` definition).
    #[getter]
    fn name(&self) -> &str {
        self.model.name()
    }

    /// (name, shape, dtype, has_default) of each input; shapes hold ints and
    /// "B" (batch), "T" (time), "S" (source length).
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Shape<'py>, String, bool)>> {
        self.model
            .inputs()
            .into_iter()
            .map(|(n, ty, zeros)| Ok((n, dims(py, &ty)?, ty.dtype.to_string(), zeros)))
            .collect()
    }

    /// (name, shape, dtype) of each output, in order.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Shape<'py>, String)>> {
        self.model
            .outputs()
            .into_iter()
            .map(|(n, ty)| Ok((n, dims(py, &ty)?, ty.dtype.to_string())))
            .collect()
    }

    /// (state_dict key, shape) of each weight the model declares.
    #[getter]
    fn weight_shapes<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Shape<'py>)>> {
        self.model
            .weights()
            .iter()
            .map(|(k, ty)| Ok((k.clone(), dims(py, ty)?)))
            .collect()
    }

    /// Loads weights from a safetensors file (a path).
    fn load_weights_file(&mut self, path: PathBuf) -> PyResult<()> {
        let w = self.model.load_weights(&path).map_err(error)?;
        self.weights = Some(w);
        self.compiled.borrow_mut().clear();
        Ok(())
    }

    /// Loads weights from a dict of float32 NumPy arrays by state_dict key;
    /// `label` names them in messages.
    fn load_weights_dict(&mut self, weights: &Bound<'_, PyDict>, label: &str) -> PyResult<()> {
        let mut w: Weights = HashMap::new();
        for (k, v) in weights.iter() {
            let key: String = k.extract()?;
            match tensor(&format!("weight `{key}`"), &v)? {
                Tensor::F32(a) => w.insert(key, a),
                Tensor::I64(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "weight `{key}` is an int64 array; weights are float32"
                    )))
                }
            };
        }
        let w = self.model.check_weights(w, label).map_err(error)?;
        self.weights = Some(w);
        self.compiled.borrow_mut().clear();
        Ok(())
    }

    /// Runs the model on NumPy arrays given by input name; returns a dict of
    /// NumPy arrays by output name. `backend` is "cpu", "interp", "wgsl" or
    /// "cuda"; `threads` (cpu only) defaults to the backend's cost model; `opt`
    /// is "O0"–"O2" or a pass list. Code is compiled on first use and kept.
    #[pyo3(signature = (backend = "cpu", threads = None, opt = "O2", **inputs))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        backend: &str,
        threads: Option<usize>,
        opt: &str,
        inputs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let given = self::inputs(inputs)?;
        let c = self.compiled(backend, threads, opt)?;
        // Other Python threads run while this one computes.
        let job = OwnerThreadOnly((&*c, &given));
        let outs = py
            .detach(move || {
                let (c, given) = job.get();
                c.run(given)
            })
            .map_err(error)?;
        outputs(py, outs)
    }

    /// Where `run` with these settings runs, for people (ISA and threads, adapter).
    #[pyo3(signature = (backend = "cpu", threads = None, opt = "O2"))]
    fn describe(&self, backend: &str, threads: Option<usize>, opt: &str) -> PyResult<String> {
        Ok(self.compiled(backend, threads, opt)?.describe())
    }

    /// A stream: the model one time step per `step` call on the CPU backend,
    /// its state (h0/h_n, c0/c_n) kept between calls.
    #[pyo3(signature = (threads = None, opt = "O2"))]
    fn stream(&self, threads: Option<usize>, opt: &str) -> PyResult<RnncStream> {
        if let Some(n) = threads {
            BackendKind::default()
                .with_threads(n)
                .map_err(|why| RnncError::new_err(format!("threads={n}: {why}")))?;
        }
        let weights = self.weights()?;
        let s = self
            .optimised(opt)?
            .stream(weights, threads)
            .map_err(error)?;
        Ok(RnncStream { stream: s })
    }

    /// An object file and C header for inputs of batch `batch` and length `seq`,
    /// the loaded weights built in: {"object": bytes, "header": str, "prefix": str}.
    #[pyo3(signature = (batch = 1, seq = 100, opt = "O2"))]
    fn object_file<'py>(
        &self,
        py: Python<'py>,
        batch: usize,
        seq: usize,
        opt: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let weights = self.weights()?;
        let o = self
            .optimised(opt)?
            .object_file(&weights, batch, seq)
            .map_err(error)?;
        let d = PyDict::new(py);
        d.set_item("object", pyo3::types::PyBytes::new(py, &o.object))?;
        d.set_item("header", o.header)?;
        d.set_item("prefix", o.prefix)?;
        Ok(d)
    }

    /// The GPU kernels ("wgsl" or "cuda") for inputs of batch `batch` and length
    /// `seq`: {"file": name, "source": str, "manifest": JSON str}.
    #[pyo3(signature = (target = "wgsl", batch = 1, seq = 100, opt = "O2"))]
    fn gpu_kernels<'py>(
        &self,
        py: Python<'py>,
        target: &str,
        batch: usize,
        seq: usize,
        opt: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let t = rnnc::GpuTarget::from_name(target)
            .map_err(|why| RnncError::new_err(format!("target={target:?}: {why}")))?;
        let k = self
            .optimised(opt)?
            .gpu_kernels(t, batch, seq)
            .map_err(error)?;
        let d = PyDict::new(py);
        d.set_item("file", k.file)?;
        d.set_item("source", k.source)?;
        d.set_item("manifest", k.manifest)?;
        Ok(d)
    }

    /// The pass table: what each pass of `opt` did to the model.
    #[pyo3(signature = (opt = "O2"))]
    fn passes(&self, opt: &str) -> PyResult<String> {
        self.model.passes(&pipeline(opt)).map_err(error)
    }

    /// The graph IR after `opt`, as text.
    #[pyo3(signature = (opt = "O2"))]
    fn ir(&self, opt: &str) -> PyResult<String> {
        Ok(self.optimised(opt)?.ir())
    }
}

/// A model run one time step per call, its recurrent state kept.
#[pyclass(unsendable, module = "rnnc._rnnc")]
struct RnncStream {
    stream: rnnc::Stream,
}

#[pymethods]
impl RnncStream {
    /// Runs one step: the step's inputs by name, with a time axis of length 1
    /// (the same batch size on every step until `reset`); returns every output.
    #[pyo3(signature = (**inputs))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        inputs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let given = self::inputs(inputs)?;
        let job = OwnerThreadOnly((&mut self.stream, &given));
        let outs = py
            .detach(move || {
                let (stream, given) = job.get();
                stream.step(given)
            })
            .map_err(error)?;
        outputs(py, outs)
    }

    /// Forgets the state: the next step starts from zeros.
    fn reset(&mut self) {
        self.stream.reset()
    }

    /// (state input, output) pairs carried from step to step.
    #[getter]
    fn state_names(&self) -> Vec<(String, String)> {
        self.stream.state_names()
    }
}

/// Loads the `.rnn` file at `path` and lowers its model with the hyperparameters
/// given as keywords.
#[pyfunction]
#[pyo3(signature = (path, **params))]
fn load(path: PathBuf, params: Option<&Bound<'_, PyDict>>) -> PyResult<RnncModel> {
    let m = Model::load(&path, &self::params(params)?).map_err(error)?;
    Ok(RnncModel {
        model: m,
        weights: None,
        compiled: RefCell::default(),
    })
}

/// As `load`, from source text.
#[pyfunction]
#[pyo3(signature = (text, **params))]
fn from_source(text: &str, params: Option<&Bound<'_, PyDict>>) -> PyResult<RnncModel> {
    let m = Model::from_source(text, &self::params(params)?).map_err(error)?;
    Ok(RnncModel {
        model: m,
        weights: None,
        compiled: RefCell::default(),
    })
}

/// Imports the ONNX model at `path`: the model with its weights loaded, and the
/// `.rnn` source import wrote.
#[pyfunction]
fn load_onnx(path: PathBuf) -> PyResult<(RnncModel, String)> {
    let o = rnnc::onnx::load(&path).map_err(error)?;
    Ok((
        RnncModel {
            model: o.model,
            weights: Some(o.weights),
            compiled: RefCell::default(),
        },
        o.imported.source,
    ))
}

#[pymodule]
fn _rnnc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(from_source, m)?)?;
    m.add_function(wrap_pyfunction!(load_onnx, m)?)?;
    m.add_class::<RnncModel>()?;
    m.add_class::<RnncStream>()?;
    m.add("RnncError", m.py().get_type::<RnncError>())?;
    m.add("BACKENDS", rnnc::BACKENDS.to_vec())?;
    Ok(())
}
