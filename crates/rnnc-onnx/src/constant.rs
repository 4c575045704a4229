//! Tensors known at import time: initializers, `Constant` nodes and what folding
//! makes of them. They become `param`s (floats), literals (scalars) or fold away
//! (shapes, axes, indices).

use crate::error::ImportError;
use crate::proto::TensorProto;
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// A constant tensor: floats (weights) or integers (shapes, axes, indices, ids).
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

/// ONNX `TensorProto.DataType` codes import reads.
pub(crate) mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;

    /// The type's name in ONNX's own words.
    pub fn name(code: i32) -> &'static str {
        match code {
            0 => "UNDEFINED",
            1 => "FLOAT",
            2 => "UINT8",
            3 => "INT8",
            4 => "UINT16",
            5 => "INT16",
            6 => "INT32",
            7 => "INT64",
            8 => "STRING",
            9 => "BOOL",
            10 => "FLOAT16",
            11 => "DOUBLE",
            12 => "UINT32",
            13 => "UINT64",
            14 => "COMPLEX64",
            15 => "COMPLEX128",
            16 => "BFLOAT16",
            _ => "an unknown type",
        }
    }

    /// Whether a value of this type is an integer tensor import keeps as i64.
    pub fn is_integer(code: i32) -> bool {
        matches!(
            code,
            UINT8 | INT8 | UINT16 | INT16 | INT32 | INT64 | BOOL | UINT32 | UINT64
        )
    }

    /// Whether a value of this type is a float tensor import keeps as f32.
    pub fn is_float(code: i32) -> bool {
        matches!(code, FLOAT | DOUBLE)
    }
}

impl Const {
    /// Decodes an initializer or a `Constant`'s tensor; `what` names it in errors.
    pub fn from_proto(t: &TensorProto, what: &str) -> Result<Const, ImportError> {
        if t.data_location == 1 || !t.external_data.is_empty() {
            return Err(ImportError::new(format!(
                "{what} keeps its data in an external file; rnnc reads models whose weights \
                 are inside the .onnx file (save with `onnx.save_model(m, path, \
                 save_as_external_data=False)`)"
            )));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            if d < 0 {
                return Err(ImportError::new(format!(
                    "{what} has a negative dimension {d}"
                )));
            }
            dims.push(d as usize);
        }
        let n = elements(&dims).map_err(|e| ImportError::new(format!("{what}: {}", e.message)))?;
        let raw = &t.raw_data;
        let bad_len = |have: usize| {
            ImportError::new(format!(
                "{what} declares shape {dims:?} ({n} elements) but holds {have}; the file is damaged"
            ))
        };
        let code = t.data_type;
        let floats: Option<Vec<f32>> = match code {
            dtype::FLOAT if !raw.is_empty() => Some(
                le_chunks::<4>(raw, n, bad_len)?
                    .map(f32::from_le_bytes)
                    .collect(),
            ),
            dtype::FLOAT => Some(t.float_data.clone()),
            dtype::DOUBLE if !raw.is_empty() => Some(
                le_chunks::<8>(raw, n, bad_len)?
                    .map(|b| f64::from_le_bytes(b) as f32)
                    .collect(),
            ),
            dtype::DOUBLE => Some(t.double_data.iter().map(|&v| v as f32).collect()),
            _ => None,
        };
        if let Some(v) = floats {
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            return Ok(Const::F32(
                ArrayD::from_shape_vec(IxDyn(&dims), v).expect("length checked"),
            ));
        }
        let ints: Vec<i64> = match code {
            dtype::INT64 if !raw.is_empty() => le_chunks::<8>(raw, n, bad_len)?
                .map(i64::from_le_bytes)
                .collect(),
            dtype::INT64 => t.int64_data.clone(),
            dtype::INT32 if !raw.is_empty() => le_chunks::<4>(raw, n, bad_len)?
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
            dtype::INT16 if !raw.is_empty() => le_chunks::<2>(raw, n, bad_len)?
                .map(|b| i16::from_le_bytes(b) as i64)
                .collect(),
            dtype::UINT16 if !raw.is_empty() => le_chunks::<2>(raw, n, bad_len)?
                .map(|b| u16::from_le_bytes(b) as i64)
                .collect(),
            dtype::INT8 if !raw.is_empty() => raw.iter().map(|&b| b as i8 as i64).collect(),
            dtype::UINT8 | dtype::BOOL if !raw.is_empty() => {
                raw.iter().map(|&b| b as i64).collect()
            }
            dtype::UINT32 if !raw.is_empty() => le_chunks::<4>(raw, n, bad_len)?
                .map(|b| u32::from_le_bytes(b) as i64)
                .collect(),
            dtype::INT32
            | dtype::INT16
            | dtype::INT8
            | dtype::UINT16
            | dtype::UINT8
            | dtype::BOOL => t.int32_data.iter().map(|&v| v as i64).collect(),
            dtype::UINT32 | dtype::UINT64 if raw.is_empty() => {
                t.uint64_data.iter().map(|&v| v as i64).collect()
            }
            dtype::UINT64 => le_chunks::<8>(raw, n, bad_len)?
                .map(|b| u64::from_le_bytes(b) as i64)
                .collect(),
            other => {
                return Err(ImportError::new(format!(
                    "{what} is a {} tensor; rnnc imports FLOAT and DOUBLE weights and integer \
                     constants",
                    dtype::name(other)
                )))
            }
        };
        if ints.len() != n {
            return Err(bad_len(ints.len()));
        }
        Ok(Const::I64(
            ArrayD::from_shape_vec(IxDyn(&dims), ints).expect("length checked"),
        ))
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Const::F32(a) => a.shape(),
            Const::I64(a) => a.shape(),
        }
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// The values as integers (axes, shapes, indices); floats must be whole.
    pub fn ints(&self) -> Option<Vec<i64>> {
        match self {
            Const::I64(a) => Some(a.iter().copied().collect()),
            Const::F32(a) => a
                .iter()
                .map(|&v| (v.fract() == 0.0).then_some(v as i64))
                .collect(),
        }
    }

    /// The values as floats.
    pub fn floats(&self) -> ArrayD<f32> {
        match self {
            Const::F32(a) => a.clone(),
            Const::I64(a) => a.mapv(|v| v as f32),
        }
    }

    /// The one value of a tensor with one element.
    pub fn scalar(&self) -> Option<f64> {
        if self.len() != 1 {
            return None;
        }
        Some(match self {
            Const::F32(a) => *a.iter().next().expect("one") as f64,
            Const::I64(a) => *a.iter().next().expect("one") as f64,
        })
    }

    fn map_arrays(
        &self,
        f: impl Fn(&ArrayD<f32>) -> ArrayD<f32>,
        g: impl Fn(&ArrayD<i64>) -> ArrayD<i64>,
    ) -> Const {
        match self {
            Const::F32(a) => Const::F32(f(a)),
            Const::I64(a) => Const::I64(g(a)),
        }
    }

    pub fn permuted(&self, perm: &[usize]) -> Const {
        self.map_arrays(
            |a| {
                a.clone()
                    .permuted_axes(IxDyn(perm))
                    .as_standard_layout()
                    .into_owned()
            },
            |a| {
                a.clone()
                    .permuted_axes(IxDyn(perm))
                    .as_standard_layout()
                    .into_owned()
            },
        )
    }

    pub fn reshaped(&self, dims: &[usize]) -> Const {
        self.map_arrays(
            |a| {
                a.as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(IxDyn(dims))
                    .expect("element count checked by the caller")
            },
            |a| {
                a.as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(IxDyn(dims))
                    .expect("element count checked by the caller")
            },
        )
    }

    /// Elements `start..end` of `axis`.
    pub fn sliced(&self, axis: usize, start: usize, end: usize) -> Const {
        let s = Slice::from(start..end);
        self.map_arrays(
            |a| a.slice_axis(Axis(axis), s).to_owned(),
            |a| a.slice_axis(Axis(axis), s).to_owned(),
        )
    }

    /// The rows `indices` of `axis` (Gather); `indices` already in range.
    pub fn gathered(&self, axis: usize, indices: &[usize], index_shape: &[usize]) -> Const {
        let pick = |shape: &[usize]| {
            let mut out = shape[..axis].to_vec();
            out.extend_from_slice(index_shape);
            out.extend_from_slice(&shape[axis + 1..]);
            out
        };
        match self {
            Const::F32(a) => {
                let parts: Vec<_> = indices
                    .iter()
                    .map(|&i| a.index_axis(Axis(axis), i))
                    .collect();
                let st = ndarray::stack(Axis(axis), &parts).expect("equal shapes");
                Const::F32(
                    st.into_shape_with_order(IxDyn(&pick(a.shape())))
                        .expect("same count"),
                )
            }
            Const::I64(a) => {
                let parts: Vec<_> = indices
                    .iter()
                    .map(|&i| a.index_axis(Axis(axis), i))
                    .collect();
                let st = ndarray::stack(Axis(axis), &parts).expect("equal shapes");
                Const::I64(
                    st.into_shape_with_order(IxDyn(&pick(a.shape())))
                        .expect("same count"),
                )
            }
        }
    }

    /// Joins constants of one kind along `axis`; None when kinds or shapes differ.
    pub fn concat(parts: &[Const], axis: usize) -> Option<Const> {
        if parts.iter().all(|p| matches!(p, Const::I64(_))) {
            let views: Vec<_> = parts
                .iter()
                .map(|p| match p {
                    Const::I64(a) => a.view(),
                    Const::F32(_) => unreachable!(),
                })
                .collect();
            return ndarray::concatenate(Axis(axis), &views)
                .ok()
                .map(Const::I64);
        }
        let floats: Vec<ArrayD<f32>> = parts.iter().map(Const::floats).collect();
        let views: Vec<_> = floats.iter().map(|a| a.view()).collect();
        ndarray::concatenate(Axis(axis), &views)
            .ok()
            .map(Const::F32)
    }
}

/// Constants import makes or reads hold at most this many elements (1 GiB of
/// f32), so a damaged size is an error, not an allocation that cannot succeed.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The element count of a tensor of shape `dims`, within [`MAX_ELEMENTS`].
pub fn elements(dims: &[usize]) -> Result<usize, ImportError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            ImportError::new(format!(
                "a tensor of shape {dims:?} is larger than rnnc imports ({MAX_ELEMENTS} elements)"
            ))
        })
}

/// `raw` cut into `n` little-endian elements of `W` bytes.
fn le_chunks<const W: usize>(
    raw: &[u8],
    n: usize,
    bad: impl Fn(usize) -> ImportError,
) -> Result<impl Iterator<Item = [u8; W]> + '_, ImportError> {
    if raw.len() != n * W {
        return Err(bad(raw.len() / W));
    }
    Ok(raw
        .chunks_exact(W)
        .map(|c| <[u8; W]>::try_from(c).expect("exact chunks")))
}
