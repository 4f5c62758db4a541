//! `elastic-yarn-operator`: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::Parser;
use elastic_yarn_operator::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
