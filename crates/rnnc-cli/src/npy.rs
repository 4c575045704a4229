//! Inputs and outputs as NumPy `.npy` files (ndarray-npy).

use crate::error::{msg, CliError};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
use rnnc::Tensor;
use std::io::Cursor;
use std::path::Path;

/// Reads an `.npy` as f32 (also from f64) or as i64 token ids (also from i32).
pub fn read(path: &Path) -> Result<Tensor, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Message(format!("cannot read `{}`: {e}", path.display())))?;
    if let Err(m) = check_declared_size(&bytes) {
        return msg(format!("{}: {m}", path.display()));
    }
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

/// Checks that the data the header declares is in the file before anything is
/// allocated for it: a header claiming a huge shape must be an error, not an abort.
fn check_declared_size(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Ok(()); // not .npy at all: the reader says so
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Ok(()),
    };
    let Some(header) = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
    else {
        return Err("the .npy header is cut short".into());
    };
    let field = |name: &str| header.find(name).map(|i| &header[i + name.len()..]);
    let Some(shape) = field("'shape':")
        .and_then(|s| s.split_once('('))
        .and_then(|(_, s)| s.split_once(')'))
    else {
        return Ok(());
    };
    let mut elems: u64 = 1;
    for dim in shape.0.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let n: u64 = dim
            .parse()
            .map_err(|_| format!("the .npy header has a bad shape `({})`", shape.0))?;
        elems = elems
            .checked_mul(n)
            .ok_or("the .npy header declares an impossibly large shape")?;
    }
    let itemsize: u64 = field("'descr':")
        .and_then(|s| s.split('\'').nth(1))
        .map(|d| d.trim_start_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(1);
    let have = (bytes.len() - (start + len).min(bytes.len())) as u64;
    match elems.checked_mul(itemsize) {
        Some(need) if need <= have => Ok(()),
        _ => Err(format!(
            "the .npy header declares shape ({}) but the file holds only {have} bytes of data",
            shape.0.trim()
        )),
    }
}
