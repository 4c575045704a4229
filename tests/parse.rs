//! Parses every model file and snapshots its canonical printed form.

use rnnc_syntax::{parse_file, FileId, SourceMap};

#[test]
fn every_model_parses_and_prints_stably() {
    insta::glob!("../models", "**/*.rnn", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let mut sources = SourceMap::new();
        let id = sources.add(path.display().to_string(), Some(path), text.clone());
        let ast = parse_file(&text, id).unwrap_or_else(|d| panic!("{}", d.render(&sources)));
        let printed = ast.to_string();
        // The printed form is itself valid source that reads back to the same text.
        let again = parse_file(&printed, FileId(0)).unwrap_or_else(|d| {
            let mut s = SourceMap::new();
            s.add("printed", None, printed.clone());
            panic!("{}", d.render(&s))
        });
        assert_eq!(again.to_string(), printed);
        insta::assert_snapshot!(printed);
    });
}
