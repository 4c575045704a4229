//! Which kernels this CPU can run, detected at run time, and the `RNNC_ISA`
//! environment variable that forces a narrower path (to test every path a machine
//! has, or to compare them).

use crate::{DotKernel, ElementwiseKernel, PanelKernel};
use std::fmt;

/// An instruction set the products can run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// No kernel here: the backend's generated f32x4 code (any CPU Cranelift targets).
    Portable,
    /// x86-64 AVX2 with FMA: 256-bit vectors, 16 registers.
    Avx2,
    /// x86-64 AVX-512F: 512-bit vectors, 32 registers.
    Avx512,
}

/// An `RNNC_ISA` value that names no ISA, or one this CPU lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsaError(pub String);

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IsaError {}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// The name `RNNC_ISA` and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    pub fn parse(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether the running CPU can execute this path.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every path this CPU can run, widest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// The widest path this CPU can run.
    pub fn best() -> Isa {
        Isa::available()[0]
    }

    /// The widest path, or the one `RNNC_ISA` names (which must be supported).
    pub fn from_env() -> Result<Isa, IsaError> {
        match std::env::var("RNNC_ISA") {
            Err(_) => Ok(Isa::best()),
            Ok(v) => Isa::named(v.trim()),
        }
    }

    /// The path called `name`, if this CPU supports it.
    pub fn named(name: &str) -> Result<Isa, IsaError> {
        let names: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
        let Some(isa) = Isa::parse(name) else {
            return Err(IsaError(format!(
                "RNNC_ISA={name:?} names no instruction set; expected one of {}",
                names.join(", ")
            )));
        };
        if !isa.supported() {
            let have: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
            return Err(IsaError(format!(
                "RNNC_ISA={name}: this CPU does not support {name}; it has {}",
                have.join(", ")
            )));
        }
        Ok(isa)
    }

    /// Columns per packed panel of this path's kernel; None for the portable path.
    pub fn panel_width(self) -> Option<usize> {
        match self {
            Isa::Portable => None,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(crate::x86::avx2::NB),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(crate::x86::avx512::NB),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    /// This path's product kernel; None for the portable path, and for a path the
    /// CPU does not support (calling it would fault).
    pub fn kernel(self) -> Option<PanelKernel> {
        self.kernels().map(|k| k.0)
    }

    /// This path's one-column product kernel; None as for [`Isa::kernel`].
    pub fn dot(self) -> Option<DotKernel> {
        self.kernels().map(|k| k.2)
    }

    /// This path's elementwise kernel; None as for [`Isa::kernel`].
    pub fn elementwise(self) -> Option<ElementwiseKernel> {
        self.kernels().map(|k| k.1)
    }

    /// The kernels of a path the CPU supports.
    fn kernels(self) -> Option<(PanelKernel, ElementwiseKernel, DotKernel)> {
        if !self.supported() {
            return None;
        }
        match self {
            Isa::Portable => None,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                use crate::x86::avx2::{dot, elementwise, panels};
                Some((panels, elementwise, dot))
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                use crate::x86::avx512::{dot, elementwise, panels};
                Some((panels, elementwise, dot))
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    /// Lanes of f32 in one of this path's vectors.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Portable => 4,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
