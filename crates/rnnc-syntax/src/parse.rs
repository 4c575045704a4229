//! pest pairs → AST, in one module, so that pest never escapes this crate.

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/rnn.pest"]
struct RnnParser;

/// Source files larger than this are refused: no model needs it, and it bounds the
/// parser's work and the depth of what it builds.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Brackets nested deeper than this are refused before parsing, so that the
/// recursive-descent parser cannot exhaust the stack.
pub const MAX_NESTING: usize = 128;
/// Operators and operands one expression may chain (`a + b + …`) without brackets.
pub const MAX_EXPR_TERMS: usize = 1024;

/// Parses one source file into an AST, or returns the first syntax error.
pub fn parse_file(text: &str, file: FileId) -> Result<File, Diagnostic> {
    check_limits(text, file)?;
    pest::set_error_detail(true);
    let mut pairs = RnnParser::parse(Rule::file, text).map_err(|e| syntax_error(e, text, file))?;
    let cx = Cx { file };
    // Later stages recurse over expression trees; bound their length as brackets are bounded.
    for p in pairs.clone().flatten() {
        if p.as_rule() == Rule::expr && p.clone().into_inner().count() > MAX_EXPR_TERMS {
            return Err(Diagnostic::error(format!(
                "this expression has more than {MAX_EXPR_TERMS} operators and operands"
            ))
            .with_label(cx.span(&p), "split it into several assignments"));
        }
    }
    let file_pair = pairs
        .next()
        .expect("pest returns the `file` rule on success");
    let mut items = Vec::new();
    for pair in file_pair.into_inner() {
        match pair.as_rule() {
            Rule::import => {
                let span = cx.span(&pair);
                let s = pair
                    .into_inner()
                    .nth(1)
                    .expect("grammar: import has a string");
                items.push(Item::Import(Import {
                    path: string_value(s),
                    span,
                }))
            }
            Rule::cell_def | Rule::model_def => items.push(Item::Def(cx.def(pair))),
            Rule::EOI => {}
            r => unreachable!("grammar: unexpected item {r:?}"),
        }
    }
    Ok(File { items })
}

fn check_limits(text: &str, file: FileId) -> Result<(), Diagnostic> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(Diagnostic::error(format!(
            "the file is {} bytes; rnnc reads model files of at most {MAX_SOURCE_BYTES} bytes",
            text.len()
        ))
        .with_label(Span::new(file, 0, 0), "this file"));
    }
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::error(format!(
                        "brackets are nested more than {MAX_NESTING} deep"
                    ))
                    .with_label(Span::new(file, i, i + 1), "too deep here"));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

struct Cx {
    file: FileId,
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    P.get_or_init(|| {
        // Lowest precedence first. `@` binds tighter than `*`, as in papers' `W @ x * g`.
        PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::prefix(Rule::not))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::neg))
            .op(Op::infix(Rule::matmul, Assoc::Left))
            // Python's order: `-x ** 2` is `-(x ** 2)`, `2 ** 3 ** 2` is `2 ** 9`.
            .op(Op::infix(Rule::pow, Assoc::Right))
            .op(Op::postfix(Rule::call) | Op::postfix(Rule::index))
    })
}

impl Cx {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        debug_assert_eq!(pair.as_rule(), Rule::ident);
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn def(&self, pair: Pair<Rule>) -> Def {
        let kind = if pair.as_rule() == Rule::cell_def {
            DefKind::Cell
        } else {
            DefKind::Model
        };
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        inner.next(); // keyword
        let name = self.ident(inner.next().expect("grammar: def name"));
        let hparams = inner
            .next()
            .expect("grammar: hparams")
            .into_inner()
            .map(|p| self.hparam(p))
            .collect();
        let body = self.block(inner.next().expect("grammar: body"));
        Def {
            kind,
            name,
            hparams,
            body,
            span,
        }
    }

    fn hparam(&self, pair: Pair<Rule>) -> HParam {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().expect("grammar: hparam name"));
        let ty = match inner.next().expect("grammar: hparam type").as_str() {
            "int" => HType::Int,
            "float" => HType::Float,
            "bool" => HType::Bool,
            _ => HType::Str,
        };
        let default = inner.next().map(|p| self.expr(p));
        HParam {
            name,
            ty,
            default,
            span,
        }
    }

    fn block(&self, pair: Pair<Rule>) -> Vec<Stmt> {
        pair.into_inner().map(|p| self.stmt(p)).collect()
    }

    fn stmt(&self, pair: Pair<Rule>) -> Stmt {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::input_decl | Rule::state_decl | Rule::memory_decl | Rule::param_decl => {
                inner.next(); // keyword
                let name = self.ident(inner.next().expect("grammar: decl name"));
                let ty = self.tensor_type(inner.next().expect("grammar: decl type"));
                match rule {
                    Rule::input_decl => StmtKind::Input {
                        name,
                        ty,
                        default_zeros: inner.next().is_some(),
                    },
                    Rule::state_decl => StmtKind::State { name, ty },
                    Rule::memory_decl => StmtKind::Memory { name, ty },
                    _ => StmtKind::Param { name, ty },
                }
            }
            Rule::layer_decl => {
                inner.next();
                let name = self.ident(inner.next().expect("grammar: layer name"));
                let value = self.expr(inner.next().expect("grammar: layer value"));
                StmtKind::Layer { name, value }
            }
            Rule::output_stmt => {
                inner.next();
                let name = self.ident(inner.next().expect("grammar: output name"));
                let value = inner.next().map(|p| self.expr(p));
                StmtKind::Output { name, value }
            }
            Rule::emit_stmt => {
                inner.next();
                StmtKind::Emit(self.expr(inner.next().expect("grammar: emit value")))
            }
            Rule::assert_stmt => {
                inner.next();
                let cond = self.expr(inner.next().expect("grammar: assert condition"));
                let message = inner.next().map(string_value);
                StmtKind::Assert { cond, message }
            }
            Rule::if_stmt => return self.if_stmt(span, inner),
            Rule::assign => {
                let targets = inner
                    .next()
                    .expect("grammar: targets")
                    .into_inner()
                    .map(|p| self.ident(p))
                    .collect();
                let value = self.expr(inner.next().expect("grammar: assigned value"));
                StmtKind::Assign { targets, value }
            }
            r => unreachable!("grammar: unexpected statement {r:?}"),
        };
        Stmt { kind, span }
    }

    fn if_stmt(&self, span: Span, mut inner: pest::iterators::Pairs<Rule>) -> Stmt {
        inner.next(); // `if`
        let cond = self.expr(inner.next().expect("grammar: if condition"));
        let then = self.block(inner.next().expect("grammar: if block"));
        let els = match inner.nth(1) {
            None => Vec::new(),
            Some(p) if p.as_rule() == Rule::block => self.block(p),
            Some(p) => vec![self.stmt(p)],
        };
        Stmt {
            kind: StmtKind::If { cond, then, els },
            span,
        }
    }

    fn tensor_type(&self, pair: Pair<Rule>) -> TensorType {
        let span = self.span(&pair);
        let mut dtype = None;
        let mut dims = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::dtype => {
                    dtype = Some(if p.as_str() == "i64" {
                        DType::I64
                    } else {
                        DType::F32
                    })
                }
                Rule::dim => {
                    let d = p.into_inner().next().expect("grammar: dim");
                    dims.push(if d.as_rule() == Rule::ellipsis {
                        DimExpr::Ellipsis(self.span(&d))
                    } else {
                        DimExpr::Expr(self.expr(d))
                    });
                }
                r => unreachable!("grammar: unexpected in type {r:?}"),
            }
        }
        TensorType { dtype, dims, span }
    }

    fn expr(&self, pair: Pair<Rule>) -> Expr {
        debug_assert_eq!(pair.as_rule(), Rule::expr);
        pratt()
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, rhs| {
                let span = self.span(&op).to(rhs.span);
                let op = if op.as_rule() == Rule::neg {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                Expr {
                    kind: ExprKind::Unary(op, Box::new(rhs)),
                    span,
                }
            })
            .map_postfix(|lhs, op| self.postfix(lhs, op))
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.to(rhs.span);
                let op = match op.as_rule() {
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::rem => BinOp::Rem,
                    Rule::pow => BinOp::Pow,
                    Rule::matmul => BinOp::MatMul,
                    r => unreachable!("grammar: unexpected infix {r:?}"),
                };
                Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    span,
                }
            })
            .parse(pair.into_inner())
    }

    fn postfix(&self, lhs: Expr, op: Pair<Rule>) -> Expr {
        let span = lhs.span.to(self.span(&op));
        let kind = if op.as_rule() == Rule::call {
            let args = op
                .into_inner()
                .map(|a| {
                    if a.as_rule() == Rule::named_arg {
                        let mut i = a.into_inner();
                        let name = self.ident(i.next().expect("grammar: arg name"));
                        Arg {
                            name: Some(name),
                            value: self.expr(i.next().expect("grammar: arg value")),
                        }
                    } else {
                        Arg {
                            name: None,
                            value: self.expr(a),
                        }
                    }
                })
                .collect();
            ExprKind::Call {
                callee: Box::new(lhs),
                args,
            }
        } else {
            let items = op
                .into_inner()
                .map(|it| {
                    if it.as_rule() == Rule::range {
                        let span = self.span(&it);
                        let (mut start, mut end) = (None, None);
                        for b in it.into_inner() {
                            let e =
                                self.expr(b.clone().into_inner().next().expect("grammar: bound"));
                            if b.as_rule() == Rule::range_start {
                                start = Some(e);
                            } else {
                                end = Some(e);
                            }
                        }
                        IndexItem::Range { start, end, span }
                    } else {
                        IndexItem::Expr(self.expr(it))
                    }
                })
                .collect();
            ExprKind::Index {
                base: Box::new(lhs),
                items,
            }
        };
        Expr { kind, span }
    }

    fn primary(&self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::int => match pair.as_str().parse::<i64>() {
                Ok(v) => ExprKind::Int(v),
                // Too large for i64: keep it as a float so that lowering reports it in context.
                Err(_) => ExprKind::Float(pair.as_str().parse().unwrap_or(f64::INFINITY)),
            },
            Rule::float => ExprKind::Float(pair.as_str().parse().unwrap_or(f64::NAN)),
            Rule::string => ExprKind::Str(string_value(pair)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::ident => ExprKind::Name(pair.as_str().to_string()),
            Rule::if_expr => {
                let mut i = pair.into_inner().filter(|p| p.as_rule() == Rule::expr);
                let cond = self.expr(i.next().expect("grammar: if cond"));
                let then = self.expr(i.next().expect("grammar: then"));
                let els = self.expr(i.next().expect("grammar: else"));
                ExprKind::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    els: Box::new(els),
                }
            }
            Rule::tuple_or_paren => {
                let text_has_comma = pair
                    .as_str()
                    .trim_end_matches(')')
                    .trim_end()
                    .ends_with(',');
                let mut elems: Vec<Expr> = pair.into_inner().map(|p| self.expr(p)).collect();
                if elems.len() == 1 && !text_has_comma {
                    return elems.pop().expect("one element");
                }
                ExprKind::Tuple(elems)
            }
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()),
            r => unreachable!("grammar: unexpected primary {r:?}"),
        };
        Expr { kind, span }
    }
}

fn string_value(pair: Pair<Rule>) -> String {
    pair.into_inner()
        .next()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

/// Turns pest's error into a diagnostic naming what was expected in words, at the
/// farthest position the parser reached (where the mistake usually is).
fn syntax_error(err: pest::error::Error<Rule>, text: &str, file: FileId) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let mut pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    let attempts = err.parse_attempts();
    let farther = attempts.as_ref().is_some_and(|a| a.max_position > pos);
    if !farther {
        if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
            for r in positives {
                if let Some(name) = rule_name(*r) {
                    push_unique(&mut expected, name.to_string());
                }
            }
        }
    }
    if let Some(a) = &attempts {
        if farther {
            pos = a.max_position;
        }
        if a.max_position == pos {
            for stack in a.call_stacks() {
                if let Some(name) = stack.parent.and_then(rule_name) {
                    push_unique(&mut expected, name.to_string());
                }
            }
            for t in a.expected_tokens() {
                let s = t.to_string();
                // Punctuation and keywords a person types; not comment or whitespace tokens.
                let shown = !s.is_empty()
                    && s.len() <= 8
                    && !s.contains(char::is_whitespace)
                    && !s.starts_with("//")
                    && !s.starts_with("/*");
                if shown {
                    push_unique(&mut expected, format!("`{s}`"));
                }
            }
        }
    }
    let mut expected = tidy_expected(expected);
    expected.truncate(8);
    let pos = pos.min(text.len());
    let found = found_token(text, pos);
    let open_brace = unclosed_brace(&text[..pos]);
    let unclosed = open_brace.is_some();
    // A line that starts a definition inside a block, before the error: the block
    // was never closed (keywords are contextual, so `model` parsed as a name first).
    if let Some((open, (at, kw))) =
        open_brace.and_then(|open| Some((open, definition_line(text, open, pos)?)))
    {
        return Diagnostic::error(format!("a `{{` block is not closed before this `{kw}`"))
            .with_label(
                Span::new(file, at, at + kw.len()),
                format!("`{kw}` starts a new definition here"),
            )
            .with_label(Span::new(file, open, open + 1), "this `{` is never closed")
            .with_note("add the missing `}` where the block ends");
    }
    let (message, label) = if pos >= text.len() {
        let m = if unclosed {
            "unexpected end of file: a `{` block is not closed"
        } else {
            "unexpected end of file"
        };
        (m.to_string(), "the file ends here".to_string())
    } else {
        (format!("unexpected {found}"), format!("unexpected {found}"))
    };
    let end = (pos + found_len(text, pos)).min(text.len());
    let mut d = Diagnostic::error(message).with_label(Span::new(file, pos, end), label);
    if pos >= text.len() && unclosed {
        d = d.with_note("add the missing `}`");
    } else if !expected.is_empty() {
        d = d.with_note(format!("expected {}", join_or(&expected)));
    }
    d
}

/// The position of the last `{` in `text` that no `}` closes, skipping comments
/// and strings.
fn unclosed_brace(text: &str) -> Option<usize> {
    let mut open = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += text[i..].find('\n').unwrap_or(text.len() - i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += text[i..].find("*/").map_or(text.len() - i, |e| e + 2);
            }
            b'"' => {
                i += 1 + text[i + 1..]
                    .find(['"', '\n'])
                    .unwrap_or(text.len() - i - 1);
            }
            b'{' => open.push(i),
            b'}' => {
                open.pop();
            }
            _ => {}
        }
        i += 1;
    }
    open.pop()
}

/// The first line between `from` and `to` that starts with `cell`, `model` or
/// `import` and a space: its keyword's position and the keyword.
fn definition_line(text: &str, from: usize, to: usize) -> Option<(usize, &'static str)> {
    let mut line_start = text[..from].rfind('\n').map_or(0, |n| n + 1);
    while line_start <= to.min(text.len()) {
        let line = &text[line_start..];
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let rest = &line[indent..];
        let kw = ["cell", "model", "import"].into_iter().find(|kw| {
            rest.strip_prefix(kw)
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c == ' ' || c == '\t')
        });
        let at = line_start + indent;
        if let Some(kw) = kw.filter(|_| at > from && at <= to) {
            return Some((at, kw));
        }
        line_start += line.find('\n')? + 1;
    }
    None
}

/// Words for what may come next, without the inner tokens of a rule already named:
/// where an operand may start, the `"`, `(`, `-`, `[`, `_`, `false`, … that open
/// one are "an expression"; where an operator may come, the operators themselves
/// are "an operator" and "a comparison".
fn tidy_expected(expected: Vec<String>) -> Vec<String> {
    const OPERAND: [&str; 15] = [
        "an expression",
        "`0..9`",
        "`A..Z`",
        "`a..z`",
        "a name",
        "a string",
        "`\"`",
        "`(`",
        "`-`",
        "`[`",
        "`_`",
        "`false`",
        "`true`",
        "`if`",
        "`not`",
    ];
    const OPERATORS: [&str; 7] = ["`+`", "`-`", "`*`", "`/`", "`%`", "`**`", "`@`"];
    const COMPARISONS: [&str; 6] = ["`==`", "`!=`", "`<`", "`<=`", "`>`", "`>=`"];
    let operand = expected
        .iter()
        .any(|e| e == "an expression" || e == "a name" || e == "a string");
    let has = |w: &str| expected.iter().any(|e| e == w);
    let (operator, comparison) = (has("an operator"), has("a comparison"));
    let logic = has("`and`/`or`");
    let mut out: Vec<String> = Vec::new();
    for e in expected.iter() {
        let word = if operand && OPERAND.contains(&e.as_str()) {
            "an expression".to_string()
        } else if (operator && OPERATORS.contains(&e.as_str()))
            || (comparison && COMPARISONS.contains(&e.as_str()))
            || (logic && (e == "`and`" || e == "`or`"))
        {
            continue;
        } else {
            e.clone()
        };
        push_unique(&mut out, word);
    }
    out
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} or {}", rest.join(", "), last),
    }
}

fn found_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos.min(text.len())..];
    let word: usize = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if word > 0 {
        word
    } else {
        rest.chars().next().map(char::len_utf8).unwrap_or(0)
    }
}

fn found_token(text: &str, pos: usize) -> String {
    let len = found_len(text, pos);
    let tok = &text[pos..pos + len];
    match tok {
        "\n" | "\r" => "end of line".into(),
        t if t.chars().all(|c| c.is_alphanumeric() || c == '_') => format!("`{t}`"),
        t => format!("`{}`", t.escape_debug()),
    }
}

/// Words for the grammar rules a person would recognise; the rest stay unnamed.
fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr | Rule::dim => "an expression",
        Rule::ident => "a name",
        Rule::string => "a string",
        Rule::import | Rule::kw_import => "`import`",
        Rule::cell_def | Rule::kw_cell => "`cell`",
        Rule::model_def | Rule::kw_model => "`model`",
        Rule::hparams => "`(` with hyperparameters",
        Rule::hparam => "a hyperparameter `name: type`",
        Rule::htype => "a type (`int`, `float`, `bool` or `str`)",
        Rule::block => "`{`",
        Rule::input_decl => "`input`",
        Rule::state_decl => "`state`",
        Rule::memory_decl => "`memory`",
        Rule::param_decl => "`param`",
        Rule::layer_decl => "`layer`",
        Rule::output_stmt => "`output`",
        Rule::emit_stmt => "`emit`",
        Rule::assert_stmt => "`assert`",
        Rule::if_stmt => "`if`",
        Rule::assign | Rule::targets => "an assignment `name = …`",
        Rule::tensor_type => "a tensor type such as `[B, T, n]`",
        Rule::dtype => "a dtype (`f32` or `i64`)",
        Rule::call => "`(`",
        Rule::index => "`[`",
        Rule::or | Rule::and => "`and`/`or`",
        Rule::eq | Rule::ne | Rule::lt | Rule::le | Rule::gt | Rule::ge => "a comparison",
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::rem | Rule::pow | Rule::matmul => {
            "an operator"
        }
        Rule::input_default => "`= zeros`",
        Rule::kw_then => "`then`",
        Rule::kw_else => "`else`",
        Rule::EOI => "end of file",
        _ => return None,
    })
}
