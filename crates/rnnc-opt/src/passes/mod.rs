//! Every pass, registered in one alphabetical list.

mod canonicalize;
mod cse;
mod dce;
mod fold_biases;
mod fold_constants;
mod fuse_elementwise;
mod fuse_gates;
mod hoist_input_projection;
mod hoist_memory;
mod split_concat_matmul;
mod unroll_time;

use crate::pipeline::PassSpec;
use crate::Pass;

/// Name, one-line summary, constructor from the pass's `{key=value}` options.
type Entry = (&'static str, &'static str, Make);
type Make = fn(&[(String, String)]) -> Result<Box<dyn Pass>, String>;

/// For the passes that take no options.
fn plain(pass: impl Pass + 'static, options: &[(String, String)]) -> Result<Box<dyn Pass>, String> {
    match options.first() {
        Some((k, _)) => Err(format!("pass `{}` takes no option `{k}`", pass.name())),
        None => Ok(Box::new(pass)),
    }
}

/// All passes, alphabetically. Their names are what `--passes` takes.
pub const ALL: &[Entry] = &[
    (
        "canonicalize",
        "rewrite local patterns to simpler equal forms",
        |o| plain(canonicalize::Canonicalize, o),
    ),
    ("cse", "merge identical computations", |o| {
        plain(cse::Cse, o)
    }),
    ("dce", "remove values nothing reads", |o| plain(dce::Dce, o)),
    (
        "fold-biases",
        "regroup sums so that bias terms add up once",
        |o| plain(fold_biases::FoldBiases, o),
    ),
    (
        "fold-constants",
        "evaluate ops on constants and zeros",
        |o| plain(fold_constants::FoldConstants, o),
    ),
    (
        "fuse-elementwise",
        "evaluate trees of elementwise ops as one kernel",
        |o| plain(fuse_elementwise::FuseElementwise, o),
    ),
    (
        "fuse-gates",
        "stack products that share an operand into one",
        |o| plain(fuse_gates::FuseGates, o),
    ),
    (
        "hoist-input-projection",
        "move per-step work that reads only the input out of the loop",
        |o| plain(hoist_input_projection::HoistInputProjection, o),
    ),
    (
        "hoist-memory",
        "move per-step work that reads only memories out of the loop",
        |o| plain(hoist_memory::HoistMemory, o),
    ),
    (
        "split-concat-matmul",
        "W @ [h, x] becomes W_h @ h + W_x @ x",
        |o| plain(split_concat_matmul::SplitConcatMatmul, o),
    ),
    (
        "unroll-time",
        "unroll the time loop by a factor, or fully when T is fixed",
        unroll_time::UnrollTime::from_options,
    ),
];

/// Makes the pass a spec names, with its options.
pub fn build(spec: &PassSpec) -> Result<Box<dyn Pass>, String> {
    let Some((_, _, make)) = ALL.iter().find(|(n, _, _)| *n == spec.name) else {
        let names: Vec<&str> = ALL.iter().map(|(n, _, _)| *n).collect();
        return Err(format!(
            "unknown pass `{}`; the passes are: {}",
            spec.name,
            names.join(", ")
        ));
    };
    make(&spec.options)
}
