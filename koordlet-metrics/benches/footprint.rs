//! Steady-state footprint of the exporter binary: resident memory and CPU at 1 Hz scrapes of a
//! koordlet double replaying the trace (about 2,000 series per page), with `/metrics` and
//! `/v1/windows` read every second as Prometheus and the operator would.
//! `cargo bench -p koordlet-metrics --bench footprint` (FOOTPRINT_SECONDS sets the measured
//! time, 120 by default; the first 15 s are warm-up and not measured).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use koordlet_metrics::replay::{AfterLastStep, ReplayStep, render_page};
use procfs::process::Process;

fn cpu_seconds(process: &Process) -> f64 {
    let stat = process.stat().expect("the exporter's /proc/<pid>/stat");
    (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
}

fn rss_mib(process: &Process) -> (f64, f64) {
    let status = process.status().expect("the exporter's /proc/<pid>/status");
    let kib = |v: Option<u64>| v.unwrap_or(0) as f64 / 1024.0;
    (kib(status.vmrss), kib(status.vmhwm))
}

fn main() {
    let measured = std::env::var("FOOTPRINT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let steps = support::trace_pages(600)
            .iter()
            .map(|values| ReplayStep::Page(render_page(support::NODE, values, 124)))
            .collect();
        let (_double, koordlet) = support::start_steps(steps, AfterLastStep::RepeatLast).await;
        let exporter = support::Exporter::start_with(support::NODE, koordlet, 1000, 800, &[]);
        let pid = exporter.pid();
        let process = Process::new(pid).expect("the exporter runs");
        let readers = async {
            loop {
                let _ = exporter.get("/metrics").await.text().await;
                let _ = exporter.report().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        let measure = async {
            tokio::time::sleep(Duration::from_secs(15)).await;
            let cpu_start = cpu_seconds(&process);
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(measured)).await;
            let cpu = cpu_seconds(&process) - cpu_start;
            let wall = started.elapsed().as_secs_f64();
            let (rss, hwm) = rss_mib(&process);
            let report = exporter.report().await;
            println!("exporter footprint over {wall:.0} s at 1 Hz (2,000-series pages, /metrics and /v1/windows read every second):");
            println!("  CPU: {:.3}% of one core ({cpu:.2} s)", 100.0 * cpu / wall);
            println!("  resident memory: {rss:.1} MiB now, {hwm:.1} MiB peak");
            println!("  scrapes: {}, errors: {:?}", report.scrapes, report.scrape_errors);
        };
        tokio::select! {
            _ = readers => {}
            _ = measure => {}
        }
    });
}
