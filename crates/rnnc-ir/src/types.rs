//! Value types: a dtype and a shape whose dims are concrete or symbolic (`B`, `T`).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    I64,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
        })
    }
}

/// One axis length. `B` (batch), `T` (time) and `S` (the source length of a
/// sequence-to-sequence model, which differs from its target's `T`) are bound when
/// the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Fixed(usize),
    Batch,
    Time,
    Source,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Batch => f.write_str("B"),
            Dim::Time => f.write_str("T"),
            Dim::Source => f.write_str("S"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorTy {
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

impl TensorTy {
    pub fn f32(dims: Vec<Dim>) -> Self {
        TensorTy {
            dtype: DType::F32,
            dims,
        }
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }
}

impl fmt::Display for TensorTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// Shape in the user's words, for messages: `[B, 16]`.
pub fn dims_str(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(Dim::to_string).collect();
    format!("[{}]", parts.join(", "))
}
