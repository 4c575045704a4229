//! Prints an AST back as canonical source: one statement a line, every binary
//! expression parenthesised, so that snapshots show exactly how a file was read.

use crate::ast::*;
use std::fmt::{self, Display, Formatter, Write};

impl Display for File {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match item {
                Item::Import(im) => writeln!(f, "import {:?}", im.path)?,
                Item::Def(d) => write!(f, "{d}")?,
            }
        }
        Ok(())
    }
}

impl Display for Def {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let kw = match self.kind {
            DefKind::Cell => "cell",
            DefKind::Model => "model",
        };
        write!(f, "{kw} {}(", self.name.name)?;
        for (i, h) in self.hparams.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", h.name.name, h.ty.as_str())?;
            if let Some(d) = &h.default {
                write!(f, " = {d}")?;
            }
        }
        f.write_str(") {\n")?;
        write_block(f, &self.body, 1)?;
        f.write_str("}\n")
    }
}

fn write_block(f: &mut Formatter<'_>, stmts: &[Stmt], depth: usize) -> fmt::Result {
    for s in stmts {
        write_stmt(f, s, depth)?;
    }
    Ok(())
}

fn write_stmt(f: &mut Formatter<'_>, s: &Stmt, depth: usize) -> fmt::Result {
    let pad = "    ".repeat(depth);
    f.write_str(&pad)?;
    match &s.kind {
        StmtKind::Input {
            name,
            ty,
            default_zeros,
        } => {
            write!(f, "input {}: {ty}", name.name)?;
            if *default_zeros {
                f.write_str(" = zeros")?;
            }
        }
        StmtKind::State { name, ty } => write!(f, "state {}: {ty}", name.name)?,
        StmtKind::Memory { name, ty } => write!(f, "memory {}: {ty}", name.name)?,
        StmtKind::Param { name, ty } => write!(f, "param {}: {ty}", name.name)?,
        StmtKind::Layer { name, value } => write!(f, "layer {} = {value}", name.name)?,
        StmtKind::Output { name, value } => {
            write!(f, "output {}", name.name)?;
            if let Some(v) = value {
                write!(f, " = {v}")?;
            }
        }
        StmtKind::Emit(e) => write!(f, "emit {e}")?,
        StmtKind::Assert { cond, message } => {
            write!(f, "assert {cond}")?;
            if let Some(m) = message {
                write!(f, ", {m:?}")?;
            }
        }
        StmtKind::If { cond, then, els } => {
            writeln!(f, "if {cond} {{")?;
            write_block(f, then, depth + 1)?;
            write!(f, "{pad}}}")?;
            if !els.is_empty() {
                f.write_str(" else {\n")?;
                write_block(f, els, depth + 1)?;
                write!(f, "{pad}}}")?;
            }
        }
        StmtKind::Assign { targets, value } => {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            write!(f, "{} = {value}", names.join(", "))?;
        }
    }
    f.write_char('\n')
}

impl Display for TensorType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(dt) = self.dtype {
            f.write_str(match dt {
                DType::F32 => "f32",
                DType::I64 => "i64",
            })?;
        }
        f.write_char('[')?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match d {
                DimExpr::Ellipsis(_) => f.write_str("...")?,
                DimExpr::Expr(e) => write!(f, "{e}")?,
            }
        }
        f.write_char(']')
    }
}

fn write_list(f: &mut Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Int(v) => write!(f, "{v}"),
            ExprKind::Float(v) => write!(f, "{v:?}"),
            ExprKind::Str(s) => write!(f, "{s:?}"),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Name(n) => f.write_str(n),
            ExprKind::Unary(UnOp::Neg, e) => write!(f, "(-{e})"),
            ExprKind::Unary(UnOp::Not, e) => write!(f, "(not {e})"),
            ExprKind::Binary(op, a, b) => write!(f, "({a} {} {b})", op.as_str()),
            ExprKind::Call { callee, args } => {
                write!(f, "{callee}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(n) = &a.name {
                        write!(f, "{} = ", n.name)?;
                    }
                    write!(f, "{}", a.value)?;
                }
                f.write_char(')')
            }
            ExprKind::Index { base, items } => {
                write!(f, "{base}[")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match it {
                        IndexItem::Expr(e) => write!(f, "{e}")?,
                        IndexItem::Range { start, end, .. } => {
                            if let Some(s) = start {
                                write!(f, "{s}")?;
                            }
                            f.write_char(':')?;
                            if let Some(e) = end {
                                write!(f, "{e}")?;
                            }
                        }
                    }
                }
                f.write_char(']')
            }
            ExprKind::If { cond, then, els } => write!(f, "(if {cond} then {then} else {els})"),
            ExprKind::Tuple(items) => {
                f.write_char('(')?;
                write_list(f, items)?;
                if items.len() == 1 {
                    f.write_char(',')?;
                }
                f.write_char(')')
            }
            ExprKind::List(items) => {
                f.write_char('[')?;
                write_list(f, items)?;
                f.write_char(']')
            }
        }
    }
}
