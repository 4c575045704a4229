//! `fuse-gates`: products that share an operand become one product with the
//! weights stacked, then slices: the four gates of an LSTM become one `[4H, ·]` GEMM.
//!
//! ```text
//! before:  %5 = linear %h, %w_i : f32[B, 16]                 after:  %9 = concat axis=0 %w_i, %w_f : f32[32, 16]
//!          %6 = linear %h, %w_f : f32[B, 16]                        %10 = linear %h, %9 : f32[B, 32]
//!                                                                   %11 = slice axis=1 start=0 end=16 %10 : f32[B, 16]
//!                                                                   %12 = slice axis=1 start=16 end=32 %10 : f32[B, 16]
//! ```
//! `linear(x, W1) … linear(x, Wn)` = slices of `linear(x, concat(W1, …, Wn))`, row
//! blocks of the product being products with row blocks of the weight. It works on
//! structure, not names: any cell's products with one operand fuse. It declines when
//! the operands differ, and when a weight is not known at load time (a product
//! whose matrix depends on the state): stacking it would happen every step.

use crate::rewrite::{add, dependencies, each_graph, load_time_products};
use crate::Pass;
use rnnc_ir::{Dim, Graph, NodeId, Op, Value};

pub struct FuseGates;

impl Pass for FuseGates {
    fn name(&self) -> &'static str {
        "fuse-gates"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| Ok(fuse(g)? && super::dce::sweep_changed(g)))
    }
}

fn fuse(g: &mut Graph) -> Result<bool, String> {
    let dep = dependencies(g);
    // Products grouped by their shared operand, in topological order.
    let mut groups: Vec<(Value, Vec<NodeId>)> = Vec::new();
    for (id, x, _) in load_time_products(g, &dep) {
        match groups.iter_mut().find(|(gx, _)| *gx == x) {
            Some((_, members)) => members.push(id),
            None => groups.push((x, vec![id])),
        }
    }
    let mut changed = false;
    for (x, members) in groups.into_iter().filter(|(_, m)| m.len() > 1) {
        let weights: Vec<Value> = members.iter().map(|id| g.operands(*id)[1]).collect();
        let stacked = add(g, Op::Concat { axis: 0 }, &weights)?;
        let product = add(g, Op::Linear, &[x, stacked])?;
        let axis = g.ty(product).rank() - 1;
        let mut start = 0;
        for (id, w) in members.iter().zip(&weights) {
            let Dim::Fixed(rows) = g.ty(*w).dims[0] else {
                return Err("weights have fixed shapes".into());
            };
            let part = add(
                g,
                Op::Slice {
                    axis,
                    start,
                    end: start + rows,
                },
                &[product],
            )?;
            g.replace_uses(Value::new(*id, 0), part);
            start += rows;
        }
        changed = true;
    }
    Ok(changed)
}
