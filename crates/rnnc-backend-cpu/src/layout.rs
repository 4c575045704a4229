//! Layout changes shared by the top-level and the scan-body planners: views of
//! part of a value, copies between strided layouts (slices, broadcasts,
//! transposes, flips, joins), and products of two run-time values. A value of
//! shape `[d0, …, dn]` is a view of `d0·…·d(n−1)` rows of `dn` columns.

use crate::plan::{copy, unsupported, Buffers, Instr, Slot, Unsupported, View};

/// Copies one layout change may take before it is refused: each is an
/// instruction of the program.
pub(crate) const MAX_COPIES: usize = 4096;

/// Row-major strides (in elements) of a value of shape `dims`.
pub(crate) fn row_strides(dims: &[usize]) -> Vec<isize> {
    let mut s = vec![1isize; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * dims[k + 1] as isize;
    }
    s
}

/// Rows and columns of a value of shape `dims` seen as a matrix.
pub(crate) fn rows_cols(dims: &[usize]) -> (usize, usize) {
    match dims.split_last() {
        None => (1, 1),
        Some((c, lead)) => (lead.iter().product(), *c),
    }
}

/// The view of an operand of shape `od` inside an elementwise loop over `dims`:
/// the same rows, or one row (or one element) repeated.
pub(crate) fn broadcast(v: View, od: &[usize], dims: &[usize]) -> Result<View, Unsupported> {
    let (r, c) = rows_cols(dims);
    let (or, oc) = rows_cols(od);
    let same_rows = or == r && od.len() == dims.len();
    if (same_rows || or == 1) && (oc == c || oc == 1) {
        Ok(v)
    } else {
        unsupported(format!("broadcasting {od:?} to {dims:?}"))
    }
}

/// Where a planner puts what a layout change needs: workspace and instructions.
pub(crate) struct Layout<'a> {
    pub bufs: &'a mut Buffers,
    pub instrs: &'a mut Vec<Instr>,
}

impl Layout<'_> {
    /// Elements `start..end` of axis `axis` of a value of shape `od` viewed by `v`,
    /// where the rows of the result stay evenly spaced.
    pub(crate) fn sub_view(
        mut v: View,
        od: &[usize],
        axis: usize,
        start: usize,
        end: usize,
    ) -> Result<View, Unsupported> {
        let rank = od.len();
        if axis + 1 == rank {
            v.offset += start;
            v.cols = end - start;
            return Ok(v);
        }
        let outer: usize = od[..axis].iter().product();
        let inner: usize = od[axis + 1..rank - 1].iter().product();
        if axis + 2 == rank {
            // [.., T, F] → rows step over the sliced axis.
            if end - start == 1 {
                v.offset += start * v.row_stride;
                v.row_stride *= od[axis];
                v.rows = outer;
                return Ok(v);
            }
            if outer == 1 {
                v.offset += start * v.row_stride;
                v.rows = end - start;
                return Ok(v);
            }
        } else if outer == 1 {
            v.offset += start * inner * v.row_stride;
            v.rows = (end - start) * inner;
            return Ok(v);
        }
        unsupported(format!("a slice of axis {axis} of a {od:?} value"))
    }

    /// `x @ y` (NumPy's matmul) of two run-time values: `[.., m, k] @ [.., k, n]`,
    /// where each side's leading axes are the result's or absent (repeated).
    pub(crate) fn batch_matmul(
        &mut self,
        x: View,
        xd: &[usize],
        y: View,
        yd: &[usize],
        dims: &[usize],
    ) -> Result<View, Unsupported> {
        let (xr, yr, r) = (xd.len(), yd.len(), dims.len());
        if xr < 2 || yr < 2 {
            return unsupported("a matrix product of a vector");
        }
        let (m, k, n) = (xd[xr - 2], xd[xr - 1], yd[yr - 1]);
        let lead = &dims[..r - 2];
        let batch: usize = lead.iter().product();
        // A side's step between batch entries: its block, or 0 when it has one.
        let step = |d: &[usize], block: usize| -> Result<usize, Unsupported> {
            let own = &d[..d.len() - 2];
            if own.iter().product::<usize>() == 1 {
                Ok(0)
            } else if own == lead {
                Ok(block)
            } else {
                unsupported(format!("a batched product broadcasting {d:?} to {dims:?}"))
            }
        };
        let (sa, sb) = (step(xd, m * k)?, step(yd, k * n)?);
        let a = self.contiguous(x);
        let b = self.contiguous(y);
        let out = self.bufs.scratch_view(batch * m, n);
        self.instrs.push(Instr::BatchMatMul {
            a,
            b,
            out,
            dims: (batch, m, k, n),
            steps: (sa, sb, m * n),
        });
        Ok(out)
    }

    /// Elements `start..end` of `axis` of `v` (shape `od`) copied into the workspace,
    /// where no view of `v` can hold them.
    pub(crate) fn sliced_copy(
        &mut self,
        v: View,
        od: &[usize],
        axis: usize,
        start: usize,
        end: usize,
    ) -> Result<View, Unsupported> {
        let v = self.contiguous(v);
        let src_s = row_strides(od);
        let mut counts = od.to_vec();
        counts[axis] = end - start;
        let (r, c) = rows_cols(&counts);
        let out = self.bufs.scratch_view(r, c);
        let dst = row_strides(&counts);
        let src = (v.slot, v.offset as isize + start as isize * src_s[axis]);
        self.strided_copy(src, &src_s, &counts, (out.slot, out.offset as isize), &dst)?;
        Ok(out)
    }

    /// `v` (shape `od`) broadcast to `dims` (NumPy's rule) in a new workspace value.
    pub(crate) fn broadcast_copy(
        &mut self,
        v: View,
        od: &[usize],
        dims: &[usize],
    ) -> Result<View, Unsupported> {
        let v = self.contiguous(v);
        let own = row_strides(od);
        let lead = dims.len() - od.len();
        // Axes the operand lacks or has once read the same elements again.
        let src: Vec<isize> = (0..dims.len())
            .map(|k| match k.checked_sub(lead) {
                Some(j) if od[j] == dims[k] => own[j],
                _ => 0,
            })
            .collect();
        let (r, c) = rows_cols(dims);
        let out = self.bufs.scratch_view(r, c);
        let dst = row_strides(dims);
        self.strided_copy(
            (v.slot, v.offset as isize),
            &src,
            dims,
            (out.slot, out.offset as isize),
            &dst,
        )?;
        Ok(out)
    }

    /// `v` (shape `od`) with axes `a` and `b` swapped: a new value of shape `dims`.
    pub(crate) fn transpose(
        &mut self,
        v: View,
        od: &[usize],
        dims: &[usize],
        (a, b): (usize, usize),
    ) -> Result<View, Unsupported> {
        let out_s = row_strides(dims);
        // Source axis k lands on output axis k, with a and b swapped.
        let land = |k: usize| {
            if k == a {
                b
            } else if k == b {
                a
            } else {
                k
            }
        };
        let dst: Vec<isize> = (0..od.len()).map(|k| out_s[land(k)]).collect();
        self.copy_into_new(v, od, dims, 0, &dst)
    }

    /// `v` (shape `od` = `dims`) reversed along `axis`: a new value.
    pub(crate) fn flip(
        &mut self,
        v: View,
        od: &[usize],
        dims: &[usize],
        axis: usize,
    ) -> Result<View, Unsupported> {
        let out_s = row_strides(dims);
        let mut dst = out_s.clone();
        dst[axis] = -out_s[axis];
        let base = (od[axis] - 1) as isize * out_s[axis];
        self.copy_into_new(v, od, dims, base, &dst)
    }

    /// `parts` (views and their shapes) joined along `axis` (with `stack`, along a
    /// new axis there) into a new value of shape `dims`, each copied into its place.
    pub(crate) fn join(
        &mut self,
        parts: &[(View, Vec<usize>)],
        dims: &[usize],
        axis: usize,
        stack: bool,
    ) -> Result<View, Unsupported> {
        let (r, c) = rows_cols(dims);
        let out = self.bufs.scratch_view(r, c);
        let out_s = row_strides(dims);
        let mut at = 0usize;
        for (src, od) in parts {
            // Stack: the operand's axes skip the new one.
            let dst: Vec<isize> = (0..od.len())
                .map(|k| out_s[if stack && k >= axis { k + 1 } else { k }])
                .collect();
            let base = out.offset as isize + at as isize * out_s[axis];
            self.relayout_into(*src, od, out.slot, base, &dst)?;
            at += if stack { 1 } else { od[axis] };
        }
        Ok(out)
    }

    /// `v` (shape `od`) copied into a new workspace value of shape `dims`, its
    /// element at index `i` landing at `base + Σ i[k] · dst[k]`.
    pub(crate) fn copy_into_new(
        &mut self,
        v: View,
        od: &[usize],
        dims: &[usize],
        base: isize,
        dst: &[isize],
    ) -> Result<View, Unsupported> {
        let (r, c) = rows_cols(dims);
        let out = self.bufs.scratch_view(r, c);
        self.relayout_into(v, od, out.slot, out.offset as isize + base, dst)?;
        Ok(out)
    }

    /// `v` (shape `od`, made contiguous) copied to `slot` at `base + Σ i[k] · dst[k]`.
    pub(crate) fn relayout_into(
        &mut self,
        v: View,
        od: &[usize],
        slot: Slot,
        base: isize,
        dst: &[isize],
    ) -> Result<(), Unsupported> {
        let v = self.contiguous(v);
        let src_s = row_strides(od);
        self.strided_copy((v.slot, v.offset as isize), &src_s, od, (slot, base), dst)
    }

    /// Copies a `counts`-shaped block between two strided layouts (strides in
    /// elements, per axis; a destination stride may be negative): the innermost
    /// axes contiguous on both sides become the copied rows' columns, the largest
    /// other axis with positive strides the rows, the next the steps of a
    /// [`Instr::StepCopy`], and any further ones one instruction each.
    pub(crate) fn strided_copy(
        &mut self,
        (src_slot, src_base): (Slot, isize),
        src: &[isize],
        counts: &[usize],
        (dst_slot, dst_base): (Slot, isize),
        dst: &[isize],
    ) -> Result<(), Unsupported> {
        // (count, src stride, dst stride), axes of one element dropped.
        let mut axes: Vec<(usize, isize, isize)> = (0..counts.len())
            .filter(|&k| counts[k] != 1)
            .map(|k| (counts[k], src[k], dst[k]))
            .collect();
        if counts.contains(&0) {
            return Ok(());
        }
        let mut cols = 1usize;
        while let Some(&(n, s, d)) = axes.last() {
            if s == cols as isize && d == cols as isize {
                cols *= n;
                axes.pop();
            } else {
                break;
            }
        }
        let take = |axes: &mut Vec<(usize, isize, isize)>, positive: bool| {
            let best = axes
                .iter()
                .enumerate()
                .filter(|(_, a)| !positive || (a.1 > 0 && a.2 > 0))
                .max_by_key(|(_, a)| a.0)
                .map(|(i, _)| i)?;
            Some(axes.remove(best))
        };
        let rows = take(&mut axes, true).unwrap_or((1, cols as isize, cols as isize));
        let steps = take(&mut axes, false).unwrap_or((1, 0, 0));
        let copies: usize = axes.iter().map(|a| a.0).product();
        if copies > MAX_COPIES {
            return unsupported(format!(
                "a copy between layouts of {counts:?} elements in {copies} pieces"
            ));
        }
        for n in 0..copies {
            // This copy's index along each remaining axis, last axis fastest.
            let (mut rest, mut so, mut d_o) = (n, src_base, dst_base);
            for &(c, s, d) in axes.iter().rev() {
                let i = (rest % c) as isize;
                rest /= c;
                so += i * s;
                d_o += i * d;
            }
            let view = |slot: Slot, offset: isize, stride: isize| View {
                slot,
                offset: offset as usize,
                rows: rows.0,
                cols,
                row_stride: stride as usize,
                time: None,
            };
            self.instrs.push(Instr::StepCopy {
                src: view(src_slot, so, rows.1),
                dst: view(dst_slot, d_o, rows.2),
                steps: steps.0,
                src_step: steps.1,
                dst_step: steps.2,
            });
        }
        Ok(())
    }

    /// `v`'s elements seen as a value of shape `dims` (the same elements in the
    /// same order: a new axis of length 1, one dropped, an index's result): `v`
    /// itself where its rows and columns are already that shape's, else a
    /// contiguous copy seen as it.
    pub(crate) fn reshaped(&mut self, v: View, dims: &[usize]) -> View {
        let (r, c) = rows_cols(dims);
        if (v.rows, v.cols) == (r, c) {
            return v;
        }
        let v = self.contiguous(v);
        View::contiguous(v.slot, v.offset, r, c)
    }

    /// A copy of `v` into the workspace unless it already is a whole contiguous
    /// `rows × cols` block at a fixed place (what a scan's sequence and state
    /// pointers and a strided copy's source must be; a sequence's time step
    /// inside a scan body moves, so it is copied).
    pub(crate) fn contiguous(&mut self, v: View) -> View {
        if v.time.is_none() && (v.row_stride == v.cols || v.rows == 1) {
            return View {
                row_stride: v.cols,
                ..v
            };
        }
        let out = self.bufs.scratch_view(v.rows, v.cols);
        self.instrs.push(copy(v, out));
        out
    }
}
