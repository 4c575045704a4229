//! `rnnc passes`: one row per pass with what it did to the model.

use crate::args::OptArgs;
use crate::commands::{instrumentation, pipeline};
use crate::error::CliError;
use rnnc_ir::Graph;
use rnnc_opt::{run_pipeline, stats, Stats};

/// Runs the pipeline one pass at a time and tabulates the graph after each.
pub fn table(mut g: Graph, opt: &OptArgs) -> Result<String, CliError> {
    let passes = pipeline(opt)?;
    let mut rows: Vec<(String, Stats, &str)> = vec![("(lowered)".into(), stats(&g), "")];
    let instr = instrumentation(opt);
    let mut log = String::new();
    for pass in passes {
        let name = pass.name().to_string();
        let records = run_pipeline(&mut g, std::slice::from_ref(&pass), &instr, &mut log)
            .map_err(|e| CliError::Message(e.to_string()))?;
        rows.push((
            name,
            stats(&g),
            if records[0].changed { "yes" } else { "no" },
        ));
    }
    eprint!("{log}");
    let mut out = format!(
        "{:<24} {:>6} {:>13} {:>14} {:>12} {:>11} {:>16} {:>8}\n",
        "pass",
        "nodes",
        "matmul/loop",
        "matmul/hoisted",
        "elementwise",
        "FLOPs/step",
        "weight B/step",
        "changed"
    );
    for (name, s, changed) in rows {
        out.push_str(&format!(
            "{:<24} {:>6} {:>13} {:>14} {:>12} {:>11} {:>16} {:>8}\n",
            name,
            s.nodes,
            s.matmuls_in_loop,
            s.matmuls_outside,
            s.elementwise,
            s.flops_per_step,
            s.weight_bytes_per_step,
            changed
        ));
    }
    out.push_str("FLOPs and weight bytes are per time step and batch row; `matmul/hoisted` counts products outside the time loop.\n");
    Ok(out)
}
