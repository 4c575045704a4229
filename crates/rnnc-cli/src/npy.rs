//! Inputs and outputs as NumPy `.npy` files (ndarray-npy).

use crate::error::{msg, CliError};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
use rnnc_interp::Tensor;
use std::io::Cursor;
use std::path::Path;

/// Reads an `.npy` as f32 (also from f64) or as i64 token ids (also from i32).
pub fn read(path: &Path) -> Result<Tensor, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Message(format!("cannot read `{}`: {e}", path.display())))?;
    let first = match ArrayD::<f32>::read_npy(Cursor::new(&bytes)) {
        Ok(a) => return Ok(Tensor::F32(a)),
        Err(e) => e,
    };
    if !matches!(first, ReadNpyError::WrongDescriptor(_)) {
        return msg(format!(
            "{}: not a readable .npy file: {first}",
            path.display()
        ));
    }
    if let Ok(a) = ArrayD::<i64>::read_npy(Cursor::new(&bytes)) {
        return Ok(Tensor::I64(a));
    }
    if let Ok(a) = ArrayD::<f64>::read_npy(Cursor::new(&bytes)) {
        return Ok(Tensor::F32(a.mapv(|v| v as f32)));
    }
    if let Ok(a) = ArrayD::<i32>::read_npy(Cursor::new(&bytes)) {
        return Ok(Tensor::I64(a.mapv(i64::from)));
    }
    msg(format!(
        "{}: unsupported array dtype ({first}); rnnc reads float32/float64 and int64/int32",
        path.display()
    ))
}

pub fn write(path: &Path, t: &Tensor) -> Result<(), CliError> {
    let file = std::fs::File::create(path)
        .map_err(|e| CliError::Message(format!("cannot create `{}`: {e}", path.display())))?;
    let r = match t {
        Tensor::F32(a) => a.write_npy(std::io::BufWriter::new(file)),
        Tensor::I64(a) => a.write_npy(std::io::BufWriter::new(file)),
    };
    r.map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", path.display())))
}
