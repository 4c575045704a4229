//! Ahead-of-time compilation: a whole model, for one batch size and length, as an
//! object file (cranelift-object) with its weights inside, plus a C header. The
//! object needs nothing at run time, not even libc: every product is generated
//! code (no GEMM call into this process), and the caller passes the workspace.
//!
//! The exported function is `<prefix>_run(inputs, outputs, workspace)`: arrays of
//! pointers to the inputs and outputs (row-major f32, in the header's order) and a
//! workspace of `<PREFIX>_WORKSPACE_FLOATS` floats. The code is for the CPU it was
//! compiled on (its SIMD and FMA features), like `-march=native`.

use crate::jit::{define_plan, host_isa};
use crate::parallel::Part;
use crate::plan::{Products, Slot, Unsupported};
use crate::whole::{plan_model, Dims, IntInput, WholePlan};
use cranelift_codegen::ir::{
    types, AbiParam, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
    UserFuncName,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{DataDescription, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use rnnc_interp::load_time_values;
use rnnc_ir::Verified;
use rnnc_runtime::Weights;

/// An object file and the C header that declares what it exports.
pub struct CompiledObject {
    pub object: Vec<u8>,
    pub header: String,
    /// The C identifier prefix: `<prefix>_run`.
    pub prefix: String,
    /// (name, shape) of each input and output, in the order `<prefix>_run` takes them.
    pub inputs: Vec<(String, Vec<usize>)>,
    pub outputs: Vec<(String, Vec<usize>)>,
    /// Per output: whether it holds int64 values (a decode loop's tokens and lengths).
    pub output_ints: Vec<bool>,
    pub workspace_floats: usize,
}

/// Compiles `graph` with `weights` for inputs of batch `batch` and length `time`
/// (and source length `time`, for a model with that axis).
pub fn compile_object(
    graph: &Verified<'_>,
    weights: &Weights,
    batch: usize,
    time: usize,
    source: &str,
) -> Result<CompiledObject, Unsupported> {
    let g = graph.graph();
    let known = load_time_values(g, weights).map_err(|e| Unsupported::new(e.0))?;
    let sizes = Dims::at(g, batch, time);
    let plan = plan_model(g, weights, &known, sizes, 1, Products::standalone())?;
    let prefix = c_identifier(&g.name);
    let fail = |e: String| Unsupported::new(format!("code generation failed: {e}"));
    let isa = host_isa(true).map_err(fail)?;
    let builder = ObjectBuilder::new(
        isa,
        prefix.clone(),
        cranelift_module::default_libcall_names(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    let ptr = module.target_config().pointer_type();
    let call_conv = module.target_config().default_call_conv;
    let config = module.target_config();
    let whole = Part {
        thread: 0,
        threads: 1,
    };
    let define = |module: &mut ObjectModule, name: &str, p: &crate::plan::Plan| {
        // Object files call no kernel of this process: no programs to keep.
        define_plan(module, name, p, whole)
            .map(|(id, _, programs)| {
                debug_assert!(programs.is_empty());
                id
            })
            .map_err(fail)
    };
    let scan_ids = plan
        .scans
        .iter()
        .enumerate()
        .map(|(k, p)| define(&mut module, &format!("{prefix}_scan_{k}"), p))
        .collect::<Result<Vec<_>, _>>()?;
    let top_id = define(&mut module, &format!("{prefix}_program"), &plan.top)?;
    let mut const_ids = Vec::new();
    for (k, c) in plan.top.consts.iter().enumerate() {
        let id = module
            .declare_data(&format!("{prefix}_const_{k}"), Linkage::Local, false, false)
            .map_err(|e| fail(e.to_string()))?;
        let mut data = DataDescription::new();
        let bytes: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
        data.define(bytes.into_boxed_slice());
        data.set_align(64);
        module
            .define_data(id, &data)
            .map_err(|e| fail(e.to_string()))?;
        const_ids.push(id);
    }

    // The exported entry: fills the program's pointer table and calls it.
    let mut entry_sig = Signature::new(call_conv);
    for _ in 0..3 {
        entry_sig.params.push(AbiParam::new(ptr));
    }
    let entry_id = module
        .declare_function(&format!("{prefix}_run"), Linkage::Export, &entry_sig)
        .map_err(|e| fail(e.to_string()))?;
    let mut ctx = module.make_context();
    ctx.func.signature = entry_sig;
    ctx.func.name = UserFuncName::user(0, entry_id.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let (inputs, outputs, workspace) = {
            let p = b.block_params(block);
            (p[0], p[1], p[2])
        };
        let slots = plan.top.slots();
        let table = b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (slots.len() * 8) as u32,
            3,
        ));
        let flags = MemFlagsData::new().with_notrap();
        for (i, slot) in slots.iter().enumerate() {
            let p = match *slot {
                Slot::Seq(k) => b.ins().load(ptr, flags, inputs, (k * 8) as i32),
                Slot::Emit(k) => b.ins().load(ptr, flags, outputs, (k * 8) as i32),
                Slot::Const(k) => {
                    let gv = module.declare_data_in_func(const_ids[k], b.func);
                    b.ins().symbol_value(ptr, gv)
                }
                Slot::Scratch => workspace,
                Slot::Fn(k) => {
                    let f = module.declare_func_in_func(scan_ids[k], b.func);
                    b.ins().func_addr(ptr, f)
                }
                Slot::State(_) | Slot::NextState(_) | Slot::Memory(_) => {
                    unreachable!("the top-level program has no states or memories")
                }
            };
            b.ins().stack_store(ptr, p, table, (i * 8) as i32);
        }
        let t = b.ins().stack_addr(ptr, table, 0);
        let none = b.ins().iconst(types::I64, 0);
        let program = module.declare_func_in_func(top_id, b.func);
        b.ins().call(program, &[t, none]);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(config);
    }
    module
        .define_function(entry_id, &mut ctx)
        .map_err(|e| fail(format!("{e:?}")))?;
    let object = module.finish().emit().map_err(|e| fail(e.to_string()))?;
    let header = header(&plan, &prefix, source, sizes);
    Ok(CompiledObject {
        object,
        header,
        prefix,
        workspace_floats: plan.top.scratch_len.max(1),
        inputs: plan.inputs,
        outputs: plan.outputs,
        output_ints: plan.output_ints,
    })
}

/// A C identifier from a model name: `BiLSTM` → `bilstm`, `My-Net` → `my_net`.
pub fn c_identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "model_");
    }
    s
}

fn header(plan: &WholePlan, prefix: &str, source: &str, sizes: Dims) -> String {
    let up = prefix.to_ascii_uppercase();
    let Dims { batch, time, .. } = sizes;
    let src_len = sizes
        .source
        .map_or(String::new(), |s| format!(", source length {s}"));
    let (n_in, n_out) = (plan.inputs.len(), plan.outputs.len());
    let lens = |xs: &[(String, Vec<usize>)]| {
        xs.iter()
            .map(|(_, d)| d.iter().product::<usize>().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut h = vec![
        format!(
            "/* {prefix}.h: generated by rnnc from {source} for batch {batch}, length {time}{src_len}."
        ),
        " *".into(),
        format!(" * {prefix}_run(inputs, outputs, workspace) runs the whole model once."),
        format!(" * inputs: {n_in} pointers, in this order (row-major float32):"),
    ];
    for (i, ((n, d), int)) in plan.inputs.iter().zip(&plan.ints).enumerate() {
        h.push(match int {
            None => format!(" *   [{i}] {n}: f32{d:?}"),
            Some(IntInput::Ids { rows }) => format!(
                " *   [{i}] {n}: i64{d:?}, token ids in [0, {rows}) (pass the int64_t pointer \
                 cast to const float *; an id outside gives a zero embedding row)"
            ),
            Some(IntInput::Lengths { time }) => format!(
                " *   [{i}] {n}: i64{d:?}, sequence lengths in [1, {time}] (pass the int64_t \
                 pointer cast to const float *; a sequence runs its first length steps)"
            ),
        });
    }
    h.push(format!(
        " * outputs: {n_out} pointers, in this order (written, row-major float32 unless marked i64):"
    ));
    for (i, ((n, d), int)) in plan.outputs.iter().zip(&plan.output_ints).enumerate() {
        h.push(match int {
            false => format!(" *   [{i}] {n}: f32{d:?}"),
            true => format!(" *   [{i}] {n}: i64{d:?} (pass an int64_t pointer cast to float *)"),
        });
    }
    h.extend([
        format!(" * workspace: {up}_WORKSPACE_FLOATS floats, any alignment, not shared with a"),
        " *   concurrent call. The weights are inside the object file; inputs that".into(),
        " *   default to zeros in the model (h0, c0) must still be passed, as zeros.".into(),
        " * The code uses the SIMD and FMA features of the machine it was compiled on.".into(),
        " */".into(),
        format!("#ifndef {up}_H"),
        format!("#define {up}_H"),
        "#include <stddef.h>".into(),
        String::new(),
        format!("#define {up}_BATCH {batch}"),
        format!("#define {up}_SEQ {time}"),
    ]);
    if let Some(s) = sizes.source {
        h.push(format!("#define {up}_SOURCE_LEN {s}"));
    }
    h.extend([
        format!("#define {up}_N_INPUTS {n_in}"),
        format!("#define {up}_N_OUTPUTS {n_out}"),
        format!("#define {up}_WORKSPACE_FLOATS {}", plan.top.scratch_len.max(1)),
        String::new(),
        "/* Elements of each input and output, in order, and bytes per input element. */"
            .into(),
        format!("static const size_t {prefix}_input_len[{n_in}] = {{{}}};", lens(&plan.inputs)),
        format!(
            "static const size_t {prefix}_input_elem_bytes[{n_in}] = {{{}}};",
            plan.ints
                .iter()
                .map(|v| if v.is_some() { "8" } else { "4" })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("static const size_t {prefix}_output_len[{n_out}] = {{{}}};", lens(&plan.outputs)),
        format!(
            "static const size_t {prefix}_output_elem_bytes[{n_out}] = {{{}}};",
            plan.output_ints
                .iter()
                .map(|int| if *int { "8" } else { "4" })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        String::new(),
        format!("void {prefix}_run(const float *const *inputs, float *const *outputs, float *workspace);"),
        String::new(),
        "#endif".into(),
    ]);
    h.join("\n") + "\n"
}
