//! `rnnc`: the command-line driver. Every failure is a message and exit status 1.

use rnnc_cli::{args, commands};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread starts: it may set an environment variable.
    rnnc::quiet_mesa_without_runtime_dir();
    let cli = args::parse();
    // Deeply nested models recurse deeply in the parser and lowering; give them room.
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || commands::dispatch(cli))
        .expect("spawning the compiler thread");
    match worker.join() {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprint!("{e}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!(
                "error: internal compiler error (a panic); please report it with the model file"
            );
            ExitCode::from(101)
        }
    }
}
