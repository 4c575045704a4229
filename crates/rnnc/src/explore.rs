//! What `rnnc explore` shows, as data: the pipeline pass by pass (what each pass
//! changed in numbers, the IR after it and its diff against the IR before) and the
//! model's source. `explore_html.rs` turns it into one self-contained page.

use crate::error::Error;
use crate::model::{build, Model};
use rnnc_opt::{run_pipeline, stats, Instrumentation, Opt, Stats};
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

/// The pipeline over one model.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: String,
    /// The file the model came from (or `<source>`).
    pub origin: String,
    /// The pipeline as asked for (`-O2`, or the pass list).
    pub pipeline: String,
    /// The model's source, when the caller has it.
    pub source: Option<String>,
    /// The lowered graph first, then one step per pass.
    pub steps: Vec<Step>,
    /// What a backend generated from the graph after the last pass, where asked
    /// for ([`Model::generated_code`]).
    #[serde(skip)]
    pub generated: Option<crate::generated::Generated>,
}

/// One pass: its numbers after it ran, the IR after it, the diff from the step before.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub pass: String,
    pub changed: bool,
    /// Wall time of the pass, µs (0 for the lowered graph); not part of snapshots.
    pub micros: u64,
    pub nodes: usize,
    pub matmuls_in_loop: usize,
    pub matmuls_outside: usize,
    pub elementwise: usize,
    pub flops_per_step: u64,
    pub weight_bytes_per_step: u64,
    pub ir: String,
    /// The IR's lines with `' '` (kept), `'+'` (new) or `'-'` (gone) in front.
    pub diff: Vec<(char, String)>,
    /// Per line of `diff`: the line of the model's source (1-based) the node on
    /// it was lowered from, where it has one (passes make nodes without).
    pub source_lines: Vec<Option<usize>>,
    /// The graph after the pass, drawn (`rnnc_ir::svg`); a node with a source line
    /// links to it.
    #[serde(skip)]
    pub drawing: String,
}

impl Step {
    fn new(
        pass: &str,
        changed: bool,
        micros: u64,
        s: &Stats,
        (ir, lines, drawing): (String, Vec<Option<usize>>, String),
        before: &str,
    ) -> Step {
        let diff = line_diff(before, &ir);
        // The lines of `ir` are the diff's lines that are not removed, in order.
        let mut at = lines.into_iter();
        let source_lines = diff
            .iter()
            .map(|(t, _)| if *t == '-' { None } else { at.next().flatten() })
            .collect();
        Step {
            pass: pass.to_string(),
            changed,
            micros,
            nodes: s.nodes,
            matmuls_in_loop: s.matmuls_in_loop,
            matmuls_outside: s.matmuls_outside,
            elementwise: s.elementwise,
            flops_per_step: s.flops_per_step,
            weight_bytes_per_step: s.weight_bytes_per_step,
            diff,
            source_lines,
            ir,
            drawing,
        }
    }

    pub fn added(&self) -> usize {
        self.diff.iter().filter(|(t, _)| *t == '+').count()
    }

    pub fn removed(&self) -> usize {
        self.diff.iter().filter(|(t, _)| *t == '-').count()
    }
}

/// `after` line by line against `before` (similar's Myers diff).
fn line_diff(before: &str, after: &str) -> Vec<(char, String)> {
    TextDiff::from_lines(before, after)
        .iter_all_changes()
        .map(|c| {
            let tag = match c.tag() {
                ChangeTag::Equal => ' ',
                ChangeTag::Insert => '+',
                ChangeTag::Delete => '-',
            };
            (tag, c.value().trim_end_matches('\n').to_string())
        })
        .collect()
}

/// Byte offsets of the starts of the lines of `source`.
fn line_starts(source: Option<&str>) -> Vec<usize> {
    source.map_or_else(Vec::new, |s| {
        std::iter::once(0)
            .chain(s.match_indices('\n').map(|(i, _)| i + 1))
            .collect()
    })
}

/// The 1-based line of `sp` in the model's own file (the first loaded).
fn line_in(starts: &[usize], sp: Option<rnnc_syntax::Span>) -> Option<usize> {
    sp.filter(|sp| sp.file == rnnc_syntax::FileId(0) && !starts.is_empty())
        .map(|sp| starts.partition_point(|&st| st <= sp.start))
}

impl Model {
    /// The graph drawn as a standalone SVG file (`rnnc ir --format svg`); with
    /// `source`, each node's tooltip names its source line.
    pub fn svg(&self, source: Option<&str>) -> String {
        let starts = line_starts(source);
        rnnc_ir::to_svg(self.graph(), &|n| line_in(&starts, n.span), &|_, _| None)
    }

    /// Runs `pipeline` over the model one pass at a time and records each step;
    /// `source` is shown beside it.
    pub fn explore(&self, pipeline: &Opt, source: Option<String>) -> Result<Report, Error> {
        let mut g = self.graph().clone();
        let starts = line_starts(source.as_deref());
        let line = |sp: Option<rnnc_syntax::Span>| line_in(&starts, sp);
        let text = |g: &rnnc_ir::Graph| {
            let (t, spans) = g.text_with_spans();
            let lines: Vec<Option<usize>> = spans.into_iter().map(line).collect();
            let drawing = rnnc_ir::to_svg(g, &|n| line(n.span), &|_, l| {
                l.map(|l| format!("#line-{l}"))
            });
            (t, lines, drawing)
        };
        let first = text(&g);
        let mut before = first.0.clone();
        let mut steps = vec![Step::new("(lowered)", false, 0, &stats(&g), first, &before)];
        for pass in build(pipeline)? {
            let name = pass.name().to_string();
            let records = run_pipeline(
                &mut g,
                std::slice::from_ref(&pass),
                &Instrumentation::default(),
                &mut String::new(),
            )
            .map_err(|e| Error::Message(e.to_string()))?;
            let (ir, lines, drawing) = text(&g);
            let r = &records[0];
            let micros = r.time.as_micros() as u64;
            let step = Step::new(
                &name,
                r.changed,
                micros,
                &stats(&g),
                (ir.clone(), lines, drawing),
                &before,
            );
            steps.push(step);
            before = ir;
        }
        Ok(Report {
            model: g.name.clone(),
            origin: self.origin().to_string(),
            pipeline: match pipeline {
                Opt::Level(l) => format!("-O{l}"),
                Opt::Passes(p) => p.clone(),
            },
            source,
            steps,
            generated: None,
        })
    }
}
