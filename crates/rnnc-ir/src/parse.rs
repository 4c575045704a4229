//! Reads the IR text form (see `print.rs`) back into a [`Graph`], so that passes
//! can be tested from text files and `print → parse → print` is the identity.

use crate::graph::{Graph, Value};
use crate::op::{ArgKind, BinaryOp, Op, Scan, UnaryOp};
use crate::types::{DType, Dim, TensorTy};
use std::collections::HashMap;

/// A text-form syntax error: 1-based line and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(String),
    Str(String),
    Val(usize),
    Punct(char),
}

struct Lexer {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

/// Parses a whole `graph NAME { … }` text.
pub fn parse_graph(text: &str) -> Result<Graph, ParseError> {
    let mut lx = Lexer {
        toks: lex(text)?,
        pos: 0,
    };
    lx.expect_ident("graph")?;
    let name = lx.ident()?;
    lx.expect_punct('{')?;
    let g = lx.graph_body(name, false)?;
    if lx.pos < lx.toks.len() {
        return Err(lx.err("text after the end of the graph"));
    }
    Ok(g)
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line_no = ln + 1;
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let err = |m: String| ParseError {
            line: line_no,
            message: m,
        };
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if c == '%' {
                let s: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                let n = s
                    .parse()
                    .map_err(|_| err("expected a value number after `%`".into()))?;
                i += 1 + s.len();
                out.push((Tok::Val(n), line_no));
            } else if c == '"' {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err("unterminated string".into())),
                        Some('"') => break,
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&e) => s.push(e),
                                None => return Err(err("unterminated string".into())),
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push((Tok::Str(s), line_no));
            } else if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_alphanumeric()))
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                out.push((Tok::Num(chars[start..i].iter().collect()), line_no));
            } else if c.is_alphabetic() || c == '_' {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), line_no));
            } else if "{}[]=,:".contains(c) {
                out.push((Tok::Punct(c), line_no));
                i += 1;
            } else {
                return Err(err(format!("unexpected character `{c}`")));
            }
        }
    }
    Ok(out)
}

impl Lexer {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|t| t.1)
            .unwrap_or(1)
    }

    fn err(&self, m: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line(),
            message: m.into(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn next(&mut self) -> Result<Tok, ParseError> {
        let t = self
            .toks
            .get(self.pos)
            .map(|t| t.0.clone())
            .ok_or_else(|| self.err("unexpected end of text"))?;
        self.pos += 1;
        Ok(t)
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn expect_punct(&mut self, c: char) -> Result<(), ParseError> {
        match self.next()? {
            Tok::Punct(p) if p == c => Ok(()),
            t => Err(self.err(format!("expected `{c}`, found {t:?}"))),
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.next()? {
            Tok::Ident(s) => Ok(s),
            t => Err(self.err(format!("expected a name, found {t:?}"))),
        }
    }

    fn expect_ident(&mut self, word: &str) -> Result<(), ParseError> {
        match self.next()? {
            Tok::Ident(s) if s == word => Ok(()),
            t => Err(self.err(format!("expected `{word}`, found {t:?}"))),
        }
    }

    fn value_ref(&mut self, names: &HashMap<usize, Value>) -> Result<Value, ParseError> {
        match self.next()? {
            Tok::Val(n) => names
                .get(&n)
                .copied()
                .ok_or_else(|| self.err(format!("%{n} is used before it is defined"))),
            t => Err(self.err(format!("expected a value `%N`, found {t:?}"))),
        }
    }

    fn value_list(&mut self, names: &HashMap<usize, Value>) -> Result<Vec<Value>, ParseError> {
        let mut vs = vec![self.value_ref(names)?];
        while self.is_punct(',') {
            self.pos += 1;
            vs.push(self.value_ref(names)?);
        }
        Ok(vs)
    }

    /// Lines up to the closing `}`. A scan body also takes `next …` and `emit …`.
    fn graph_body(&mut self, name: String, scan_body: bool) -> Result<Graph, ParseError> {
        let mut g = Graph::new(name);
        let mut names: HashMap<usize, Value> = HashMap::new();
        loop {
            match self.peek() {
                Some(Tok::Punct('}')) => {
                    self.pos += 1;
                    return Ok(g);
                }
                Some(Tok::Ident(w)) if w == "output" && !scan_body => {
                    self.pos += 1;
                    let label = match self.next()? {
                        Tok::Str(s) => s,
                        t => {
                            return Err(
                                self.err(format!("expected an output name string, found {t:?}"))
                            )
                        }
                    };
                    let v = self.value_ref(&names)?;
                    g.outputs.push((label, v));
                }
                Some(Tok::Ident(w))
                    if (w == "next" || w == "emit" || w == "yield") && scan_body =>
                {
                    let label = w.clone();
                    self.pos += 1;
                    for v in self.value_list(&names)? {
                        g.outputs.push((label.clone(), v));
                    }
                }
                Some(Tok::Val(_)) => self.node_line(&mut g, &mut names)?,
                None => return Err(self.err("unexpected end of text: missing `}`")),
                Some(t) => return Err(self.err(format!("unexpected {t:?} at the start of a line"))),
            }
        }
    }

    fn node_line(
        &mut self,
        g: &mut Graph,
        names: &mut HashMap<usize, Value>,
    ) -> Result<(), ParseError> {
        let start_line = self.line();
        let mut results = Vec::new();
        loop {
            match self.next()? {
                Tok::Val(n) => results.push(n),
                t => return Err(self.err(format!("expected a result `%N`, found {t:?}"))),
            }
            if self.is_punct(',') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect_punct('=')?;
        let opname = self.ident()?;
        let mut attrs: Vec<(String, Tok)> = Vec::new();
        while let Some(Tok::Ident(_)) = self.peek() {
            let k = self.ident()?;
            self.expect_punct('=')?;
            attrs.push((k, self.next()?));
        }
        let operands = if matches!(self.peek(), Some(Tok::Val(_))) {
            self.value_list(names)?
        } else {
            Vec::new()
        };
        self.expect_punct(':')?;
        let mut tys = vec![self.tensor_ty()?];
        while self.is_punct(',') {
            self.pos += 1;
            tys.push(self.tensor_ty()?);
        }
        let body = if self.is_punct('{') {
            self.pos += 1;
            Some(self.graph_body("body".into(), true)?)
        } else {
            None
        };
        // An unrolled scan's one-step remainder body: `} tail { … }`.
        let tail = if self.peek() == Some(&Tok::Ident("tail".into())) {
            self.pos += 1;
            self.expect_punct('{')?;
            Some(self.graph_body("tail".into(), true)?)
        } else {
            None
        };
        // Errors about the op itself point at its line, not past its body.
        let op = self
            .make_op(&opname, &attrs, body, tail)
            .map_err(|e| ParseError {
                line: start_line,
                ..e
            })?;
        if results.len() != tys.len() {
            return Err(self.err(format!("{} results but {} types", results.len(), tys.len())));
        }
        let id = g.add_node(op, &operands, tys);
        for (r, n) in results.into_iter().enumerate() {
            if names.insert(n, Value::new(id, r as u32)).is_some() {
                return Err(self.err(format!("%{n} is defined twice")));
            }
        }
        Ok(())
    }

    fn tensor_ty(&mut self) -> Result<TensorTy, ParseError> {
        let dtype = match self.ident()?.as_str() {
            "f32" => DType::F32,
            "i64" => DType::I64,
            d => return Err(self.err(format!("unknown dtype `{d}`"))),
        };
        self.expect_punct('[')?;
        let mut dims = Vec::new();
        while !self.is_punct(']') {
            dims.push(match self.next()? {
                Tok::Ident(s) if s == "B" => Dim::Batch,
                Tok::Ident(s) if s == "T" => Dim::Time,
                Tok::Ident(s) if s == "S" => Dim::Source,
                Tok::Num(n) => {
                    Dim::Fixed(n.parse().map_err(|_| self.err(format!("bad dim `{n}`")))?)
                }
                t => return Err(self.err(format!("expected a dim, found {t:?}"))),
            });
            if self.is_punct(',') {
                self.pos += 1;
            }
        }
        self.pos += 1;
        Ok(TensorTy { dtype, dims })
    }

    fn make_op(
        &self,
        name: &str,
        attrs: &[(String, Tok)],
        body: Option<Graph>,
        tail: Option<Graph>,
    ) -> Result<Op, ParseError> {
        let get = |k: &str| -> Result<&Tok, ParseError> {
            attrs
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v)
                .ok_or_else(|| self.err(format!("`{name}` needs the attribute `{k}`")))
        };
        let num = |k: &str| -> Result<i64, ParseError> {
            match get(k)? {
                Tok::Num(n) => n
                    .parse()
                    .map_err(|_| self.err(format!("`{k}` must be an integer"))),
                _ => Err(self.err(format!("`{k}` must be an integer"))),
            }
        };
        let usize_ = |k: &str| -> Result<usize, ParseError> {
            usize::try_from(num(k)?).map_err(|_| self.err(format!("`{k}` must not be negative")))
        };
        // An attribute the printer leaves out at its default value.
        let usize_or = |k: &str, default: usize| -> Result<usize, ParseError> {
            match attrs.iter().any(|(name, _)| name == k) {
                true => usize_(k),
                false => Ok(default),
            }
        };
        let f32_ = |k: &str| -> Result<f32, ParseError> {
            match get(k)? {
                Tok::Num(n) | Tok::Ident(n) => n
                    .parse()
                    .map_err(|_| self.err(format!("`{k}` must be a number"))),
                _ => Err(self.err(format!("`{k}` must be a number"))),
            }
        };
        let bool_ = |k: &str| -> Result<bool, ParseError> {
            match get(k)? {
                Tok::Ident(b) if b == "true" => Ok(true),
                Tok::Ident(b) if b == "false" => Ok(false),
                _ => Err(self.err(format!("`{k}` must be true or false"))),
            }
        };
        let string = |k: &str| -> Result<String, ParseError> {
            match get(k)? {
                Tok::Str(s) => Ok(s.clone()),
                _ => Err(self.err(format!("`{k}` must be a string"))),
            }
        };
        let op = match name {
            "input" => Op::Input {
                name: string("name")?,
                zeros: bool_("zeros")?,
            },
            "weight" => Op::Weight {
                key: string("key")?,
            },
            "const" => Op::Const(f32_("value")?),
            "zeros" => Op::Zeros,
            "neg" => Op::Unary(UnaryOp::Neg),
            "sigmoid" => Op::Unary(UnaryOp::Sigmoid),
            "tanh" => Op::Unary(UnaryOp::Tanh),
            "relu" => Op::Unary(UnaryOp::Relu),
            "exp" => Op::Unary(UnaryOp::Exp),
            "log" => Op::Unary(UnaryOp::Log),
            "step" => Op::Unary(UnaryOp::Step),
            "add" => Op::Binary(BinaryOp::Add),
            "sub" => Op::Binary(BinaryOp::Sub),
            "mul" => Op::Binary(BinaryOp::Mul),
            "div" => Op::Binary(BinaryOp::Div),
            "linear" => Op::Linear,
            "matmul" => Op::MatMul,
            "embedding" => Op::Embedding,
            "concat" => Op::Concat {
                axis: usize_("axis")?,
            },
            "stack" => Op::Stack {
                axis: usize_("axis")?,
            },
            "flip" => Op::Flip {
                axis: usize_("axis")?,
            },
            "softmax" => Op::Softmax {
                axis: usize_("axis")?,
            },
            "log_softmax" => Op::LogSoftmax {
                axis: usize_("axis")?,
            },
            "slice" => Op::Slice {
                axis: usize_("axis")?,
                start: usize_("start")?,
                end: usize_("end")?,
            },
            "index" => Op::Index {
                axis: usize_("axis")?,
                index: num("index")?,
            },
            "transpose" => Op::Transpose {
                a: usize_("a")?,
                b: usize_("b")?,
            },
            "layer_norm" => Op::LayerNorm { eps: f32_("eps")? },
            "seq" => Op::Arg {
                kind: ArgKind::Seq,
                index: usize_("index")?,
            },
            "state" => Op::Arg {
                kind: ArgKind::State,
                index: usize_("index")?,
            },
            "operand" => Op::Arg {
                kind: ArgKind::Operand,
                index: usize_("index")?,
            },
            "memory" => Op::Arg {
                kind: ArgKind::Memory,
                index: usize_("index")?,
            },
            "unsqueeze" => Op::Unsqueeze {
                axis: usize_("axis")?,
            },
            "squeeze" => Op::Squeeze {
                axis: usize_("axis")?,
            },
            "sequence_mask" => Op::SequenceMask,
            "greedy_decode" | "beam_search" => {
                let body =
                    body.ok_or_else(|| self.err(format!("`{name}` needs a `{{ … }}` body")))?;
                if tail.is_some() {
                    return Err(self.err(format!("`{name}` has no tail")));
                }
                let beam = if name == "beam_search" {
                    Some(usize_("width")?)
                } else {
                    None
                };
                let decode = crate::op::Decode {
                    n_states: usize_("states")?,
                    n_memory: usize_("memory")?,
                    bos: num("bos")?,
                    eos: num("eos")?,
                    pad: num("pad")?,
                    max_len: usize_("max_len")?,
                    beam,
                    body: Box::new(body),
                };
                return Ok(Op::Decode(decode));
            }
            "fused" => {
                let body = body.ok_or_else(|| self.err("`fused` needs a `{ … }` body"))?;
                if tail.is_some() {
                    return Err(self.err("`fused` has no tail"));
                }
                return Ok(Op::Fused(crate::op::Fused {
                    body: Box::new(body),
                }));
            }
            "scan" => {
                let body = body.ok_or_else(|| self.err("`scan` needs a `{ … }` body"))?;
                let step = usize_or("step", 1)?;
                if (step > 1) != tail.is_some() {
                    return Err(self.err(
                        "a scan with step > 1 has a `tail { … }` body, and only such a scan",
                    ));
                }
                let scan = Scan {
                    reverse: bool_("reverse")?,
                    n_seqs: usize_("seqs")?,
                    n_states: usize_("states")?,
                    n_memory: usize_or("memory", 0)?,
                    step,
                    body: Box::new(body),
                    tail: tail.map(Box::new),
                };
                let n_next = scan
                    .body
                    .outputs
                    .iter()
                    .filter(|(l, _)| l == "next")
                    .count();
                if n_next != scan.n_states {
                    return Err(self.err(format!(
                        "scan has {} states but its body yields {n_next} `next` values",
                        scan.n_states
                    )));
                }
                return Ok(Op::Scan(scan));
            }
            other => return Err(self.err(format!("unknown op `{other}`"))),
        };
        if body.is_some() || tail.is_some() {
            return Err(self.err(format!("`{name}` takes no body")));
        }
        Ok(op)
    }
}
