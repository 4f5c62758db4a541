//! Cost of one scrape for a realistic koordlet page (about 2,000 series): parsing alone, and
//! parse + formula + window update as the exporter does it every second; plus writing the
//! `/metrics` page. `cargo bench -p koordlet-metrics --bench scrape`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use koordlet_metrics::availability::{FormulaSettings, NodeCapacity, YarnUsage};
use koordlet_metrics::exporter::{Clock, Exporter, ExporterConfig, Moment};
use koordlet_metrics::exposition;
use koordlet_metrics::koordlet::{SuppressPolicy, parse_page};
use koordlet_metrics::replay::{KoordletValues, render_page};

fn busy_page() -> String {
    let values = KoordletValues {
        suppress_policy: SuppressPolicy::CfsQuota,
        suppress_cores: Some(20.5),
        be_used_cpu_cores: 6.25,
        ls_used_cpu_cores: 11.0,
        node_used_cpu_cores: 17.25,
        node_used_memory_bytes: 8.0e10,
        batch_allocatable_milli_cores: 19_000.0,
        batch_allocatable_memory_bytes: 3.0e10,
    };
    // 124 pods x 16 container series + the runtime's: about 2,000 series.
    render_page("bench-node", &values, 124)
}

fn exporter() -> Exporter {
    Exporter::new(ExporterConfig {
        node: "bench-node".to_owned(),
        capacity: NodeCapacity {
            cpu_cores: 32.0,
            memory_bytes: 137_438_953_472.0,
        },
        settings: FormulaSettings::default(),
    })
}

fn scrape(c: &mut Criterion) {
    let page = busy_page();
    let series = page.lines().filter(|l| !l.starts_with('#')).count();
    println!("koordlet page: {series} series, {} bytes", page.len());
    let mut group = c.benchmark_group("scrape");
    group.bench_function("parse_page_2000_series", |b| {
        b.iter(|| black_box(parse_page(black_box(&page), Some("bench-node"))))
    });
    let mut state = exporter();
    let mut second = 0u64;
    let yarn = YarnUsage {
        cpu_cores: 3.0,
        memory_bytes: 1.0e10,
        cgroups: 1,
    };
    group.bench_function("parse_and_update_windows_2000_series", |b| {
        b.iter(|| {
            second += 1;
            let at = Moment {
                monotonic_ms: second * 1000,
                wall_seconds: second as f64,
            };
            black_box(state.observe(at, Ok(black_box(&page)), Ok(Some(yarn))))
        })
    });
    // A full ten-minute window, as in steady state.
    let shared = std::sync::Arc::new(std::sync::Mutex::new(exporter()));
    for s in 0..600u64 {
        let at = Moment {
            monotonic_ms: s * 1000,
            wall_seconds: s as f64,
        };
        let _ = exposition::lock(&shared).observe(at, Ok(&page), Ok(Some(yarn)));
    }
    let (registry, _) = exposition::registry(shared, Clock::start());
    group.bench_function("render_metrics_page", |b| {
        b.iter(|| black_box(exposition::render(&registry)))
    });
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
