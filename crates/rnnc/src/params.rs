//! Hyperparameter values from `key=value` pairs (`--param k=v`, a Python keyword)
//! and a YAML file (`--config`), typed by the entry model's declarations so that
//! `hidden_size=16` becomes an int.

use crate::error::{msg, Error};
use rnnc_ir::lower::HValue;
use rnnc_syntax::ast::{Def, HType};
use std::path::{Path, PathBuf};

/// A model's hyperparameters as given: `key=value` pairs over an optional YAML
/// file, typed when the model is loaded (an unknown key is an error then, with
/// the list of those the model takes).
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<String>,
    config: Option<PathBuf>,
    /// The pairs came from `--param` flags (the messages name the flag).
    flags: bool,
}

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// `--param` flags (each `KEY=VALUE`) over `--config`.
    pub fn from_flags(pairs: &[String], config: Option<&Path>) -> Self {
        Params {
            pairs: pairs.to_vec(),
            config: config.map(Path::to_path_buf),
            flags: true,
        }
    }

    /// Sets `key` (a later value wins); the value is read by the declared type:
    /// `256`, `0.5`, `true`, `greedy`.
    pub fn set(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.pairs.push(format!("{key}={value}"));
        self
    }

    /// A YAML mapping of hyperparameters under the pairs.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }
}

/// Types `given` by `entry`'s declarations: the config file first, then the
/// pairs over it.
pub fn collect(entry: &Def, given: &Params) -> Result<Vec<(String, HValue)>, Error> {
    let (params, config) = (&given.pairs, given.config.as_deref());
    let label = |p: &str| {
        if given.flags {
            format!("--param {p}")
        } else {
            p.to_string()
        }
    };
    let mut out: Vec<(String, HValue)> = Vec::new();
    let mut set = |k: String, v: HValue| {
        out.retain(|(name, _)| *name != k);
        out.push((k, v));
    };
    if let Some(path) = config {
        for (k, raw) in read_config(path)? {
            let v = typed(entry, &k, &raw)
                .map_err(|m| Error::Message(format!("{}: {m}", path.display())))?;
            set(k, v);
        }
    }
    for p in params {
        let Some((k, raw)) = p.split_once('=') else {
            return msg(format!(
                "{}: expected KEY=VALUE, e.g. --param hidden_size=256",
                label(p)
            ));
        };
        let k = k.trim().to_string();
        if k.is_empty() {
            return msg(format!("{}: the key is empty", label(p)));
        }
        let v = typed(entry, &k, raw.trim())
            .map_err(|m| Error::Message(format!("{}: {m}", label(p))))?;
        set(k, v);
    }
    Ok(out)
}

/// Parses a raw value by the declared type. Unknown keys pass through as strings;
/// lowering reports them with the list of hyperparameters the model takes.
fn typed(entry: &Def, key: &str, raw: &str) -> Result<HValue, String> {
    let Some(h) = entry.hparams.iter().find(|h| h.name.name == key) else {
        return Ok(HValue::Str(raw.to_string()));
    };
    let bad = || {
        format!(
            "`{key}` is {} {}, not `{raw}`",
            if h.ty == HType::Int { "an" } else { "a" },
            h.ty.as_str()
        )
    };
    match h.ty {
        HType::Int => raw.parse().map(HValue::Int).map_err(|_| bad()),
        HType::Float => match raw.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(HValue::Float(f)),
            _ => Err(bad()),
        },
        // PyTorch users write True/False; YAML and shells write true/false.
        HType::Bool => match raw {
            "true" | "True" | "1" => Ok(HValue::Bool(true)),
            "false" | "False" | "0" => Ok(HValue::Bool(false)),
            _ => Err(bad()),
        },
        HType::Str => Ok(HValue::Str(
            raw.trim_matches(|c| c == '"' || c == '\'').to_string(),
        )),
    }
}

/// Reads a flat YAML mapping of scalars as raw text values.
fn read_config(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Message(format!("cannot read config `{}`: {e}", path.display())))?;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::Message(format!("{}: not valid YAML: {e}", path.display())))?;
    let map = match doc {
        serde_yaml_ng::Value::Mapping(m) => m,
        serde_yaml_ng::Value::Null => return Ok(Vec::new()),
        _ => {
            return msg(format!(
                "{}: expected a mapping of hyperparameters, e.g. `hidden_size: 256`",
                path.display()
            ))
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let key = match k {
            serde_yaml_ng::Value::String(s) => s,
            other => {
                return msg(format!(
                    "{}: keys must be hyperparameter names, found {other:?}",
                    path.display()
                ))
            }
        };
        let raw = match v {
            serde_yaml_ng::Value::Bool(b) => b.to_string(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::String(s) => s,
            _ => {
                return msg(format!(
                    "{}: `{key}` must be a number, true/false or a string",
                    path.display()
                ))
            }
        };
        out.push((key, raw));
    }
    Ok(out)
}
