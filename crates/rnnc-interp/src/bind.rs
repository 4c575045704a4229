//! Binding a run: the sizes of `B` and `T` from the inputs given, and checks that
//! every input and weight has the shape and dtype the graph declares.

use crate::{err, RunError, Tensor};
use rnnc_ir::{DType, Dim, TensorTy};

pub use rnnc_runtime::Weights;

/// The largest tensor the interpreter will allocate, in elements (1 GiB of f32).
pub(crate) const MAX_ELEMS: usize = 1 << 28;

/// Sizes bound to the symbolic dims for one run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Env {
    pub batch: Option<usize>,
    pub time: Option<usize>,
    pub source: Option<usize>,
}

impl Env {
    pub fn dim(&self, d: Dim) -> Result<usize, RunError> {
        match d {
            Dim::Fixed(n) => Ok(n),
            Dim::Batch => self.batch.ok_or_else(|| {
                RunError("the batch size B is unknown: no input that has it was given".into())
            }),
            Dim::Time => self.time.ok_or_else(|| {
                RunError("the sequence length T is unknown: no input that has it was given".into())
            }),
            Dim::Source => self.source.ok_or_else(|| {
                RunError("the source length S is unknown: no input that has it was given".into())
            }),
        }
    }

    pub fn shape(&self, ty: &TensorTy) -> Result<Vec<usize>, RunError> {
        let shape = ty
            .dims
            .iter()
            .map(|d| self.dim(*d))
            .collect::<Result<Vec<_>, _>>()?;
        let elems = shape.iter().try_fold(1usize, |acc, n| acc.checked_mul(*n));
        match elems {
            Some(n) if n <= MAX_ELEMS => Ok(shape),
            _ => err(format!(
                "a tensor of shape {shape:?} is too large to allocate"
            )),
        }
    }

    /// Binds `B`/`T` from one input, checking it against its declared type.
    pub fn bind(&mut self, name: &str, ty: &TensorTy, t: &Tensor) -> Result<(), RunError> {
        let dtype_ok = matches!(
            (ty.dtype, t),
            (DType::F32, Tensor::F32(_)) | (DType::I64, Tensor::I64(_))
        );
        if !dtype_ok {
            // The rule of docs/language.md ("Input arrays"): the kind must match, the
            // width is converted when the file is read.
            let (takes, given) = match ty.dtype {
                DType::F32 => ("float32 or float64", "integers"),
                DType::I64 => ("int64 or int32", "floats"),
            };
            return err(format!(
                "input `{name}` is declared {}, which takes {takes} arrays, but the array given holds {given}",
                ty.dtype
            ));
        }
        let shape = t.shape();
        if shape.len() != ty.rank() {
            return err(format!(
                "input `{name}` must have shape {} ({} axes), but the array given has shape {shape:?}",
                rnnc_ir::types::dims_str(&ty.dims),
                ty.rank()
            ));
        }
        for (axis, (d, n)) in ty.dims.iter().zip(shape).enumerate() {
            let slot = match d {
                Dim::Fixed(want) if want == n => continue,
                Dim::Fixed(want) => {
                    return err(format!(
                        "input `{name}` must have shape {}, but axis {axis} is {n}, not {want} (array shape {shape:?})",
                        rnnc_ir::types::dims_str(&ty.dims)
                    ))
                }
                Dim::Batch => &mut self.batch,
                Dim::Time => &mut self.time,
                Dim::Source => &mut self.source,
            };
            if *n == 0 {
                let what = match d {
                    Dim::Batch => "an empty batch (B = 0)",
                    Dim::Source => "an empty source sequence (S = 0)",
                    _ => "an empty sequence (T = 0)",
                };
                return err(format!(
                    "input `{name}` has shape {shape:?}: {what} has nothing to run"
                ));
            }
            match slot {
                Some(bound) if *bound != *n => {
                    return err(format!(
                        "input `{name}` has {d} = {n} on axis {axis}, but another input set {d} = {bound}"
                    ))
                }
                _ => *slot = Some(*n),
            }
        }
        Ok(())
    }
}
