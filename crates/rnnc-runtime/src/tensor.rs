//! Run-time tensors: f32 values or i64 token ids, n-dimensional.

use ndarray::ArrayD;

#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

impl Tensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
        }
    }

    pub fn dtype_name(&self) -> &'static str {
        match self {
            Tensor::F32(_) => "f32",
            Tensor::I64(_) => "i64",
        }
    }

    /// The f32 array; the verifier guarantees f32 wherever this is called.
    pub fn f32(&self) -> &ArrayD<f32> {
        match self {
            Tensor::F32(a) => a,
            Tensor::I64(_) => panic!("verified graphs only read f32 values here"),
        }
    }
}
