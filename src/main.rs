//! The `benchctl` binary: the command line is [`cli`]; the pipeline is the library.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
