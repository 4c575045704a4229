//! Compiling a plan to machine code in memory with Cranelift's JIT, for the CPU
//! this runs on (its SIMD and FMA features detected by `cranelift-native`).

use crate::codegen;
use crate::plan::Plan;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};
use std::time::{Duration, Instant};

/// The generated entry point: one pointer per slot of the plan.
pub type ScanFn = unsafe extern "C" fn(*const *mut f32);

/// Machine code for one plan; the memory it lives in is freed on drop.
pub struct Jitted {
    module: Option<JITModule>,
    pub entry: ScanFn,
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

pub fn compile(plan: &Plan) -> Result<Jitted, String> {
    let start = Instant::now();
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    flags
        .set(
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )
        .map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("this CPU is not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let mut module = JITModule::new(JITBuilder::with_isa(
        isa,
        cranelift_module::default_libcall_names(),
    ));
    let ptr = module.target_config().pointer_type();
    let sig = codegen::signature(module.target_config().default_call_conv, ptr);
    let id = module
        .declare_function("rnnc_scan", Linkage::Local, &sig)
        .map_err(|e| e.to_string())?;
    let mut ctx = module.make_context();
    ctx.func = codegen::build(plan, sig, module.target_config());
    let disasm = std::env::var_os("RNNC_DISASM").is_some();
    ctx.set_disasm(disasm);
    module
        .define_function(id, &mut ctx)
        .map_err(|e| format!("{e:?}"))?;
    let code_bytes = ctx
        .compiled_code()
        .map(|c| c.code_buffer().len())
        .unwrap_or(0);
    if disasm {
        if let Some(c) = ctx.compiled_code() {
            eprintln!("{}", c.vcode.clone().unwrap_or_default());
        }
    }
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let code = module.get_finalized_function(id);
    // SAFETY: the function was declared with exactly this signature.
    let entry: ScanFn = unsafe { std::mem::transmute::<*const u8, ScanFn>(code) };
    Ok(Jitted {
        module: Some(module),
        entry,
        compile_time: start.elapsed(),
        code_bytes,
    })
}
