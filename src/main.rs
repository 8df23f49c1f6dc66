//! The `nanotune` command: parse the arguments, dispatch, print errors plainly.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = nanotune::cli::Cli::parse();
    match nanotune::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
