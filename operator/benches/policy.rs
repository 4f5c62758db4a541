//! Policy decisions per second, one core: `cargo bench -p elastic-yarn-operator --bench policy`.
//!
//! Inputs are drawn once from a seeded generator across the situations an NM meets (steady,
//! falling, rising, stale, memory-bound) so that every branch of every policy is exercised.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use elastic_yarn_operator::policy::{
    Availability, BatchAllocatable, CapacityBounds, DecisionInput, Foresight, MeasuredUse,
    PolicyKind, PolicySettings, Resources, decide,
};
use koordlet_metrics::{WindowSet, WindowStats};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const INPUTS: usize = 4096;

fn window(rng: &mut ChaCha8Rng, level: f64, spread: f64) -> WindowStats {
    let mean = level + rng.random_range(-spread..spread);
    WindowStats {
        count: 60,
        mean,
        variance: spread * spread / 4.0,
        min: mean - spread,
        max: mean + spread,
    }
}

fn inputs() -> Vec<DecisionInput> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..INPUTS)
        .map(|_| {
            let cpu = rng.random_range(0.0..40.0);
            let memory = rng.random_range(0.0..160.0 * 1024.0);
            let current = rng.random_range(0..41u32);
            let allocated = rng.random_range(0..=current + 4);
            let set = |rng: &mut ChaCha8Rng, level: f64, spread: f64| WindowSet {
                one_minute: window(rng, level, spread),
                five_minutes: window(rng, level, spread),
                ten_minutes: window(rng, level, spread),
            };
            DecisionInput {
                now_seconds: 100_000,
                current: Resources::new(current, u64::from(current) * 4096),
                allocated: Resources::new(allocated, u64::from(allocated) * 4096),
                used: Some(MeasuredUse {
                    cpu_cores: f64::from(allocated) * 0.8,
                    memory_mb: f64::from(allocated) * 4096.0 * 0.75,
                }),
                availability: Some(Availability {
                    cpu_cores: set(&mut rng, cpu, 3.0),
                    memory_mb: set(&mut rng, memory, 2048.0),
                    latest_cpu_cores: cpu + rng.random_range(-2.0..2.0),
                    latest_memory_mb: memory,
                    age_seconds: if rng.random_range(0..20) == 0 { 300 } else { 1 },
                }),
                batch_allocatable: Some(BatchAllocatable {
                    cpu_cores: cpu,
                    memory_mb: memory,
                    age_seconds: 30,
                }),
                foresight: Some(Foresight {
                    cpu_cores_min_soon: cpu * 0.9,
                    cpu_cores_min: cpu * 0.8,
                    memory_mb_min: memory,
                    horizon_seconds: 135,
                }),
                last_grow_seconds: Some(99_000),
                last_shrink_seconds: Some(99_950),
            }
        })
        .collect()
}

fn decisions(c: &mut Criterion) {
    let settings = PolicySettings::with_bounds(CapacityBounds {
        floor: Resources::new(0, 0),
        ceiling: Resources::new(41, 41 * 4096),
        memory_per_vcore_mb: 4096,
    });
    let inputs = inputs();
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(INPUTS as u64));
    for kind in PolicyKind::ALL {
        let policy = kind.build();
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                for input in &inputs {
                    black_box(decide(policy.as_ref(), &settings, black_box(input)));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
