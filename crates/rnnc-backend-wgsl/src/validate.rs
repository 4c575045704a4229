//! naga's checks on an emitted module: the WGSL front end, then the validator
//! with every capability off (what any WebGPU implementation must accept).

use naga::valid::{Capabilities, ValidationFlags, Validator};

/// Parses and validates `source`; the error is naga's report, with the source
/// lines it points at.
pub fn validate(source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&module)
        .map_err(|e| e.emit_to_string(source))?;
    Ok(())
}
