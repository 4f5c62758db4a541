//! `hadoop-conf`: the NodeManager pod's init container. Copies the pool's Hadoop configuration
//! (the ConfigMap's volume) into a writable folder and writes the pod's own settings, given as
//! `<FILE>.XML_<key>` environment variables, into the files Hadoop reads
//! (`guarder::hadoop_conf`, docs/images.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use guarder::hadoop_conf::{render, settings_from_env};

#[derive(Parser)]
#[command(
    name = "hadoop-conf",
    version,
    about = "Renders a NodeManager pod's Hadoop configuration: the pool's ConfigMap with the pod's <FILE>.XML_<key> settings applied"
)]
struct Cli {
    /// The pool's configuration (the ConfigMap's volume).
    #[arg(long)]
    from: PathBuf,
    /// Where the NodeManager reads it (its HADOOP_CONF_DIR).
    #[arg(long)]
    to: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rendered = settings_from_env(std::env::vars())
        .and_then(|settings| render(&cli.from, &cli.to, &settings));
    match rendered {
        Ok(rendered) => {
            for name in &rendered.copied {
                eprintln!("hadoop-conf: {name} copied");
            }
            for (name, count) in &rendered.with_settings {
                eprintln!("hadoop-conf: {name} written with {count} setting(s) of this pod");
            }
            for name in &rendered.overrode_final {
                eprintln!(
                    "hadoop-conf: {name} is final in the ConfigMap; this pod's value replaces it"
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hadoop-conf: {error}");
            ExitCode::FAILURE
        }
    }
}
