//! The rnnc driver as a library: loading models with their hyperparameters,
//! safetensors weights and `.npy` tensors, and the subcommands. `main.rs` is a thin shell.

pub mod aot;
pub mod args;
pub mod bench;
pub mod commands;
pub mod decode;
pub mod error;
pub mod npy;
pub mod params;
pub mod passes_table;
pub mod weights;

pub use commands::compile;
pub use error::CliError;
