//! The pass manager: runs passes in order, verifies after each, and instruments the
//! run the way MLIR users expect (`--print-ir-after-all`, `--print-ir-after=PASS`,
//! `--print-ir-after-change`, `--time-passes`, `--dump-dir`). When a pass fails, or
//! leaves a graph the verifier rejects, it writes a reproducer: the pipeline and the
//! IR before that pass.

use crate::Pass;
use rnnc_ir::{verify, Graph};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct Instrumentation {
    pub print_after_all: bool,
    pub print_after: Vec<String>,
    pub print_after_change: bool,
    pub time_passes: bool,
    /// One file per pass, `NN-pass.rir`, plus `00-input.rir`.
    pub dump_dir: Option<PathBuf>,
}

/// What one pass did.
#[derive(Clone, Debug)]
pub struct PassRecord {
    pub name: &'static str,
    pub changed: bool,
    pub time: Duration,
}

#[derive(Debug)]
pub struct PipelineError {
    pub message: String,
    /// Where the reproducer was written, if it could be.
    pub reproducer: Option<PathBuf>,
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(p) = &self.reproducer {
            write!(
                f,
                "\nreproducer (pipeline and IR before the pass): {}",
                p.display()
            )?;
        }
        Ok(())
    }
}

/// Runs `passes` over `g`. Instrumentation text goes to `log` (the CLI sends it to stderr).
pub fn run_pipeline(
    g: &mut Graph,
    passes: &[Box<dyn Pass>],
    instr: &Instrumentation,
    log: &mut String,
) -> Result<Vec<PassRecord>, PipelineError> {
    let mut records = Vec::new();
    let dump = |name: &str, text: &str| -> Result<(), PipelineError> {
        if let Some(dir) = &instr.dump_dir {
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(dir.join(name), text))
                .map_err(|e| PipelineError {
                    message: format!("cannot write to --dump-dir `{}`: {e}", dir.display()),
                    reproducer: None,
                })?;
        }
        Ok(())
    };
    dump("00-input.rir", &g.to_string())?;
    let pipeline: Vec<&str> = passes.iter().map(|p| p.name()).collect();
    for (i, pass) in passes.iter().enumerate() {
        let before = g.to_string();
        let start = Instant::now();
        let result = pass.run(g);
        let time = start.elapsed();
        let failure = match result {
            Err(e) => Some(format!("pass `{}` failed: {e}", pass.name())),
            Ok(_) => verify(g).err().map(|errs| {
                format!(
                    "the graph does not verify after pass `{}`:\n  {}",
                    pass.name(),
                    errs.join("\n  ")
                )
            }),
        };
        if let Some(message) = failure {
            let reproducer = write_reproducer(instr, pass.name(), &pipeline, &before);
            return Err(PipelineError {
                message,
                reproducer,
            });
        }
        let after = g.to_string();
        let changed = after != before;
        let show = instr.print_after_all
            || instr.print_after.iter().any(|p| p == pass.name())
            || (instr.print_after_change && changed);
        if show {
            let _ = writeln!(log, "// -----// IR after {} //----- //", pass.name());
            log.push_str(&after);
        }
        dump(&format!("{:02}-{}.rir", i + 1, pass.name()), &after)?;
        records.push(PassRecord {
            name: pass.name(),
            changed,
            time,
        });
    }
    if instr.time_passes {
        let total: Duration = records.iter().map(|r| r.time).sum();
        let _ = writeln!(log, "===-------------------------------------------===");
        let _ = writeln!(
            log,
            "  pass execution timing report ({} passes)",
            records.len()
        );
        let _ = writeln!(log, "===-------------------------------------------===");
        for r in &records {
            let _ = writeln!(log, "  {:>10.3} ms  {}", r.time.as_secs_f64() * 1e3, r.name);
        }
        let _ = writeln!(log, "  {:>10.3} ms  total", total.as_secs_f64() * 1e3);
    }
    Ok(records)
}

fn write_reproducer(
    instr: &Instrumentation,
    pass: &str,
    pipeline: &[&str],
    before: &str,
) -> Option<PathBuf> {
    let dir = instr.dump_dir.clone().unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("rnnc-reproducer-{pass}.rir"));
    let text = format!(
        "// rnnc reproducer: run `--passes {}` on this graph\n// failing pass: {pass}\n{before}",
        pipeline.join(",")
    );
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::write(&path, text).ok()?;
    Some(path)
}
