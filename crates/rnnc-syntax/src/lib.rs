//! The rnnc model language: source files, the pest parser, the AST and diagnostics.
//!
//! Architecture invariant: pest's types never leave this crate. Everything later in
//! the pipeline sees only [`ast`] nodes, each carrying a [`Span`] into a [`SourceMap`].

pub mod ast;
pub mod diagnostic;
mod parse;
mod print;
pub mod program;
mod source;

pub use diagnostic::{Diagnostic, Label, Severity};
pub use parse::parse_file;
pub use program::{load_program, load_root, Program};
pub use source::{FileId, SourceMap, Span};
