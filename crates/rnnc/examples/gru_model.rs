//! The article's GRU model through the library: load `models/gru_model.rnn` with its
//! hyperparameters, PyTorch's weights and an input committed with the tests, run it
//! at -O2 on the CPU, and compare with PyTorch's output.
//!
//!   cargo run --release -p rnnc --example gru_model
//!
//! (`tests/example.rs` runs it.)

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use rnnc::{BackendKind, Model, Opt, Params, Tensor};
use std::path::Path;

/// Runs the model on the fixture in `fixture` (from the repository root `root`);
/// returns the largest difference from PyTorch's output.
pub fn max_deviation(root: &Path, fixture: &Path) -> Result<f32, Box<dyn std::error::Error>> {
    let params = Params::new()
        .set("input_dim", 12)
        .set("hidden_dim", 16)
        .set("num_layers", 2)
        .set("output_dim", 4);
    let model = Model::load(root.join("models/gru_model.rnn"), &params)?;
    // Checked key by key against what the model declares.
    let weights = model.load_weights(fixture.join("weights.safetensors"))?;
    let compiled = model
        .optimise(&Opt::Level(2))?
        .compile(weights, BackendKind::Cpu { threads: None })?;
    let read = |name: &str| -> Result<ArrayD<f32>, Box<dyn std::error::Error>> {
        Ok(ArrayD::<f32>::read_npy(std::fs::File::open(
            fixture.join(name),
        )?)?)
    };
    let inputs = [("input".to_string(), Tensor::F32(read("input.npy")?))].into();
    let outputs = compiled.run(&inputs)?;
    let (_, output) = outputs
        .iter()
        .find(|(n, _)| n == "output")
        .ok_or("no output")?;
    let want = read("output.npy")?;
    Ok((output.f32() - &want)
        .iter()
        .fold(0f32, |m, d| m.max(d.abs())))
}

#[allow(dead_code)] // the test calls max_deviation only
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture = root.join("tests/fixtures/seed0/gru_model");
    println!(
        "largest difference from PyTorch: {:e}",
        max_deviation(&root, &fixture)?
    );
    Ok(())
}
