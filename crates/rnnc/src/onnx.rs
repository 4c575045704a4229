//! ONNX models through the library: import (rnnc-onnx) and then the same path as
//! a `.rnn` file: the generated source is lowered and its weights are checked.

use crate::error::Error;
use crate::model::Model;
use crate::params::Params;
use rnnc_runtime::Weights;
use std::path::Path;

pub use rnnc_onnx::{ImportError, Imported, OPSETS, SUPPORTED};

/// An imported ONNX model, ready to compile.
pub struct OnnxModel {
    pub model: Model,
    pub weights: Weights,
    /// The generated source, weights and hyperparameters, as `rnnc import` writes them.
    pub imported: Imported,
}

/// Imports the `.onnx` file at `path`.
pub fn import(path: impl AsRef<Path>) -> Result<Imported, Error> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Message(format!("cannot read `{}`: {e}", path.display())))?;
    rnnc_onnx::import(&bytes, path).map_err(|e| Error::Message(format!("{}: {e}", path.display())))
}

/// Imports the `.onnx` file at `path` and lowers what import wrote.
pub fn load(path: impl AsRef<Path>) -> Result<OnnxModel, Error> {
    let path = path.as_ref();
    let imported = import(path)?;
    let mut params = Params::new();
    for (k, v) in &imported.config {
        params = params.set(k, v);
    }
    let origin = path.display().to_string();
    let model = Model::from_named_source(&origin, &imported.source, &params).map_err(|e| {
        Error::Message(format!(
            "{}: internal error: the source import wrote does not compile:\n{}",
            path.display(),
            e.text()
        ))
    })?;
    let weights = model.check_weights(imported.weight_map(), &path.display().to_string())?;
    Ok(OnnxModel {
        model,
        weights,
        imported,
    })
}
