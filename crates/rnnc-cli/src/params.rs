//! Hyperparameter values from `--param k=v` and `--config file.yaml`, typed by the
//! entry model's declarations so that `hidden_size=16` becomes an int.

use crate::error::{msg, CliError};
use rnnc_ir::lower::HValue;
use rnnc_syntax::ast::{Def, HType};
use std::path::Path;

/// Collects the hyperparameters: the config file first, then `--param` over it.
pub fn collect(
    entry: &Def,
    params: &[String],
    config: Option<&Path>,
) -> Result<Vec<(String, HValue)>, CliError> {
    let mut out: Vec<(String, HValue)> = Vec::new();
    let mut set = |k: String, v: HValue| {
        out.retain(|(name, _)| *name != k);
        out.push((k, v));
    };
    if let Some(path) = config {
        for (k, raw) in read_config(path)? {
            let v = typed(entry, &k, &raw)
                .map_err(|m| CliError::Message(format!("{}: {m}", path.display())))?;
            set(k, v);
        }
    }
    for p in params {
        let Some((k, raw)) = p.split_once('=') else {
            return msg(format!(
                "--param {p}: expected KEY=VALUE, e.g. --param hidden_size=256"
            ));
        };
        let k = k.trim().to_string();
        if k.is_empty() {
            return msg(format!("--param {p}: the key is empty"));
        }
        let v = typed(entry, &k, raw.trim())
            .map_err(|m| CliError::Message(format!("--param {p}: {m}")))?;
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
fn read_config(path: &Path) -> Result<Vec<(String, String)>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Message(format!("cannot read config `{}`: {e}", path.display())))?;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| CliError::Message(format!("{}: not valid YAML: {e}", path.display())))?;
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
