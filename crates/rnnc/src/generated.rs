//! The code a backend generates for a model at one (B, T), for `rnnc explore`:
//! on the CPU each Cranelift function as rnnc wrote it (CLIF) and as Cranelift
//! compiled it (its machine instructions, in Cranelift's listing); on a GPU the
//! kernels' source and the launch manifest.

use crate::ahead::GpuTarget;
use crate::backend::BackendKind;
use crate::error::{verified, Error};
use crate::model::Model;
use ndarray::{ArrayD, IxDyn};
use rnnc_ir::Dim;
use rnnc_runtime::Weights;

/// One piece of generated code: a title, its language, its text.
#[derive(Clone, Debug)]
pub struct Piece {
    pub title: String,
    pub language: &'static str,
    pub text: String,
}

/// What a backend made of the model.
#[derive(Clone, Debug)]
pub struct Generated {
    /// `cpu (avx512 kernels, 1 thread), B=1, T=8` or the like.
    pub summary: String,
    pub pieces: Vec<Piece>,
}

impl Model {
    /// The code `backend` generates for batch `batch` and length `time`. The
    /// CPU compiles with zero weights of the declared shapes (the code does not
    /// depend on their values); the interpreter generates none.
    pub fn generated_code(
        &self,
        backend: BackendKind,
        batch: usize,
        time: usize,
    ) -> Result<Generated, Error> {
        let (gpu, name) = match backend {
            BackendKind::Interp => {
                return Err(Error::Message(
                    "the interpreter generates no code: pick cpu, wgsl or cuda".into(),
                ))
            }
            BackendKind::Cpu { threads } => {
                return self.cpu_code(threads.unwrap_or(1), batch, time)
            }
            BackendKind::Wgsl => (GpuTarget::Wgsl, "wgsl"),
            BackendKind::Cuda => (GpuTarget::Cuda, "cuda"),
        };
        let k = self.gpu_kernels(gpu, batch, time)?;
        Ok(Generated {
            summary: format!(
                "{name}, B={batch}, T={time}: {} kernels, {} launches a run, {} floats of buffer",
                k.kernels, k.launches_per_run, k.arena_floats
            ),
            pieces: vec![
                Piece {
                    title: k.file.clone(),
                    language: if gpu == GpuTarget::Wgsl {
                        "wgsl"
                    } else {
                        "cuda"
                    },
                    text: k.source,
                },
                Piece {
                    title: "launch manifest".into(),
                    language: "json",
                    text: k.manifest,
                },
            ],
        })
    }

    fn cpu_code(&self, threads: usize, batch: usize, time: usize) -> Result<Generated, Error> {
        let zeros: Weights = self
            .weights()
            .iter()
            .map(|(k, ty)| {
                let dims: Vec<usize> = ty
                    .dims
                    .iter()
                    .map(|d| if let Dim::Fixed(n) = d { *n } else { 1 })
                    .collect();
                (k.clone(), ArrayD::zeros(IxDyn(&dims)))
            })
            .collect();
        let v = verified(self.graph())?;
        // The whole program compiles on first use (here, `prepare`).
        let (backend, mut listings) = rnnc_backend_cpu::capture_listings(|| {
            rnnc_backend_cpu::CpuBackend::with_threads(v, &zeros, threads)
        });
        let backend = backend.map_err(Error::from)?;
        let ((), more) = rnnc_backend_cpu::capture_listings(|| backend.prepare(batch, time));
        listings.extend(more);
        let mut notes = Vec::new();
        for r in backend.program_report() {
            if let Err(why) = &r.outcome {
                notes.push(format!(
                    "the CPU backend cannot compile this model: {}",
                    why.message(self.graph())
                ));
            }
        }
        let mut pieces = Vec::new();
        for l in listings {
            pieces.push(Piece {
                title: format!("{} (Cranelift IR)", l.name),
                language: "clif",
                text: l.clif,
            });
            pieces.push(Piece {
                title: format!("{} (machine code, {} bytes)", l.name, l.bytes),
                language: "asm",
                text: l.machine,
            });
        }
        let mut summary = format!(
            "cpu ({} kernels, {threads} thread{}), B={batch}, T={time}",
            backend.isa(),
            if threads == 1 { "" } else { "s" }
        );
        for n in notes {
            summary.push_str("; ");
            summary.push_str(&n);
        }
        Ok(Generated { summary, pieces })
    }
}
