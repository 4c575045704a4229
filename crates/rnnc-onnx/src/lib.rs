//! ONNX import: an ONNX model becomes `.rnn` source a person can read and change
//! (its recurrent nodes as cells written from the operator spec's equations, the
//! rest as the language's tensor ops), a safetensors file of its weights and the
//! hyperparameters. `rnnc import` writes the three; `rnnc run model.onnx` runs
//! them in one step.

mod constant;
mod error;
mod importer;
mod names;
mod node;
mod ops;
mod proto;
mod prune;
mod value;

pub use error::ImportError;
pub use ops::SUPPORTED;

use importer::Importer;
use ndarray::ArrayD;
use prost::Message;
use std::path::{Path, PathBuf};
use value::Dim;

/// The default-domain opsets import takes: 7 (the recurrent operators' first
/// version with today's attributes) to 28 (ONNX 1.23).
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=28;

/// What import made of a model.
#[derive(Debug)]
pub struct Imported {
    /// The model's name in the source (from the file name).
    pub name: String,
    pub source: String,
    /// Weights by key, as `rnnc run --weights` reads them.
    pub weights: Vec<(String, ArrayD<f32>)>,
    /// Hyperparameters of the model, with their values.
    pub config: Vec<(String, i64)>,
    /// (ONNX name, name in the source) of each graph input and output.
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
}

/// Imports the ONNX model in `bytes`; `file` names it in the source's header and
/// gives the model its name.
pub fn import(bytes: &[u8], file: &Path) -> Result<Imported, ImportError> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| {
        ImportError::new(format!("this is not an ONNX model (its protobuf does not decode: {e})"))
            .help("check that the file is complete and is a .onnx model, not external data or another format")
    })?;
    let Some(graph) = &model.graph else {
        return Err(ImportError::new(
            "this is not an ONNX model: it has no graph",
        ));
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| {
            ImportError::new("the model imports no opset of the default domain (ai.onnx)")
        })?;
    if !OPSETS.contains(&opset) {
        return Err(ImportError::new(format!(
            "the model uses opset {opset}; rnnc imports opsets {} to {}",
            OPSETS.start(),
            OPSETS.end()
        ))
        .help("convert it with onnx.version_converter.convert_version(model, 17)"));
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let mut imp = Importer::new(opset);
    // `model` (the usual file name) is a keyword: such a stem is capitalised.
    let stem = names::sanitize(stem);
    let name = if imp.names.claim(&stem, names::Use::Value) {
        stem
    } else {
        let mut c = stem.chars();
        let cap: String = c
            .next()
            .map(|f| f.to_ascii_uppercase())
            .into_iter()
            .chain(c)
            .collect();
        imp.names.fresh(&cap)
    };
    imp.graph(graph)?;
    let live = prune::live(&imp.body, &imp.decls);
    let source = assemble(&imp, &live, &name, &model, file)?;
    // Weights of dropped params and layers go too: `p` or `layer.W`.
    imp.weights
        .retain(|(k, _)| live.names.contains(k.split('.').next().unwrap_or(k)));
    imp.hparams.retain(|(h, _)| live.names.contains(h));
    let inputs = imp
        .inputs
        .iter()
        .map(|i| (i.onnx.clone(), i.name.clone()))
        .collect();
    Ok(Imported {
        name,
        source,
        weights: imp.weights,
        config: imp.hparams,
        inputs,
        outputs: imp.outputs,
    })
}

/// Which of B, T, S each symbolic dimension of the inputs is.
fn axis_letters(imp: &Importer) -> Result<Vec<(String, char)>, ImportError> {
    let mut binds = imp.binds.clone();
    let mut unbound: Vec<String> = Vec::new();
    for i in &imp.inputs {
        for d in &i.shape {
            if let Dim::Sym(s) = d {
                if !binds.iter().any(|(n, _)| n == s) && !unbound.contains(s) {
                    unbound.push(s.clone());
                }
            }
        }
    }
    // Dimensions no recurrence fixed: by their names, then in order.
    for s in &unbound {
        let l = s.to_ascii_lowercase();
        let guess = if l.contains("batch") || l == "n" {
            Some('B')
        } else if ["seq", "time", "len", "step"].iter().any(|w| l.contains(w)) {
            Some('T')
        } else {
            None
        };
        let free = |binds: &Vec<(String, char)>, c: char| !binds.iter().any(|(_, a)| *a == c);
        let letter = match guess {
            Some(c) if free(&binds, c) => c,
            _ => match ['B', 'T', 'S'].into_iter().find(|&c| free(&binds, c)) {
                Some(c) => c,
                None => {
                    return Err(ImportError::new(format!(
                        "the inputs have more than three run-time dimensions ({s} is the fourth); \
                         rnnc's are the batch B, the time T and a source length S"
                    )))
                }
            },
        };
        binds.push((s.clone(), letter));
    }
    Ok(binds)
}

fn assemble(
    imp: &Importer,
    live: &prune::Live,
    name: &str,
    model: &proto::ModelProto,
    file: &Path,
) -> Result<String, ImportError> {
    let letters = axis_letters(imp)?;
    let dim = |d: &Dim| match d {
        Dim::Fixed(n) => n.to_string(),
        Dim::Sym(s) => letters
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, c)| c.to_string())
            .expect("every input dimension has a letter"),
    };
    let mut s = String::new();
    let file_name = file
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("model.onnx");
    let producer = if model.producer_name.is_empty() {
        String::new()
    } else {
        format!(
            ", made by {} {}",
            model.producer_name, model.producer_version
        )
        .trim_end()
        .to_string()
    };
    s.push_str(&format!(
        "// Imported by `rnnc import` from {file_name} (opset {}{producer}).\n",
        imp.opset
    ));
    s.push_str("// Each statement's comment names the ONNX node it came from; the weights\n");
    s.push_str("// are in weights.safetensors under the names of the params and layers below.\n");
    let dims_note: Vec<String> = letters
        .iter()
        .filter(|(n, _)| !n.contains(':'))
        .map(|(n, c)| format!("\"{n}\" is {c}"))
        .collect();
    if !dims_note.is_empty() {
        s.push_str(&format!(
            "// Run-time dimensions: {}.\n",
            dims_note.join(", ")
        ));
    }
    for c in &imp.cells {
        s.push('\n');
        s.push_str(&c.text);
    }
    s.push('\n');
    let hparams: Vec<String> = imp
        .config_names()
        .filter(|h| live.names.contains(*h))
        .map(|h| format!("{h}: int"))
        .collect();
    s.push_str(&format!("model {name}({}) {{\n", hparams.join(", ")));
    for i in &imp.inputs {
        let dims: Vec<String> = i.shape.iter().map(dim).collect();
        let dt = if i.int { "i64" } else { "" };
        s.push_str(&format!(
            "    input {}: {dt}[{}]\n",
            i.name,
            dims.join(", ")
        ));
    }
    let decls: Vec<&String> = imp
        .decls
        .iter()
        .zip(&live.decls)
        .filter(|(_, k)| **k)
        .map(|(d, _)| d)
        .collect();
    if !decls.is_empty() {
        s.push('\n');
        for d in decls {
            s.push_str(&format!("    {d}\n"));
        }
    }
    s.push('\n');
    let body: Vec<&(String, String)> = imp
        .body
        .iter()
        .zip(&live.body)
        .filter(|(_, k)| **k)
        .map(|(b, _)| b)
        .collect();
    let width = body
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(t, _)| t.len())
        .filter(|&n| n <= 60)
        .max()
        .unwrap_or(0);
    // A node's comment goes on its first line.
    let mut last = "";
    for (t, c) in body {
        if c.is_empty() || c == last {
            s.push_str(&format!("    {t}\n"));
        } else if t.len() > 60 {
            s.push_str(&format!("    // {c}\n    {t}\n"));
        } else {
            s.push_str(&format!("    {t:width$}    // {c}\n"));
        }
        last = c;
    }
    s.push_str("}\n");
    Ok(s)
}

impl Imported {
    /// The hyperparameters as the YAML file `--config` reads.
    pub fn config_yaml(&self) -> String {
        if self.config.is_empty() {
            return "# The imported model has no hyperparameters.\n{}\n".into();
        }
        let mut s = String::from(
            "# Hyperparameters of the imported model (the recurrent nodes' hidden_size).\n",
        );
        for (k, v) in &self.config {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    }

    /// The weights as a safetensors file.
    pub fn weights_safetensors(&self) -> Vec<u8> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .weights
            .iter()
            .map(|(k, a)| {
                let data = a
                    .as_standard_layout()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect();
                (k.clone(), a.shape().to_vec(), data)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(k, shape, data)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    data,
                )
                .expect("the byte count matches the shape");
                (k.clone(), view)
            })
            .collect();
        safetensors::serialize(views, None).expect("f32 tensors serialise")
    }

    /// Writes `DIR/<name>.rnn`, `DIR/<name>.yaml` and `DIR/weights.safetensors`;
    /// returns their paths in that order.
    pub fn write(&self, dir: &Path) -> std::io::Result<[PathBuf; 3]> {
        std::fs::create_dir_all(dir)?;
        let rnn = dir.join(format!("{}.rnn", self.name));
        let yaml = dir.join(format!("{}.yaml", self.name));
        let weights = dir.join("weights.safetensors");
        std::fs::write(&rnn, &self.source)?;
        std::fs::write(&yaml, self.config_yaml())?;
        std::fs::write(&weights, self.weights_safetensors())?;
        Ok([rnn, yaml, weights])
    }

    /// The weights by key, as the library's `check_weights` takes them.
    pub fn weight_map(&self) -> std::collections::HashMap<String, ArrayD<f32>> {
        self.weights.iter().cloned().collect()
    }
}
