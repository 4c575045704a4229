//! A drawing of a graph as SVG (`rnnc ir --format svg`, and each pass in
//! `rnnc explore`), laid out here: nodes in layers by their longest path from an
//! input, ordered in each layer by where their operands sit, edges as curves from
//! producer to consumer. A scan's body (and tail), a decode loop's body and a fused
//! region are drawn inside their node's box. Each node is labelled `%N op` as in
//! the text form, with its type and source line in its tooltip; where `link` gives
//! a target, clicking the node follows it.

use crate::graph::{Graph, NodeId, Value};
use crate::op::{Op, Scan};
use crate::print::attrs;
use std::collections::HashMap;
use std::fmt::Write;

const ROW: f64 = 26.0;
const GAP_X: f64 = 14.0;
const GAP_Y: f64 = 26.0;
const PAD: f64 = 10.0;
const CHAR: f64 = 6.6;

/// A laid-out graph: its size and the SVG of its contents at the origin.
struct Drawn {
    w: f64,
    h: f64,
    svg: String,
}

/// Where clicking a node goes: given its `%N` number and the source span's line
/// (when lowering recorded one), an `href`, or None for no link.
pub type Link<'a> = &'a dyn Fn(usize, Option<usize>) -> Option<String>;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole drawing; `line_of` maps a node's span to its source line.
pub fn to_svg(
    g: &Graph,
    line_of: &dyn Fn(&crate::graph::Node) -> Option<usize>,
    link: Link,
) -> String {
    let mut counter = 0;
    let d = draw(g, &mut counter, line_of, link);
    let (w, h) = (d.w + 2.0 * PAD, d.h + 2.0 * PAD);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"monospace\" font-size=\"11\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#888\"/></marker></defs>\
         <title>{}</title><g transform=\"translate({PAD},{PAD})\">{}</g></svg>",
        esc(&g.name),
        d.svg
    )
}

/// The label of a node: `%N op key=value …`, attributes cut short.
fn label(first: usize, op: &Op) -> String {
    let mut s = format!("%{first} {}", op.name());
    for (k, v) in attrs(op) {
        if matches!(op, Op::Scan(_) | Op::Decode(_)) && k != "reverse" && k != "width" {
            continue;
        }
        let _ = write!(s, " {k}={}", v.trim_matches('"'));
    }
    if s.len() > 40 {
        s.truncate(39);
        s.push('…');
    }
    s
}

fn draw(
    g: &Graph,
    counter: &mut usize,
    line_of: &dyn Fn(&crate::graph::Node) -> Option<usize>,
    link: Link,
) -> Drawn {
    let Some(order) = g.topo_order() else {
        return Drawn {
            w: 120.0,
            h: ROW,
            svg: "<text y=\"14\">a cycle</text>".into(),
        };
    };
    // Numbers as the text form gives them; nested bodies drawn as they are numbered.
    struct Item {
        id: NodeId,
        first: usize,
        w: f64,
        h: f64,
        inner: Vec<Drawn>,
    }
    let mut items: Vec<Item> = Vec::new();
    let mut number: HashMap<Value, usize> = HashMap::new();
    for &id in &order {
        let node = g.node(id);
        let first = *counter;
        for r in 0..node.results.len() as u32 {
            number.insert(Value::new(id, r), *counter);
            *counter += 1;
        }
        let mut bodies: Vec<&Graph> = Vec::new();
        match &node.op {
            Op::Scan(Scan { body, tail, .. }) => {
                bodies.push(body);
                if let Some(t) = tail {
                    bodies.push(t);
                }
            }
            Op::Decode(d) => bodies.push(&d.body),
            Op::Fused(f) => bodies.push(&f.body),
            _ => {}
        }
        let inner: Vec<Drawn> = bodies
            .iter()
            .map(|b| draw(b, counter, line_of, link))
            .collect();
        let text_w = label(first, &node.op).chars().count() as f64 * CHAR + 16.0;
        let (w, h) = if inner.is_empty() {
            (text_w, ROW)
        } else {
            let w = inner.iter().map(|d| d.w).fold(text_w, f64::max) + 2.0 * PAD;
            let h = ROW + inner.iter().map(|d| d.h + PAD).sum::<f64>() + PAD;
            (w, h)
        };
        items.push(Item {
            id,
            first,
            w,
            h,
            inner,
        });
    }
    let index: HashMap<NodeId, usize> =
        items.iter().enumerate().map(|(i, it)| (it.id, i)).collect();
    // Layers by longest path from a node without operands.
    let mut layer = vec![0usize; items.len()];
    for (i, it) in items.iter().enumerate() {
        layer[i] = g
            .operands(it.id)
            .iter()
            .filter_map(|v| index.get(&v.node))
            .map(|&j| layer[j] + 1)
            .max()
            .unwrap_or(0);
    }
    let n_layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
    for (i, &l) in layer.iter().enumerate() {
        rows[l].push(i);
    }
    // Place layer by layer; each layer sorted by the mean x of its operands.
    let mut x = vec![0.0f64; items.len()];
    let mut y = vec![0.0f64; items.len()];
    let (mut top, mut width) = (0.0f64, 0.0f64);
    for row in &mut rows {
        // Where each node of the layer would like its centre: over its operands.
        let want: Vec<(usize, f64)> = row
            .iter()
            .map(|&i| {
                let xs: Vec<f64> = g
                    .operands(items[i].id)
                    .iter()
                    .filter_map(|v| index.get(&v.node))
                    .map(|&j| x[j] + items[j].w / 2.0)
                    .collect();
                let k = if xs.is_empty() {
                    i as f64 * 1e-3
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                };
                (i, k)
            })
            .collect();
        let mut want = want;
        want.sort_by(|a, b| a.1.total_cmp(&b.1));
        row.clear();
        let mut at = 0.0f64;
        let mut tallest = 0.0f64;
        for (i, k) in want {
            row.push(i);
            x[i] = at.max(k - items[i].w / 2.0);
            y[i] = top;
            at = x[i] + items[i].w + GAP_X;
            tallest = tallest.max(items[i].h);
        }
        width = width.max(at - GAP_X);
        top += tallest + GAP_Y;
    }
    let mut svg = String::new();
    // Edges first, under the boxes.
    for (i, it) in items.iter().enumerate() {
        for v in g.operands(it.id) {
            let Some(&j) = index.get(&v.node) else {
                continue;
            };
            let (x1, y1) = (x[j] + items[j].w / 2.0, y[j] + items[j].h);
            let (x2, y2) = (x[i] + it.w / 2.0, y[i]);
            let my = (y1 + y2) / 2.0;
            let _ = write!(
                svg,
                "<path d=\"M{x1:.1},{y1:.1} C{x1:.1},{my:.1} {x2:.1},{my:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#aaa\" marker-end=\"url(#arrow)\"/>"
            );
        }
    }
    for (i, it) in items.iter().enumerate() {
        let node = g.node(it.id);
        let line = line_of(node);
        let tys: Vec<String> = node.results.iter().map(|t| t.to_string()).collect();
        let tip = format!(
            "%{} = {} : {}{}",
            it.first,
            node.op.name(),
            tys.join(", "),
            line.map_or(String::new(), |l| format!("\nsource line {l}"))
        );
        let (fill, stroke) = match &node.op {
            Op::Scan(_) | Op::Decode(_) => ("#f3f7fd", "#5b7fb0"),
            Op::Fused(_) => ("#f6f3fb", "#8a6bb0"),
            Op::Input { .. } | Op::Weight { .. } | Op::Arg { .. } => ("#f4f4f4", "#999"),
            _ => ("#fffdf5", "#b59a4a"),
        };
        let open = match link(it.first, line) {
            Some(href) => format!("<a href=\"{}\">", esc(&href)),
            None => "<a>".into(),
        };
        let _ = write!(
            svg,
            "<g class=\"node\" data-value=\"{}\"{} transform=\"translate({:.1},{:.1})\">{open}<title>{}</title>\
             <rect width=\"{:.1}\" height=\"{:.1}\" rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\"/>\
             <text x=\"8\" y=\"17\">{}</text>",
            it.first,
            line.map_or(String::new(), |l| format!(" data-line=\"{l}\"")),
            x[i],
            y[i],
            esc(&tip),
            it.w,
            it.h,
            esc(&label(it.first, &node.op))
        );
        let mut at = ROW;
        for d in &it.inner {
            let _ = write!(
                svg,
                "<g transform=\"translate({PAD},{at:.1})\">{}</g>",
                d.svg
            );
            at += d.h + PAD;
        }
        svg.push_str("</a></g>");
    }
    // Outputs along the bottom.
    let mut ox = 0.0;
    let outs: Vec<String> = g
        .outputs
        .iter()
        .map(|(l, v)| {
            format!(
                "{l} %{}",
                number.get(v).map_or("?".into(), |n| n.to_string())
            )
        })
        .collect();
    if !outs.is_empty() {
        for o in &outs {
            let w = o.chars().count() as f64 * CHAR + 12.0;
            let _ = write!(
                svg,
                "<g class=\"output\" transform=\"translate({ox:.1},{top:.1})\"><rect width=\"{w:.1}\" height=\"{ROW}\" rx=\"12\" fill=\"#eef7ee\" stroke=\"#6a9f6a\"/><text x=\"6\" y=\"17\">{}</text></g>",
                esc(o)
            );
            ox += w + GAP_X;
        }
        top += ROW + GAP_Y;
        width = width.max(ox - GAP_X);
    }
    Drawn {
        w: width.max(1.0),
        h: (top - GAP_Y).max(ROW),
        svg,
    }
}
