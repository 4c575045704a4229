//! Graph evaluation in topological order; a scan steps its body over time.

use crate::bind::{Env, Weights};
use crate::kernels;
use crate::Tensor;
use crate::{err, RunError};
use ndarray::{ArrayD, Axis, IxDyn};
use rnnc_ir::deps::{dependencies, Dep};
use rnnc_ir::{ArgKind, Graph, NodeId, Op, Scan, TensorTy, Value, Verified};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// What a backend may take over while the interpreter walks the top-level graph:
/// values it computed once at load time, and whole scans it runs itself.
pub trait Hooks {
    /// A top-level node's value when it is already known (folded weights).
    fn cached(&self, _node: NodeId) -> Option<Rc<Tensor>> {
        None
    }

    /// Computes a top-level op (not a scan or fused region) its own way; `None`
    /// leaves it to the interpreter's kernel.
    fn op(
        &self,
        _node: NodeId,
        _op: &Op,
        _operands: &[Rc<Tensor>],
    ) -> Option<Result<Tensor, RunError>> {
        None
    }

    /// Runs a top-level scan; `None` leaves it to the interpreter.
    fn scan(
        &self,
        _node: NodeId,
        _scan: &Scan,
        _operands: &[Rc<Tensor>],
    ) -> Option<Result<Vec<Tensor>, RunError>> {
        None
    }
}

/// The plain interpreter: takes nothing over.
struct NoHooks;
impl Hooks for NoHooks {}

/// Runs a verified graph on named inputs and weights; returns its named outputs.
/// Inputs declared `= zeros` may be left out.
pub fn run(
    graph: &Verified<'_>,
    inputs: &HashMap<String, Tensor>,
    weights: &Weights,
) -> Result<Vec<(String, Tensor)>, RunError> {
    run_with(graph, inputs, weights, &NoHooks)
}

/// [`run`], with a backend's [`Hooks`] consulted for every top-level node.
pub fn run_with(
    graph: &Verified<'_>,
    inputs: &HashMap<String, Tensor>,
    weights: &Weights,
    hooks: &dyn Hooks,
) -> Result<Vec<(String, Tensor)>, RunError> {
    let g = graph.graph();
    let env = check_inputs(graph, inputs, weights)?;
    let cx = Cx {
        env,
        inputs,
        weights,
        weight_tensors: RefCell::new(HashMap::new()),
        hooks,
    };
    let order = g.topo_order().expect("verified graphs are acyclic");
    let outs = cx.eval_in_order(g, &order, &[], ArgLayout::default(), true)?;
    Ok(g.outputs
        .iter()
        .map(|(n, _)| n.clone())
        .zip(outs.into_iter().map(|t| (*t).clone()))
        .collect())
}

/// Where a body's arguments sit in the `args` it is evaluated with: the sequence
/// slices first, then the states, then the memories.
#[derive(Clone, Copy, Default)]
pub(crate) struct ArgLayout {
    pub seqs: usize,
    pub states: usize,
}

pub(crate) struct Cx<'a> {
    env: Env,
    inputs: &'a HashMap<String, Tensor>,
    weights: &'a Weights,
    weight_tensors: RefCell<HashMap<String, Rc<Tensor>>>,
    hooks: &'a dyn Hooks,
}

impl Cx<'_> {
    /// Evaluates a graph; `args` feed its `seq`/`state` arguments (sequences first).
    fn eval(&self, g: &Graph, args: &[Rc<Tensor>]) -> Result<Vec<Rc<Tensor>>, RunError> {
        let order = g.topo_order().expect("verified graphs are acyclic");
        self.eval_in_order(g, &order, args, ArgLayout::default(), false)
    }

    pub(crate) fn eval_in_order(
        &self,
        g: &Graph,
        order: &[rnnc_ir::NodeId],
        args: &[Rc<Tensor>],
        layout: ArgLayout,
        top_level: bool,
    ) -> Result<Vec<Rc<Tensor>>, RunError> {
        let mut vals: HashMap<Value, Rc<Tensor>> = HashMap::with_capacity(order.len());
        for &id in order {
            let node = g.node(id);
            if top_level {
                if let Some(t) = self.hooks.cached(id) {
                    vals.insert(Value::new(id, 0), t);
                    continue;
                }
            }
            let operands: Vec<Rc<Tensor>> =
                g.operands(id).iter().map(|v| vals[v].clone()).collect();
            let results: Vec<Rc<Tensor>> = match &node.op {
                Op::Input { name, .. } => vec![Rc::new(match self.inputs.get(name) {
                    Some(t) => t.clone(),
                    None => self.zeros(&node.results[0])?,
                })],
                Op::Weight { key } => vec![self.weight(key)],
                Op::Zeros => vec![Rc::new(self.zeros(&node.results[0])?)],
                Op::Arg { kind, index } => {
                    let i = match kind {
                        ArgKind::Seq | ArgKind::Operand => *index,
                        ArgKind::State => layout.seqs + index,
                        ArgKind::Memory => layout.seqs + layout.states + index,
                    };
                    vec![args[i].clone()]
                }
                Op::Scan(scan) => {
                    let ran = match top_level {
                        true => self.hooks.scan(id, scan, &operands),
                        false => None,
                    };
                    match ran {
                        Some(results) => results?,
                        None => self.scan(scan, &operands)?,
                    }
                    .into_iter()
                    .map(Rc::new)
                    .collect()
                }
                Op::Decode(d) => self
                    .decode(d, &operands)?
                    .into_iter()
                    .map(Rc::new)
                    .collect(),
                // A fused region computes exactly what its ops would one by one.
                Op::Fused(fused) => self.eval(&fused.body, &operands)?,
                op => {
                    let custom = match top_level {
                        true => self.hooks.op(id, op, &operands),
                        false => None,
                    };
                    vec![Rc::new(match custom {
                        Some(t) => t?,
                        None => kernels::apply(op, &operands)?,
                    })]
                }
            };
            for (r, t) in results.into_iter().enumerate() {
                vals.insert(Value::new(id, r as u32), t);
            }
        }
        Ok(g.outputs.iter().map(|(_, v)| vals[v].clone()).collect())
    }

    /// A weight as a shared tensor, copied out of the weight map once per run
    /// rather than at every use (scan bodies read their weights every step).
    fn weight(&self, key: &str) -> Rc<Tensor> {
        self.weight_tensors
            .borrow_mut()
            .entry(key.to_string())
            .or_insert_with(|| Rc::new(Tensor::F32(self.weights[key].clone())))
            .clone()
    }

    pub(crate) fn zeros(&self, ty: &rnnc_ir::TensorTy) -> Result<Tensor, RunError> {
        let shape = self.env.shape(ty)?;
        Ok(match ty.dtype {
            rnnc_ir::DType::F32 => Tensor::F32(ArrayD::zeros(IxDyn(&shape))),
            rnnc_ir::DType::I64 => Tensor::I64(ArrayD::zeros(IxDyn(&shape))),
        })
    }

    /// Steps the body over time. Outputs at step t land at time index t, also when
    /// the scan runs in reverse (as PyTorch aligns a backward direction's outputs).
    /// An unrolled scan runs its k-step body while k steps remain, then its tail.
    fn scan(&self, scan: &Scan, operands: &[Rc<Tensor>]) -> Result<Vec<Tensor>, RunError> {
        let seqs = &operands[..scan.n_seqs];
        let n_steps = seqs[0].shape()[1];
        let batch = seqs[0].shape()[0];
        let body = &scan.body;
        let n_emits = scan.n_emits();
        let mut states: Vec<Rc<Tensor>> =
            operands[scan.n_seqs..scan.n_seqs + scan.n_states].to_vec();
        let memory = &operands[scan.n_seqs + scan.n_states..];
        let mut emits: Vec<ArrayD<f32>> = body.outputs[scan.n_states..scan.n_states + n_emits]
            .iter()
            .map(|(_, v)| {
                let mut shape = body
                    .ty(*v)
                    .dims
                    .iter()
                    .map(|d| self.env.dim(*d))
                    .collect::<Result<Vec<_>, _>>()?;
                shape[0] = batch;
                shape.insert(1, n_steps);
                Ok(ArrayD::zeros(IxDyn(&shape)))
            })
            .collect::<Result<_, RunError>>()?;
        let time = |p: usize| if scan.reverse { n_steps - 1 - p } else { p };
        let mut step = 0;
        let order_of = |g: &Graph| g.topo_order().expect("verified graphs are acyclic");
        let body_order = order_of(body);
        let tail = scan.tail.as_deref().map(|t| (t, order_of(t)));
        // (graph, steps it covers): the body while it fits, then the tail one step at a time.
        while step < n_steps {
            let (g, order, k) = match &tail {
                Some((tail, order)) if step + scan.step > n_steps => (*tail, order, 1),
                _ => (&**body, &body_order, scan.step),
            };
            let mut args: Vec<Rc<Tensor>> =
                Vec::with_capacity(k * scan.n_seqs + scan.n_states + memory.len());
            for j in 0..k {
                for s in seqs {
                    let t = time(step + j);
                    args.push(Rc::new(kernels::map_any!(&**s, |a| a
                        .index_axis(Axis(1), t)
                        .to_owned())));
                }
            }
            args.extend(states.iter().cloned());
            args.extend(memory.iter().cloned());
            let layout = ArgLayout {
                seqs: k * scan.n_seqs,
                states: scan.n_states,
            };
            let outs = self.eval_in_order(g, order, &args, layout, false)?;
            for j in 0..k {
                for (e, out) in emits.iter_mut().zip(&outs[scan.n_states + j * n_emits..]) {
                    e.index_axis_mut(Axis(1), time(step + j)).assign(out.f32());
                }
            }
            states = outs[..scan.n_states].to_vec();
            step += k;
        }
        let mut results: Vec<Tensor> = emits.into_iter().map(Tensor::F32).collect();
        results.extend(states.into_iter().map(|s| (*s).clone()));
        Ok(results)
    }
}

/// Checks the inputs and weights of a run against the graph's declarations (names,
/// dtypes, shapes; inputs declared `= zeros` may be left out) and returns the sizes
/// of `B`, `T` and `S` they set (None for a dim no input has).
pub fn bind_sizes(
    graph: &Verified<'_>,
    inputs: &HashMap<String, Tensor>,
    weights: &Weights,
) -> Result<Sizes, RunError> {
    RunCheck::new(graph).sizes(inputs, weights)
}

/// The sizes of the named axes a run's inputs set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub batch: Option<usize>,
    pub time: Option<usize>,
    /// The source length `S` of a sequence-to-sequence model.
    pub source: Option<usize>,
}

fn check_inputs(
    graph: &Verified<'_>,
    inputs: &HashMap<String, Tensor>,
    weights: &Weights,
) -> Result<Env, RunError> {
    let check = RunCheck::new(graph);
    let env = check.inputs(inputs)?;
    check.weights(&env, weights)?;
    Ok(env)
}

/// A graph's declared inputs and weights, gathered once to check many runs
/// against (what [`bind_sizes`] does per run, without walking the graph each
/// time): a streamed step of a small model spent about a tenth of its time on
/// that walk, the weights' names and their sorting.
pub struct RunCheck {
    declared: Vec<(String, TensorTy, bool)>,
    weights: Vec<(String, TensorTy)>,
    /// The sizes of the last run whose weights matched (their shapes depend on
    /// nothing else, and the weights cannot change between runs).
    matched: std::cell::Cell<Option<Sizes>>,
}

impl RunCheck {
    pub fn new(graph: &Verified<'_>) -> Self {
        let g = graph.graph();
        RunCheck {
            declared: g.inputs(),
            weights: g.weights(),
            matched: std::cell::Cell::new(None),
        }
    }

    /// As [`bind_sizes`], for runs with the same `weights` every time.
    pub fn sizes(
        &self,
        inputs: &HashMap<String, Tensor>,
        weights: &Weights,
    ) -> Result<Sizes, RunError> {
        let env = self.inputs(inputs)?;
        let sizes = Sizes {
            batch: env.batch,
            time: env.time,
            source: env.source,
        };
        if self.matched.get() != Some(sizes) {
            self.weights(&env, weights)?;
            self.matched.set(Some(sizes));
        }
        Ok(sizes)
    }

    fn inputs(&self, inputs: &HashMap<String, Tensor>) -> Result<Env, RunError> {
        let declared = &self.declared;
        for name in inputs.keys() {
            if !declared.iter().any(|(n, _, _)| n == name) {
                let names: Vec<&str> = declared.iter().map(|(n, _, _)| n.as_str()).collect();
                return err(format!(
                    "the model has no input `{name}`; its inputs are: {}",
                    names.join(", ")
                ));
            }
        }
        let mut env = Env::default();
        for (name, ty, zeros) in declared {
            match inputs.get(name) {
                Some(t) => env.bind(name, ty, t)?,
                None if *zeros => {}
                None => {
                    return err(format!(
                        "missing input `{name}` ({ty}): pass it with --input {name}=FILE.npy"
                    ))
                }
            }
        }
        Ok(env)
    }

    fn weights(&self, env: &Env, weights: &Weights) -> Result<(), RunError> {
        for (key, ty) in &self.weights {
            let Some(w) = weights.get(key) else {
                return err(format!("missing weight `{key}` ({ty})"));
            };
            let want = env.shape(ty)?;
            if w.shape() != want.as_slice() {
                return err(format!(
                    "weight `{key}` must have shape {want:?}, found {:?}",
                    w.shape()
                ));
            }
        }
        Ok(())
    }
}

/// Evaluates, once, every node of `g` that depends on nothing but weights and
/// constants (folded biases, stacked gate weights): what a backend does at load time.
/// Scans, fused regions and run-time values are left out.
pub fn load_time_values(
    g: &Graph,
    weights: &Weights,
) -> Result<HashMap<NodeId, Rc<Tensor>>, RunError> {
    let dep = dependencies(g);
    let mut known: HashMap<NodeId, Rc<Tensor>> = HashMap::new();
    for id in g.topo_order().expect("verified graphs are acyclic") {
        if dep[&id] != Dep::Load {
            continue;
        }
        let node = g.node(id);
        let operands = g.operands(id);
        let value = match &node.op {
            Op::Weight { key } => match weights.get(key) {
                Some(w) => Tensor::F32(w.clone()),
                None => return err(format!("missing weight `{key}`")),
            },
            // A fused region over weights is rare; it (and what reads it) stays per run.
            Op::Fused(_) => continue,
            op if operands.iter().all(|v| known.contains_key(&v.node)) => {
                let args: Vec<Rc<Tensor>> =
                    operands.iter().map(|v| known[&v.node].clone()).collect();
                kernels::apply(op, &args)?
            }
            _ => continue,
        };
        known.insert(id, Rc::new(value));
    }
    Ok(known)
}
