//! Result types of every op from its operand types. Lowering uses this to build
//! the graph and the verifier uses it to re-check every node, so both agree.

use crate::op::{ArgKind, Decode, Fused, Op, Scan};
use crate::types::{dims_str, DType, Dim, TensorTy};

/// Infers the result types of `op` applied to operands of the given types.
pub fn infer(op: &Op, args: &[&TensorTy]) -> Result<Vec<TensorTy>, String> {
    let arity = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "`{}` takes {n} operand(s), found {}",
                op.name(),
                args.len()
            ))
        }
    };
    let f32_only = |t: &TensorTy| -> Result<(), String> {
        if t.dtype == DType::F32 {
            Ok(())
        } else {
            Err(format!("`{}` needs f32 operands, found {t}", op.name()))
        }
    };
    let one = |t: TensorTy| Ok(vec![t]);
    match op {
        Op::Input { .. } | Op::Weight { .. } | Op::Zeros | Op::Arg { .. } => Err(format!(
            "`{}` has no operands: its type is given, not inferred",
            op.name()
        )),
        Op::Const(_) => {
            arity(0)?;
            one(TensorTy::f32(vec![]))
        }
        Op::Unary(_) | Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::LayerNorm { .. } => {
            arity(1)?;
            f32_only(args[0])?;
            if let Op::Softmax { axis } | Op::LogSoftmax { axis } = op {
                check_axis(*axis, args[0])?;
            }
            if matches!(op, Op::LayerNorm { .. }) && args[0].rank() == 0 {
                return Err("`layer_norm` needs at least one axis".into());
            }
            one(args[0].clone())
        }
        Op::Binary(_) => {
            arity(2)?;
            f32_only(args[0])?;
            f32_only(args[1])?;
            one(TensorTy::f32(broadcast(&args[0].dims, &args[1].dims)?))
        }
        Op::Linear => {
            arity(2)?;
            let (x, w) = (args[0], args[1]);
            f32_only(x)?;
            f32_only(w)?;
            if w.rank() != 2 || x.rank() == 0 {
                return Err(format!(
                    "a matrix-vector product needs a [m, k] matrix and [.., k] values, found {} and {}",
                    dims_str(&w.dims),
                    dims_str(&x.dims)
                ));
            }
            if x.dims[x.rank() - 1] != w.dims[1] {
                return Err(format!(
                    "shape mismatch in `@`: the matrix is {} so it needs {} features, but the value is {}",
                    dims_str(&w.dims),
                    w.dims[1],
                    dims_str(&x.dims)
                ));
            }
            let mut d = x.dims.clone();
            *d.last_mut().expect("rank > 0") = w.dims[0];
            one(TensorTy::f32(d))
        }
        Op::MatMul => {
            arity(2)?;
            let (a, b) = (args[0], args[1]);
            f32_only(a)?;
            f32_only(b)?;
            if a.rank() < 2 || b.rank() < 2 {
                return Err(format!(
                    "`@` between values needs rank ≥ 2 operands, found {} and {}",
                    dims_str(&a.dims),
                    dims_str(&b.dims)
                ));
            }
            let (m, k1) = (a.dims[a.rank() - 2], a.dims[a.rank() - 1]);
            let (k2, n) = (b.dims[b.rank() - 2], b.dims[b.rank() - 1]);
            if k1 != k2 {
                return Err(format!(
                    "shape mismatch in `@`: {} @ {} (inner dims {k1} and {k2} differ)",
                    dims_str(&a.dims),
                    dims_str(&b.dims)
                ));
            }
            let mut d = broadcast(&a.dims[..a.rank() - 2], &b.dims[..b.rank() - 2])?;
            d.push(m);
            d.push(n);
            one(TensorTy::f32(d))
        }
        Op::Concat { axis } => {
            let first = args.first().ok_or("`concat` needs at least one operand")?;
            check_axis(*axis, first)?;
            let mut total = 0usize;
            for a in args {
                if a.rank() != first.rank() || a.dtype != first.dtype {
                    return Err(format!(
                        "cannot concatenate {} with {}",
                        dims_str(&first.dims),
                        dims_str(&a.dims)
                    ));
                }
                for (i, (x, y)) in first.dims.iter().zip(&a.dims).enumerate() {
                    if i != *axis && x != y {
                        return Err(format!(
                            "cannot concatenate {} with {}: axis {i} differs",
                            dims_str(&first.dims),
                            dims_str(&a.dims)
                        ));
                    }
                }
                match a.dims[*axis] {
                    Dim::Fixed(n) => total += n,
                    d => return Err(format!("cannot concatenate along the symbolic axis {d}")),
                }
            }
            let mut d = first.dims.clone();
            d[*axis] = Dim::Fixed(total);
            one(TensorTy {
                dtype: first.dtype,
                dims: d,
            })
        }
        Op::Slice { axis, start, end } => {
            arity(1)?;
            check_axis(*axis, args[0])?;
            match args[0].dims[*axis] {
                Dim::Fixed(n) if start < end && *end <= n => {}
                Dim::Fixed(n) => {
                    return Err(format!(
                        "slice {start}:{end} is out of range for an axis of length {n}"
                    ))
                }
                d => {
                    return Err(format!(
                        "cannot slice the symbolic axis {d} with fixed bounds"
                    ))
                }
            }
            let mut d = args[0].dims.clone();
            d[*axis] = Dim::Fixed(end - start);
            one(TensorTy {
                dtype: args[0].dtype,
                dims: d,
            })
        }
        Op::Index { axis, index } => {
            arity(1)?;
            check_axis(*axis, args[0])?;
            if let Dim::Fixed(n) = args[0].dims[*axis] {
                let n = n as i64;
                if *index >= n || *index < -n {
                    return Err(format!(
                        "index {index} is out of range for an axis of length {n}"
                    ));
                }
            }
            let mut d = args[0].dims.clone();
            d.remove(*axis);
            one(TensorTy {
                dtype: args[0].dtype,
                dims: d,
            })
        }
        Op::Stack { axis } => {
            let first = args.first().ok_or("`stack` needs at least one operand")?;
            if args.iter().any(|a| *a != *first) {
                return Err("`stack` needs operands of one type".into());
            }
            if *axis > first.rank() {
                return Err(format!(
                    "axis {axis} is out of range for rank {}",
                    first.rank()
                ));
            }
            let mut d = first.dims.clone();
            d.insert(*axis, Dim::Fixed(args.len()));
            one(TensorTy {
                dtype: first.dtype,
                dims: d,
            })
        }
        Op::Flip { axis } => {
            arity(1)?;
            check_axis(*axis, args[0])?;
            one(args[0].clone())
        }
        Op::Transpose { a, b } => {
            arity(1)?;
            check_axis(*a, args[0])?;
            check_axis(*b, args[0])?;
            let mut d = args[0].dims.clone();
            d.swap(*a, *b);
            one(TensorTy {
                dtype: args[0].dtype,
                dims: d,
            })
        }
        Op::Embedding => {
            arity(2)?;
            let (table, ids) = (args[0], args[1]);
            f32_only(table)?;
            if table.rank() != 2 {
                return Err(format!(
                    "an embedding table must be [n, d], found {}",
                    dims_str(&table.dims)
                ));
            }
            if ids.dtype != DType::I64 {
                return Err(format!("embedding ids must be i64, found {ids}"));
            }
            let mut d = ids.dims.clone();
            d.push(table.dims[1]);
            one(TensorTy::f32(d))
        }
        Op::Unsqueeze { axis } => {
            arity(1)?;
            if *axis > args[0].rank() {
                return Err(format!(
                    "axis {axis} is out of range for {}",
                    dims_str(&args[0].dims)
                ));
            }
            let mut d = args[0].dims.clone();
            d.insert(*axis, Dim::Fixed(1));
            one(TensorTy {
                dtype: args[0].dtype,
                dims: d,
            })
        }
        Op::Squeeze { axis } => {
            arity(1)?;
            check_axis(*axis, args[0])?;
            if args[0].dims[*axis] != Dim::Fixed(1) {
                return Err(format!(
                    "axis {axis} of {} has length {}, not 1",
                    dims_str(&args[0].dims),
                    args[0].dims[*axis]
                ));
            }
            let mut d = args[0].dims.clone();
            d.remove(*axis);
            one(TensorTy {
                dtype: args[0].dtype,
                dims: d,
            })
        }
        Op::SequenceMask => {
            arity(2)?;
            let (lengths, seq) = (args[0], args[1]);
            if lengths.dtype != DType::I64 || lengths.rank() != 1 {
                return Err(format!("lengths must be i64[B], found {lengths}"));
            }
            if seq.rank() < 2 || seq.dims[0] != lengths.dims[0] {
                return Err(format!(
                    "lengths {lengths} need a sequence [{}, T, …], found {seq}",
                    lengths.dims[0]
                ));
            }
            one(TensorTy::f32(vec![seq.dims[0], seq.dims[1]]))
        }
        Op::Scan(scan) => infer_scan(scan, args),
        Op::Decode(d) => infer_decode(d, args),
        Op::Fused(fused) => infer_fused(fused, args),
    }
}

fn check_axis(axis: usize, t: &TensorTy) -> Result<(), String> {
    if axis < t.rank() {
        Ok(())
    } else {
        Err(format!(
            "axis {axis} is out of range for {}",
            dims_str(&t.dims)
        ))
    }
}

/// NumPy broadcasting over dims that may be symbolic: equal dims match, 1 stretches.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let x = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            Dim::Fixed(1)
        };
        let y = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            Dim::Fixed(1)
        };
        out.push(match (x, y) {
            _ if x == y => x,
            (Dim::Fixed(1), d) | (d, Dim::Fixed(1)) => d,
            _ => {
                return Err(format!(
                    "shapes {} and {} do not broadcast",
                    dims_str(a),
                    dims_str(b)
                ))
            }
        });
    }
    Ok(out)
}

/// The type of step `t` of a sequence: the time axis (1) removed.
pub fn step_type(seq: &TensorTy) -> Result<TensorTy, String> {
    if seq.rank() < 2 {
        return Err(format!(
            "a sequence must be [B, T, …], found {}",
            dims_str(&seq.dims)
        ));
    }
    let mut d = seq.dims.clone();
    d.remove(1);
    Ok(TensorTy {
        dtype: seq.dtype,
        dims: d,
    })
}

fn infer_fused(fused: &Fused, args: &[&TensorTy]) -> Result<Vec<TensorTy>, String> {
    let body = &fused.body;
    for id in body.node_ids() {
        match &body.node(id).op {
            Op::Arg {
                kind: ArgKind::Operand,
                index,
            } => {
                let want = args.get(*index).ok_or(format!(
                    "a fused region reads operand {index}, but it has {}",
                    args.len()
                ))?;
                if body.node(id).results.first() != Some(*want) {
                    return Err(format!(
                        "fused operand {index} is declared with another type than {want}"
                    ));
                }
            }
            Op::Unary(_) | Op::Binary(_) | Op::Const(_) => {}
            other => {
                return Err(format!(
                    "a fused region holds only elementwise ops, not `{}`",
                    other.name()
                ))
            }
        }
    }
    if body.outputs.is_empty() {
        return Err("a fused region yields nothing".into());
    }
    Ok(body
        .outputs
        .iter()
        .map(|(_, v)| body.ty(*v).clone())
        .collect())
}

fn infer_scan(scan: &Scan, args: &[&TensorTy]) -> Result<Vec<TensorTy>, String> {
    if args.len() != scan.n_seqs + scan.n_states + scan.n_memory {
        return Err(format!(
            "scan expects {} sequences, {} initial states and {} memories, found {} operands",
            scan.n_seqs,
            scan.n_states,
            scan.n_memory,
            args.len()
        ));
    }
    if scan.n_seqs == 0 {
        return Err("scan needs at least one sequence".into());
    }
    let time = args[0]
        .dims
        .get(1)
        .copied()
        .ok_or("a sequence must be [B, T, …]")?;
    for s in &args[..scan.n_seqs] {
        if s.dims.get(1) != Some(&time) {
            return Err("scan sequences differ in length".into());
        }
    }
    if scan.step == 0 {
        return Err("a scan's step must be at least 1".into());
    }
    let emits = check_body(&scan.body, scan, args, scan.step)?;
    match (&scan.tail, scan.step) {
        (None, 1) => {}
        (Some(tail), k) if k > 1 => {
            if check_body(tail, scan, args, 1)? != emits {
                return Err("the tail of an unrolled scan emits other types than its body".into());
            }
        }
        _ => return Err("a scan has a tail exactly when its step is more than 1".into()),
    }
    let mut out = Vec::new();
    for t in emits {
        let mut d = t.dims.clone();
        d.insert(1, time);
        out.push(TensorTy {
            dtype: t.dtype,
            dims: d,
        });
    }
    out.extend(
        args[scan.n_seqs..scan.n_seqs + scan.n_states]
            .iter()
            .map(|t| (*t).clone()),
    );
    Ok(out)
}

/// Types of a decode loop: its body reads the previous token (i64 `[B]`), the
/// states and the memories; its first emit scores the vocabulary.
fn infer_decode(d: &Decode, args: &[&TensorTy]) -> Result<Vec<TensorTy>, String> {
    let op = d.name();
    if args.len() != d.n_states + d.n_memory {
        return Err(format!(
            "`{op}` expects {} initial states and {} memories, found {} operands",
            d.n_states,
            d.n_memory,
            args.len()
        ));
    }
    let batch = match args.first().and_then(|t| t.dims.first()) {
        Some(b) => *b,
        None => return Err(format!("`{op}` needs a state with a batch axis")),
    };
    if args.iter().any(|t| t.dims.first() != Some(&batch)) {
        return Err(format!(
            "the states and memories of `{op}` differ in batch size"
        ));
    }
    if d.max_len == 0 {
        return Err(format!("`{op}` needs a maximum length of at least 1"));
    }
    if d.beam == Some(0) {
        return Err("a beam search needs a width of at least 1".into());
    }
    let token = TensorTy {
        dtype: DType::I64,
        dims: vec![batch],
    };
    let body = &d.body;
    check_args(body, "decoder step", |kind, index| match kind {
        ArgKind::Seq if index == 0 => Ok(token.clone()),
        ArgKind::State if index < d.n_states => Ok(args[index].clone()),
        ArgKind::Memory if index < d.n_memory => Ok(args[d.n_states + index].clone()),
        _ => Err(format!(
            "a decoder step reads {} {index}, which `{op}` does not have",
            Op::Arg { kind, index }.name()
        )),
    })?;
    if body.outputs.len() <= d.n_states {
        return Err("a decoder step must emit its scores over the vocabulary".into());
    }
    check_next_states(body, &args[..d.n_states])?;
    let scores = body.ty(body.outputs[d.n_states].1);
    if scores.dtype != DType::F32
        || scores.rank() != 2
        || scores.dims[0] != batch
        || !matches!(scores.dims[1], Dim::Fixed(_))
    {
        return Err(format!(
            "the first emit of a decoder step scores the vocabulary, [B, V]; found {scores}"
        ));
    }
    let len = Dim::Fixed(d.max_len);
    let ids = |dims: Vec<Dim>| TensorTy {
        dtype: DType::I64,
        dims,
    };
    Ok(match d.beam {
        None => vec![
            ids(vec![batch, len]),
            ids(vec![batch]),
            TensorTy::f32(vec![batch]),
        ],
        Some(k) => {
            let k = Dim::Fixed(k);
            vec![
                ids(vec![batch, k, len]),
                ids(vec![batch, k]),
                TensorTy::f32(vec![batch, k]),
            ]
        }
    })
}

/// Checks every argument node of a loop body against the type `want` gives for its
/// kind and index (or the error it gives).
fn check_args(
    body: &crate::graph::Graph,
    what: &str,
    want: impl Fn(ArgKind, usize) -> Result<TensorTy, String>,
) -> Result<(), String> {
    for id in body.node_ids() {
        let node = body.node(id);
        if let Op::Arg { kind, index } = node.op {
            let want = want(kind, index)?;
            let got = node.results.first();
            if got != Some(&want) {
                return Err(format!(
                    "{what} argument {} {index} is declared {} but receives {want}",
                    node.op.name(),
                    got.map(|t| t.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

/// The body's first outputs, its next states, have their initial values' types.
fn check_next_states(body: &crate::graph::Graph, inits: &[&TensorTy]) -> Result<(), String> {
    for (i, ((_, v), init)) in body.outputs.iter().zip(inits).enumerate() {
        if body.ty(*v) != *init {
            return Err(format!(
                "the next value of state {i} is {} but its initial value is {init}",
                body.ty(*v)
            ));
        }
    }
    Ok(())
}

/// Checks a scan body covering `k` steps against the scan's operands; returns the
/// types of one step's emits.
fn check_body(
    body: &crate::graph::Graph,
    scan: &Scan,
    args: &[&TensorTy],
    k: usize,
) -> Result<Vec<TensorTy>, String> {
    check_args(body, "scan body", |kind, index| match kind {
        ArgKind::Seq if index < k * scan.n_seqs => step_type(args[index % scan.n_seqs]),
        ArgKind::State if index < scan.n_states => Ok(args[scan.n_seqs + index].clone()),
        ArgKind::Memory if index < scan.n_memory => {
            Ok(args[scan.n_seqs + scan.n_states + index].clone())
        }
        ArgKind::Operand => Err("a scan body has no `operand` arguments".into()),
        _ => Err(format!(
            "scan body reads {} {index}, but there are {} sequence slots and {} states",
            Op::Arg { kind, index }.name(),
            k * scan.n_seqs,
            scan.n_states
        )),
    })?;
    let n_out = body.outputs.len();
    if n_out < scan.n_states || !(n_out - scan.n_states).is_multiple_of(k) {
        return Err(format!(
            "a {k}-step scan body yields the next states, then {k} emits per emitted value"
        ));
    }
    check_next_states(body, &args[scan.n_seqs..scan.n_seqs + scan.n_states])?;
    let per_step = (n_out - scan.n_states) / k;
    let emit = |j: usize| -> Vec<TensorTy> {
        body.outputs[scan.n_states + j * per_step..scan.n_states + (j + 1) * per_step]
            .iter()
            .map(|(_, v)| body.ty(*v).clone())
            .collect()
    };
    let first = emit(0);
    if (1..k).any(|j| emit(j) != first) {
        return Err(
            "the emits of an unrolled body differ in type from one step to the next".into(),
        );
    }
    if first.iter().any(|t| t.rank() == 0) {
        return Err("a scan emit must have a batch axis".into());
    }
    Ok(first)
}
