//! The scrape loop against a koordlet that misbehaves in every way a real one can: slow, down,
//! erroring, garbage, NaN, impossible values, oversized pages. Each shows up as a scrape error
//! with its reason, and the windows hold exactly the good samples.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use koordlet_metrics::availability::{FormulaSettings, NodeCapacity};
use koordlet_metrics::exporter::{Clock, Exporter, ExporterConfig};
use koordlet_metrics::exposition::{self, lock};
use koordlet_metrics::replay::{AfterLastStep, ReplayStep, render_page};
use koordlet_metrics::scrape::{KoordletClient, MAX_PAGE_BYTES, ScrapeLoop};
use support::{NODE, NODE_CORES, NODE_MEMORY_BYTES, expected_sample, start_steps, trace_pages};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_counted_and_kept_out_of_the_windows() {
    let pages = trace_pages(2);
    let good = |i: usize| render_page(NODE, &pages[i], 10);
    let line_of = |prefix: &str| {
        good(0)
            .lines()
            .find(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .unwrap()
    };
    let be_used = line_of("koordlet_be_suppress_be_used_cpu_cores{");
    let memory = line_of("koordlet_node_used_memory_bytes{");
    let steps = vec![
        ReplayStep::Page(good(0)),
        ReplayStep::Slow(Duration::from_millis(2500), good(0)),
        ReplayStep::Status(500),
        ReplayStep::Page("<html><body>502 Bad Gateway</body></html>\n\0\u{fffd}".to_owned()),
        ReplayStep::Page(good(0).replace(&be_used, &be_used.replace(' ', " NaN #"))),
        ReplayStep::Page(good(0).replace(
            &memory,
            &format!("{} 1e30", memory.split(' ').next().unwrap()),
        )),
        ReplayStep::Page(good(0).replace(&be_used, &format!("{be_used}\n{be_used}"))),
        ReplayStep::Page("#".repeat(MAX_PAGE_BYTES + 1)),
        ReplayStep::Page(good(1)),
    ];
    let step_count = steps.len();
    let (double, koordlet) = start_steps(steps, AfterLastStep::Unavailable).await;

    let clock = Clock::start();
    let exporter = Arc::new(Mutex::new(Exporter::new(ExporterConfig {
        node: NODE.to_owned(),
        capacity: NodeCapacity {
            cpu_cores: NODE_CORES,
            memory_bytes: NODE_MEMORY_BYTES,
        },
        settings: FormulaSettings::default(),
    })));
    let (_registry, duration) = exposition::registry(exporter.clone(), clock);
    let scrapes = ScrapeLoop {
        exporter: exporter.clone(),
        client: KoordletClient::new(
            &format!("http://{koordlet}/metrics"),
            Duration::from_millis(800),
        )
        .unwrap(),
        yarn: None,
        clock,
        interval: Duration::from_millis(50),
        duration,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scrapes.run(async move {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while double.requests() < step_count + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop stopped scraping"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.unwrap();

    let report = lock(&exporter).report(clock.now());
    let errors = |reason: &str| report.scrape_errors.get(reason).copied().unwrap_or(0);
    assert_eq!(errors("timeout"), 1, "{report:?}");
    assert_eq!(errors("missing_series"), 1, "garbage page: {report:?}");
    assert_eq!(errors("invalid_value"), 1, "NaN: {report:?}");
    assert_eq!(errors("out_of_range"), 1, "1e30 bytes: {report:?}");
    assert_eq!(errors("duplicate_series"), 1, "{report:?}");
    assert_eq!(errors("body"), 1, "oversized page: {report:?}");
    assert!(
        errors("http_status") >= 2,
        "500 and the 503s after: {report:?}"
    );

    let cpu: Vec<f64> = pages.iter().map(|p| expected_sample(p).0).collect();
    let window = report.cpu_cores.ten_minutes;
    assert_eq!(window.count, 2, "only the two good pages: {report:?}");
    assert_eq!(window.min, cpu[0].min(cpu[1]));
    assert_eq!(window.max, cpu[0].max(cpu[1]));
    assert_eq!(report.latest.unwrap().cpu_cores, cpu[1]);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let port = support::free_port();
    let client = KoordletClient::new(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_millis(500),
    )
    .unwrap();
    let error = client.fetch().await.unwrap_err();
    assert_eq!(error.category(), "connect", "{error}");
}
