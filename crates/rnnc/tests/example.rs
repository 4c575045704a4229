//! Runs `examples/gru_model.rs`, the library's example, on its fixture.

#[path = "../examples/gru_model.rs"]
mod example;

#[test]
fn the_example_gives_pytorchs_numbers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let d = example::max_deviation(&root, &root.join("tests/fixtures/seed0/gru_model")).unwrap();
    assert!(d < 1e-5, "{d}");
}
