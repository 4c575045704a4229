//! The pass table (`rnnc passes`, `Model::passes`): one row per pass with what it
//! did to the model.

use crate::error::Error;
use rnnc_ir::Graph;
use rnnc_opt::{run_pipeline, stats, Instrumentation, Pass, Stats};

/// Runs `passes` one at a time over `g` and tabulates the graph after each;
/// what `instr` asks to print goes into `log`.
pub fn table(
    mut g: Graph,
    passes: Vec<Box<dyn Pass>>,
    instr: &Instrumentation,
    log: &mut String,
) -> Result<String, Error> {
    let mut rows: Vec<(String, Stats, &str)> = vec![("(lowered)".into(), stats(&g), "")];
    for pass in passes {
        let name = pass.name().to_string();
        let records = run_pipeline(&mut g, std::slice::from_ref(&pass), instr, log)
            .map_err(|e| Error::Message(e.to_string()))?;
        rows.push((
            name,
            stats(&g),
            if records[0].changed { "yes" } else { "no" },
        ));
    }
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
