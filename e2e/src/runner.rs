//! Runs a suite's scenarios in order, each in its own task with a deadline, and reports each.
//! A panic or a timeout fails that scenario only; the suite fails when any failed. A scenario
//! that cannot run (no cluster) is a skip, and a skip fails the suite when e2e tests are
//! required (`ELASTIC_YARN_REQUIRE_E2E=1`, as in the test command).

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static EVERY_SCENARIO: AtomicBool = AtomicBool::new(false);

/// Whether this run runs every scenario of its suite (no filter on the command line): checks
/// over the whole run (as the RBAC audit's "granted but never used") hold only then.
pub fn every_scenario_runs() -> bool {
    EVERY_SCENARIO.load(Ordering::Relaxed)
}

/// A scenario's body.
pub type Body<W> = fn(Arc<W>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named scenario.
#[derive(Debug)]
pub struct Scenario<W> {
    /// Its name, as the filter on the command line matches it.
    pub name: &'static str,
    /// Longest it may take.
    pub within: Duration,
    /// What it does.
    pub body: Body<W>,
}

/// Names given on the command line (as `cargo test -p elastic-yarn-e2e --test X -- NAME`);
/// flags that libtest would take are ignored.
fn filters() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

/// Runs the scenarios matching the command line on the world `make` builds (`None`: no cluster,
/// every scenario skips). Exit code 1 when any failed, or was skipped while required.
pub fn run<W, Make, Made>(suite: &str, make: Make, scenarios: Vec<Scenario<W>>) -> ExitCode
where
    W: Send + Sync + 'static,
    Make: FnOnce() -> Made,
    Made: Future<Output = Option<W>>,
{
    let filters = filters();
    EVERY_SCENARIO.store(filters.is_empty(), Ordering::Relaxed);
    let chosen: Vec<Scenario<W>> = scenarios
        .into_iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{suite}: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let required = testkit::kubernetes::e2e_required();
    let world =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(make()))) {
            Ok(Some(world)) => Arc::new(world),
            Ok(None) => {
                for scenario in &chosen {
                    println!("{suite} :: {} ... SKIPPED (no cluster)", scenario.name);
                }
                return if required {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                };
            }
            Err(_) => {
                println!("{suite}: setting up the world failed (see above)");
                return ExitCode::FAILURE;
            }
        };
    let mut failed = Vec::new();
    for scenario in &chosen {
        let begun = Instant::now();
        let future = (scenario.body)(world.clone());
        let outcome = runtime
            .block_on(async { tokio::time::timeout(scenario.within, tokio::spawn(future)).await });
        let verdict = match outcome {
            Ok(Ok(())) => "ok",
            Ok(Err(_)) => "FAILED",
            Err(_) => "TIMED OUT",
        };
        println!(
            "{suite} :: {} ... {verdict} ({:.1} s)",
            scenario.name,
            begun.elapsed().as_secs_f64()
        );
        if verdict != "ok" {
            failed.push(scenario.name);
        }
    }
    println!(
        "{suite}: {} scenarios, {} failed, in {:.1} s{}",
        chosen.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    // The world's processes stop with it (their watchdogs see this process end).
    drop(world);
    runtime.shutdown_timeout(Duration::from_secs(5));
    if failed.is_empty() && !chosen.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Boxes an async scenario body.
#[macro_export]
macro_rules! scenario {
    ($name:ident, $seconds:expr) => {
        $crate::runner::Scenario {
            name: stringify!($name),
            within: std::time::Duration::from_secs($seconds),
            body: |world| Box::pin($name(world)),
        }
    };
}

/// Polls `probe` every 250 ms until it gives a value, panicking with `what` after `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
