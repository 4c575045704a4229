//! `split-concat-matmul`: a product with a concatenation becomes a sum of products
//! with column blocks of the weight, `W @ [h, x]` → `W[:, :H] @ h + W[:, H:] @ x`.
//!
//! ```text
//! before:  %3 = concat axis=1 %h, %x : f32[B, 28]            after:  %5 = slice axis=1 start=0 end=16 %w : f32[64, 16]
//!          %4 = linear %3, %w : f32[B, 64]                          %6 = linear %h, %5 : f32[B, 64]
//!                                                                   %7 = slice axis=1 start=16 end=28 %w : f32[64, 12]
//!                                                                   %8 = linear %x, %7 : f32[B, 64]
//!                                                                   %9 = add %6, %8 : f32[B, 64]
//! ```
//! Only when the weight is known at load time (its column blocks are then sliced
//! once) and the concatenation is along the feature axis. This separates the
//! recurrent product from the input projection, so that `hoist-input-projection`
//! can take the latter out of the loop.

use crate::rewrite::{add, dependencies, each_graph, load_time_products};
use crate::Pass;
use rnnc_ir::{BinaryOp, Dim, Graph, Op, Value};

pub struct SplitConcatMatmul;

impl Pass for SplitConcatMatmul {
    fn name(&self) -> &'static str {
        "split-concat-matmul"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| {
            // Nested concatenations (`[[x, h], c]`) split one level per round.
            let mut changed = false;
            while split(g)? {
                super::dce::sweep(g);
                changed = true;
            }
            Ok(changed)
        })
    }
}

fn split(g: &mut Graph) -> Result<bool, String> {
    let dep = dependencies(g);
    let mut changed = false;
    for (id, x, w) in load_time_products(g, &dep) {
        let Op::Concat { axis } = g.node(x.node).op else {
            continue;
        };
        if axis + 1 != g.ty(x).rank() {
            continue;
        }
        let parts = g.operands(x.node);
        let mut sum: Option<Value> = None;
        let mut start = 0;
        for p in parts {
            let Some(&Dim::Fixed(width)) = g.ty(p).dims.last() else {
                return Err("concatenated parts have fixed widths".into());
            };
            let block = add(
                g,
                Op::Slice {
                    axis: 1,
                    start,
                    end: start + width,
                },
                &[w],
            )?;
            let term = add(g, Op::Linear, &[p, block])?;
            sum = Some(match sum {
                None => term,
                Some(s) => add(g, Op::Binary(BinaryOp::Add), &[s, term])?,
            });
            start += width;
        }
        g.replace_uses(Value::new(id, 0), sum.expect("a concat has operands"));
        changed = true;
    }
    Ok(changed)
}
