//! The x86-64 kernels: one body, written once as a macro, instantiated for
//! AVX-512F (`avx512.rs`) and AVX2+FMA (`avx2.rs`) with their vector type,
//! intrinsics and register budget; the elementwise kernel is `elementwise.rs`'s
//! loops compiled for each.
//!
//! The product is tiled as `R` rows × `P` panels × 2 vectors of accumulators,
//! kept in registers through the whole K loop: each step of K loads the panels'
//! weight vectors once and broadcasts one element of each row. Many rows take
//! blocks of `RMAX` rows per panel (the panel stays in L1 while the rows pass);
//! one to three rows take several panels at once instead, so there are still
//! enough independent FMA chains to hide the FMA latency (a matrix-vector product
//! is limited by how fast the weights stream from L2). Rows come in chunks that
//! fit in L2 beside the panels, so a large left operand (the input projection
//! over all T) is read from memory once.

macro_rules! panel_kernels {
    (
        feature: $feat:literal,
        vector: $V:ty,
        lanes: $L:expr,
        rows_per_block: $RMAX:literal,
        panels_for_rows: [$P1:literal, $P2:literal, $P3:literal],
        zero: $zero:path,
        load: $load:path,
        splat: $set1:path,
        fma: $fma:path,
        store: $store:path $(,)?
    ) => {
        use std::arch::x86_64::*;

        /// Vectors per panel row.
        const NV: usize = 2;
        /// Columns per panel.
        pub const NB: usize = NV * $L;
        /// Bytes of the left operand a chunk of rows may take: the chunk, its
        /// results and the panels must share L2 (1 MiB on the smallest we run on);
        /// measured on a 2 MiB-L2 Xeon, rows = 6400, K = 256, M = 1024: 157 GFLOP/s
        /// with 64 KiB, 93 with 256 KiB.
        const CHUNK_BYTES: usize = 64 << 10;
        /// Fewest rows in a chunk: each chunk streams all the panels again.
        const CHUNK_MIN_ROWS: usize = 48;

        /// The [`crate::PanelKernel`] of this ISA.
        ///
        /// # Safety
        /// As for [`crate::PanelKernel`]; the CPU must have the ISA's features.
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn panels(
            rows: usize,
            k: usize,
            x: *const f32,
            ldx: usize,
            w: *const f32,
            panels: usize,
            out: *mut f32,
            ldo: usize,
            init: *const f32,
            ldi: usize,
            cols: usize,
            next: isize,
            stream: usize,
        ) {
            // SAFETY: forwarded from the caller's contract.
            unsafe {
                run(
                    rows,
                    k,
                    (x, ldx),
                    (w, panels, stream),
                    (out, ldo),
                    (init, ldi, cols, next),
                )
            }
        }

        /// The [`crate::DotKernel`] of this ISA.
        ///
        /// # Safety
        /// As for [`crate::DotKernel`]; the CPU must have the ISA's features.
        pub unsafe extern "C" fn dot(
            rows: usize,
            k: usize,
            x: *const f32,
            ldx: usize,
            w: *const f32,
            out: *mut f32,
            ldo: usize,
        ) {
            // SAFETY: forwarded from the caller's contract.
            unsafe { dot_here(rows, k, (x, ldx), w, (out, ldo)) }
        }

        /// Each row of x times w: four vector accumulators over K (four
        /// independent FMA chains), the partial vector at the end, then the lanes
        /// summed in order, so a row's result does not depend on the thread.
        #[target_feature(enable = $feat)]
        unsafe fn dot_here(
            rows: usize,
            k: usize,
            (x, ldx): (*const f32, usize),
            w: *const f32,
            (out, ldo): (*mut f32, usize),
        ) {
            let whole = k / $L;
            for r in 0..rows {
                // SAFETY (every access below): row r of x has k elements, w has k.
                let xr = unsafe { x.add(r * ldx) };
                let mut acc = [$zero(); 4];
                let mut v = 0;
                while v + 4 <= whole {
                    for (j, a) in acc.iter_mut().enumerate() {
                        let at = (v + j) * $L;
                        *a = unsafe { $fma($load(xr.add(at)), $load(w.add(at)), *a) };
                    }
                    v += 4;
                }
                while v < whole {
                    let at = v * $L;
                    acc[0] = unsafe { $fma($load(xr.add(at)), $load(w.add(at)), acc[0]) };
                    v += 1;
                }
                if whole * $L < k {
                    let (at, n) = (whole * $L, k - whole * $L);
                    let (xv, wv) = unsafe { (partial(xr.add(at), n), partial(w.add(at), n)) };
                    acc[1] = $fma(xv, wv, acc[1]);
                }
                let mut lanes = [0.0f32; $L];
                for a in acc {
                    let mut part = [0.0f32; $L];
                    unsafe { $store(part.as_mut_ptr(), a) };
                    for (l, p) in lanes.iter_mut().zip(part) {
                        *l += p;
                    }
                }
                unsafe { *out.add(r * ldo) = lanes.iter().sum() };
            }
        }

        /// The [`crate::ElementwiseKernel`] of this ISA.
        ///
        /// # Safety
        /// As for [`crate::ElementwiseKernel`]; the CPU must have the ISA's features.
        pub unsafe extern "C" fn elementwise(
            prog: *const crate::ElementwiseProgram,
            ptrs: *const *mut f32,
            r0: usize,
            r1: usize,
            c0: usize,
            c1: usize,
        ) {
            // SAFETY: forwarded from the caller's contract.
            unsafe { elementwise_here(&*prog, ptrs, (r0, r1), (c0, c1)) }
        }

        #[target_feature(enable = $feat)]
        unsafe fn elementwise_here(
            prog: &crate::ElementwiseProgram,
            ptrs: *const *mut f32,
            rows: (usize, usize),
            cols: (usize, usize),
        ) {
            // SAFETY: forwarded; inlined here, the loops compile for this ISA.
            unsafe { crate::elementwise::run(prog, ptrs, rows, cols) }
        }

        #[target_feature(enable = $feat)]
        unsafe fn run(
            rows: usize,
            k: usize,
            (x, ldx): (*const f32, usize),
            (w, panels, stream): (*const f32, usize, usize),
            (out, ldo): (*mut f32, usize),
            (init, ldi, cols, next): (*const f32, usize, usize, isize),
        ) {
            let chunk = (CHUNK_BYTES / (4 * k.max(1))).max(CHUNK_MIN_ROWS) / $RMAX * $RMAX;
            // Panels in groups that stay in L2 while every chunk of rows passes, where
            // they do not all fit: otherwise each chunk streams all of them from L3
            // again (LSTM H=1024: 16 MiB of panels, 17 chunks of the projection).
            let panel_bytes = k * NB * 4;
            let group = if rows > chunk && panels * panel_bytes > crate::l2_bytes() / 2 {
                (crate::l2_bytes() / 2 / panel_bytes.max(1)).max(1)
            } else {
                panels
            };
            let mut p0 = 0;
            while p0 < panels {
                let pn = group.min(panels - p0);
                let first = p0 * NB;
                // SAFETY: panels p0 .. p0 + pn exist, and their columns of out.
                let (w, out) = unsafe { (w.add(p0 * k * NB), out.add(first)) };
                let (init, cols) = if init.is_null() || first >= cols {
                    (std::ptr::null(), 0)
                } else {
                    // SAFETY: columns from `first` of init exist.
                    (unsafe { init.add(first) }, cols - first)
                };
                // SAFETY: forwarded, for this group's panels.
                unsafe {
                    chunks(
                        rows,
                        (chunk, k),
                        (x, ldx),
                        (w, pn, stream),
                        (out, ldo),
                        (init, ldi, cols, next),
                    )
                };
                p0 += pn;
            }
        }

        /// The product in chunks of `chunk` rows, each across all the panels given.
        #[target_feature(enable = $feat)]
        unsafe fn chunks(
            rows: usize,
            (chunk, k): (usize, usize),
            (x, ldx): (*const f32, usize),
            (w, panels, stream): (*const f32, usize, usize),
            (out, ldo): (*mut f32, usize),
            (init, ldi, cols, next): (*const f32, usize, usize, isize),
        ) {
            let mut r0 = 0;
            while r0 < rows {
                let rc = chunk.min(rows - r0);
                // SAFETY: rows r0 .. r0 + rc are inside the matrices.
                let (x, out) = unsafe { (x.add(r0 * ldx), out.add(r0 * ldo)) };
                let init = if init.is_null() {
                    init
                } else {
                    // SAFETY: as above.
                    unsafe { init.add(r0 * ldi) }
                };
                let m = Mat {
                    k,
                    x,
                    ldx,
                    w,
                    out,
                    ldo,
                    init,
                    ldi,
                    cols,
                    next,
                    stream,
                };
                if rc <= 3 {
                    // A row or three of x is read one element after another through
                    // every panel; where another core wrote it (the state from the
                    // step before, a streamed step's input), each of its lines
                    // would be a miss waited for in turn. Asked for all at once.
                    for r in 0..rc {
                        prefetch_lines(x.wrapping_add(r * ldx) as *const i8, k);
                    }
                }
                // SAFETY: the tiles stay inside rows 0..rc and the given panels.
                unsafe {
                    match rc {
                        1 => m.by_panels::<1, $P1>(panels),
                        2 => m.by_panels::<2, $P2>(panels),
                        3 => m.by_panels::<3, $P3>(panels),
                        _ => m.by_rows(rc, panels),
                    }
                }
                r0 += rc;
            }
        }

        /// Asks for the cache lines of the `floats` f32 values from `at` to be
        /// brought to L1. Wherever `at` points, a prefetch reads nothing and
        /// cannot fault.
        #[target_feature(enable = $feat)]
        #[inline]
        fn prefetch_lines(at: *const i8, floats: usize) {
            for line in 0..(floats * 4).div_ceil(64) {
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line * 64));
            }
        }

        /// The first `n` (< a vector) elements at `at`, the rest zeros: where the
        /// matrix ends inside a vector. Kept out of line, so the tile's loops stay
        /// small enough to unroll.
        #[target_feature(enable = $feat)]
        #[cold]
        #[inline(never)]
        unsafe fn partial(at: *const f32, n: usize) -> $V {
            let mut lanes = [0.0f32; $L];
            for (i, l) in lanes.iter_mut().enumerate().take(n) {
                // SAFETY: the caller's n elements exist.
                *l = unsafe { *at.add(i) };
            }
            // SAFETY: lanes is a whole vector.
            unsafe { $load(lanes.as_ptr()) }
        }

        /// A product's operands, rows already offset to the chunk.
        #[derive(Clone, Copy)]
        struct Mat {
            k: usize,
            x: *const f32,
            ldx: usize,
            w: *const f32,
            out: *mut f32,
            ldo: usize,
            /// The accumulators' start (null: zeros), `cols` columns wide.
            init: *const f32,
            ldi: usize,
            cols: usize,
            /// Elements from each `init` element to the one the next call reads
            /// (prefetched; 0: none).
            next: isize,
            /// Bytes ahead in a panel at which to prefetch the weights (0: none).
            stream: usize,
        }

        impl Mat {
            /// `R` rows (all of them) across the panels, `P` panels at a time,
            /// then the panels left over together (a thread's share of a
            /// product may be a few short runs of panels).
            #[target_feature(enable = $feat)]
            unsafe fn by_panels<const R: usize, const P: usize>(self, panels: usize) {
                let mut p = 0;
                while p + P <= panels {
                    // SAFETY: panels p .. p + P exist.
                    unsafe { self.tile::<R, P>(0, p) };
                    p += P;
                }
                // SAFETY: panels p .. panels exist (fewer than P of them).
                unsafe {
                    match panels - p {
                        0 => {}
                        1 => self.tile::<R, 1>(0, p),
                        2 => self.tile::<R, 2>(0, p),
                        3 => self.tile::<R, 3>(0, p),
                        4 => self.tile::<R, 4>(0, p),
                        5 => self.tile::<R, 5>(0, p),
                        6 => self.tile::<R, 6>(0, p),
                        _ => self.tile::<R, 7>(0, p),
                    }
                }
            }

            /// Panel by panel, the rows in blocks of at most `RMAX`, as even as
            /// possible (16 rows are two blocks of 8, not 12 and 4: a block of few
            /// rows has too few accumulators to keep the FMA units busy) where the
            /// weights stay in L2. Where they stream from beyond it, the first
            /// block is as large as it can be: only the first block's pass waits
            /// on the stream, which hides its arithmetic, while the blocks after it
            /// compute from L2 with nothing in flight (16 rows at K = 1024, 16 MiB
            /// of weights: 1.006 ms a product as 8 + 8, 0.884 as 12 + 4).
            #[target_feature(enable = $feat)]
            unsafe fn by_rows(self, rows: usize, panels: usize) {
                let left = rows % $RMAX;
                // Two panels of the rows left over hold no more accumulators than a
                // whole block of one (6 rows with AVX-512, 3 with AVX2).
                if self.stream != 0 && rows > $RMAX && left >= 1 && 2 * left <= $RMAX {
                    // SAFETY: forwarded.
                    return unsafe { self.streamed_by_rows(rows, panels) };
                }
                let per = if self.stream != 0 {
                    $RMAX
                } else {
                    rows.div_ceil(rows.div_ceil($RMAX))
                };
                // Each tile asks for the next one's init (below) instead of its own
                // for the next call: a step ahead, those lines were gone again.
                let this = Mat { next: 0, ..self };
                for p in 0..panels {
                    let mut r = 0;
                    while r < rows {
                        let n = per.min(rows - r);
                        if !this.init.is_null() {
                            // The next tile's accumulators start from init rows a
                            // hoisted projection wrote long before (a whole sequence
                            // apart in memory): asked for now, they arrive while this
                            // tile computes instead of stalling the next one's start
                            // (64 rows, K=256, init from a projection 100 steps long:
                            // 0.205-0.228 ms a product with the step-ahead prefetch
                            // alone, 0.190-0.196 with this; 0.17-0.19 without init).
                            let (nr, np) = if r + n < rows { (r + n, p) } else { (0, p + 1) };
                            this.prefetch_init(nr, np, per.min(rows - nr));
                        }
                        // The first tile's init nothing before it asked for: it asks
                        // for the next call's, as a tile by panels does.
                        let this = if r == 0 && p == 0 { self } else { this };
                        // SAFETY: the rows r .. r + n exist.
                        unsafe {
                            match n {
                                1 => this.tile::<1, 1>(r, p),
                                2 => this.tile::<2, 1>(r, p),
                                3 => this.tile::<3, 1>(r, p),
                                4 => this.tile::<4, 1>(r, p),
                                5 => this.tile::<5, 1>(r, p),
                                6 => this.tile::<6, 1>(r, p),
                                7 => this.tile::<7, 1>(r, p),
                                8 => this.tile::<8, 1>(r, p),
                                9 => this.tile::<9, 1>(r, p),
                                10 => this.tile::<10, 1>(r, p),
                                11 => this.tile::<11, 1>(r, p),
                                _ => this.tile::<12, 1>(r, p),
                            }
                        }
                        r += n;
                    }
                }
            }

            /// Weights from beyond L2, `rows` = whole blocks of `RMAX` and at most
            /// `RMAX / 2` left over: the panels in pairs, the whole blocks on each
            /// panel of the pair (the first streams it), then the rows left over
            /// across both panels at once from L2, twice the accumulators of one
            /// panel (16 rows at K = 1024, 16 MiB of weights: 0.87-0.92 ms a
            /// product with the 4 rows a panel at a time, 0.79-0.89 in pairs).
            #[target_feature(enable = $feat)]
            unsafe fn streamed_by_rows(self, rows: usize, panels: usize) {
                let left = rows % $RMAX;
                let full = rows - left;
                let this = Mat { next: 0, ..self };
                let mut p = 0;
                while p < panels {
                    let pn = 2.min(panels - p);
                    if !this.init.is_null() {
                        for q in p..p + pn {
                            this.prefetch_init(full, q, left);
                        }
                    }
                    for q in p..p + pn {
                        let mut r = 0;
                        while r < full {
                            if !this.init.is_null() {
                                let (nr, nq) = if r + $RMAX < full {
                                    (r + $RMAX, q)
                                } else {
                                    (0, q + 1)
                                };
                                this.prefetch_init(nr, nq, $RMAX);
                            }
                            let m = if r == 0 && q == 0 { self } else { this };
                            // SAFETY: rows r .. r + RMAX and panel q exist.
                            unsafe { m.tile::<$RMAX, 1>(r, q) };
                            r += $RMAX;
                        }
                    }
                    // SAFETY: rows full .. rows and panels p .. p + pn exist.
                    unsafe {
                        match (left, pn) {
                            (1, 2) => this.tile::<1, 2>(full, p),
                            (2, 2) => this.tile::<2, 2>(full, p),
                            (3, 2) => this.tile::<3, 2>(full, p),
                            (4, 2) => this.tile::<4, 2>(full, p),
                            (5, 2) => this.tile::<5, 2>(full, p),
                            (6, 2) => this.tile::<6, 2>(full, p),
                            (1, _) => this.tile::<1, 1>(full, p),
                            (2, _) => this.tile::<2, 1>(full, p),
                            (3, _) => this.tile::<3, 1>(full, p),
                            (4, _) => this.tile::<4, 1>(full, p),
                            (5, _) => this.tile::<5, 1>(full, p),
                            _ => this.tile::<6, 1>(full, p),
                        }
                    }
                    p += pn;
                }
            }

            /// Asks for the `init` of rows `r0 .. r0 + n`, panel `p` (a tile's
            /// starting accumulators) to be brought to L1. Past the last panel
            /// it asks for lines it will not use; a prefetch cannot fault.
            #[target_feature(enable = $feat)]
            #[inline]
            fn prefetch_init(self, r0: usize, p: usize, n: usize) {
                for r in r0..r0 + n {
                    let row = self.init.wrapping_add(r * self.ldi + p * NB);
                    prefetch_lines(row as *const i8, NB);
                }
            }

            /// Rows `r0 .. r0 + R` times panels `p0 .. p0 + P`.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn tile<const R: usize, const P: usize>(self, r0: usize, p0: usize) {
                let panel = self.k * NB;
                // The partial vector's load is out of line: inline, its loop made the
                // tile too large for LLVM to unroll the start, which then zeroed the
                // accumulators on the stack with a call to memset per tile (3-4 % of
                // an LSTM's time at B=64).
                let mut acc: [[[$V; NV]; P]; R] = [[[$zero(); NV]; P]; R];
                if !self.init.is_null() {
                    for (r, accr) in acc.iter_mut().enumerate() {
                        for (p, accp) in accr.iter_mut().enumerate() {
                            for (v, a) in accp.iter_mut().enumerate() {
                                let col = (p0 + p) * NB + v * $L;
                                // SAFETY: columns of row r0 + r from col on exist
                                // (the partial load reads only those).
                                let at = unsafe { self.init.add((r0 + r) * self.ldi + col) };
                                if self.next != 0 {
                                    // A prefetch reads nothing and cannot fault.
                                    _mm_prefetch::<_MM_HINT_T0>(
                                        at.wrapping_offset(self.next) as *const i8
                                    );
                                }
                                *a = if col + $L <= self.cols {
                                    unsafe { $load(at) }
                                } else {
                                    unsafe { partial(at, self.cols.saturating_sub(col)) }
                                };
                            }
                        }
                    }
                }
                // SAFETY (every access below): rows r0 .. r0 + R of x and out, panels
                // p0 .. p0 + P of w, all of K, as the caller's sizes describe.
                let mut wp = unsafe { self.w.add(p0 * panel) };
                let mut xp = unsafe { self.x.add(r0 * self.ldx) };
                for _ in 0..self.k {
                    if self.stream != 0 {
                        // Weights from beyond L2: the hardware prefetcher alone left
                        // a 16 MiB LSTM step 15 % slower (see the PanelKernel docs).
                        for p in 0..P {
                            let at = wp.wrapping_add(p * panel) as *const i8;
                            prefetch_lines(at.wrapping_add(self.stream), NB);
                        }
                    }
                    let mut wv: [[$V; NV]; P] = [[$zero(); NV]; P];
                    for (p, wvp) in wv.iter_mut().enumerate() {
                        for (v, wvv) in wvp.iter_mut().enumerate() {
                            *wvv = unsafe { $load(wp.add(p * panel + v * $L)) };
                        }
                    }
                    for (r, accr) in acc.iter_mut().enumerate() {
                        let b = $set1(unsafe { *xp.add(r * self.ldx) });
                        for (accp, wvp) in accr.iter_mut().zip(&wv) {
                            for (a, wvv) in accp.iter_mut().zip(wvp) {
                                *a = $fma(*wvv, b, *a);
                            }
                        }
                    }
                    wp = unsafe { wp.add(NB) };
                    xp = unsafe { xp.add(1) };
                }
                for (r, accr) in acc.iter().enumerate() {
                    let row = unsafe { self.out.add((r0 + r) * self.ldo + p0 * NB) };
                    for (p, accp) in accr.iter().enumerate() {
                        for (v, a) in accp.iter().enumerate() {
                            unsafe { $store(row.add(p * NB + v * $L), *a) };
                        }
                    }
                }
            }
        }
    };
}

pub mod avx2;
pub mod avx512;

#[cfg(test)]
mod tests;
