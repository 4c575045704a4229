//! Compiling a plan to machine code in memory with Cranelift's JIT, for the CPU
//! this runs on (its SIMD and FMA features detected by `cranelift-native`): one
//! function per thread, each specialised to its part of the work.

use crate::barrier::SpinBarrier;
use crate::codegen::{self, Programs};
use crate::parallel::Part;
use crate::plan::Plan;
use crate::whole::WholePlan;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use std::time::{Duration, Instant};

/// A generated entry point: one pointer per slot of the plan, and the barrier
/// its threads share (unused with one thread).
pub type ScanFn = unsafe extern "C" fn(*const *mut f32, *const SpinBarrier);

/// Machine code for one plan; the memory it lives in is freed on drop.
pub struct Jitted {
    module: Option<JITModule>,
    /// The programs the code's elementwise kernel calls point to.
    _programs: Programs,
    /// One function per thread, in thread order.
    pub entries: Vec<ScanFn>,
    /// Addresses of the functions the entries call through their table.
    pub callees: Vec<usize>,
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

/// One generated function as rnnc wrote it (Cranelift IR) and as Cranelift
/// compiled it (its machine instructions), for `rnnc explore`.
#[derive(Clone, Debug)]
pub struct Listing {
    pub name: String,
    pub clif: String,
    pub machine: String,
    pub bytes: usize,
}

thread_local! {
    /// Where [`capture_listings`] collects the functions defined meanwhile.
    static LISTINGS: std::cell::RefCell<Option<Vec<Listing>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` and returns, beside its result, every function this thread compiled
/// meanwhile (the JIT compiles on the thread that asks for a program).
pub fn capture_listings<R>(f: impl FnOnce() -> R) -> (R, Vec<Listing>) {
    LISTINGS.with(|l| *l.borrow_mut() = Some(Vec::new()));
    let r = f();
    let out = LISTINGS.with(|l| l.borrow_mut().take()).unwrap_or_default();
    (r, out)
}

/// A JIT module being filled with functions of the one signature.
/// Declares and defines, in any Cranelift module (JIT or object file), the local
/// function doing `part` of `plan`; returns its id, code size and the
/// elementwise programs the code points to (to be kept as long as the code).
/// `RNNC_DISASM=1` prints its machine code.
pub fn define_plan<M: Module>(
    module: &mut M,
    name: &str,
    plan: &Plan,
    part: Part,
) -> Result<(FuncId, usize, Programs), String> {
    let config = module.target_config();
    let sig = codegen::signature(config.default_call_conv, config.pointer_type());
    let id = module
        .declare_function(name, Linkage::Local, &sig)
        .map_err(|e| e.to_string())?;
    let mut ctx = module.make_context();
    let built = codegen::build(plan, part, sig, config);
    ctx.func = built.func;
    let capturing = LISTINGS.with(|l| l.borrow().is_some());
    let clif = capturing.then(|| ctx.func.display().to_string());
    let disasm = std::env::var_os("RNNC_DISASM").is_some();
    ctx.set_disasm(disasm || capturing);
    module
        .define_function(id, &mut ctx)
        .map_err(|e| format!("{e:?}"))?;
    let c = ctx.compiled_code().expect("defined just now");
    if disasm {
        eprintln!("{name}:\n{}", c.vcode.clone().unwrap_or_default());
    }
    if let Some(clif) = clif {
        let listing = Listing {
            name: name.to_string(),
            clif,
            machine: c.vcode.clone().unwrap_or_default(),
            bytes: c.code_buffer().len(),
        };
        LISTINGS.with(|l| l.borrow_mut().as_mut().map(|v| v.push(listing)));
    }
    Ok((id, c.code_buffer().len(), built.programs))
}

/// A JIT module being filled with compiled plans.
struct Builder {
    module: JITModule,
    programs: Programs,
    code_bytes: usize,
    start: Instant,
}

impl Builder {
    fn new() -> Result<Self, String> {
        let start = Instant::now();
        let module = JITModule::new(JITBuilder::with_isa(
            host_isa(false)?,
            cranelift_module::default_libcall_names(),
        ));
        Ok(Builder {
            module,
            programs: Vec::new(),
            code_bytes: 0,
            start,
        })
    }

    /// The function doing `part` of `plan`.
    fn define(&mut self, name: &str, plan: &Plan, part: Part) -> Result<FuncId, String> {
        let (id, bytes, programs) = define_plan(&mut self.module, name, plan, part)?;
        self.code_bytes += bytes;
        self.programs.extend(programs);
        Ok(id)
    }

    /// Finalizes the module; `entries` become the entry points, `callees` plain
    /// addresses.
    fn finish(mut self, entries: &[FuncId], callees: &[FuncId]) -> Result<Jitted, String> {
        self.module
            .finalize_definitions()
            .map_err(|e| e.to_string())?;
        let entries = entries
            .iter()
            .map(|id| {
                let code = self.module.get_finalized_function(*id);
                // SAFETY: the function was declared with exactly this signature.
                unsafe { std::mem::transmute::<*const u8, ScanFn>(code) }
            })
            .collect();
        let callees = callees
            .iter()
            .map(|id| self.module.get_finalized_function(*id) as usize)
            .collect();
        Ok(Jitted {
            module: Some(self.module),
            _programs: self.programs,
            entries,
            callees,
            compile_time: self.start.elapsed(),
            code_bytes: self.code_bytes,
        })
    }
}

/// A whole-model program and the scans it calls, one function of each per
/// thread; the scans' addresses are the program's `Fn` slots, in order
/// `scan · threads + thread`.
pub fn compile_program(whole: &WholePlan, threads: usize) -> Result<Jitted, String> {
    let mut b = Builder::new()?;
    let mut callees = Vec::new();
    for (k, scan) in whole.scans.iter().enumerate() {
        for thread in 0..threads {
            let part = Part { thread, threads };
            callees.push(b.define(&format!("rnnc_scan_{k}_{thread}"), scan, part)?);
        }
    }
    let mut entries = Vec::new();
    for thread in 0..threads {
        let part = Part { thread, threads };
        entries.push(b.define(&format!("rnnc_program_{thread}"), &whole.top, part)?);
    }
    b.finish(&entries, &callees)
}
