//! One function per group of ONNX operators; `convert` sends each node to its own.

mod elementwise;
mod glue;
mod layout;
mod linear;
mod recurrent;

use crate::error::{ImportError, Result};
use crate::importer::Importer;
use crate::node::Node;

pub use layout::transpose_expr;

/// Every op type import takes, for messages and docs/onnx.md.
pub const SUPPORTED: &[&str] = &[
    "LSTM",
    "GRU",
    "RNN",
    "MatMul",
    "Gemm",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Abs",
    "Relu",
    "Tanh",
    "Sigmoid",
    "Exp",
    "Log",
    "Softsign",
    "Softplus",
    "Elu",
    "LeakyRelu",
    "HardSigmoid",
    "ThresholdedRelu",
    "Softmax",
    "LogSoftmax",
    "Gather",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Slice",
    "Reshape",
    "Flatten",
    "Constant",
    "Identity",
    "Dropout",
    "Shape",
    "ConstantOfShape",
    "Expand",
    "Cast",
];

pub fn convert(imp: &mut Importer, node: &Node) -> Result<()> {
    let domain = &node.proto.domain;
    if !(domain.is_empty() || domain == "ai.onnx") {
        return Err(ImportError::new(format!(
            "op `{}` of domain \"{domain}\" is outside the ONNX standard; rnnc imports the \
             default domain (ai.onnx) only",
            node.op()
        ))
        .help("export without custom or contrib ops (ONNX Runtime's optimisers write com.microsoft ops: import the model as exported, before optimisation)"));
    }
    match node.op() {
        "LSTM" | "GRU" | "RNN" => recurrent::convert(imp, node),
        "MatMul" => linear::matmul(imp, node),
        "Gemm" => linear::gemm(imp, node),
        "Add" | "Sub" | "Mul" | "Div" => elementwise::binary(imp, node),
        "Neg" | "Abs" | "Relu" | "Tanh" | "Sigmoid" | "Exp" | "Log" | "Softsign" | "Softplus"
        | "Elu" | "LeakyRelu" | "HardSigmoid" | "ThresholdedRelu" => elementwise::unary(imp, node),
        "Softmax" | "LogSoftmax" => elementwise::softmax(imp, node),
        "Gather" => layout::gather(imp, node),
        "Transpose" => layout::transpose(imp, node),
        "Squeeze" => layout::squeeze(imp, node),
        "Unsqueeze" => layout::unsqueeze(imp, node),
        "Concat" => layout::concat(imp, node),
        "Slice" => layout::slice(imp, node),
        "Reshape" => layout::reshape(imp, node),
        "Flatten" => layout::flatten(imp, node),
        "Constant" => glue::constant(imp, node),
        "Identity" | "Dropout" => glue::identity(imp, node),
        "Shape" => glue::shape(imp, node),
        "ConstantOfShape" => glue::constant_of_shape(imp, node),
        "Expand" => glue::expand(imp, node),
        "Cast" => glue::cast(imp, node),
        other => Err(ImportError::new(format!(
            "rnnc does not import the op `{other}`; it imports the recurrent operators (LSTM, \
             GRU, RNN) and the ops exported around them: {}",
            SUPPORTED[3..].join(", ")
        ))
        .help("write this part of the model in the .rnn language (docs/language.md) and import the rest, or remove the node")),
    }
}
