//! Reading a node's attributes with ONNX's defaults and clear errors.

use crate::constant::Const;
use crate::error::{ImportError, Result};
use crate::proto::{AttributeProto, NodeProto};

pub struct Node<'a> {
    pub proto: &'a NodeProto,
}

impl<'a> Node<'a> {
    pub fn name(&self) -> &str {
        &self.proto.name
    }

    pub fn op(&self) -> &str {
        &self.proto.op_type
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    pub fn float(&self, name: &str) -> Option<f32> {
        self.attr(name).map(|a| a.f)
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s.clone())
                .map(Some)
                .map_err(|_| ImportError::new(format!("attribute `{name}` is not UTF-8"))),
        }
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    pub fn floats(&self, name: &str) -> Vec<f32> {
        self.attr(name).map_or_else(Vec::new, |a| a.floats.clone())
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        let Some(a) = self.attr(name) else {
            return Ok(Vec::new());
        };
        a.strings
            .iter()
            .map(|s| {
                String::from_utf8(s.clone())
                    .map_err(|_| ImportError::new(format!("attribute `{name}` is not UTF-8")))
            })
            .collect()
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Const>> {
        match self.attr(name).and_then(|a| a.t.as_ref()) {
            None => Ok(None),
            Some(t) => Const::from_proto(t, &format!("attribute `{name}`")).map(Some),
        }
    }

    /// The name of input `i`, None where it is left out (absent or "").
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.proto
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The name of output `i`, None where it is left out.
    pub fn output(&self, i: usize) -> Option<&'a str> {
        self.proto
            .output
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}
