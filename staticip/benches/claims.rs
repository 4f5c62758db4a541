//! Claim and release throughput against a simulated pool of 5,000 addresses, on the in-process
//! store with the API server's resourceVersion semantics: one claimant at a time (the cost of
//! `choose` over the whole pool, which each claim lists), and 64 concurrent claimants racing
//! (conflicts and re-reads included). Prints claims per second and peak resident memory.
//!
//! `cargo bench -p staticip --bench claims` (CLAIM_BENCH_ADDRESSES changes the pool size).

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use staticip::addresses::plan;
use staticip::build::static_ip;
use staticip::claim::memory::MemoryStore;
use staticip::claim::{AddressStore, Claimant, claim, claim_all, release};
use staticip::crd::{StaticIP, StaticIPPool, StaticIPStatus};

fn pool(size: usize) -> Vec<StaticIP> {
    let spec = serde_json::from_value(serde_json::json!({
        "cidr": "10.20.0.0/16",
        "dnsZone": "yarn.example.com",
        "secretNamespace": "yarn",
    }))
    .expect("spec");
    let pool = StaticIPPool::new("bench", spec);
    plan("bench", &pool.spec)
        .expect("plan")
        .iter()
        .take(size)
        .map(|p| {
            let mut a = static_ip(&pool, p);
            a.status = Some(StaticIPStatus {
                ready: true,
                dns_ready: true,
                keytab_ready: true,
                ..StaticIPStatus::default()
            });
            a
        })
        .collect()
}

fn claimant(n: usize) -> Claimant {
    Claimant {
        identity: format!("yarn/bench/node-{n}"),
        namespace: "yarn".to_owned(),
        pod: format!("bench-nm-node-{n}"),
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let size: usize = std::env::var("CLAIM_BENCH_ADDRESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let now: Timestamp = "2026-11-24T12:00:00Z".parse().expect("time");
    runtime.block_on(async {
        // Sequential: fill the pool, then release everything.
        let store = MemoryStore::new(pool(size));
        let started = Instant::now();
        for n in 0..size {
            claim(&store, "bench", &claimant(n), now).await.expect("claim");
        }
        let claimed = started.elapsed();
        let started = Instant::now();
        for n in 0..size {
            release(&store, "bench", &claimant(n).identity).await.expect("release");
        }
        let released = started.elapsed();
        println!(
            "sequential over {size} addresses: {:.0} claims/s ({:.2} ms each, pool listed every time), {:.0} releases/s",
            size as f64 / claimed.as_secs_f64(),
            claimed.as_secs_f64() * 1000.0 / size as f64,
            size as f64 / released.as_secs_f64(),
        );

        // Batched, as the operator claims for the NMs of one reconcile: one list per batch.
        let store = MemoryStore::new(pool(size));
        let claimants: Vec<Claimant> = (0..size).map(claimant).collect();
        let started = Instant::now();
        for batch in claimants.chunks(500) {
            for result in claim_all(&store, "bench", batch, now).await.expect("list") {
                result.expect("claim");
            }
        }
        let elapsed = started.elapsed();
        println!(
            "batches of 500 over {size} addresses: {:.0} claims/s",
            size as f64 / elapsed.as_secs_f64()
        );

        // Concurrent: 64 claimants at a time race for a fresh pool until it is full.
        let store = Arc::new(MemoryStore::new(pool(size)));
        let started = Instant::now();
        let mut next = 0;
        while next < size {
            let mut tasks = Vec::new();
            for n in next..(next + 64).min(size) {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    claim(store.as_ref(), "bench", &claimant(n), now).await
                }));
            }
            next += tasks.len();
            for task in tasks {
                task.await.expect("task").expect("claim");
            }
        }
        let elapsed = started.elapsed();
        let (writes, conflicts) = store.write_counts();
        let held = store
            .list("bench")
            .await
            .expect("list")
            .iter()
            .filter(|a| !a.is_free())
            .count();
        println!(
            "64 concurrent claimants over {size} addresses: {:.0} claims/s, {writes} writes, {conflicts} conflicts ({:.2} per claim), {held} held",
            size as f64 / elapsed.as_secs_f64(),
            conflicts as f64 / size as f64,
        );
    });
    println!("peak resident memory: {:.0} MiB", peak_rss_mib());
}
