//! The `nanotune` command: parse the arguments, dispatch, print errors plainly.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = nanotune::cli::Cli::parse();
    if !cli.writes_to_sockets() {
        die_quietly_on_closed_pipe();
    }
    match nanotune::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Printing into a closed pipe (`nanotune describe x.mid | head`) ends the program quietly, as it
/// does other Unix tools, instead of panicking in `println!`. Not for the commands that write to
/// sockets (the screen, `play`, `listen`: audio back-ends and listeners), where an error they
/// handle beats being killed.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called before any other thread starts; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
