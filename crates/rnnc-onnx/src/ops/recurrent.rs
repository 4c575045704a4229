//! ONNX's LSTM, GRU and RNN operators. Each direction becomes a `scan` of a cell
//! written in the language from the operator spec's equations, with the node's
//! activations, clip, peepholes, input_forget and linear_before_reset spelled out;
//! the weights are cut per direction and gate group into the cell's params.

use crate::constant::Const;
use crate::error::{ImportError, Result};
use crate::importer::Importer;
use crate::node::Node;
use crate::value::{literal, Dim, Dyn, Val};
use ndarray::{ArrayD, Axis, Slice};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lstm,
    Gru,
    Rnn,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
            Kind::Rnn => 1,
        }
    }

    /// Activations per direction and their defaults.
    fn activations(self) -> &'static [&'static str] {
        match self {
            Kind::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            Kind::Gru => &["Sigmoid", "Tanh"],
            Kind::Rnn => &["Tanh"],
        }
    }
}

/// An activation of the ONNX RNN operators with its parameters resolved.
#[derive(Clone, Debug, PartialEq)]
struct Act {
    name: String,
    alpha: Option<f32>,
    beta: Option<f32>,
}

/// How many of (alpha, beta) each function takes, and their defaults. The RNN
/// operators' spec leaves the defaults open; these are the standalone ONNX
/// operators' (ONNX Runtime uses 0 for ThresholdedRelu, Affine and ScaledTanh).
fn act_params(name: &str) -> Option<(usize, f32, f32)> {
    Some(match name.to_ascii_lowercase().as_str() {
        "relu" | "tanh" | "sigmoid" | "softsign" | "softplus" => (0, 0.0, 0.0),
        "affine" => (2, 1.0, 0.0),
        "leakyrelu" => (1, 0.01, 0.0),
        "thresholdedrelu" => (1, 1.0, 0.0),
        "scaledtanh" => (2, 1.0, 1.0),
        "hardsigmoid" => (2, 0.2, 0.5),
        "elu" => (1, 1.0, 0.0),
        _ => return None,
    })
}

impl Act {
    /// `f(x)` in the language.
    fn apply(&self, x: &str) -> Result<String> {
        let a = || literal(self.alpha.expect("resolved") as f64);
        let b = || literal(self.beta.expect("resolved") as f64);
        Ok(match self.name.to_ascii_lowercase().as_str() {
            "relu" => format!("relu({x})"),
            "tanh" => format!("tanh({x})"),
            "sigmoid" => format!("sigmoid({x})"),
            "softsign" => format!("softsign({x})"),
            "softplus" => format!("softplus({x})"),
            "affine" => format!("affine({x}, alpha = {}, beta = {})", a()?, b()?),
            "leakyrelu" => format!("leaky_relu({x}, alpha = {})", a()?),
            "thresholdedrelu" => format!("thresholded_relu({x}, alpha = {})", a()?),
            "scaledtanh" => format!("scaled_tanh({x}, alpha = {}, beta = {})", a()?, b()?),
            "hardsigmoid" => format!("hard_sigmoid({x}, alpha = {}, beta = {})", a()?, b()?),
            "elu" => format!("elu({x}, alpha = {})", a()?),
            _ => unreachable!("checked when read"),
        })
    }
}

/// The node's activation list, one per function per direction, with alpha and
/// beta taken in order by the functions that use them.
fn activations(node: &Node, kind: Kind, dirs: usize) -> Result<Vec<Vec<Act>>> {
    let per = kind.activations().len();
    let mut names = node.strings("activations")?;
    if names.is_empty() {
        names = kind.activations().iter().map(|s| s.to_string()).collect();
        if dirs == 2 {
            names.extend(names.clone());
        }
    } else if names.len() == per && dirs == 2 {
        names.extend(names.clone());
    }
    if names.len() != per * dirs {
        return Err(ImportError::new(format!(
            "{} activations for {dirs} direction(s); {} takes {per} per direction",
            names.len(),
            node.op()
        )));
    }
    let (alphas, betas) = (
        node.floats("activation_alpha"),
        node.floats("activation_beta"),
    );
    let (mut ai, mut bi) = (0, 0);
    let mut acts = Vec::new();
    for n in names {
        let Some((takes, da, db)) = act_params(&n) else {
            return Err(ImportError::new(format!(
                "activation `{n}` is not one of the ONNX RNN functions (Relu, Tanh, Sigmoid, \
                 Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus)"
            )));
        };
        let mut act = Act {
            name: n,
            alpha: None,
            beta: None,
        };
        if takes >= 1 {
            act.alpha = Some(alphas.get(ai).copied().unwrap_or(da));
            ai += 1;
        }
        if takes >= 2 {
            act.beta = Some(betas.get(bi).copied().unwrap_or(db));
            bi += 1;
        }
        acts.push(act);
    }
    Ok(acts.chunks(per).map(|c| c.to_vec()).collect())
}

/// What makes one cell definition differ from another.
struct CellConfig {
    kind: Kind,
    acts: Vec<Act>,
    clip: Option<f32>,
    bias: bool,
    peephole: bool,
    input_forget: bool,
    linear_before_reset: bool,
}

impl CellConfig {
    fn clip(&self, x: String) -> Result<String> {
        Ok(match self.clip {
            None => x,
            Some(c) => format!(
                "clamp({x}, min = {}, max = {})",
                literal(-c as f64)?,
                literal(c as f64)?
            ),
        })
    }

    /// The cell's source with `@CELL@` for its name.
    fn template(&self) -> Result<String> {
        let mut s = String::new();
        let names: Vec<String> = self
            .acts
            .iter()
            .map(|a| match (a.alpha, a.beta) {
                (Some(x), Some(y)) => format!("{}({x}, {y})", a.name),
                (Some(x), None) => format!("{}({x})", a.name),
                _ => a.name.clone(),
            })
            .collect();
        let mut what = vec![format!("activations {}", names.join(", "))];
        if let Some(c) = self.clip {
            what.push(format!("clip {c}"));
        }
        if !self.bias {
            what.push("no bias".into());
        }
        if self.peephole {
            what.push("peepholes".into());
        }
        if self.input_forget {
            what.push("input_forget".into());
        }
        let (f, g) = (&self.acts[0], self.acts.get(1));
        let line = |s: &mut String, t: &str| {
            s.push_str("    ");
            s.push_str(t);
            s.push('\n');
        };
        let bias = |w: &str, b: &str, x: &str| {
            if self.bias {
                format!("{w} @ {x} + {b}")
            } else {
                format!("{w} @ {x}")
            }
        };
        match self.kind {
            Kind::Lstm => {
                s.push_str(&format!(
                    "// ONNX LSTM as its operator spec writes it: gates i, o, f, c in W, R and B;\n// {}.\n",
                    what.join("; ")
                ));
                s.push_str("cell @CELL@(input_size: int, hidden_size: int) {\n");
                line(&mut s, "input x: [input_size]");
                line(&mut s, "state h: [hidden_size]");
                line(&mut s, "state c: [hidden_size]");
                line(&mut s, "param W: [4 * hidden_size, input_size]");
                line(&mut s, "param R: [4 * hidden_size, hidden_size]");
                if self.bias {
                    line(&mut s, "param Wb: [4 * hidden_size]");
                    line(&mut s, "param Rb: [4 * hidden_size]");
                }
                if self.peephole {
                    line(
                        &mut s,
                        "param P: [3 * hidden_size]    // peepholes, in the order i, o, f",
                    );
                }
                let z = if self.bias {
                    "W @ x + Wb + R @ h + Rb"
                } else {
                    "W @ x + R @ h"
                };
                line(&mut s, &format!("i, o, f, g = chunk({z}, 4)"));
                let h = &self.acts[2];
                let g = g.expect("three activations");
                if self.peephole {
                    line(&mut s, "p_i, p_o, p_f = chunk(P, 3)");
                }
                let peep = |gate: &str, state: &str| {
                    if self.peephole {
                        format!("{gate} + p_{gate} * {state}")
                    } else {
                        gate.to_string()
                    }
                };
                line(
                    &mut s,
                    &format!("i = {}", f.apply(&self.clip(peep("i", "c"))?)?),
                );
                if self.input_forget {
                    // The spec gives no equation; ONNX Runtime couples f to i.
                    line(&mut s, "f = 1 - i    // input_forget: the forget gate is coupled to the input gate");
                } else {
                    line(
                        &mut s,
                        &format!("f = {}", f.apply(&self.clip(peep("f", "c"))?)?),
                    );
                }
                line(
                    &mut s,
                    &format!("c' = f * c + i * {}", g.apply(&self.clip("g".into())?)?),
                );
                line(
                    &mut s,
                    &format!("o = {}", f.apply(&self.clip(peep("o", "c'"))?)?),
                );
                line(&mut s, &format!("h' = o * {}", h.apply("c'")?));
            }
            Kind::Gru => {
                s.push_str(&format!(
                    "// ONNX GRU as its operator spec writes it: gates z, r, h in W, R and B;\n// linear_before_reset = {}; {}.\n",
                    self.linear_before_reset as i32,
                    what.join("; ")
                ));
                s.push_str("cell @CELL@(input_size: int, hidden_size: int) {\n");
                line(&mut s, "input x: [input_size]");
                line(&mut s, "state h: [hidden_size]");
                line(&mut s, "param W: [3 * hidden_size, input_size]");
                if self.bias {
                    line(&mut s, "param Wb: [3 * hidden_size]");
                }
                let g = g.expect("two activations");
                let input_gates = format!("x_z, x_r, x_h = chunk({}, 3)", bias("W", "Wb", "x"));
                if self.linear_before_reset {
                    line(&mut s, "param R: [3 * hidden_size, hidden_size]");
                    if self.bias {
                        line(&mut s, "param Rb: [3 * hidden_size]");
                    }
                    line(&mut s, &input_gates);
                    line(
                        &mut s,
                        &format!("h_z, h_r, h_h = chunk({}, 3)", bias("R", "Rb", "h")),
                    );
                    line(
                        &mut s,
                        &format!("z = {}", f.apply(&self.clip("x_z + h_z".into())?)?),
                    );
                    line(
                        &mut s,
                        &format!("r = {}", f.apply(&self.clip("x_r + h_r".into())?)?),
                    );
                    line(
                        &mut s,
                        &format!("n = {}", g.apply(&self.clip("x_h + r * h_h".into())?)?),
                    );
                } else {
                    line(
                        &mut s,
                        "param R_zr: [2 * hidden_size, hidden_size]    // R's z and r rows",
                    );
                    line(
                        &mut s,
                        "param R_h: [hidden_size, hidden_size]         // R's h rows",
                    );
                    if self.bias {
                        line(&mut s, "param Rb_zr: [2 * hidden_size]");
                        line(&mut s, "param Rb_h: [hidden_size]");
                    }
                    line(&mut s, &input_gates);
                    line(
                        &mut s,
                        &format!("h_z, h_r = chunk({}, 2)", bias("R_zr", "Rb_zr", "h")),
                    );
                    line(
                        &mut s,
                        &format!("z = {}", f.apply(&self.clip("x_z + h_z".into())?)?),
                    );
                    line(
                        &mut s,
                        &format!("r = {}", f.apply(&self.clip("x_r + h_r".into())?)?),
                    );
                    let pre = if self.bias {
                        "x_h + R_h @ (r * h) + Rb_h"
                    } else {
                        "x_h + R_h @ (r * h)"
                    };
                    line(
                        &mut s,
                        &format!("n = {}", g.apply(&self.clip(pre.into())?)?),
                    );
                }
                line(&mut s, "h' = (1 - z) * n + z * h");
            }
            Kind::Rnn => {
                s.push_str(&format!(
                    "// ONNX RNN as its operator spec writes it; {}.\n",
                    what.join("; ")
                ));
                s.push_str("cell @CELL@(input_size: int, hidden_size: int) {\n");
                line(&mut s, "input x: [input_size]");
                line(&mut s, "state h: [hidden_size]");
                line(&mut s, "param W: [hidden_size, input_size]");
                line(&mut s, "param R: [hidden_size, hidden_size]");
                if self.bias {
                    line(&mut s, "param Wb: [hidden_size]");
                    line(&mut s, "param Rb: [hidden_size]");
                }
                let z = if self.bias {
                    "W @ x + Wb + R @ h + Rb"
                } else {
                    "W @ x + R @ h"
                };
                line(&mut s, &format!("h' = {}", f.apply(&self.clip(z.into())?)?));
            }
        }
        line(&mut s, "emit h'");
        s.push_str("}\n");
        Ok(s)
    }
}

/// A constant input that must be there, as floats of the given shape.
fn weight(
    imp: &Importer,
    node: &Node,
    i: usize,
    what: &str,
    shape: &[usize],
) -> Result<ArrayD<f32>> {
    let c =
        match imp.arg(node, i)? {
            Some(Val::Const(c)) => c,
            Some(v) => return Err(ImportError::new(format!(
                "{what} (input {i}, \"{}\") is {}; rnnc needs the weights as initializers",
                node.input(i).unwrap_or(""),
                v.kind()
            ))
            .help(
                "export with the weights as initializers (torch.onnx.export does so by default)",
            )),
            None => return Err(ImportError::new(format!("{what} (input {i}) is required"))),
        };
    if c.shape() != shape {
        return Err(ImportError::new(format!(
            "{what} has shape {:?}; the node's sizes need {shape:?}",
            c.shape()
        )));
    }
    Ok(match c {
        Const::F32(a) => a,
        Const::I64(_) => return Err(ImportError::new(format!("{what} holds integers"))),
    })
}

/// Rows `a..b` of axis 0 of `w` (one direction's gates).
fn rows(w: &ArrayD<f32>, a: usize, b: usize) -> ArrayD<f32> {
    w.slice_axis(Axis(0), Slice::from(a..b)).to_owned()
}

/// An optional initial state: None (zeros) or the model value holding it.
fn initial(imp: &mut Importer, node: &Node, i: usize, what: &str) -> Result<Option<Dyn>> {
    match imp.arg(node, i)? {
        None | Some(Val::Zeros(_)) => Ok(None),
        Some(Val::Const(c)) if c.floats().iter().all(|&v| v == 0.0) => Ok(None),
        Some(Val::Dyn(d)) => Ok(Some(d)),
        Some(v) => Err(ImportError::new(format!(
            "{what} (input {i}) is {}; rnnc takes initial states as graph inputs (or leaves them out for zeros)",
            v.kind()
        ))),
    }
}

pub fn convert(imp: &mut Importer, node: &Node) -> Result<()> {
    let kind = match node.op() {
        "LSTM" => Kind::Lstm,
        "GRU" => Kind::Gru,
        _ => Kind::Rnn,
    };
    let direction = node
        .string("direction")?
        .unwrap_or_else(|| "forward".into());
    let reverses: &[bool] = match direction.as_str() {
        "forward" => &[false],
        "reverse" => &[true],
        "bidirectional" => &[false, true],
        other => {
            return Err(ImportError::new(format!(
                "direction \"{other}\" is not forward, reverse or bidirectional"
            )))
        }
    };
    let dirs = reverses.len();
    let layout = node.int("layout", 0);
    if layout != 0 && layout != 1 {
        return Err(ImportError::new(format!("layout {layout} is not 0 or 1")));
    }
    let clip = node.float("clip").filter(|&c| c > 0.0);
    if let Some(c) = node.float("clip") {
        if c <= 0.0 {
            return Err(ImportError::new(format!("clip {c} is not positive")));
        }
    }
    let input_forget = kind == Kind::Lstm && node.int("input_forget", 0) != 0;
    let lbr = kind == Kind::Gru && node.int("linear_before_reset", 0) != 0;
    let acts = activations(node, kind, dirs)?;

    let x = imp.operand(node, 0)?;
    if x.rank() != 3 || x.int {
        return Err(ImportError::new(format!(
            "X must be a float tensor of rank 3, not {}",
            crate::value::shape_text(&x.shape)
        )));
    }
    let (t_axis, b_axis) = if layout == 0 { (0, 1) } else { (1, 0) };
    imp.bind(&x.shape[t_axis], 'T', "X")?;
    imp.bind(&x.shape[b_axis], 'B', "X")?;
    let Some(input_size) = x.shape[2].fixed() else {
        return Err(ImportError::new("X's feature axis has no fixed size"));
    };
    let w_shape = match imp.arg(node, 2)? {
        Some(Val::Const(c)) if c.shape().len() == 3 => c.shape().to_vec(),
        _ => vec![],
    };
    let hidden = match node.int("hidden_size", 0) {
        h if h > 0 => h as usize,
        _ if w_shape.len() == 3 => w_shape[2],
        _ => return Err(ImportError::new("hidden_size is missing")),
    };
    let g = kind.gates();
    let w = weight(imp, node, 1, "W", &[dirs, g * hidden, input_size])?;
    let r = weight(imp, node, 2, "R", &[dirs, g * hidden, hidden])?;
    let b = match imp.arg(node, 3)? {
        None => None,
        Some(_) => Some(weight(imp, node, 3, "B", &[dirs, 2 * g * hidden])?),
    };
    let lengths = match imp.arg(node, 4)? {
        None => None,
        Some(Val::Dyn(d)) if d.int && d.rank() == 1 => {
            imp.bind(&d.shape[0], 'B', "sequence_lens")?;
            Some(d.name)
        }
        Some(v) => {
            return Err(ImportError::new(format!(
                "sequence_lens is {}; rnnc takes it as an integer graph input [batch]",
                v.kind()
            ))
            .help("leave it out when every sequence runs the whole length"))
        }
    };
    let h0 = initial(imp, node, 5, "initial_h")?;
    let c0 = if kind == Kind::Lstm {
        initial(imp, node, 6, "initial_c")?
    } else {
        None
    };
    let p = match (kind, imp.arg(node, 7)?) {
        (Kind::Lstm, Some(_)) => Some(weight(imp, node, 7, "P", &[dirs, 3 * hidden])?),
        _ => None,
    };
    for (d, what) in [(&h0, "initial_h"), (&c0, "initial_c")] {
        if let Some(d) = d {
            let want = if layout == 0 {
                vec![
                    Dim::Fixed(dirs),
                    x.shape[b_axis].clone(),
                    Dim::Fixed(hidden),
                ]
            } else {
                vec![
                    x.shape[b_axis].clone(),
                    Dim::Fixed(dirs),
                    Dim::Fixed(hidden),
                ]
            };
            if d.shape != want {
                return Err(ImportError::new(format!(
                    "{what} has shape {}; the node needs {}",
                    crate::value::shape_text(&d.shape),
                    crate::value::shape_text(&want)
                )));
            }
        }
    }

    let base = crate::names::sanitize(if node.name().is_empty() {
        node.op()
    } else {
        node.name()
    });
    let hidden_param = imp.hidden_size_param(&base, hidden);
    // The cell runs over [B, T, I]: layout 0's [T, B, I] is transposed once.
    let seq = if layout == 0 {
        imp.transposed(None, &format!("{base}_x"), &x, &[1, 0, 2])
            .name
    } else {
        x.name.clone()
    };

    let mut ys = Vec::new();
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for (d, &reverse) in reverses.iter().enumerate() {
        let config = CellConfig {
            kind,
            acts: acts[d].clone(),
            clip,
            bias: b.is_some(),
            peephole: p.is_some(),
            input_forget,
            linear_before_reset: lbr,
        };
        let base_name = match kind {
            Kind::Lstm => "OnnxLSTM",
            Kind::Gru => "OnnxGRU",
            Kind::Rnn => "OnnxRNN",
        };
        let cell = imp.cell(base_name, config.template()?);
        let dir_word = if reverse { "reverse" } else { "forward" };
        let layer = imp.layer(
            &format!("{base}_{dir_word}"),
            format!("{cell}({input_size}, {hidden_param})"),
        );
        let wd = w.index_axis(Axis(0), d).to_owned();
        let rd = r.index_axis(Axis(0), d).to_owned();
        imp.weights.push((format!("{layer}.W"), wd));
        let h = hidden;
        if kind == Kind::Gru && !lbr {
            imp.weights
                .push((format!("{layer}.R_zr"), rows(&rd, 0, 2 * h)));
            imp.weights
                .push((format!("{layer}.R_h"), rows(&rd, 2 * h, 3 * h)));
        } else {
            imp.weights.push((format!("{layer}.R"), rd));
        }
        if let Some(b) = &b {
            let bd = b.index_axis(Axis(0), d).to_owned();
            imp.weights
                .push((format!("{layer}.Wb"), rows(&bd, 0, g * h)));
            let rb = rows(&bd, g * h, 2 * g * h);
            if kind == Kind::Gru && !lbr {
                imp.weights
                    .push((format!("{layer}.Rb_zr"), rows(&rb, 0, 2 * h)));
                imp.weights
                    .push((format!("{layer}.Rb_h"), rows(&rb, 2 * h, 3 * h)));
            } else {
                imp.weights.push((format!("{layer}.Rb"), rb));
            }
        }
        if let Some(p) = &p {
            imp.weights
                .push((format!("{layer}.P"), p.index_axis(Axis(0), d).to_owned()));
        }
        // This direction's initial states, [B, H].
        let pick = |s: &Dyn| {
            if layout == 0 {
                format!("{}[{d}]", s.name)
            } else {
                format!("{}[:, {d}]", s.name)
            }
        };
        let init = match (kind, &h0, &c0) {
            (Kind::Lstm, None, None) | (_, None, _) if kind != Kind::Lstm || c0.is_none() => None,
            (Kind::Lstm, Some(hh), Some(cc)) => Some(format!("({}, {})", pick(hh), pick(cc))),
            (Kind::Lstm, Some(hh), None) => Some(format!("({0}, 0 * {0})", pick(hh))),
            (Kind::Lstm, None, Some(cc)) => Some(format!("(0 * {0}, {0})", pick(cc))),
            (_, Some(hh), _) => Some(pick(hh)),
            _ => None,
        };
        let mut args = vec![layer.clone(), seq.clone()];
        if let Some(i) = init {
            args.push(format!("init = {i}"));
        }
        if let Some(l) = &lengths {
            args.push(format!("lengths = {l}"));
        }
        if reverse {
            args.push("reverse = true".into());
        }
        let y = imp.names.fresh(&format!("{base}_y_{dir_word}"));
        let hn = imp.names.fresh(&format!("{base}_h_{dir_word}"));
        let mut targets = vec![y.clone(), hn.clone()];
        if kind == Kind::Lstm {
            let cn = imp.names.fresh(&format!("{base}_c_{dir_word}"));
            targets.push(cn.clone());
            cs.push(cn);
        }
        imp.line(format!(
            "{} = scan({})",
            targets.join(", "),
            args.join(", ")
        ));
        ys.push(y);
        hs.push(hn);
    }

    // Outputs in ONNX's layouts: Y [T, D, B, H] or [B, T, D, H]; Y_h, Y_c [D, B, H] or [B, D, H].
    let (bd, td) = (x.shape[b_axis].clone(), x.shape[t_axis].clone());
    let hd = Dim::Fixed(hidden);
    let dd = Dim::Fixed(dirs);
    let join = |parts: Vec<String>, k: usize| {
        if parts.len() == 1 {
            parts.into_iter().next().expect("one")
        } else {
            format!("cat([{}], dim = {k})", parts.join(", "))
        }
    };
    if let Some(o) = node.output(0) {
        let (parts, k, shape): (Vec<String>, usize, Vec<Dim>) = if layout == 0 {
            (
                ys.iter()
                    .map(|y| format!("unsqueeze(transpose({y}, 0, 1), 1)"))
                    .collect(),
                1,
                vec![td.clone(), dd.clone(), bd.clone(), hd.clone()],
            )
        } else {
            (
                ys.iter().map(|y| format!("unsqueeze({y}, 2)")).collect(),
                2,
                vec![bd.clone(), td.clone(), dd.clone(), hd.clone()],
            )
        };
        imp.emit(o, join(parts, k), shape, false);
    }
    for (i, finals) in [(1, &hs), (2, &cs)] {
        let Some(o) = node.output(i) else { continue };
        if finals.is_empty() {
            return Err(ImportError::new(format!("{} has no output {i}", node.op())));
        }
        let (parts, k, shape): (Vec<String>, usize, Vec<Dim>) = if layout == 0 {
            (
                finals
                    .iter()
                    .map(|h| format!("unsqueeze({h}, 0)"))
                    .collect(),
                0,
                vec![dd.clone(), bd.clone(), hd.clone()],
            )
        } else {
            (
                finals
                    .iter()
                    .map(|h| format!("unsqueeze({h}, 1)"))
                    .collect(),
                1,
                vec![bd.clone(), dd.clone(), hd.clone()],
            )
        };
        imp.emit(o, join(parts, k), shape, false);
    }
    Ok(())
}
