//! WGSL's side of the shared renderer: the arena is one `array<f32>` storage
//! buffer (binding 0), the clock a uniform read with a dynamic offset (binding 1),
//! and each kernel an entry point of one module.

use rnnc_gpu::plan::{Body, GpuPlan, Kernel, TILE};
use rnnc_gpu::{render, Dialect};

pub struct Wgsl;

/// The WGSL module of `plan`.
pub fn source(plan: &GpuPlan) -> String {
    render(plan, &Wgsl)
}

/// One module per kernel: the prelude and that kernel alone. wgpu translates a
/// module for each pipeline made from it, so one module of every kernel would be
/// translated once per kernel.
pub fn kernel_sources(plan: &GpuPlan) -> Vec<String> {
    let prelude = Wgsl.prelude(plan);
    plan.kernels
        .iter()
        .map(|k| format!("{prelude}\n{}", rnnc_gpu::render::kernel(k, &Wgsl)))
        .collect()
}

const PRELUDE: &str = "\
// The whole model's memory: every value at a fixed offset (see the manifest).
@group(0) @binding(0) var<storage, read_write> arena: array<f32>;
// The scan step a loop iteration starts at (x); launches outside loops see 0.
@group(0) @binding(1) var<uniform> rnnc_clock: vec4<i32>;

fn rnnc_exp(x: f32) -> f32 { return exp(x); }
fn rnnc_log(x: f32) -> f32 { return log(x); }
fn rnnc_sqrt(x: f32) -> f32 { return sqrt(x); }
fn rnnc_max(a: f32, b: f32) -> f32 { return select(b, a, a > b); }
// x < 0 ? 0 : x keeps NaN, as torch.relu does.
fn rnnc_relu(x: f32) -> f32 { return select(x, 0.0, x < 0.0); }
fn rnnc_step(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
fn rnnc_sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// From exp(-2|x|), which cannot overflow: WGSL's tanh may for large |x|.
fn rnnc_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let r = (1.0 - e) / (1.0 + e);
    return select(r, -r, x < 0.0);
}
";

impl Dialect for Wgsl {
    fn prelude(&self, plan: &GpuPlan) -> String {
        let mut s = format!(
            "// {}: WGSL compute shaders written by rnnc for batch {}, length {}.\n\
             // Launch order, workgroup counts and buffer layout: the manifest beside this file.\n\n",
            plan.model, plan.batch, plan.time
        );
        s.push_str(PRELUDE);
        if plan
            .kernels
            .iter()
            .any(|k| matches!(k.body, Body::MatMul { .. }))
        {
            let n = TILE * TILE;
            s.push_str(&format!(
                "\n// Tiles of the two operands of a matrix product.\n\
                 var<workgroup> tile_a: array<f32, {n}>;\nvar<workgroup> tile_b: array<f32, {n}>;\n"
            ));
        }
        s
    }

    fn open(&self, k: &Kernel) -> String {
        let [x, y, z] = k.threads;
        format!(
            "@compute @workgroup_size({x}, {y}, {z})\n\
             fn {}(@builtin(global_invocation_id) g: vec3<u32>, \
             @builtin(local_invocation_id) l: vec3<u32>, \
             @builtin(workgroup_id) w: vec3<u32>) {{\n    \
             let gid = i32(g.x);\n    let lx = i32(l.x);\n    let ly = i32(l.y);\n    \
             let gx = i32(w.x);\n    let gy = i32(w.y);\n    let gz = i32(w.z);\n",
            k.name
        )
    }

    fn let_int(&self, name: &str, expr: &str) -> String {
        format!("let {name}: i32 = {expr};")
    }

    fn let_float(&self, name: &str, expr: &str) -> String {
        format!("let {name}: f32 = {expr};")
    }

    fn var_float(&self, name: &str, expr: &str) -> String {
        format!("var {name}: f32 = {expr};")
    }

    fn var_int(&self, name: &str, expr: &str) -> String {
        format!("var {name}: i32 = {expr};")
    }

    fn for_up(&self, var: &str, from: &str, to: &str, step: &str) -> String {
        format!("for (var {var}: i32 = {from}; {var} < {to}; {var} += {step}) {{")
    }

    fn to_int(&self, x: &str) -> String {
        format!("i32({x})")
    }

    fn to_float(&self, x: &str) -> String {
        format!("f32({x})")
    }

    fn float_bits(&self, bits: u32) -> String {
        format!("bitcast<f32>({bits:#010x}u)")
    }

    fn clock(&self) -> &'static str {
        "rnnc_clock.x"
    }

    fn shared(&self, _name: &str, _len: u32) -> String {
        String::new()
    }

    fn barrier(&self) -> &'static str {
        "workgroupBarrier();"
    }

    fn storage_barrier(&self) -> &'static str {
        "storageBarrier();"
    }
}
