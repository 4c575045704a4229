//! Command-line arguments, as DESIGN.md's command-line contract specifies them.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rnnc",
    version,
    about = "A compiler for recurrent neural networks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Hyperparameters: `--param k=v` (repeatable) over a `--config` YAML file.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// The model: a `.rnn` source file, or an `.onnx` file (imported on the way).
    pub model: PathBuf,
    /// Set a hyperparameter of the model, e.g. `--param hidden_size=256`.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// A YAML file mapping hyperparameter names to values; `--param` wins over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The optimisation pipeline and its instrumentation (MLIR's flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OptArgs {
    /// Optimisation level: -O0 (none), -O1, -O2 (the default).
    #[arg(short = 'O', value_name = "LEVEL", conflicts_with = "passes")]
    pub level: Option<u8>,
    /// An explicit pipeline, e.g. `--passes fuse-gates,hoist-input-projection,dce`.
    #[arg(long, value_name = "PIPELINE")]
    pub passes: Option<String>,
    /// Print the IR after every pass (to stderr).
    #[arg(long)]
    pub print_ir_after_all: bool,
    /// Print the IR after the named pass (repeatable).
    #[arg(long, value_name = "PASS")]
    pub print_ir_after: Vec<String>,
    /// Print the IR after each pass that changed it.
    #[arg(long)]
    pub print_ir_after_change: bool,
    /// Print how long each pass took.
    #[arg(long)]
    pub time_passes: bool,
    /// Write the IR before the pipeline and after each pass into DIR, one file each.
    #[arg(long, value_name = "DIR")]
    pub dump_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import an ONNX model: write DIR/<name>.rnn (readable source, commented with
    /// the ONNX nodes it came from), DIR/<name>.yaml and DIR/weights.safetensors.
    Import {
        /// The `.onnx` file.
        model: PathBuf,
        /// The directory to write to.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Write one self-contained HTML page of what each pass did to the model: the
    /// pass table, a chart of FLOPs and weight bytes per step, the IR after each
    /// pass with its diff against the IR before, and the source.
    Explore {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        /// The HTML file to write.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: PathBuf,
        /// The backend whose generated code the page shows: cpu (each function's
        /// Cranelift IR and machine code), wgsl or cuda (kernels and launches).
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Batch size B the code is generated for.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Sequence length T the code is generated for.
        #[arg(long, default_value_t = 8)]
        seq: usize,
    },
    /// Parse, lower and verify a model: exit 0, or print diagnostics and exit 1.
    Check {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Print the model's graph IR in its text form.
    Ir {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: IrFormat,
    },
    /// Show what each pass of the pipeline does to the model, one row per pass.
    Passes {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
    },
    /// Time a model on random inputs (and random weights unless --weights is given).
    Bench(BenchArgs),
    /// Compile a model ahead of time: `--target cpu` writes DIR/<name>.o (weights
    /// inside) and DIR/<name>.h for one batch size and length.
    Compile(CompileArgs),
    /// Run a model on .npy inputs with safetensors weights; write DIR/<output>.npy.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        /// The weights, a PyTorch `state_dict` saved with safetensors (needed
        /// unless the model has no weights).
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// An input as NAME=FILE.npy (repeatable).
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Which backend runs the model: cpu (compiled with Cranelift), interp
        /// (the reference interpreter), wgsl (WebGPU compute shaders via wgpu) or cuda
        /// (needs an NVIDIA GPU, its driver and NVRTC).
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Threads the CPU backend splits each time step over (default: this
        /// machine's cores). The interpreter runs on one.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// The directory to write the outputs to.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Decode the output `output` (log-probabilities [B, T, C]) into label
        /// sequences, printed and written to DIR/decoded.txt.
        #[arg(long, value_enum)]
        decode: Option<Decode>,
        /// Hypotheses kept per step by `--decode ctc-beam`.
        #[arg(long, default_value_t = 8)]
        beam_width: usize,
        /// The CTC blank label.
        #[arg(long, default_value_t = 0)]
        blank: usize,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Decode {
    /// The most likely label per step, repeats collapsed, blanks dropped.
    CtcGreedy,
    /// CTC prefix beam search (`--beam-width` hypotheses, best first).
    CtcBeam,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum IrFormat {
    Text,
    /// Graphviz: `rnnc ir m.rnn --format dot | dot -Tsvg > m.svg`.
    Dot,
    /// A drawing laid out by rnnc (what `rnnc explore` shows per pass): `rnnc ir
    /// m.rnn --format svg > m.svg`.
    Svg,
}

pub fn parse() -> Cli {
    // clap exits with status 2 on a usage error; the contract is status 1 for bad input.
    Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    })
}

/// `rnnc compile`'s arguments.
#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub opt: OptArgs,
    /// What to generate: cpu (an object file and a C header), wgsl or cuda (GPU
    /// kernels and a JSON launch manifest).
    #[arg(long)]
    pub target: String,
    /// The weights to build in, a PyTorch `state_dict` saved with safetensors.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Batch size B the code is made for.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Sequence length T the code is made for.
    #[arg(long, default_value_t = 100)]
    pub seq: usize,
    /// The directory to write to.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
}

/// `rnnc bench`'s arguments.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub opt: OptArgs,
    /// Batch size B of the inputs.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Sequence length T of the inputs.
    #[arg(long, default_value_t = 100)]
    pub seq: usize,
    /// Weights to use instead of random ones.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Which backend runs the model: cpu (compiled with Cranelift), interp
    /// (the reference interpreter), wgsl (WebGPU compute shaders via wgpu) or cuda
    /// (needs an NVIDIA GPU, its driver and NVRTC).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Threads the CPU backend splits each time step over (default: this
    /// machine's cores). The interpreter runs on one.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Time one step at a time with kept state (needs a streaming backend).
    #[arg(long)]
    pub stream: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
