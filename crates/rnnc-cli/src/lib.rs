//! The rnnc command line over the `rnnc` library: arguments, `.npy` files, the
//! subcommands, benchmarking and ahead-of-time compilation. `main.rs` is a thin shell.

pub mod aot;
pub mod args;
pub mod bench;
pub mod commands;
pub mod decode;
pub mod npy;
pub mod setup;

pub use error::CliError;
pub use rnnc::{params, passes_table, weights};
pub use setup::compile;

/// The library's error is the command line's.
pub mod error {
    pub use rnnc::Error as CliError;

    pub fn msg<T>(m: impl Into<String>) -> Result<T, CliError> {
        Err(CliError::Message(m.into()))
    }
}
