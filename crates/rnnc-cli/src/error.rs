//! The CLI's error: either rendered diagnostics or a plain message naming a file.

use std::fmt;

#[derive(Debug)]
pub enum CliError {
    /// Source diagnostics, already rendered with carets.
    Rendered(String),
    /// A message such as "weights.safetensors: missing key `fc.bias`".
    Message(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Rendered(s) => f.write_str(s),
            CliError::Message(m) => writeln!(f, "error: {m}"),
        }
    }
}

pub fn msg<T>(m: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::Message(m.into()))
}
