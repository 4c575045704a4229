//! What import reports: one message naming the node (its name and op type) where it
//! stopped, and what to do instead when there is something to do.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct ImportError {
    pub message: String,
    /// The node import was converting: (name, op type).
    pub node: Option<(String, String)>,
    /// What the user can do about it.
    pub help: Option<String>,
}

impl ImportError {
    pub fn new(message: impl Into<String>) -> Self {
        ImportError {
            message: message.into(),
            node: None,
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Names the node, unless an inner step already did.
    pub fn at(mut self, name: &str, op_type: &str) -> Self {
        if self.node.is_none() {
            self.node = Some((name.to_string(), op_type.to_string()));
        }
        self
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some((name, op)) if name.is_empty() => write!(f, "node ({op}): ")?,
            Some((name, op)) => write!(f, "node \"{name}\" ({op}): ")?,
            None => {}
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportError {}

pub type Result<T> = std::result::Result<T, ImportError>;
