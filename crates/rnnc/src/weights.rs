//! Weights from a safetensors file (a PyTorch `state_dict`) or given in memory,
//! checked key by key against the weights the graph declares.

use crate::error::{msg, Error};
use ndarray::{ArrayD, IxDyn};
use rnnc_ir::TensorTy;
use rnnc_runtime::Weights;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Loads every tensor the graph needs; reports all missing, unexpected, mis-shaped
/// or mistyped tensors at once, each with its key.
pub fn load(path: &Path, wanted: &[(String, TensorTy)]) -> Result<Weights, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Message(format!("cannot read weights `{}`: {e}", path.display())))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::Message(format!(
            "{}: not a valid safetensors file: {e}",
            path.display()
        ))
    })?;
    let mut problems = Vec::new();
    let mut out = Weights::new();
    for (key, ty) in wanted {
        let want = declared_shape(ty);
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
    unexpected(st.names().into_iter(), wanted, &mut problems);
    report(&path.display().to_string(), problems).map(|()| out)
}

/// Checks weights given in memory (`label` names them in the message, as a file
/// name would) against the graph's: every problem at once, each with its key.
pub fn check(given: Weights, wanted: &[(String, TensorTy)], label: &str) -> Result<Weights, Error> {
    let mut problems = Vec::new();
    for (key, ty) in wanted {
        let want = declared_shape(ty);
        match given.get(key) {
            None => problems.push(format!("missing tensor `{key}` (expected shape {want:?})")),
            Some(a) if a.shape() != want.as_slice() => problems.push(format!(
                "tensor `{key}` has shape {:?}, expected {want:?}",
                a.shape()
            )),
            Some(_) => {}
        }
    }
    unexpected(given.keys().map(String::as_str), wanted, &mut problems);
    report(label, problems).map(|()| given)
}

/// A weight's shape as declared (weights have fixed dims only).
fn declared_shape(ty: &TensorTy) -> Vec<usize> {
    ty.dims
        .iter()
        .map(|d| match d {
            rnnc_ir::Dim::Fixed(n) => *n,
            _ => usize::MAX,
        })
        .collect()
}

/// A problem for each of `names` the model does not declare, in sorted order.
fn unexpected<'a>(
    names: impl Iterator<Item = &'a str>,
    wanted: &[(String, TensorTy)],
    problems: &mut Vec<String>,
) {
    let mut extra: Vec<&str> = names
        .filter(|n| !wanted.iter().any(|(k, _)| k == n))
        .collect();
    extra.sort();
    for k in extra {
        problems.push(format!(
            "unexpected tensor `{k}`: the model declares no such weight"
        ));
    }
}

fn report(label: &str, problems: Vec<String>) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        msg(format!(
            "{label}: the weights do not fit the model:\n  - {}",
            problems.join("\n  - ")
        ))
    }
}
