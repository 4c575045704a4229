//! Compiling a plan to machine code in memory with Cranelift's JIT, for the CPU
//! this runs on (its SIMD and FMA features detected by `cranelift-native`): one
//! function per thread, each specialised to its part of the work.

use crate::barrier::SpinBarrier;
use crate::codegen;
use crate::parallel::Part;
use crate::plan::Plan;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};
use std::time::{Duration, Instant};

/// A generated entry point: one pointer per slot of the plan, and the barrier
/// its threads share (unused with one thread).
pub type ScanFn = unsafe extern "C" fn(*const *mut f32, *const SpinBarrier);

/// Machine code for one plan; the memory it lives in is freed on drop.
pub struct Jitted {
    module: Option<JITModule>,
    /// One function per thread, in thread order.
    pub entries: Vec<ScanFn>,
    pub compile_time: Duration,
    /// Size of the generated code in bytes.
    pub code_bytes: usize,
}

impl Drop for Jitted {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: `entry` points into this module and is dropped with it.
            unsafe { m.free_memory() };
        }
    }
}

/// Cranelift's target for this CPU at `opt_level=speed`; `pic` for code linked
/// into other programs (object files).
pub fn host_isa(pic: bool) -> Result<cranelift_codegen::isa::OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| e.to_string());
    set(&mut flags, "opt_level", "speed")?;
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    set(&mut flags, "enable_verifier", verify)?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    cranelift_native::builder()
        .map_err(|e| format!("this CPU is not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())
}

pub fn compile(plan: &Plan, threads: usize) -> Result<Jitted, String> {
    let start = Instant::now();
    let isa = host_isa(false)?;
    let mut module = JITModule::new(JITBuilder::with_isa(
        isa,
        cranelift_module::default_libcall_names(),
    ));
    let ptr = module.target_config().pointer_type();
    let sig = codegen::signature(module.target_config().default_call_conv, ptr);
    let disasm = std::env::var_os("RNNC_DISASM").is_some();
    let mut ids = Vec::new();
    let mut code_bytes = 0;
    for thread in 0..threads {
        let id = module
            .declare_function(&format!("rnnc_scan_{thread}"), Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        let mut ctx = module.make_context();
        let part = Part { thread, threads };
        ctx.func = codegen::build(plan, part, sig.clone(), module.target_config());
        ctx.set_disasm(disasm);
        module
            .define_function(id, &mut ctx)
            .map_err(|e| format!("{e:?}"))?;
        if let Some(c) = ctx.compiled_code() {
            code_bytes += c.code_buffer().len();
            if disasm {
                eprintln!("thread {thread}:\n{}", c.vcode.clone().unwrap_or_default());
            }
        }
        ids.push(id);
    }
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let entries = ids
        .into_iter()
        .map(|id| {
            let code = module.get_finalized_function(id);
            // SAFETY: the function was declared with exactly this signature.
            unsafe { std::mem::transmute::<*const u8, ScanFn>(code) }
        })
        .collect();
    Ok(Jitted {
        module: Some(module),
        entries,
        compile_time: start.elapsed(),
        code_bytes,
    })
}
