//! Ranking 1,000 containers and planning a shrink over them; a full `/proc` scan with 1,000
//! container processes running. `cargo bench -p guarder --bench guarder`.

use std::hint::black_box;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use guarder::container::Framework;
use guarder::discovery::{Scope, containers, scan_processes};
use guarder::ranking::{Candidate, Excess, RankingWeights, Release, plan_shrink, rank};

fn candidates(count: usize) -> Vec<Candidate> {
    let frameworks = [
        Framework::SparkExecutor,
        Framework::MapReduceTask,
        Framework::TezTask,
        Framework::SparkApplicationMaster,
    ];
    (0..count)
        .map(|i| {
            let framework = frameworks[i % frameworks.len()];
            Candidate {
                vcores: 1 + (i % 8) as u32,
                memory_mb: 2048 * (1 + (i % 6) as u64),
                framework,
                application_master: framework.is_application_master(),
                release: Release::for_framework(framework, true),
                running_seconds: (i as u64 * 37) % 7200,
            }
        })
        .collect()
}

fn ranking(c: &mut Criterion) {
    let thousand = candidates(1000);
    let weights = RankingWeights::default();
    c.bench_function("rank_1000_containers", |b| {
        b.iter(|| black_box(rank(black_box(&thousand), &weights)))
    });
    let excess = Excess {
        vcores: 600,
        memory_mb: 1_200_000,
    };
    c.bench_function("plan_shrink_1000_containers", |b| {
        b.iter(|| black_box(plan_shrink(black_box(&thousand), excess, &weights)))
    });
}

struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

fn proc_scan(c: &mut Criterion) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let sleepers = Sleepers(
        (0..1000)
            .map(|i| {
                Command::new("sleep")
                    .arg("600")
                    .env(
                        "CONTAINER_ID",
                        format!("container_e01_{stamp}_0001_01_{:06}", i + 2),
                    )
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("sleep starts")
            })
            .collect(),
    );
    let processes = scan_processes(Path::new("/proc")).expect("/proc is readable");
    println!(
        "processes on the machine during the scan: {}",
        processes.len()
    );
    let own = i32::try_from(std::process::id()).expect("a pid");
    let found = containers(
        &processes,
        &Default::default(),
        Scope::DescendantsOf(own),
        own,
    );
    println!("containers found: {}", found.len());
    c.bench_function("proc_scan_and_group_1000_container_processes", |b| {
        b.iter(|| {
            let processes = scan_processes(Path::new("/proc")).expect("/proc is readable");
            black_box(containers(
                &processes,
                &Default::default(),
                Scope::Namespace,
                own,
            ))
        })
    });
    drop(sleepers);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = ranking, proc_scan
}
criterion_main!(benches);
