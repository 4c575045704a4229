//! Weights from a safetensors file (a PyTorch `state_dict`), checked key by key
//! against the weights the graph declares.

use crate::error::{msg, CliError};
use ndarray::{ArrayD, IxDyn};
use rnnc_interp::Weights;
use rnnc_ir::TensorTy;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Loads every tensor the graph needs; reports all missing, unexpected, mis-shaped
/// or mistyped tensors at once, each with its key.
pub fn load(path: &Path, wanted: &[(String, TensorTy)]) -> Result<Weights, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Message(format!("cannot read weights `{}`: {e}", path.display())))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        CliError::Message(format!(
            "{}: not a valid safetensors file: {e}",
            path.display()
        ))
    })?;
    let mut problems = Vec::new();
    let mut out = Weights::new();
    for (key, ty) in wanted {
        let want: Vec<usize> = ty
            .dims
            .iter()
            .map(|d| match d {
                rnnc_ir::Dim::Fixed(n) => *n,
                _ => usize::MAX,
            })
            .collect();
        let view = match st.tensor(key) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("missing tensor `{key}` (expected shape {want:?})"));
                continue;
            }
        };
        if view.dtype() != Dtype::F32 {
            problems.push(format!(
                "tensor `{key}` is {:?}; rnnc reads F32 (save with `.float()`)",
                view.dtype()
            ));
            continue;
        }
        if view.shape() != want.as_slice() {
            problems.push(format!(
                "tensor `{key}` has shape {:?}, expected {want:?}",
                view.shape()
            ));
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(
            key.clone(),
            ArrayD::from_shape_vec(IxDyn(&want), data).expect("safetensors checked the size"),
        );
    }
    let mut unexpected: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| !wanted.iter().any(|(k, _)| k == n))
        .map(str::to_string)
        .collect();
    unexpected.sort();
    for k in unexpected {
        problems.push(format!(
            "unexpected tensor `{k}`: the model declares no such weight"
        ));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        msg(format!(
            "{}: the weights do not fit the model:\n  - {}",
            path.display(),
            problems.join("\n  - ")
        ))
    }
}
