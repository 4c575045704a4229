//! rnnc's error: either rendered source diagnostics or a plain message naming a
//! file or a value. Displayed as the command line prints it.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Source diagnostics, already rendered with carets.
    Rendered(String),
    /// A message such as "weights.safetensors: missing key `fc.bias`".
    Message(String),
}

impl Error {
    /// The text alone, without the command line's `error: ` (what a Python
    /// exception carries).
    pub fn text(&self) -> &str {
        match self {
            Error::Rendered(s) | Error::Message(s) => s.trim_end(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rendered(s) => f.write_str(s),
            Error::Message(m) => writeln!(f, "error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rnnc_runtime::RunError> for Error {
    fn from(e: rnnc_runtime::RunError) -> Self {
        Error::Message(e.0)
    }
}

pub(crate) fn msg<T>(m: impl Into<String>) -> Result<T, Error> {
    Err(Error::Message(m.into()))
}

/// `g` verified, or an internal error (every graph the library holds was
/// verified when it was lowered or optimised, so this does not fail in practice).
pub(crate) fn verified(g: &rnnc_ir::Graph) -> Result<rnnc_ir::Verified<'_>, Error> {
    rnnc_ir::verify(g).map_err(|e| Error::Message(format!("internal error: {}", e.join("; "))))
}
