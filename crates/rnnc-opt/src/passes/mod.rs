//! Every pass, registered in one alphabetical list.

mod cse;
mod dce;
mod fold_biases;
mod fold_constants;
mod fuse_elementwise;
mod fuse_gates;
mod hoist_input_projection;
mod split_concat_matmul;

use crate::pipeline::PassSpec;
use crate::Pass;

/// Name, one-line summary, constructor.
type Entry = (&'static str, &'static str, fn() -> Box<dyn Pass>);

/// All passes, alphabetically. Their names are what `--passes` takes.
pub const ALL: &[Entry] = &[
    ("cse", "merge identical computations", || Box::new(cse::Cse)),
    ("dce", "remove values nothing reads", || Box::new(dce::Dce)),
    (
        "fold-biases",
        "regroup sums so that bias terms add up once",
        || Box::new(fold_biases::FoldBiases),
    ),
    (
        "fold-constants",
        "evaluate ops on constants and zeros",
        || Box::new(fold_constants::FoldConstants),
    ),
    (
        "fuse-elementwise",
        "evaluate trees of elementwise ops as one kernel",
        || Box::new(fuse_elementwise::FuseElementwise),
    ),
    (
        "fuse-gates",
        "stack products that share an operand into one",
        || Box::new(fuse_gates::FuseGates),
    ),
    (
        "hoist-input-projection",
        "move per-step work that reads only the input out of the loop",
        || Box::new(hoist_input_projection::HoistInputProjection),
    ),
    (
        "split-concat-matmul",
        "W @ [h, x] becomes W_h @ h + W_x @ x",
        || Box::new(split_concat_matmul::SplitConcatMatmul),
    ),
];

/// Makes the pass a spec names; none of these passes takes options yet.
pub fn build(spec: &PassSpec) -> Result<Box<dyn Pass>, String> {
    let Some((_, _, make)) = ALL.iter().find(|(n, _, _)| *n == spec.name) else {
        let names: Vec<&str> = ALL.iter().map(|(n, _, _)| *n).collect();
        return Err(format!(
            "unknown pass `{}`; the passes are: {}",
            spec.name,
            names.join(", ")
        ));
    };
    if let Some((k, _)) = spec.options.first() {
        return Err(format!("pass `{}` takes no option `{k}`", spec.name));
    }
    Ok(make())
}
