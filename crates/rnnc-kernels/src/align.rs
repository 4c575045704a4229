//! f32 buffers whose first element sits on a 64-byte boundary, so that every
//! packed panel (a multiple of 64 bytes long) starts on a cache line and no vector
//! load of a kernel straddles two lines. The allocator gives large `Vec`s 16-byte
//! alignment only.

/// A fixed-length f32 buffer starting on a 64-byte boundary.
pub struct AlignedF32 {
    data: Vec<f32>,
    start: usize,
    len: usize,
}

const ALIGN_FLOATS: usize = 16;

impl AlignedF32 {
    pub fn from_slice(values: &[f32]) -> Self {
        let mut a = Self::zeros(values.len());
        a.data[a.start..a.start + a.len].copy_from_slice(values);
        a
    }

    /// `len` zeros.
    pub fn zeros(len: usize) -> Self {
        let data = vec![0.0f32; len + ALIGN_FLOATS];
        let misaligned = (data.as_ptr() as usize / 4) % ALIGN_FLOATS;
        let start = (ALIGN_FLOATS - misaligned) % ALIGN_FLOATS;
        AlignedF32 { data, start, len }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data[self.start..self.start + self.len]
    }

    pub fn as_ptr(&self) -> *const f32 {
        self.as_slice().as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut f32 {
        self.data[self.start..self.start + self.len].as_mut_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole allocation and where the values start in it (they are the
    /// `len()` elements from there), for a caller that hands the memory on
    /// without copying it.
    pub fn into_parts(self) -> (Vec<f32>, usize) {
        (self.data, self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_cache_line_and_keeps_the_values() {
        for n in [0, 1, 5, 1000, 40_000] {
            let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let a = AlignedF32::from_slice(&v);
            assert_eq!(a.as_ptr() as usize % 64, 0);
            assert_eq!(a.as_slice(), &v[..]);
            let mut z = AlignedF32::zeros(n);
            assert_eq!(z.as_mut_ptr() as usize % 64, 0);
            assert_eq!(z.as_slice(), &vec![0.0; n][..]);
        }
    }
}
