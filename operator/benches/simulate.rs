//! The default `simulate` run (50 nodes x 24 h at 1 s, five policies): wall time and peak
//! memory. `cargo bench -p elastic-yarn-operator --bench simulate`.
//!
//! Peak memory is the process' high-water mark (VmHWM) after the runs, printed at the end.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use elastic_yarn_operator::sim::{self, SimConfig, Trace};

fn default_run(c: &mut Criterion) {
    let trace = Trace::embedded().expect("the embedded trace parses");
    let config = SimConfig::default();
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("default_50_nodes_24h_5_policies", |b| {
        b.iter(|| black_box(sim::run(&config, &trace, &|_| {}).expect("default settings run")));
    });
    group.finish();
}

fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

criterion_group!(benches, default_run);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    match peak_memory_mib() {
        Some(mib) => println!("peak resident memory (VmHWM): {mib:.0} MiB"),
        None => println!("peak resident memory: /proc/self/status not readable here"),
    }
}
