//! The walk over an ONNX graph: values in, lines of the generated model out. Each
//! node's conversion lives in `ops/`; this file keeps the tables they share (values,
//! names, declarations, weights, cells) and the graph's inputs and outputs.

use crate::constant::{dtype, Const};
use crate::error::{ImportError, Result};
use crate::names::{Names, Use};
use crate::node::Node;
use crate::proto::{type_proto, GraphProto, ValueInfoProto};
use crate::value::{Dim, Dyn, Val};
use ndarray::ArrayD;
use std::collections::HashMap;

/// A graph input the generated model declares.
pub struct GraphInput {
    pub onnx: String,
    pub name: String,
    pub shape: Vec<Dim>,
    pub int: bool,
}

/// A cell definition the model uses, kept once per distinct text.
pub struct CellDef {
    pub name: String,
    template: String,
    pub text: String,
}

#[derive(Default)]
pub struct Importer {
    pub opset: i64,
    vals: HashMap<String, Val>,
    pub names: Names,
    /// Output names: their own namespace.
    output_names: Names,
    /// `param` and `layer` declarations, in order.
    pub decls: Vec<String>,
    /// Statements, each with the node it came from (`Op "name"`, or empty).
    pub body: Vec<(String, String)>,
    pub weights: Vec<(String, ArrayD<f32>)>,
    /// Initializers already declared as params: ONNX name → param name.
    params_of: HashMap<String, String>,
    pub cells: Vec<CellDef>,
    cell_names: Names,
    pub hparams: Vec<(String, i64)>,
    /// Symbolic dimensions an operator fixed as the batch (`B`) or time (`T`) axis.
    pub binds: Vec<(String, char)>,
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<(String, String)>,
    /// `Op "name"` of the node being converted, for the comment on its first line.
    label: Option<String>,
    /// Values that are transposes of others: name → (source, perm), so that a
    /// transpose of a transpose (exporters write one around every recurrence) is
    /// one transpose or none.
    transposes: HashMap<String, (Dyn, Vec<usize>)>,
    /// Outputs import does not make, with the reason.
    unusable: HashMap<String, String>,
    /// The hidden size every LSTM, GRU and RNN node of the graph shares, if they do.
    shared_hidden_size: Option<usize>,
}

impl Importer {
    pub fn new(opset: i64) -> Self {
        Importer {
            opset,
            ..Default::default()
        }
    }

    /// Converts the whole graph.
    pub fn graph(&mut self, g: &GraphProto) -> Result<()> {
        let sizes: Vec<i64> = g
            .node
            .iter()
            .filter(|n| matches!(n.op_type.as_str(), "LSTM" | "GRU" | "RNN"))
            .map(|n| Node { proto: n }.int("hidden_size", 0))
            .collect();
        if sizes
            .first()
            .is_some_and(|&h| h > 0 && sizes.iter().all(|&s| s == h))
        {
            self.shared_hidden_size = Some(sizes[0] as usize);
        }
        for t in &g.initializer {
            let c = Const::from_proto(t, &format!("initializer \"{}\"", t.name))?;
            self.vals.insert(t.name.clone(), Val::Const(c));
        }
        if let Some(s) = g.sparse_initializer.first() {
            let name = s.values.as_ref().map_or("", |v| v.name.as_str());
            return Err(ImportError::new(format!(
                "sparse initializer \"{name}\": rnnc imports dense initializers only"
            )));
        }
        for vi in &g.input {
            if self.vals.contains_key(&vi.name) {
                continue; // an initializer also listed as an input (IR < 4)
            }
            self.graph_input(vi)?;
        }
        for n in &g.node {
            let node = Node { proto: n };
            self.label = Some(if n.name.is_empty() {
                n.op_type.clone()
            } else {
                format!("{} \"{}\"", n.op_type, n.name)
            });
            crate::ops::convert(self, &node).map_err(|e| e.at(&n.name, &n.op_type))?;
        }
        self.label = None;
        for vi in &g.output {
            self.graph_output(vi)?;
        }
        Ok(())
    }

    fn graph_input(&mut self, vi: &ValueInfoProto) -> Result<()> {
        let what = format!("graph input \"{}\"", vi.name);
        let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(ImportError::new(format!(
                "{what} is not a tensor; rnnc imports tensor inputs only"
            )));
        };
        let int = if dtype::is_float(t.elem_type) {
            false
        } else if matches!(t.elem_type, dtype::INT64 | dtype::INT32) {
            true
        } else {
            return Err(ImportError::new(format!(
                "{what} is {}; rnnc takes FLOAT (or DOUBLE) inputs and INT64/INT32 ids and lengths",
                dtype::name(t.elem_type)
            )));
        };
        let Some(shape) = &t.shape else {
            return Err(ImportError::new(format!(
                "{what} has no shape; rnnc needs its rank and feature sizes"
            ))
            .help("give the input a shape when exporting (torch.onnx.export does)"));
        };
        use crate::proto::tensor_shape_proto::dimension::Value as D;
        let mut dims = Vec::new();
        for (k, d) in shape.dim.iter().enumerate() {
            dims.push(match &d.value {
                Some(D::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                Some(D::DimParam(p)) if !p.is_empty() => Dim::Sym(p.clone()),
                _ => Dim::Sym(format!("{}:{k}", vi.name)),
            });
        }
        let name = self.io_name(&vi.name, Use::Input);
        self.inputs.push(GraphInput {
            onnx: vi.name.clone(),
            name: name.clone(),
            shape: dims.clone(),
            int,
        });
        self.vals.insert(
            vi.name.clone(),
            Val::Dyn(Dyn {
                name,
                shape: dims,
                int,
            }),
        );
        Ok(())
    }

    fn graph_output(&mut self, vi: &ValueInfoProto) -> Result<()> {
        let v = self.get(&vi.name)?.clone();
        let Val::Dyn(d) = v else {
            return Err(ImportError::new(format!(
                "graph output \"{}\" is {}; rnnc's outputs are computed from inputs",
                vi.name,
                v.kind()
            )));
        };
        let name = self.io_name(&vi.name, Use::Output);
        self.outputs.push((vi.name.clone(), name.clone()));
        if name == d.name {
            self.body.push((format!("output {name}"), String::new()));
        } else {
            self.body
                .push((format!("output {name} = {}", d.name), String::new()));
        }
        Ok(())
    }

    /// A graph input's or output's name: the ONNX name where the language takes it.
    fn io_name(&mut self, onnx: &str, u: Use) -> String {
        let names = if u == Use::Output {
            &mut self.output_names
        } else {
            &mut self.names
        };
        if names.claim(onnx, u) {
            onnx.to_string()
        } else {
            names.fresh_for(onnx, u)
        }
    }

    /// Marks an output import does not make; a node that reads it is refused with `why`.
    pub fn unusable(&mut self, name: &str, why: &str) {
        self.unusable.insert(name.to_string(), why.to_string());
    }

    pub fn get(&self, name: &str) -> Result<&Val> {
        if let Some(why) = self.unusable.get(name) {
            return Err(ImportError::new(format!(
                "input \"{name}\" cannot be read: {why}"
            )));
        }
        self.vals.get(name).ok_or_else(|| {
            ImportError::new(format!(
                "input \"{name}\" is not made by any node, initializer or graph input before it"
            ))
            .help("the file is incomplete or its nodes are not in topological order")
        })
    }

    /// Input `i` of `node`, None where the node leaves it out.
    pub fn arg(&self, node: &Node, i: usize) -> Result<Option<Val>> {
        match node.input(i) {
            None => Ok(None),
            Some(n) => self.get(n).cloned().map(Some),
        }
    }

    /// Input `i` of `node`, which the operator requires.
    pub fn req(&self, node: &Node, i: usize) -> Result<Val> {
        self.arg(node, i)?.ok_or_else(|| {
            ImportError::new(format!(
                "input {i} of {} is required but left out",
                node.op()
            ))
        })
    }

    /// A constant input (axes, shapes, indices) that import must know.
    pub fn const_arg(&self, node: &Node, i: usize, what: &str) -> Result<Option<Const>> {
        match self.arg(node, i)? {
            None => Ok(None),
            Some(Val::Const(c)) => Ok(Some(c)),
            Some(v) => Err(ImportError::new(format!(
                "its {what} (input {i}, \"{}\") is {}; rnnc needs it known when the model is imported",
                node.input(i).unwrap_or(""),
                v.kind()
            ))
            .help("export with static values here, or fold constants first (onnxsim)")),
        }
    }

    pub fn set(&mut self, onnx_name: &str, v: Val) {
        self.vals.insert(onnx_name.to_string(), v);
    }

    /// Defines output 0 of `node`.
    pub fn set_out(&mut self, node: &Node, v: Val) {
        if let Some(o) = node.output(0) {
            self.set(o, v);
        }
    }

    /// A statement `name = expr` for ONNX value `onnx_name`; returns the value.
    pub fn emit(&mut self, onnx_name: &str, expr: String, shape: Vec<Dim>, int: bool) -> Dyn {
        let name = self.names.fresh(onnx_name);
        let comment = self.label.clone().unwrap_or_default();
        self.body.push((format!("{name} = {expr}"), comment));
        let d = Dyn { name, shape, int };
        self.set(onnx_name, Val::Dyn(d.clone()));
        d
    }

    /// A statement `name = expr` for a value of the generated model alone.
    pub fn local(&mut self, hint: &str, expr: String) -> String {
        let name = self.names.fresh(hint);
        let comment = self.label.clone().unwrap_or_default();
        self.body.push((format!("{name} = {expr}"), comment));
        name
    }

    /// The model hyperparameter holding a recurrent node's hidden size: one
    /// `hidden_size` when every recurrent node has the same, `<node>_hidden_size`
    /// otherwise.
    pub fn hidden_size_param(&mut self, base: &str, size: usize) -> String {
        if self.shared_hidden_size == Some(size) {
            if let Some((n, _)) = self.hparams.iter().find(|(_, v)| *v == size as i64) {
                return n.clone();
            }
        }
        let hint = if self.shared_hidden_size == Some(size) {
            "hidden_size".to_string()
        } else {
            format!("{base}_hidden_size")
        };
        let name = self.names.fresh(&hint);
        self.hparams.push((name.clone(), size as i64));
        name
    }

    /// The model's hyperparameter names, in order.
    pub fn config_names(&self) -> impl Iterator<Item = &str> {
        self.hparams.iter().map(|(n, _)| n.as_str())
    }

    /// `d` with its axes in the order `perm` (axis i of the result is axis
    /// `perm[i]` of `d`), defining ONNX value `onnx` (or a local named after `hint`).
    pub fn transposed(&mut self, onnx: Option<&str>, hint: &str, d: &Dyn, perm: &[usize]) -> Dyn {
        let (src, perm): (Dyn, Vec<usize>) = match self.transposes.get(&d.name) {
            Some((src, first)) => (src.clone(), perm.iter().map(|&p| first[p]).collect()),
            None => (d.clone(), perm.to_vec()),
        };
        let shape: Vec<Dim> = perm.iter().map(|&p| src.shape[p].clone()).collect();
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            if let Some(o) = onnx {
                self.set(o, Val::Dyn(src.clone()));
            }
            return src;
        }
        let expr = crate::ops::transpose_expr(&src.name, &perm);
        let out = match onnx {
            Some(o) => self.emit(o, expr, shape, src.int),
            None => {
                let name = self.local(hint, expr);
                Dyn {
                    name,
                    shape,
                    int: src.int,
                }
            }
        };
        self.transposes.insert(out.name.clone(), (src, perm));
        out
    }

    /// A statement that is not an assignment of one ONNX value (a scan's tuple).
    pub fn line(&mut self, text: String) {
        let comment = self.label.clone().unwrap_or_default();
        self.body.push((text, comment));
    }

    /// A `param` holding `a`, named after `hint`; returns its name.
    pub fn param(&mut self, hint: &str, a: ArrayD<f32>) -> String {
        let name = self.names.fresh(hint);
        let dims: Vec<String> = a.shape().iter().map(|d| d.to_string()).collect();
        self.decls
            .push(format!("param {name}: [{}]", dims.join(", ")));
        self.weights.push((name.clone(), a));
        name
    }

    /// The param already made for `key` (an initializer's name, with its layout).
    pub fn param_for(&self, key: &str) -> Option<String> {
        self.params_of.get(key).cloned()
    }

    pub fn remember_param(&mut self, key: &str, name: &str) {
        self.params_of.insert(key.to_string(), name.to_string());
    }

    /// A `layer` declaration.
    pub fn layer(&mut self, hint: &str, call: String) -> String {
        let name = self.names.fresh(hint);
        self.decls.push(format!("layer {name} = {call}"));
        name
    }

    /// A float constant used as a tensor: the param of its initializer (declared
    /// once) or a new one.
    pub fn const_param(&mut self, onnx_name: Option<&str>, c: &Const) -> Result<Dyn> {
        let Const::F32(a) = c else {
            return Err(ImportError::new(
                "an integer constant is used as data; rnnc's weights are floats",
            ));
        };
        let name = match onnx_name.and_then(|n| self.params_of.get(n)) {
            Some(p) => p.clone(),
            None => {
                let p = self.param(onnx_name.unwrap_or("constant"), a.clone());
                if let Some(n) = onnx_name {
                    self.params_of.insert(n.to_string(), p.clone());
                }
                p
            }
        };
        Ok(Dyn {
            name,
            shape: a.shape().iter().map(|&n| Dim::Fixed(n)).collect(),
            int: false,
        })
    }

    /// A run-time operand: a model value, or a float constant made a param.
    pub fn operand(&mut self, node: &Node, i: usize) -> Result<Dyn> {
        match self.req(node, i)? {
            Val::Dyn(d) => Ok(d),
            Val::Const(c) => self.const_param(node.input(i), &c),
            v => Err(ImportError::new(format!(
                "input {i} (\"{}\") is {}, which rnnc cannot use as data",
                node.input(i).unwrap_or(""),
                v.kind()
            ))),
        }
    }

    /// A cell definition: `template` is its text with `@CELL@` where the name goes.
    /// Nodes with the same configuration share one definition.
    pub fn cell(&mut self, base: &str, template: String) -> String {
        if let Some(c) = self.cells.iter().find(|c| c.template == template) {
            return c.name.clone();
        }
        let name = self.cell_names.fresh(base);
        let text = template.replace("@CELL@", &name);
        self.cells.push(CellDef {
            name: name.clone(),
            template,
            text,
        });
        name
    }

    /// Records that symbolic dimension `d` is the batch (`'B'`) or time (`'T'`) axis.
    pub fn bind(&mut self, d: &Dim, axis: char, what: &str) -> Result<()> {
        match d {
            Dim::Sym(s) => {
                if let Some((_, a)) = self.binds.iter().find(|(n, _)| n == s) {
                    if *a != axis {
                        return Err(ImportError::new(format!(
                            "dimension \"{s}\" is used as both the {} and the {} axis",
                            axis_word(*a),
                            axis_word(axis)
                        )));
                    }
                    return Ok(());
                }
                self.binds.push((s.clone(), axis));
                Ok(())
            }
            Dim::Fixed(n) => Err(ImportError::new(format!(
                "the {} axis of {what} has the fixed size {n}; rnnc compiles recurrences for any \
                 batch size and length",
                axis_word(axis)
            ))
            .help(
                "export with dynamic batch and sequence axes (torch.onnx.export(..., \
                 dynamic_axes={...}) or dynamic_shapes)",
            )),
        }
    }
}

pub fn axis_word(a: char) -> &'static str {
    match a {
        'B' => "batch",
        'T' => "time",
        _ => "source-length",
    }
}
