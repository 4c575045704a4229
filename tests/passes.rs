//! File tests for every pass: `tests/passes/<pass>/*.rir` hold IR cases separated by
//! `// -----`, each run through that one pass (verified after; a `// pipeline:` line
//! gives it options), and snapshotted with whether the pass changed it: cases where
//! it fires and where it must not.

use rnnc_opt::{run_pipeline, Opt};

#[test]
fn pass_file_tests() {
    insta::glob!("passes/*/*.rir", |path| {
        let pass = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let mut out = String::new();
        for (i, case) in text.split("// -----\n").enumerate() {
            let comment: Vec<&str> = case.lines().filter(|l| l.starts_with("//")).collect();
            let ir: String = case
                .lines()
                .filter(|l| !l.starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let mut g = rnnc_ir::parse_graph(&ir)
                .unwrap_or_else(|e| panic!("{} case {i}: {e}", path.display()));
            rnnc_ir::verify(&g)
                .unwrap_or_else(|e| panic!("{} case {i} does not verify: {e:?}", path.display()));
            // `// pipeline: unroll-time{factor=2}` runs the pass with options.
            let pipeline = comment
                .iter()
                .find_map(|c| c.strip_prefix("// pipeline: "))
                .map(str::to_string)
                .unwrap_or(pass.clone());
            assert!(
                pipeline.starts_with(&pass),
                "{}: a case runs its own pass",
                path.display()
            );
            let passes = Opt::Passes(pipeline).build().unwrap();
            let records = run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                .unwrap_or_else(|e| panic!("{} case {i}: {e}", path.display()));
            let fires = comment.first().is_some_and(|c| c.starts_with("// Fires"));
            assert_eq!(
                records[0].changed,
                fires,
                "{} case {i}: {}",
                path.display(),
                comment.join(" ")
            );
            out.push_str(&format!(
                "{}\n// changed: {}\n{g}",
                comment.join("\n"),
                records[0].changed
            ));
            if i + 1 < text.split("// -----\n").count() {
                out.push_str("// -----\n");
            }
        }
        insta::assert_snapshot!(out);
    });
}

/// docs/passes.md shows real printer output: each pass's `before` block, run through
/// that pass, prints as its `after` block, and the `rnnc passes` table is current.
#[test]
fn passes_doc_examples_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/passes.md")).unwrap();
    let mut pass = String::new();
    let mut block: Option<(String, String)> = None;
    let mut before = String::new();
    let mut checked = 0;
    let mut table = String::new();
    for line in doc.lines() {
        if let Some(name) = line.strip_prefix("## `").and_then(|l| l.strip_suffix('`')) {
            pass = name.to_string();
        } else if let Some(fence) = line.strip_prefix("```") {
            match block.take() {
                None => block = Some((fence.to_string(), String::new())),
                Some((kind, text)) => match kind.as_str() {
                    "rir,before" => before = text,
                    "rir,after" => {
                        let mut g = rnnc_ir::parse_graph(&before).unwrap();
                        let passes = Opt::Passes(pass.clone()).build().unwrap();
                        run_pipeline(&mut g, &passes, &Default::default(), &mut String::new())
                            .unwrap();
                        assert_eq!(
                            g.to_string(),
                            text,
                            "docs/passes.md: the `{pass}` example is stale"
                        );
                        checked += 1;
                    }
                    "text" if table.is_empty() => table = text,
                    _ => {}
                },
            }
        } else if let Some((_, text)) = &mut block {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert_eq!(checked, rnnc_opt::passes::ALL.len(), "one example per pass");
    // Through the library, as a program using rnnc would ask for it.
    let model = rnnc::Model::load(
        root.join("models/lstm_seed_equations.rnn"),
        &rnnc::Params::new()
            .set("input_size", 12)
            .set("hidden_size", 16),
    )
    .unwrap();
    let now = model.passes(&rnnc::Opt::default()).unwrap();
    assert_eq!(
        now, table,
        "docs/passes.md: the `rnnc passes` table is stale"
    );
}
