//! CUDA C's side of the shared renderer: each kernel an `extern "C" __global__`
//! function of the arena pointer and the clock, thread indices and the barrier
//! through PTX (no CUDA header needed), math helpers on PTX's `ex2`/`lg2`.

use rnnc_gpu::plan::{GpuPlan, Kernel};
use rnnc_gpu::{render, Dialect};

pub struct Cuda;

/// The CUDA C source of `plan`.
pub fn source(plan: &GpuPlan) -> String {
    render(plan, &Cuda)
}

const PRELUDE: &str = r#"// Self-contained: no CUDA header, no libdevice. NVRTC and nvcc know the CUDA
// keywords; clang with -nocudainc is given them here.
#if defined(__clang__) && !defined(__CUDACC_RTC__) && !defined(__global__)
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#endif

static __device__ inline int rnnc_tid_x() { int v; asm("mov.u32 %0, %%tid.x;" : "=r"(v)); return v; }
static __device__ inline int rnnc_tid_y() { int v; asm("mov.u32 %0, %%tid.y;" : "=r"(v)); return v; }
static __device__ inline int rnnc_ctaid_x() { int v; asm("mov.u32 %0, %%ctaid.x;" : "=r"(v)); return v; }
static __device__ inline int rnnc_ctaid_y() { int v; asm("mov.u32 %0, %%ctaid.y;" : "=r"(v)); return v; }
static __device__ inline int rnnc_ctaid_z() { int v; asm("mov.u32 %0, %%ctaid.z;" : "=r"(v)); return v; }
static __device__ inline int rnnc_ntid_x() { int v; asm("mov.u32 %0, %%ntid.x;" : "=r"(v)); return v; }
static __device__ inline void rnnc_barrier() { asm volatile("bar.sync 0;" ::: "memory"); }

static __device__ inline float rnnc_ex2(float x) { float y; asm("ex2.approx.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
static __device__ inline float rnnc_lg2(float x) { float y; asm("lg2.approx.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
static __device__ inline float rnnc_sqrt(float x) { float y; asm("sqrt.rn.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
static __device__ inline float rnnc_exp(float x) { return rnnc_ex2(x * 1.44269504f); }
static __device__ inline float rnnc_log(float x) { return rnnc_lg2(x) * 0.693147181f; }
static __device__ inline float rnnc_max(float a, float b) { return a > b ? a : b; }
// x < 0 ? 0 : x keeps NaN, as torch.relu does.
static __device__ inline float rnnc_relu(float x) { return x < 0.0f ? 0.0f : x; }
static __device__ inline float rnnc_step(float x) { return x > 0.0f ? 1.0f : 0.0f; }
static __device__ inline float rnnc_sigmoid(float x) { return 1.0f / (1.0f + rnnc_exp(-x)); }
// From exp(-2|x|), which cannot overflow.
static __device__ inline float rnnc_tanh(float x) {
    float e = rnnc_exp(-2.0f * (x < 0.0f ? -x : x));
    float r = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -r : r;
}
static __device__ inline float rnnc_bits(unsigned b) { float f; asm("mov.b32 %0, %1;" : "=f"(f) : "r"(b)); return f; }
"#;

impl Dialect for Cuda {
    fn prelude(&self, plan: &GpuPlan) -> String {
        format!(
            "// {}: CUDA C kernels written by rnnc for batch {}, length {}.\n\
             // Launch order, grid and block sizes and buffer layout: the manifest beside\n\
             // this file. Every kernel takes the arena (all values at fixed offsets) and\n\
             // the clock (the scan step of the enclosing loop, 0 outside loops).\n\n{PRELUDE}",
            plan.model, plan.batch, plan.time
        )
    }

    fn open(&self, k: &Kernel) -> String {
        format!(
            "extern \"C\" __global__ void {}(float* __restrict__ arena, int clock) {{\n    \
             const int lx = rnnc_tid_x();\n    const int ly = rnnc_tid_y();\n    \
             const int gx = rnnc_ctaid_x();\n    const int gy = rnnc_ctaid_y();\n    \
             const int gz = rnnc_ctaid_z();\n    const int gid = gx * rnnc_ntid_x() + lx;\n",
            k.name
        )
    }

    fn let_int(&self, name: &str, expr: &str) -> String {
        format!("const int {name} = {expr};")
    }

    fn let_float(&self, name: &str, expr: &str) -> String {
        format!("const float {name} = {expr};")
    }

    fn var_float(&self, name: &str, expr: &str) -> String {
        format!("float {name} = {expr};")
    }

    fn var_int(&self, name: &str, expr: &str) -> String {
        format!("int {name} = {expr};")
    }

    fn for_up(&self, var: &str, from: &str, to: &str, step: &str) -> String {
        format!("for (int {var} = {from}; {var} < {to}; {var} += {step}) {{")
    }

    fn to_int(&self, x: &str) -> String {
        format!("(int)({x})")
    }

    fn to_float(&self, x: &str) -> String {
        format!("(float)({x})")
    }

    fn float_bits(&self, bits: u32) -> String {
        format!("rnnc_bits({bits:#010x}u)")
    }

    fn clock(&self) -> &'static str {
        "clock"
    }

    fn shared(&self, name: &str, len: u32) -> String {
        format!("__shared__ float {name}[{len}];")
    }

    fn barrier(&self) -> &'static str {
        "rnnc_barrier();"
    }

    fn storage_barrier(&self) -> &'static str {
        "rnnc_barrier();"
    }
}
