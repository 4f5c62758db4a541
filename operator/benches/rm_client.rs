//! Throughput and memory of the RM client: rounds of 5,000 confirmed resizes with bounded
//! concurrency against the RM double on loopback (each resize is a POST and a confirming GET).
//!
//! `cargo bench -p elastic-yarn-operator --bench rm_client` (RM_BENCH_RESIZES,
//! RM_BENCH_CONCURRENCY and RM_BENCH_ROUNDS change the defaults 5000, 64 and 3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use yarn_rm::{
    NodeId, OverCommitTimeout, ResourceManager, Resources, RestResourceManager, RestSettings,
    RmAuth,
};
use yarn_rm_double::{DoubleAuth, DoubleCluster, RmDouble, Role};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let resizes = setting("RM_BENCH_RESIZES", 5000);
    let concurrency = setting("RM_BENCH_CONCURRENCY", 64);
    let rounds = setting("RM_BENCH_ROUNDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let full = Resources {
            memory_mb: 131_072,
            vcores: 32,
        };
        let cluster = DoubleCluster::with_nodes(resizes, full);
        let double = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple).without_recording();
        let (address, _server) = double.spawn().await.expect("bind");
        let mut settings = RestSettings::new(
            vec![format!("http://{address}")],
            RmAuth::Simple {
                user: "yarn".to_owned(),
            },
        );
        settings.max_in_flight = concurrency;
        settings.confirm_interval = Duration::from_millis(1);
        let rm = Arc::new(RestResourceManager::new(settings).expect("client"));
        let ids: Arc<Vec<NodeId>> = Arc::new(
            (0..resizes)
                .map(|index| format!("nm-{index}.yarn.test:45454").parse().expect("id"))
                .collect(),
        );
        println!(
            "rm_client: {resizes} confirmed resizes per round, {concurrency} in flight, loopback double"
        );
        println!("start: resident {} KiB", resident_kib());
        for round in 0..rounds {
            let vcores = 8 + u32::try_from(round % 8).unwrap_or(0);
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for index in 0..resizes {
                let rm = Arc::clone(&rm);
                let ids = Arc::clone(&ids);
                tasks.spawn(async move {
                    let target = Resources {
                        memory_mb: u64::from(vcores) * 4096,
                        vcores,
                    };
                    rm.resize(&ids[index], target, OverCommitTimeout::Never).await
                });
            }
            let mut failures = 0;
            while let Some(result) = tasks.join_next().await {
                if !matches!(result, Ok(Ok(_))) {
                    failures += 1;
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            let requests = 2.0 * resizes as f64;
            println!(
                "round {}: {:.3} s, {:.0} resizes/s, {:.0} requests/s, {failures} failures, resident {} KiB",
                round + 1,
                seconds,
                resizes as f64 / seconds,
                requests / seconds,
                resident_kib()
            );
        }
    });
}
