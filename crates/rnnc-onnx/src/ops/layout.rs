//! Ops that move data without arithmetic: Transpose, Squeeze, Unsqueeze, Concat,
//! Slice, Reshape, Flatten, Gather. On constants and shapes they fold; on run-time
//! values they become the language's transposes, indexing, `cat` and `unsqueeze`.

use crate::constant::Const;
use crate::error::{ImportError, Result};
use crate::importer::Importer;
use crate::node::Node;
use crate::value::{axis, shape_text, Dim, Dyn, Val};

fn out_name<'a>(node: &Node<'a>) -> &'a str {
    node.output(0).unwrap_or("v")
}

/// `x[:, …, item]` with `item` at axis `k`.
fn index_at(x: &str, k: usize, item: &str) -> String {
    let mut parts = vec![":"; k];
    parts.push(item);
    format!("{x}[{}]", parts.join(", "))
}

/// The swaps that take axes in order `0..n` to `perm`, as nested `transpose`s.
pub fn transpose_expr(x: &str, perm: &[usize]) -> String {
    let mut cur: Vec<usize> = (0..perm.len()).collect();
    let mut e = x.to_string();
    for (i, &want) in perm.iter().enumerate() {
        let j = cur.iter().position(|&a| a == want).expect("a permutation");
        if j != i {
            cur.swap(i, j);
            e = format!("transpose({e}, {i}, {j})");
        }
    }
    e
}

fn check_perm(perm: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut seen = vec![false; rank];
    let mut out = Vec::new();
    for &p in perm {
        let k = axis(p, rank)?;
        if seen[k] {
            return Err(ImportError::new(format!(
                "perm {perm:?} names axis {k} twice"
            )));
        }
        seen[k] = true;
        out.push(k);
    }
    if out.len() != rank {
        return Err(ImportError::new(format!(
            "perm {perm:?} does not fit rank {rank}"
        )));
    }
    Ok(out)
}

pub fn transpose(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let rank = x.dims().len();
    let perm = match node.ints("perm") {
        Some(p) => check_perm(&p, rank)?,
        None => (0..rank).rev().collect(),
    };
    match x {
        Val::Const(c) => imp.set_out(node, Val::Const(c.permuted(&perm))),
        _ => {
            let d = imp.operand(node, 0)?;
            imp.transposed(Some(out_name(node)), out_name(node), &d, &perm);
        }
    }
    Ok(())
}

/// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an input after.
fn axes_of(imp: &Importer, node: &Node) -> Result<Option<Vec<i64>>> {
    if let Some(a) = node.ints("axes") {
        return Ok(Some(a));
    }
    match imp.const_arg(node, 1, "axes")? {
        None => Ok(None),
        Some(c) => c
            .ints()
            .map(Some)
            .ok_or_else(|| ImportError::new("its axes are not integers")),
    }
}

pub fn squeeze(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let dims = x.dims();
    let rank = dims.len();
    let mut ks: Vec<usize> = match axes_of(imp, node)? {
        Some(a) => a.iter().map(|&k| axis(k, rank)).collect::<Result<_>>()?,
        None => (0..rank).filter(|&k| dims[k] == Dim::Fixed(1)).collect(),
    };
    ks.sort_unstable();
    ks.dedup();
    for &k in &ks {
        if dims[k] != Dim::Fixed(1) {
            return Err(ImportError::new(format!(
                "axis {k} of a value of shape {} has size {}, not 1",
                shape_text(&dims),
                dims[k]
            )));
        }
    }
    let kept: Vec<Dim> = (0..rank)
        .filter(|k| !ks.contains(k))
        .map(|k| dims[k].clone())
        .collect();
    match x {
        Val::Const(c) => {
            let shape: Vec<usize> = kept.iter().map(|d| d.fixed().expect("constant")).collect();
            imp.set_out(node, Val::Const(c.reshaped(&shape)));
        }
        Val::Shape { elems, .. } => imp.set_out(
            node,
            Val::Shape {
                elems,
                scalar: true,
            },
        ),
        Val::Zeros(_) => imp.set_out(node, Val::Zeros(kept)),
        Val::Dyn(d) => {
            let mut e = d.name.clone();
            for &k in ks.iter().rev() {
                e = format!("squeeze({e}, {k})");
            }
            imp.emit(out_name(node), e, kept, d.int);
        }
    }
    Ok(())
}

pub fn unsqueeze(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let dims = x.dims();
    let Some(axes) = axes_of(imp, node)? else {
        return Err(ImportError::new("Unsqueeze needs axes"));
    };
    let out_rank = dims.len() + axes.len();
    let mut ks: Vec<usize> = axes
        .iter()
        .map(|&k| axis(k, out_rank))
        .collect::<Result<_>>()?;
    ks.sort_unstable();
    let mut shape = dims.clone();
    for &k in &ks {
        shape.insert(k, Dim::Fixed(1));
    }
    match x {
        Val::Const(c) => {
            let s: Vec<usize> = shape.iter().map(|d| d.fixed().expect("constant")).collect();
            imp.set_out(node, Val::Const(c.reshaped(&s)));
        }
        Val::Shape {
            elems,
            scalar: true,
        } if ks == [0] => imp.set_out(
            node,
            Val::Shape {
                elems,
                scalar: false,
            },
        ),
        Val::Shape { .. } => {
            return Err(ImportError::new(
                "Unsqueeze of a computed shape beyond one element",
            ))
        }
        Val::Zeros(_) => imp.set_out(node, Val::Zeros(shape)),
        Val::Dyn(d) => {
            let mut e = d.name.clone();
            for &k in &ks {
                e = format!("unsqueeze({e}, {k})");
            }
            imp.emit(out_name(node), e, shape, d.int);
        }
    }
    Ok(())
}

/// Pieces a Reshape's join or split of one axis may take: each is a slice in the
/// generated source.
const MAX_PIECES: usize = 1024;

/// An element of a shape given as data: a size, or `#-1` for what Reshape infers.
fn spec_dim(v: i64) -> Dim {
    if v < 0 {
        Dim::Sym(format!("#{v}"))
    } else {
        Dim::Fixed(v as usize)
    }
}

pub fn concat(imp: &mut Importer, node: &Node) -> Result<()> {
    let n = node.proto.input.len();
    let parts: Vec<Val> = (0..n).map(|i| imp.req(node, i)).collect::<Result<_>>()?;
    if parts.is_empty() {
        return Err(ImportError::new("Concat of nothing"));
    }
    let rank = parts[0].dims().len();
    let k = axis(node.int("axis", 0), rank.max(1))?;
    // Shape glue: shapes and integer constants joined into one shape.
    if parts.iter().any(|p| matches!(p, Val::Shape { .. })) {
        let mut elems = Vec::new();
        for p in &parts {
            match p {
                Val::Shape { elems: e, .. } => elems.extend(e.iter().cloned()),
                Val::Const(c) => {
                    let ints = c
                        .ints()
                        .ok_or_else(|| ImportError::new("a shape part is not integers"))?;
                    elems.extend(ints.into_iter().map(spec_dim));
                }
                v => {
                    return Err(ImportError::new(format!(
                        "a shape is joined with {}",
                        v.kind()
                    )))
                }
            }
        }
        imp.set_out(
            node,
            Val::Shape {
                elems,
                scalar: false,
            },
        );
        return Ok(());
    }
    if parts.iter().all(|p| matches!(p, Val::Const(_))) {
        let cs: Vec<Const> = parts
            .iter()
            .map(|p| match p {
                Val::Const(c) => c.clone(),
                _ => unreachable!(),
            })
            .collect();
        let c = Const::concat(&cs, k)
            .ok_or_else(|| ImportError::new("constants of different shapes"))?;
        imp.set_out(node, Val::Const(c));
        return Ok(());
    }
    let ds: Vec<Dyn> = (0..n)
        .map(|i| imp.operand(node, i))
        .collect::<Result<_>>()?;
    let mut shape = ds[0].shape.clone();
    let mut total = 0usize;
    for d in &ds {
        if d.rank() != rank {
            return Err(ImportError::new("Concat of values of different ranks"));
        }
        for (j, (p, q)) in d.shape.iter().zip(&shape).enumerate() {
            if j != k && p != q {
                return Err(ImportError::new(format!(
                    "Concat along axis {k} of shapes {} and {}",
                    shape_text(&d.shape),
                    shape_text(&shape)
                )));
            }
        }
        match d.shape[k].fixed() {
            Some(s) => total += s,
            None if ds.len() == 1 => {}
            None => {
                return Err(ImportError::new(format!(
                    "Concat along axis {k}, which is the run-time axis {}; rnnc joins values along axes of known size",
                    d.shape[k]
                )))
            }
        }
    }
    if ds.len() == 1 {
        imp.set_out(node, Val::Dyn(ds[0].clone()));
        return Ok(());
    }
    shape[k] = Dim::Fixed(total);
    let names: Vec<&str> = ds.iter().map(|d| d.name.as_str()).collect();
    let int = ds[0].int;
    imp.emit(
        out_name(node),
        format!("cat([{}], dim = {k})", names.join(", ")),
        shape,
        int,
    );
    Ok(())
}

/// One axis of a Slice with step 1: `start..end` clamped as ONNX does.
fn clamp_range(start: i64, end: i64, n: usize) -> (usize, usize) {
    let n = n as i64;
    let fix = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
    let (s, e) = (fix(start), fix(end));
    (s as usize, e.max(s) as usize)
}

pub fn slice(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let dims = x.dims();
    let rank = dims.len();
    let ints = |imp: &Importer, i: usize, what: &str| -> Result<Option<Vec<i64>>> {
        imp.const_arg(node, i, what)?
            .map(|c| {
                c.ints()
                    .ok_or_else(|| ImportError::new(format!("its {what} are not integers")))
            })
            .transpose()
    };
    let (starts, ends, axes, steps) = if imp.opset < 10 {
        (
            node.ints("starts").unwrap_or_default(),
            node.ints("ends").unwrap_or_default(),
            node.ints("axes"),
            None,
        )
    } else {
        (
            ints(imp, 1, "starts")?.unwrap_or_default(),
            ints(imp, 2, "ends")?.unwrap_or_default(),
            ints(imp, 3, "axes")?,
            ints(imp, 4, "steps")?,
        )
    };
    if starts.len() != ends.len() {
        return Err(ImportError::new("starts and ends differ in length"));
    }
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&k| axis(k, rank)).collect::<Result<_>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if steps.len() != starts.len() || steps.contains(&0) {
        return Err(ImportError::new(format!(
            "steps {steps:?} do not fit the axes"
        )));
    }
    // Axes read backwards (step -1, how exporters write torch.flip).
    let mut flips = Vec::new();
    // Axes cut to a list of positions (strides, or steps of a run-time axis): each
    // indexed, given back an axis of size 1 and joined.
    let mut picks: Vec<(usize, Vec<i64>)> = Vec::new();
    // Per axis: the item of the index expression and the new size.
    let mut items: Vec<String> = vec![":".into(); rank];
    let mut shape = dims.clone();
    let mut ranges: Vec<(usize, usize, usize)> = Vec::new();
    let big = i32::MAX as i64;
    for (j, &k) in axes.iter().enumerate() {
        let (s, e, st) = (starts[j], ends[j], steps[j]);
        match &dims[k] {
            Dim::Fixed(n) => {
                let n = *n as i64;
                if st == 1 {
                    let (a, b) = clamp_range(s, e, n as usize);
                    items[k] = format!("{a}:{b}");
                    shape[k] = Dim::Fixed(b - a);
                    ranges.push((k, a, b));
                    continue;
                }
                // ONNX's clamping: to [0, n] going forwards, [-1, n - 1] backwards.
                let fix = |v: i64, lo: i64, hi: i64| if v < 0 { v + n } else { v }.clamp(lo, hi);
                let list: Vec<i64> = if st > 0 {
                    let (a, b) = (fix(s, 0, n), fix(e, 0, n));
                    (a..b).step_by(st as usize).collect()
                } else {
                    let (a, b) = (fix(s, -1, n - 1), fix(e, -1, n - 1));
                    let mut v = Vec::new();
                    let mut i = a;
                    while i > b {
                        v.push(i);
                        i += st;
                    }
                    v
                };
                if list.is_empty() {
                    return Err(ImportError::new(
                        "the Slice is empty; rnnc's values have no empty axes",
                    ));
                }
                if st == -1 {
                    let (lo, hi) = (list[list.len() - 1] as usize, list[0] as usize + 1);
                    if (lo, hi) != (0, n as usize) {
                        items[k] = format!("{lo}:{hi}");
                        ranges.push((k, lo, hi));
                    }
                    shape[k] = Dim::Fixed(hi - lo);
                    flips.push(k);
                } else {
                    shape[k] = Dim::Fixed(list.len());
                    picks.push((k, list));
                }
            }
            Dim::Sym(sym) => {
                let end_open = e >= big;
                if st == 1 && s == 0 && end_open {
                    continue;
                }
                if st == -1 && (s == -1 || s >= big) && e <= -big {
                    flips.push(k);
                    continue;
                }
                // A fixed run of steps of a run-time axis: from its start, or the last one.
                let list: Option<Vec<i64>> = if st == 1 && s == -1 && end_open {
                    Some(vec![-1])
                } else if st > 0 && s >= 0 && !end_open && e > s {
                    Some((s..e).step_by(st as usize).collect())
                } else if st == 1 && s < -1 && e == s + 1 {
                    Some(vec![s])
                } else {
                    None
                };
                let Some(list) = list else {
                    return Err(ImportError::new(format!(
                        "Slice {s}..{e} step {st} of the run-time axis {sym}; rnnc slices run-time                          axes whole, reversed whole, or as a fixed run of steps"
                    )));
                };
                shape[k] = Dim::Fixed(list.len());
                picks.push((k, list));
            }
        }
    }
    if let Val::Const(c) = &x {
        if flips.is_empty() {
            let mut c = c.clone();
            for (k, a, b) in &ranges {
                c = c.sliced(*k, *a, *b);
            }
            for (k, list) in &picks {
                let js: Vec<usize> = list.iter().map(|&i| i as usize).collect();
                c = c.gathered(*k, &js, &[js.len()]);
            }
            imp.set_out(node, Val::Const(c));
            return Ok(());
        }
    }
    let reorders = !(flips.is_empty() && picks.is_empty());
    if reorders && !matches!(x, Val::Dyn(_)) {
        return Err(ImportError::new(format!(
            "a backwards Slice of {}",
            x.kind()
        )));
    }
    match x {
        Val::Const(c) => {
            let mut c = c;
            for (k, a, b) in ranges {
                c = c.sliced(k, a, b);
            }
            imp.set_out(node, Val::Const(c));
        }
        Val::Shape { elems, .. } => {
            let (_, a, b) = ranges.first().copied().unwrap_or((0, 0, elems.len()));
            imp.set_out(
                node,
                Val::Shape {
                    elems: elems[a..b].to_vec(),
                    scalar: false,
                },
            );
        }
        Val::Zeros(_) => imp.set_out(node, Val::Zeros(shape)),
        Val::Dyn(d) => {
            let mut e = match items.iter().rposition(|i| i != ":") {
                None => d.name.clone(),
                Some(l) => format!("{}[{}]", d.name, items[..=l].join(", ")),
            };
            for (k, list) in &picks {
                let parts: Vec<String> = list
                    .iter()
                    .map(|i| format!("unsqueeze({}, {k})", index_at(&e, *k, &i.to_string())))
                    .collect();
                e = if parts.len() == 1 {
                    parts.into_iter().next().expect("one")
                } else {
                    format!("cat([{}], dim = {k})", parts.join(", "))
                };
            }
            for &k in &flips {
                e = format!("flip({e}, {k})");
            }
            if e == d.name {
                imp.set_out(node, Val::Dyn(d));
            } else {
                imp.emit(out_name(node), e, shape, d.int);
            }
        }
    }
    Ok(())
}

pub fn gather(imp: &mut Importer, node: &Node) -> Result<()> {
    let data = imp.req(node, 0)?;
    let idx = imp.req(node, 1)?;
    let rank = data.dims().len();
    let k = axis(node.int("axis", 0), rank.max(1))?;
    let in_range = |i: i64, n: usize| -> Result<usize> {
        let j = if i < 0 { i + n as i64 } else { i };
        if j < 0 || j >= n as i64 {
            return Err(ImportError::new(format!(
                "index {i} is outside an axis of size {n}"
            )));
        }
        Ok(j as usize)
    };
    match (&data, &idx) {
        (Val::Shape { elems, .. }, Val::Const(c)) => {
            let ints = c.ints().ok_or_else(|| ImportError::new("indices are not integers"))?;
            let picked: Vec<Dim> = ints
                .iter()
                .map(|&i| in_range(i, elems.len()).map(|j| elems[j].clone()))
                .collect::<Result<_>>()?;
            imp.set_out(node, Val::Shape { elems: picked, scalar: c.shape().is_empty() });
        }
        (Val::Const(d), Val::Const(c)) => {
            let ints = c.ints().ok_or_else(|| ImportError::new("indices are not integers"))?;
            let n = d.shape()[k];
            let js: Vec<usize> = ints.iter().map(|&i| in_range(i, n)).collect::<Result<_>>()?;
            imp.set_out(node, Val::Const(d.gathered(k, &js, c.shape())));
        }
        (Val::Const(table), Val::Dyn(ids)) if k == 0 && table.shape().len() == 2 => {
            if !ids.int {
                return Err(ImportError::new("Gather of a table by float indices"));
            }
            let t = imp.const_param(node.input(0), table)?;
            let mut shape = ids.shape.clone();
            shape.push(t.shape[1].clone());
            imp.emit(out_name(node), format!("embedding({}, {})", t.name, ids.name), shape, false);
        }
        (Val::Dyn(d), Val::Const(c)) => {
            let ints = c.ints().ok_or_else(|| ImportError::new("indices are not integers"))?;
            let n = d.shape[k].fixed();
            let item = match (c.shape().len(), ints.as_slice()) {
                (0, [i]) => match n {
                    Some(n) => in_range(*i, n)?.to_string(),
                    // A run-time axis: `x[-1]` counts from its end as ONNX does.
                    None => i.to_string(),
                },
                _ => {
                    // Consecutive indices are a slice; unsqueezed when rank-1.
                    let n = n.ok_or_else(|| ImportError::new("Gather of several indices along a run-time axis"))?;
                    let js: Vec<usize> = ints.iter().map(|&i| in_range(i, n)).collect::<Result<_>>()?;
                    let consecutive = c.shape().len() == 1 && js.windows(2).all(|w| w[1] == w[0] + 1) && !js.is_empty();
                    if !consecutive {
                        return Err(ImportError::new(format!(
                            "Gather of indices {ints:?} from a run-time value; rnnc takes one index or a consecutive run"
                        )));
                    }
                    format!("{}:{}", js[0], js[js.len() - 1] + 1)
                }
            };
            let mut shape = d.shape.clone();
            if c.shape().is_empty() {
                shape.remove(k);
            } else {
                shape[k] = Dim::Fixed(ints.len());
            }
            imp.emit(out_name(node), index_at(&d.name, k, &item), shape, d.int);
        }
        _ => {
            return Err(ImportError::new(format!(
                "Gather from {} by {}; rnnc takes embeddings (a constant table indexed by run-time ids), constant indices, and shape glue",
                data.kind(),
                idx.kind()
            )))
        }
    }
    Ok(())
}

/// The target of a Reshape as dims: 0 copies the input's axis (unless allowzero),
/// -1 takes what is left.
fn target_dims(input: &[Dim], spec: &[Dim], allowzero: bool) -> Result<Vec<Dim>> {
    let mut out: Vec<Option<Dim>> = Vec::new();
    let mut infer = None;
    for (i, s) in spec.iter().enumerate() {
        match s {
            Dim::Sym(x) if x == "#-1" => {
                if infer.replace(i).is_some() {
                    return Err(ImportError::new("the new shape has -1 twice"));
                }
                out.push(None);
            }
            Dim::Sym(x) if x.starts_with('#') => {
                return Err(ImportError::new(format!("the new shape has {}", &x[1..])))
            }
            Dim::Fixed(0) if !allowzero => {
                out.push(Some(input.get(i).cloned().ok_or_else(|| {
                    ImportError::new("the new shape copies (0) an axis the input does not have")
                })?))
            }
            d => out.push(Some(d.clone())),
        }
    }
    if let Some(i) = infer {
        // What the known axes leave: symbolic axes must cancel, fixed sizes divide.
        let mut syms: Vec<&Dim> = input.iter().filter(|d| d.fixed().is_none()).collect();
        let fixed: Vec<usize> = input.iter().filter_map(Dim::fixed).collect();
        let mut fixed_in = crate::constant::elements(&fixed)?;
        let mut fixed_out = 1usize;
        for d in out.iter().flatten() {
            match d {
                Dim::Fixed(n) => {
                    fixed_out = fixed_out
                        .checked_mul(*n)
                        .ok_or_else(|| ImportError::new("the new shape's size overflows"))?
                }
                s => match syms.iter().position(|x| *x == s) {
                    Some(p) => {
                        syms.remove(p);
                    }
                    None => {
                        return Err(ImportError::new(format!(
                            "the new shape has the run-time axis {s}, which the input does not"
                        )))
                    }
                },
            }
        }
        if fixed_out == 0 || !fixed_in.is_multiple_of(fixed_out) {
            return Err(ImportError::new(
                "the new shape does not divide the input's size",
            ));
        }
        fixed_in /= fixed_out;
        out[i] = Some(match (syms.as_slice(), fixed_in) {
            ([], n) => Dim::Fixed(n),
            ([s], 1) => (*s).clone(),
            _ => {
                return Err(ImportError::new(format!(
                    "-1 would join run-time axes with others ({} into {})",
                    shape_text(input),
                    spec.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        });
    }
    Ok(out.into_iter().map(|d| d.expect("filled")).collect())
}

/// `x` reshaped from `from` to `to` with squeezes, merges of adjacent fixed axes
/// (a `cat` of the slices), splits (a `cat` of unsqueezed slices) and unsqueezes.
fn reshape_expr(
    imp: &mut Importer,
    hint: &str,
    x: &str,
    from: &[Dim],
    to: &[Dim],
) -> Result<String> {
    let refuse = || {
        ImportError::new(format!(
            "Reshape from {} to {} mixes run-time axes with others; rnnc reshapes by joining or splitting axes of known size",
            shape_text(from),
            shape_text(to)
        ))
    };
    if from == to {
        return Ok(x.to_string());
    }
    let mut e = x.to_string();
    // Drop the input's size-1 axes, from the last.
    let mut cur: Vec<Dim> = Vec::new();
    for (k, d) in from.iter().enumerate().rev() {
        if *d == Dim::Fixed(1) {
            e = format!("squeeze({e}, {k})");
        }
    }
    cur.extend(from.iter().filter(|d| **d != Dim::Fixed(1)).cloned());
    let target: Vec<Dim> = to
        .iter()
        .filter(|d| **d != Dim::Fixed(1))
        .cloned()
        .collect();
    // Groups of equal size: (axes of cur, axes of target).
    let (mut i, mut j) = (0, 0);
    let mut out_axis = 0; // where the group starts in the expression's current axes
    while i < cur.len() || j < target.len() {
        if i < cur.len() && j < target.len() && cur[i] == target[j] {
            i += 1;
            j += 1;
            out_axis += 1;
            continue;
        }
        // Grow both sides until their fixed products agree.
        let (gi, gj) = (i, j);
        let mut p: usize = cur.get(i).and_then(Dim::fixed).ok_or_else(refuse)?;
        let mut q: usize = target.get(j).and_then(Dim::fixed).ok_or_else(refuse)?;
        i += 1;
        j += 1;
        while p != q {
            if p < q {
                p = p
                    .checked_mul(cur.get(i).and_then(Dim::fixed).ok_or_else(refuse)?)
                    .ok_or_else(refuse)?;
                i += 1;
            } else {
                q = q
                    .checked_mul(target.get(j).and_then(Dim::fixed).ok_or_else(refuse)?)
                    .ok_or_else(refuse)?;
                j += 1;
            }
        }
        let ins: Vec<usize> = cur[gi..i]
            .iter()
            .map(|d| d.fixed().expect("fixed"))
            .collect();
        let outs: Vec<usize> = target[gj..j]
            .iter()
            .map(|d| d.fixed().expect("fixed"))
            .collect();
        // Merge the group's input axes into one …
        let k = out_axis;
        let mut sizes = ins.clone();
        let too_many = |n: usize| {
            ImportError::new(format!(
                "Reshape from {} to {} joins or splits an axis into {n} pieces; rnnc writes up to {MAX_PIECES}",
                shape_text(from),
                shape_text(to)
            ))
        };
        while sizes.len() > 1 {
            let a = sizes[0];
            if a > MAX_PIECES {
                return Err(too_many(a));
            }
            // Each step a value of its own, so the pieces name it rather than repeat it.
            if e != x {
                e = imp.local(hint, e);
            }
            let pieces: Vec<String> = (0..a).map(|t| index_at(&e, k, &t.to_string())).collect();
            e = format!("cat([{}], dim = {k})", pieces.join(", "));
            let b = sizes.remove(1);
            sizes[0] = a * b;
        }
        // … then split it into the output axes, the first one at a time.
        let mut rest = p;
        for (t, &o) in outs.iter().enumerate() {
            if t + 1 == outs.len() {
                break;
            }
            let inner = rest / o;
            if o > MAX_PIECES {
                return Err(too_many(o));
            }
            if e != x {
                e = imp.local(hint, e);
            }
            let pieces: Vec<String> = (0..o)
                .map(|s| {
                    format!(
                        "unsqueeze({}, {})",
                        index_at(&e, k + t, &format!("{}:{}", s * inner, (s + 1) * inner)),
                        k + t
                    )
                })
                .collect();
            e = format!("cat([{}], dim = {})", pieces.join(", "), k + t);
            rest = inner;
        }
        out_axis += outs.len();
    }
    // Insert the target's size-1 axes, from the first.
    for (k, d) in to.iter().enumerate() {
        if *d == Dim::Fixed(1) {
            e = format!("unsqueeze({e}, {k})");
        }
    }
    Ok(e)
}

fn reshape_to(imp: &mut Importer, node: &Node, target: Vec<Dim>) -> Result<()> {
    let x = imp.req(node, 0)?;
    match x {
        Val::Const(c) => {
            let s: Vec<usize> = target
                .iter()
                .map(|d| {
                    d.fixed()
                        .ok_or_else(|| ImportError::new("a constant reshaped to a run-time shape"))
                })
                .collect::<Result<_>>()?;
            if crate::constant::elements(&s).ok() != Some(c.len()) {
                return Err(ImportError::new(format!(
                    "a constant of shape {:?} reshaped to {s:?}",
                    c.shape()
                )));
            }
            imp.set_out(node, Val::Const(c.reshaped(&s)));
        }
        Val::Zeros(_) => imp.set_out(node, Val::Zeros(target)),
        Val::Shape { elems, .. } if target.len() <= 1 => {
            let scalar = target.is_empty();
            imp.set_out(node, Val::Shape { elems, scalar })
        }
        _ => {
            let d = imp.operand(node, 0)?;
            let e = reshape_expr(imp, out_name(node), &d.name, &d.shape, &target)?;
            if e == d.name {
                imp.set_out(node, Val::Dyn(Dyn { shape: target, ..d }));
            } else {
                imp.emit(out_name(node), e, target, d.int);
            }
        }
    }
    Ok(())
}

pub fn reshape(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let spec: Vec<Dim> = match imp.req(node, 1)? {
        Val::Const(c) => c
            .ints()
            .ok_or_else(|| ImportError::new("the new shape is not integers"))?
            .into_iter()
            .map(spec_dim)
            .collect(),
        Val::Shape { elems, .. } => elems,
        v => {
            return Err(ImportError::new(format!(
                "its new shape (input 1, \"{}\") is {}; rnnc needs it known when the model is imported",
                node.input(1).unwrap_or(""),
                v.kind()
            ))
            .help("export with a static shape here, or compute it from Shape of a value (rnnc folds that glue)"))
        }
    };
    let allowzero = node.int("allowzero", 0) != 0;
    let target = target_dims(&x.dims(), &spec, allowzero)?;
    reshape_to(imp, node, target)
}

pub fn flatten(imp: &mut Importer, node: &Node) -> Result<()> {
    let dims = imp.req(node, 0)?.dims();
    let rank = dims.len();
    let a = node.int("axis", 1);
    let k = if a == rank as i64 {
        rank
    } else {
        axis(a, rank)?
    };
    let join = |ds: &[Dim]| -> Result<Dim> {
        match ds {
            [] => Ok(Dim::Fixed(1)),
            [d] => Ok(d.clone()),
            _ => ds
                .iter()
                .map(Dim::fixed)
                .product::<Option<usize>>()
                .map(Dim::Fixed)
                .ok_or_else(|| {
                    ImportError::new(format!(
                        "Flatten at axis {k} joins the run-time axes of {}",
                        shape_text(&dims)
                    ))
                }),
        }
    };
    let target = vec![join(&dims[..k])?, join(&dims[k..])?];
    reshape_to(imp, node, target)
}
