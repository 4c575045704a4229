//! Running the CUDA output: NVRTC compiles the source to PTX, the driver loads it
//! and launches the plan's schedule on one stream. Both libraries are opened on
//! first use (cudarc's dynamic loading); where either is missing, `new` fails with
//! a message instead of rnnc failing to start.

use crate::dialect::source;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use rnnc_gpu::host;
use rnnc_gpu::plan::GpuPlan;
use rnnc_ir::Verified;
use rnnc_runtime::{RunError, Tensor, Weights};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

fn fail<T>(msg: impl Into<String>) -> Result<T, RunError> {
    Err(RunError(msg.into()))
}

fn driver_err(during: &str) -> impl Fn(cudarc::driver::DriverError) -> RunError + '_ {
    move |e| RunError(format!("CUDA failed {during}: {e}"))
}

/// Whether the driver API and NVRTC can be loaded here.
fn libraries_present() -> (bool, bool) {
    // Safety: only tries to open the shared libraries by name.
    unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
        )
    }
}

/// `source` compiled by NVRTC to PTX for `arch` (e.g. "sm_90"); NVRTC's log on failure.
pub fn nvrtc_ptx(source: &str, arch: &'static str) -> Result<String, String> {
    if !libraries_present().1 {
        return Err("NVRTC (libnvrtc.so) is not installed".into());
    }
    let opts = CompileOptions {
        arch: Some(arch),
        ..Default::default()
    };
    compile_ptx_with_opts(source, opts)
        .map(|p| p.to_src())
        .map_err(|e| e.to_string())
}

pub struct CudaBackend<'g> {
    graph: Verified<'g>,
    weights: &'g Weights,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    steps: rnnc_gpu::Steps,
    sessions: RefCell<HashMap<rnnc_gpu::Dims, Shared>>,
}

/// A session, shared by the runs at its (B, T) and mutated by each (uploads).
type Shared = Rc<RefCell<Session>>;

struct Session {
    plan: GpuPlan,
    arena: CudaSlice<f32>,
    functions: Vec<CudaFunction>,
}

impl<'g> CudaBackend<'g> {
    /// Opens device 0; fails with a message where there is no driver, NVRTC or GPU.
    pub fn new(graph: Verified<'g>, weights: &'g Weights) -> Result<Self, RunError> {
        Self::with_steps(graph, weights, rnnc_gpu::Steps::Auto)
    }

    /// [`CudaBackend::new`] with the scans' plan chosen by `steps`.
    pub fn with_steps(
        graph: Verified<'g>,
        weights: &'g Weights,
        steps: rnnc_gpu::Steps,
    ) -> Result<Self, RunError> {
        match libraries_present() {
            (false, _) => {
                return fail(
                    "the cuda backend needs an NVIDIA driver (libcuda.so), which this machine \
                     does not have; `rnnc compile --target cuda` writes the kernels anyway",
                )
            }
            (_, false) => {
                return fail(
                    "the cuda backend needs NVRTC (libnvrtc.so.12, from the CUDA toolkit or \
                     `pip install nvidia-cuda-nvrtc-cu12` with its lib/ on LD_LIBRARY_PATH)",
                )
            }
            _ => {}
        }
        let ctx = CudaContext::new(0).map_err(driver_err("to open GPU 0"))?;
        let stream = ctx.default_stream();
        Ok(CudaBackend {
            graph,
            weights,
            ctx,
            stream,
            steps,
            sessions: RefCell::new(HashMap::new()),
        })
    }

    /// Runs the model; same contract as [`rnnc_interp::run`].
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, RunError> {
        let dims = rnnc_gpu::host::dims(&self.graph, inputs, self.weights)?;
        let session = self.session(dims)?;
        let mut s = session.borrow_mut();
        for (offset, words) in host::input_uploads(&s.plan, inputs)? {
            self.upload(&mut s.arena, offset, &words)?;
        }
        self.launch(&mut s, false)?;
        let stream = &self.stream;
        let mut failed = None;
        let outputs = host::outputs(&s.plan, |r| {
            let view = s.arena.slice(r.offset..r.offset + r.len());
            stream.clone_dtoh(&view).unwrap_or_else(|e| {
                failed = Some(e);
                vec![0.0; r.len()]
            })
        });
        match failed {
            Some(e) => Err(driver_err("to read the outputs")(e)),
            None => Ok(outputs),
        }
    }

    fn session(&self, dims: rnnc_gpu::Dims) -> Result<Shared, RunError> {
        if let Some(s) = self.sessions.borrow().get(&dims) {
            return Ok(s.clone());
        }
        let name = &self.graph.graph().name;
        let plan = rnnc_gpu::plan_with(&self.graph, name, dims, self.steps).map_err(|e| {
            RunError(format!(
                "the cuda backend cannot run this model: {}",
                e.message(self.graph.graph())
            ))
        })?;
        let src = source(&plan);
        let ptx = compile_ptx_with_opts(&src, CompileOptions::default()).map_err(|e| {
            RunError(format!(
                "internal error: NVRTC rejected the emitted CUDA: {e}"
            ))
        })?;
        let module = self
            .ctx
            .load_module(Ptx::from_src(ptx.to_src()))
            .map_err(driver_err("to load the kernels"))?;
        let functions = plan
            .kernels
            .iter()
            .map(|k| module.load_function(&k.name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(driver_err("to find a kernel"))?;
        let arena = self
            .stream
            .alloc_zeros::<f32>(plan.arena_words)
            .map_err(driver_err("to allocate the arena"))?;
        let mut s = Session {
            plan,
            arena,
            functions,
        };
        for (offset, words) in host::weight_uploads(&s.plan, self.weights)? {
            self.upload(&mut s.arena, offset, &words)?;
        }
        self.launch(&mut s, true)?;
        let s = Rc::new(RefCell::new(s));
        self.sessions.borrow_mut().insert(dims, s.clone());
        Ok(s)
    }

    fn upload(
        &self,
        arena: &mut CudaSlice<f32>,
        offset: usize,
        words: &[f32],
    ) -> Result<(), RunError> {
        let mut view = arena.slice_mut(offset..offset + words.len());
        self.stream
            .memcpy_htod(words, &mut view)
            .map_err(driver_err("to upload"))
    }

    /// Launches the prologue or the schedule, in order, on the one stream.
    fn launch(&self, s: &mut Session, prologue: bool) -> Result<(), RunError> {
        let Session {
            plan,
            arena,
            functions,
        } = s;
        let steps = if prologue {
            &plan.prologue
        } else {
            &plan.schedule
        };
        let mut result = Ok(());
        host::launches(steps, &mut |kernel, clock| {
            if result.is_err() {
                return;
            }
            let k = &plan.kernels[kernel];
            let cfg = LaunchConfig {
                grid_dim: (k.groups[0], k.groups[1], k.groups[2]),
                block_dim: (k.threads[0], k.threads[1], k.threads[2]),
                shared_mem_bytes: 0,
            };
            let clock = clock as i32;
            let mut b = self.stream.launch_builder(&functions[kernel]);
            b.arg(&mut *arena).arg(&clock);
            // Safety: every kernel takes (float*, int), as the dialect writes them,
            // and indexes only inside the arena (the plan's offsets are in range).
            result = unsafe { b.launch(cfg) }
                .map(drop)
                .map_err(driver_err("to launch a kernel"));
        });
        result
    }
}

impl rnnc_runtime::Backend for CudaBackend<'_> {
    /// Kernels compile inside the first run at each shape.
    fn compile_ms(&self) -> Option<f64> {
        None
    }

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn run(&self, inputs: &rnnc_runtime::Inputs) -> Result<rnnc_runtime::Outputs, RunError> {
        CudaBackend::run(self, inputs)
    }

    fn describe(&self) -> String {
        "CUDA on GPU 0".into()
    }
}
