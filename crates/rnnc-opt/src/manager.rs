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

#[cfg(test)]
mod tests {
    use super::*;
    use rnnc_ir::parse_graph;

    const SMALL: &str = "graph g {\n  %0 = input name=\"x\" zeros=false : f32[B, 4]\n  %1 = tanh %0 : f32[B, 4]\n  %2 = exp %0 : f32[B, 4]\n  output \"y\" %1\n}\n";

    /// Corrupts the graph: claims a result type the op does not produce.
    struct Breaker;
    impl Pass for Breaker {
        fn name(&self) -> &'static str {
            "breaker"
        }
        fn run(&self, g: &mut Graph) -> Result<bool, String> {
            let id = g.node_ids().last().unwrap();
            g.node_mut(id).results[0].dims.push(rnnc_ir::Dim::Fixed(3));
            Ok(true)
        }
    }

    #[test]
    fn a_pass_that_breaks_the_graph_leaves_a_reproducer() {
        let dir = std::env::temp_dir().join(format!("rnnc-repro-test-{}", std::process::id()));
        let mut g = parse_graph(SMALL).unwrap();
        let instr = Instrumentation {
            dump_dir: Some(dir.clone()),
            ..Default::default()
        };
        let passes: Vec<Box<dyn Pass>> = vec![
            crate::passes::build(&crate::PassSpec {
                name: "dce".into(),
                options: vec![],
            })
            .unwrap(),
            Box::new(Breaker),
        ];
        let err = run_pipeline(&mut g, &passes, &instr, &mut String::new()).unwrap_err();
        assert!(
            err.message.contains("does not verify after pass `breaker`"),
            "{}",
            err.message
        );
        let repro = std::fs::read_to_string(err.reproducer.expect("a reproducer path")).unwrap();
        assert!(
            repro.starts_with("// rnnc reproducer: run `--passes dce,breaker` on this graph"),
            "{repro}"
        );
        // The reproducer holds the IR before the failing pass: after dce, without the exp.
        let ir: String = repro
            .lines()
            .filter(|l| !l.starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(!ir.contains("exp") && parse_graph(&ir).is_ok(), "{ir}");
        assert!(dir.join("00-input.rir").is_file() && dir.join("01-dce.rir").is_file());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn instrumentation_prints_after_passes_and_times_them() {
        let passes: Vec<Box<dyn Pass>> = crate::Opt::Level(1).build().unwrap();
        let mut log = String::new();
        let mut g = parse_graph(SMALL).unwrap();
        let instr = Instrumentation {
            print_after_change: true,
            time_passes: true,
            ..Default::default()
        };
        let records = run_pipeline(&mut g, &passes, &instr, &mut log).unwrap();
        let changed: Vec<&str> = records
            .iter()
            .filter(|r| r.changed)
            .map(|r| r.name)
            .collect();
        assert_eq!(changed, ["dce"]);
        assert_eq!(log.matches("// -----// IR after").count(), 1, "{log}");
        assert!(
            log.contains("IR after dce") && log.contains("pass execution timing report"),
            "{log}"
        );
        let mut log = String::new();
        let instr = Instrumentation {
            print_after: vec!["cse".into()],
            ..Default::default()
        };
        run_pipeline(&mut parse_graph(SMALL).unwrap(), &passes, &instr, &mut log).unwrap();
        assert!(
            log.contains("IR after cse") && !log.contains("IR after dce"),
            "{log}"
        );
    }

    #[test]
    fn pipelines_parse_with_options_and_report_mistakes() {
        let specs = crate::parse_pipeline("fuse-gates, unroll-time{factor=4,x=1},dce").unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(
            specs[1].options,
            vec![
                ("factor".to_string(), "4".to_string()),
                ("x".to_string(), "1".to_string())
            ]
        );
        assert_eq!(specs[1].to_string(), "unroll-time{factor=4,x=1}");
        assert!(crate::parse_pipeline("a{factor=4")
            .unwrap_err()
            .contains("not closed"));
        assert!(crate::parse_pipeline("a,,b").unwrap_err().contains("empty"));
        assert!(crate::parse_pipeline("a{b}")
            .unwrap_err()
            .contains("not key=value"));
    }
}
