//! Pipelines: by level (`-O0`, `-O1`, `-O2`) or as text (`fuse-gates,unroll-time{factor=4}`).

use crate::passes;
use crate::Pass;

/// One pass named in a pipeline, with its `{key=value}` options.
#[derive(Clone, Debug, PartialEq)]
pub struct PassSpec {
    pub name: String,
    pub options: Vec<(String, String)>,
}

impl std::fmt::Display for PassSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.options.is_empty() {
            let o: Vec<String> = self
                .options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "{{{}}}", o.join(","))?;
        }
        Ok(())
    }
}

/// What the user asked for: a level, or an explicit pipeline.
#[derive(Clone, Debug, PartialEq)]
pub enum Opt {
    Level(u8),
    Passes(String),
}

impl Default for Opt {
    fn default() -> Self {
        Opt::Level(2)
    }
}

impl Opt {
    /// The pass specs of this pipeline.
    pub fn specs(&self) -> Result<Vec<PassSpec>, String> {
        match self {
            Opt::Level(0) => Ok(Vec::new()),
            Opt::Level(1) => parse_pipeline("canonicalize,fold-constants,cse,dce"),
            Opt::Level(2) => parse_pipeline(
                "canonicalize,fold-constants,split-concat-matmul,fuse-gates,fold-biases,hoist-input-projection,hoist-memory,cse,dce,fuse-elementwise",
            ),
            Opt::Level(n) => Err(format!("-O{n}: the levels are -O0, -O1 and -O2")),
            Opt::Passes(text) => parse_pipeline(text),
        }
    }

    /// Builds the passes, checking every name and option.
    pub fn build(&self) -> Result<Vec<Box<dyn Pass>>, String> {
        self.specs()?.iter().map(passes::build).collect()
    }
}

/// Parses `a,b{k=v,k2=v2},c`.
pub fn parse_pipeline(text: &str) -> Result<Vec<PassSpec>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = rest.find([',', '{']).unwrap_or(rest.len());
        let name = rest[..end].trim().to_string();
        if name.is_empty() {
            return Err(format!("--passes {text}: a pass name is empty"));
        }
        rest = &rest[end..];
        let mut options = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let close = r
                .find('}')
                .ok_or_else(|| format!("--passes {text}: `{{` after `{name}` is not closed"))?;
            for kv in r[..close].split(',').filter(|s| !s.trim().is_empty()) {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    format!("--passes {text}: option `{kv}` of `{name}` is not key=value")
                })?;
                options.push((k.trim().to_string(), v.trim().to_string()));
            }
            rest = &r[close + 1..];
        }
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("--passes {text}: expected `,` before `{rest}`"));
        }
        out.push(PassSpec { name, options });
    }
    Ok(out)
}
