//! The rnnc graph IR and the lowering that builds it from the AST.
//!
//! A model becomes one [`Graph`]: a petgraph DAG of [`Op`]s whose values carry a
//! dtype and a shape with symbolic `B` (batch) and `T` (time). A recurrence is a
//! [`op::Scan`] node whose body graph is one time step, with its loop-carried edges
//! explicit as `state` arguments and `next` outputs.
//!
//! Architecture invariant: every graph handed to a later stage has passed
//! [`verify::verify`]; lowering verifies before it returns.

pub mod compiling;
pub mod deps;
mod dot;
pub mod graph;
pub mod infer;
pub mod lower;
pub mod op;
mod parse;
pub mod print;
pub mod svg;
pub mod types;
pub mod verify;

pub use dot::to_dot;
pub use graph::{Graph, NodeId, Value};
pub use op::{ArgKind, BinaryOp, Fused, Op, Scan, UnaryOp};
pub use parse::{parse_graph, ParseError};
pub use rnnc_syntax::Span;
pub use svg::to_svg;
pub use types::{DType, Dim, TensorTy};
pub use verify::{verify, Verified};
