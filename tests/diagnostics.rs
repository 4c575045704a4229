//! Malformed model files and the diagnostics rnnc renders for them, snapshotted.
//! A file may start with `// params: k=v …` to pass hyperparameters.

use rnnc_cli::args::ModelArgs;
use std::path::PathBuf;

#[test]
fn malformed_models_render_diagnostics() {
    insta::glob!("diagnostics/*.rnn", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let params = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// params:"))
            .map(|p| p.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        // A relative path keeps the snapshots free of this machine's directories.
        let rel = PathBuf::from("tests/diagnostics").join(path.file_name().unwrap());
        let err = match rnnc_cli::compile(&ModelArgs {
            model: rel,
            params,
            config: None,
        }) {
            Ok(_) => panic!("{} compiled, but it is meant to be wrong", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("error"), "{err}");
        insta::assert_snapshot!(err);
    });
}
