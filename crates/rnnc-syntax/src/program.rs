//! Loads a model file and, transitively, the files it imports; finds the entry model.
//!
//! Imports resolve relative to the importing file. `std/…` files that are not on
//! disk there come from the copy of `models/std/` built into rnnc, so a model
//! written anywhere can `import "std/lstm.rnn"`.

use crate::ast::{Def, DefKind, File, Item};
use crate::diagnostic::Diagnostic;
use crate::parse::parse_file;
use crate::source::{FileId, SourceMap};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The standard library of cells and layers, as shipped in `models/std/`.
pub const STD_FILES: &[(&str, &str)] = &[
    (
        "std/attention.rnn",
        include_str!("../../../models/std/attention.rnn"),
    ),
    ("std/gru.rnn", include_str!("../../../models/std/gru.rnn")),
    ("std/lstm.rnn", include_str!("../../../models/std/lstm.rnn")),
    ("std/nn.rnn", include_str!("../../../models/std/nn.rnn")),
    ("std/rnn.rnn", include_str!("../../../models/std/rnn.rnn")),
];

/// Every definition visible to the entry file, by name.
#[derive(Debug)]
pub struct Program {
    pub defs: HashMap<String, Def>,
    /// The model `rnnc` runs: the last `model` defined in the file it was given.
    pub entry: Def,
}

/// Loads `path` and its imports into `sources`. Diagnostics point into `sources`.
pub fn load_program(path: &Path, sources: &mut SourceMap) -> Result<Program, Vec<Diagnostic>> {
    let text = read_source(path)?;
    let root = sources.add(path.display().to_string(), Some(path), text);
    load_root(root, sources)
}

/// Loads a program whose root file is already in `sources` (for tests and tools).
pub fn load_root(root: FileId, sources: &mut SourceMap) -> Result<Program, Vec<Diagnostic>> {
    let mut loader = Loader {
        seen: HashMap::new(),
        defs: HashMap::new(),
        diags: Vec::new(),
    };
    let root_ast = loader.load(root, sources);
    if !loader.diags.is_empty() {
        return Err(loader.diags);
    }
    let root_ast = root_ast.expect("no diagnostics means the root parsed");
    let entry = root_ast.items.iter().rev().find_map(|it| match it {
        Item::Def(d) if d.kind == DefKind::Model => Some(d.clone()),
        _ => None,
    });
    match entry {
        Some(entry) => Ok(Program {
            defs: loader.defs,
            entry,
        }),
        None => {
            let end = sources.file(root).text.len();
            Err(vec![Diagnostic::error(format!(
                "`{}` defines no model to run",
                sources.file(root).name
            ))
            .with_label(
                crate::Span::new(root, end, end),
                "the file ends without a `model`",
            )
            .with_note(
                "add `model Name(…) { input …  output … }`; rnnc runs the last model in the file",
            )])
        }
    }
}

fn read_source(path: &Path) -> Result<String, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::error(format!(
            "cannot read `{}`: {e}",
            path.display()
        ))]
    })?;
    String::from_utf8(bytes).map_err(|e| {
        vec![Diagnostic::error(format!(
            "`{}` is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))]
    })
}

struct Loader {
    /// Canonical name of every loaded file, so that a file imported twice loads once.
    seen: HashMap<String, FileId>,
    defs: HashMap<String, Def>,
    diags: Vec<Diagnostic>,
}

impl Loader {
    fn load(&mut self, id: FileId, sources: &mut SourceMap) -> Option<File> {
        let key = canonical_key(sources, id);
        self.seen.insert(key, id);
        let ast = match parse_file(&sources.file(id).text, id) {
            Ok(a) => a,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        for item in &ast.items {
            match item {
                Item::Import(im) => {
                    let Some((name, path, text)) = self.resolve(&im.path, id, sources) else {
                        self.diags.push(
                            Diagnostic::error(format!("cannot find the imported file \"{}\"", im.path))
                                .with_label(im.span, "imported here")
                                .with_note("imports are relative to the importing file; `std/…` names the standard cells"),
                        );
                        continue;
                    };
                    let key = path
                        .as_ref()
                        .and_then(|p| p.canonicalize().ok())
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| name.clone());
                    if self.seen.contains_key(&key) {
                        continue;
                    }
                    match text {
                        Ok(text) => {
                            let fid = sources.add(name, path.as_deref(), text);
                            self.load(fid, sources);
                        }
                        Err(mut d) => {
                            for x in &mut d {
                                *x = x.clone().with_label(im.span, "imported here");
                            }
                            self.diags.extend(d)
                        }
                    }
                }
                Item::Def(d) => {
                    if let Some(prev) = self.defs.get(&d.name.name) {
                        self.diags.push(
                            Diagnostic::error(format!("`{}` is defined twice", d.name.name))
                                .with_label(d.name.span, "defined again here")
                                .with_label(prev.name.span, "first defined here"),
                        );
                    } else {
                        self.defs.insert(d.name.name.clone(), d.clone());
                    }
                }
            }
        }
        Some(ast)
    }

    /// Finds an import: next to the importing file, else in the built-in std.
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        import: &str,
        from: FileId,
        sources: &SourceMap,
    ) -> Option<(String, Option<PathBuf>, Result<String, Vec<Diagnostic>>)> {
        if let Some(dir) = sources.file(from).path.as_deref().and_then(Path::parent) {
            let mut candidates = vec![dir.join(import)];
            // A std file on disk importing `std/…` means its sibling, the same file
            // the model that imported it reads (not a second copy of it).
            if import.starts_with("std/") && dir.file_name().is_some_and(|n| n == "std") {
                if let Some(root) = dir.parent() {
                    candidates.insert(0, root.join(import));
                }
            }
            if let Some(p) = candidates.into_iter().find(|p| p.is_file()) {
                let text = read_source(&p);
                return Some((p.display().to_string(), Some(p), text));
            }
        }
        STD_FILES
            .iter()
            .find(|(n, _)| *n == import)
            .map(|(n, t)| (format!("<builtin>/{n}"), None, Ok(t.to_string())))
    }
}

fn canonical_key(sources: &SourceMap, id: FileId) -> String {
    let f = sources.file(id);
    f.path
        .as_ref()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| f.name.clone())
}
