//! Running the WGSL output through wgpu. One device per backend; per (B, T) a
//! *session*: the plan, its shader module and one pipeline per kernel, the arena
//! with the weights uploaded and the prologue run, and the clock values. A run
//! writes the inputs, records the whole schedule in one compute pass (each
//! dispatch sees the writes of the ones before it), copies the outputs to a
//! mappable buffer and waits for it.

use crate::dialect::{kernel_sources, source};
use crate::validate::validate;
use rnnc_gpu::host;
use rnnc_gpu::plan::{GpuPlan, Step};
use rnnc_ir::Verified;
use rnnc_runtime::{RunError, Tensor, Weights};
use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

pub type WgslError = RunError;

fn fail<T>(msg: impl Into<String>) -> Result<T, RunError> {
    Err(RunError(msg.into()))
}

pub struct WgslBackend<'g> {
    graph: Verified<'g>,
    weights: &'g Weights,
    gpu: Gpu,
    steps: rnnc_gpu::Steps,
    sessions: RefCell<HashMap<rnnc_gpu::Dims, Rc<Session>>>,
}

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: String,
    limits: wgpu::Limits,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    /// Errors wgpu reports outside a call (validation, out of memory).
    errors: Arc<Mutex<Vec<String>>>,
}

struct Session {
    plan: GpuPlan,
    arena: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    pipelines: Vec<wgpu::ComputePipeline>,
    /// Bytes between consecutive clock values in the uniform buffer.
    clock_stride: u64,
}

impl<'g> WgslBackend<'g> {
    /// Opens the first Vulkan adapter wgpu finds (a GPU, or Mesa's llvmpipe).
    pub fn new(graph: Verified<'g>, weights: &'g Weights) -> Result<Self, RunError> {
        Self::with_steps(graph, weights, rnnc_gpu::Steps::Auto)
    }

    /// [`WgslBackend::new`] with the scans' plan chosen by `steps` (tests run every
    /// strategy against the interpreter).
    pub fn with_steps(
        graph: Verified<'g>,
        weights: &'g Weights,
        steps: rnnc_gpu::Steps,
    ) -> Result<Self, RunError> {
        Ok(WgslBackend {
            graph,
            weights,
            gpu: Gpu::open()?,
            steps,
            sessions: RefCell::new(HashMap::new()),
        })
    }

    /// The adapter in use, as wgpu names it.
    pub fn adapter(&self) -> &str {
        &self.gpu.adapter
    }

    /// Runs the model; same contract as [`rnnc_interp::run`].
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, RunError> {
        let dims = rnnc_gpu::host::dims(&self.graph, inputs, self.weights)?;
        let session = self.session(dims)?;
        self.gpu.run(&session, inputs)
    }

    fn session(&self, dims: rnnc_gpu::Dims) -> Result<Rc<Session>, RunError> {
        if let Some(s) = self.sessions.borrow().get(&dims) {
            return Ok(s.clone());
        }
        let name = &self.graph.graph().name;
        let plan = rnnc_gpu::plan_with(&self.graph, name, dims, self.steps).map_err(|e| {
            RunError(format!(
                "the WGSL backend cannot run this model: {}",
                e.message(self.graph.graph())
            ))
        })?;
        let s = Rc::new(self.gpu.session(plan, self.weights)?);
        self.sessions.borrow_mut().insert(dims, s.clone());
        Ok(s)
    }
}

impl Gpu {
    fn open() -> Result<Gpu, RunError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::VULKAN,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| {
            RunError(format!(
                "no Vulkan adapter for the WGSL backend ({e}); without a GPU, Mesa's software \
                 Vulkan works: apt-get install mesa-vulkan-drivers"
            ))
        })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("rnnc"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| RunError(format!("cannot open {}: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("error list").push(e.to_string())
        }));
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("arena and clock"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: NonZeroU64::new(16),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rnnc"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        Ok(Gpu {
            device,
            queue,
            adapter: format!("{} ({:?}, {})", info.name, info.backend, info.driver_info),
            limits,
            layout,
            pipeline_layout,
            errors,
        })
    }

    /// wgpu's reported errors since the last check, as one failure.
    fn check(&self, during: &str) -> Result<(), RunError> {
        let mut errors = self.errors.lock().expect("error list");
        if errors.is_empty() {
            return Ok(());
        }
        let all = errors.drain(..).collect::<Vec<_>>().join("; ");
        fail(format!("wgpu failed {during}: {all}"))
    }

    fn session(&self, plan: GpuPlan, weights: &Weights) -> Result<Session, RunError> {
        let src = source(&plan);
        validate(&src)
            .map_err(|e| RunError(format!("internal error: emitted WGSL is invalid:\n{e}")))?;
        let bytes = plan.arena_words as u64 * 4;
        let most = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > most {
            return fail(format!(
                "the model needs {} MiB of GPU memory at batch {}, length {}; this adapter \
                 binds at most {} MiB",
                bytes >> 20,
                plan.batch,
                plan.time,
                most >> 20
            ));
        }
        let device = &self.device;
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("arena"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let clock_stride = u64::from(self.limits.min_uniform_buffer_offset_alignment).max(16);
        let clock_values = plan.clock_max + 1;
        let clock = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("clock"),
            size: clock_stride * clock_values as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut words = vec![0u8; (clock_stride as usize) * clock_values];
        for t in 0..clock_values {
            let at = t * clock_stride as usize;
            words[at..at + 4].copy_from_slice(&(t as i32).to_le_bytes());
        }
        self.queue.write_buffer(&clock, 0, &words);
        let pipelines = plan
            .kernels
            .iter()
            .zip(kernel_sources(&plan))
            .map(|(k, src)| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&k.name),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&k.name),
                    layout: Some(&self.pipeline_layout),
                    module: &module,
                    entry_point: Some(&k.name),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("arena and clock"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: arena.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &clock,
                        offset: 0,
                        size: NonZeroU64::new(16),
                    }),
                },
            ],
        });
        for (offset, words) in host::weight_uploads(&plan, weights)? {
            self.write(&arena, offset, words);
        }
        let session = Session {
            plan,
            arena,
            bind_group,
            pipelines,
            clock_stride,
        };
        self.submit(&session, &session.plan.prologue, None);
        self.check("while preparing the model")?;
        Ok(session)
    }

    fn write(&self, buffer: &wgpu::Buffer, offset: usize, values: Vec<f32>) {
        let bytes: Vec<u8> = values.into_iter().flat_map(f32::to_le_bytes).collect();
        if !bytes.is_empty() {
            self.queue.write_buffer(buffer, offset as u64 * 4, &bytes);
        }
    }

    fn run(
        &self,
        s: &Session,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, RunError> {
        for (offset, words) in host::input_uploads(&s.plan, inputs)? {
            self.write(&s.arena, offset, words);
        }
        let total: usize = s.plan.outputs.iter().map(|o| o.len()).sum();
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("outputs"),
            size: (total.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.submit(s, &s.plan.schedule, Some(&readback));
        let (tx, rx) = std::sync::mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RunError(format!("waiting for the GPU: {e}")))?;
        self.check("while running the model")?;
        rx.recv()
            .map_err(|_| RunError("the GPU never returned the outputs".into()))?
            .map_err(|e| RunError(format!("cannot read the outputs back: {e}")))?;
        let floats: Vec<f32> = {
            let view = readback
                .get_mapped_range(..)
                .map_err(|e| RunError(format!("cannot read the outputs back: {e}")))?;
            view.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        readback.unmap();
        let mut at = 0;
        Ok(host::outputs(&s.plan, |r| {
            at += r.len();
            floats[at - r.len()..at].to_vec()
        }))
    }

    /// Records `steps` in one compute pass (then the outputs' copy into
    /// `readback`, if given) and submits it.
    fn submit(&self, s: &Session, steps: &[Step], readback: Option<&wgpu::Buffer>) {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("rnnc"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&s.plan.model),
                timestamp_writes: None,
            });
            record(&mut pass, s, steps);
        }
        if let Some(rb) = readback {
            let mut at = 0u64;
            for o in &s.plan.outputs {
                let n = o.len() as u64 * 4;
                if n > 0 {
                    encoder.copy_buffer_to_buffer(&s.arena, o.offset as u64 * 4, rb, at, n);
                }
                at += n;
            }
        }
        self.queue.submit([encoder.finish()]);
    }
}

/// Records the launches of `steps`, each with its loop's clock.
fn record(pass: &mut wgpu::ComputePass<'_>, s: &Session, steps: &[Step]) {
    host::launches(steps, &mut |kernel, clock| {
        let k = &s.plan.kernels[kernel];
        let offset = match k.uses_clock {
            true => clock as u64 * s.clock_stride,
            false => 0,
        };
        pass.set_pipeline(&s.pipelines[kernel]);
        pass.set_bind_group(0, &s.bind_group, &[offset as u32]);
        pass.dispatch_workgroups(k.groups[0], k.groups[1], k.groups[2]);
    });
}

impl rnnc_runtime::Backend for WgslBackend<'_> {
    /// Kernels compile inside the first run at each shape.
    fn compile_ms(&self) -> Option<f64> {
        None
    }

    fn name(&self) -> &'static str {
        "wgsl"
    }

    fn run(&self, inputs: &rnnc_runtime::Inputs) -> Result<rnnc_runtime::Outputs, RunError> {
        WgslBackend::run(self, inputs)
    }

    fn describe(&self) -> String {
        format!("WGSL on {}", self.adapter())
    }
}
