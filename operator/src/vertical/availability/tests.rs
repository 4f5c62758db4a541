use koordlet_metrics::report::{BatchAllocatable as ReportedAllocatable, LatestSample};

use super::*;

fn report(latest: Option<f64>) -> WindowsReport {
    let json = serde_json::json!({
        "node": "worker-1",
        "cpuCores": {
            "1m": {"count": 60, "mean": 10.0, "variance": 1.0, "min": 8.0, "max": 12.0},
            "5m": {"count": 300, "mean": 11.0, "variance": 2.0, "min": 7.0, "max": 14.0},
            "10m": {"count": 600, "mean": 12.0, "variance": 4.0, "min": 6.0, "max": 16.0}
        },
        "memoryBytes": {
            "1m": {"count": 60, "mean": 2147483648.0, "variance": 1099511627776.0, "min": 1073741824.0, "max": 3221225472.0},
            "5m": {"count": 0, "mean": 0.0, "variance": 0.0, "min": 0.0, "max": 0.0},
            "10m": {"count": 0, "mean": 0.0, "variance": 0.0, "min": 0.0, "max": 0.0}
        },
        "scrapes": 600,
        "scrapeErrors": {}
    });
    let mut report: WindowsReport = serde_json::from_value(json).unwrap();
    report.latest = latest.map(|age| LatestSample {
        cpu_cores: 9.5,
        memory_bytes: 4.0 * MIB * 1024.0,
        timestamp_seconds: 1_790_000_000.0,
        age_seconds: age,
        inputs: koordlet_metrics::availability::SampleInputs {
            suppress: koordlet_metrics::availability::SuppressLimit {
                cores: 20.0,
                policy: koordlet_metrics::koordlet::SuppressPolicy::Cpuset,
                age_ms: 0,
            },
            be_used_cpu_cores: 1.0,
            node_used_memory_bytes: 1.0e10,
            yarn: koordlet_metrics::availability::YarnUsage {
                cpu_cores: 0.5,
                memory_bytes: 1.0e9,
                cgroups: 1,
            },
            capacity: koordlet_metrics::availability::NodeCapacity {
                cpu_cores: 32.0,
                memory_bytes: 1.28e11,
            },
            memory_evict_threshold_percent: 70.0,
        },
    });
    report.batch_allocatable = Some(ReportedAllocatable {
        cpu_cores: Some(14.0),
        memory_bytes: Some(64.0 * MIB * 1024.0),
        age_seconds: None,
    });
    report
}

#[test]
fn exporter_report_becomes_mib_and_whole_seconds() {
    let reading = reading_from_report(&report(Some(2.7))).unwrap();
    let a = reading.availability;
    assert_eq!(a.cpu_cores.ten_minutes.mean, 12.0);
    assert_eq!(a.memory_mb.one_minute.mean, 2048.0);
    // Variance scales with the square of the unit: 2^40 bytes^2 is 1 MiB^2.
    assert_eq!(a.memory_mb.one_minute.variance, 1.0);
    assert_eq!(a.memory_mb.five_minutes.count, 0);
    assert_eq!(a.latest_cpu_cores, 9.5);
    assert_eq!(a.latest_memory_mb, 4096.0);
    assert_eq!(a.age_seconds, 2);
    let allocatable = reading.batch_allocatable.unwrap();
    assert_eq!(
        (allocatable.cpu_cores, allocatable.memory_mb),
        (14.0, 65536.0)
    );
}

#[test]
fn exporter_without_sample_is_an_error_not_zero_capacity() {
    assert_eq!(
        reading_from_report(&report(None)),
        Err(SourceError::NoSample {
            node: "worker-1".to_owned()
        })
    );
}

#[test]
fn prometheus_answer_is_grouped_by_node() {
    // The shape Prometheus' /api/v1/query writes for an instant vector.
    let sample = |name: &str, node: &str, extra: &[(&str, &str)], value: &str| {
        let mut metric = serde_json::Map::new();
        metric.insert("__name__".into(), name.into());
        metric.insert("node".into(), node.into());
        metric.insert("instance".into(), "10.0.0.1:9320".into());
        metric.insert("job".into(), "koordlet-metrics".into());
        for (k, v) in extra {
            metric.insert((*k).into(), (*v).into());
        }
        serde_json::json!({"metric": metric, "value": [1_790_000_100.5, value]})
    };
    let mut result = vec![
        sample(
            series::BATCH_CPU_AVAILABLE_CORES,
            "w1",
            &[("window", "10m"), ("stat", "mean")],
            "12.5",
        ),
        sample(
            series::BATCH_CPU_AVAILABLE_CORES,
            "w1",
            &[("window", "10m"), ("stat", "min")],
            "9",
        ),
        sample(
            series::BATCH_MEMORY_AVAILABLE_BYTES,
            "w1",
            &[("window", "10m"), ("stat", "mean")],
            "68719476736",
        ),
        sample(
            series::BATCH_AVAILABLE_SAMPLES,
            "w1",
            &[("window", "10m")],
            "600",
        ),
        sample(series::BATCH_CPU_AVAILABLE_LATEST_CORES, "w1", &[], "11"),
        sample(
            series::BATCH_MEMORY_AVAILABLE_LATEST_BYTES,
            "w1",
            &[],
            "34359738368",
        ),
        sample(
            series::KOORDLET_LAST_SCRAPE_TIMESTAMP_SECONDS,
            "w1",
            &[],
            "1790000097",
        ),
        sample(series::BATCH_ALLOCATABLE_CPU_CORES, "w1", &[], "13"),
        sample(
            series::BATCH_ALLOCATABLE_MEMORY_BYTES,
            "w1",
            &[],
            "1073741824",
        ),
        // w2's exporter has windows but never reached koordlet since its restart.
        sample(
            series::BATCH_CPU_AVAILABLE_CORES,
            "w2",
            &[("window", "1m"), ("stat", "mean")],
            "3",
        ),
    ];
    result.push(serde_json::json!({"metric": {"__name__": "up"}, "value": [1.0, "1"]}));
    let body = serde_json::json!({
        "status": "success",
        "data": {"resultType": "vector", "result": result}
    });
    let parsed = PrometheusSource::parse(body.to_string().as_bytes(), 1_790_000_100.5).unwrap();
    let w1 = parsed["w1"].as_ref().unwrap();
    let ten = w1.availability.cpu_cores.ten_minutes;
    assert_eq!((ten.count, ten.mean, ten.min), (600, 12.5, 9.0));
    assert_eq!(w1.availability.memory_mb.ten_minutes.mean, 65536.0);
    assert_eq!(w1.availability.latest_memory_mb, 32768.0);
    assert_eq!(w1.availability.age_seconds, 3);
    assert_eq!(w1.batch_allocatable.unwrap().memory_mb, 1024.0);
    assert_eq!(parsed["w2"].as_ref().unwrap_err().category(), "no_sample");
    assert!(!parsed.contains_key(""));
}

#[test]
fn prometheus_errors_are_reported() {
    let body =
        br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#;
    assert_eq!(
        PrometheusSource::parse(body, 0.0).unwrap_err(),
        "invalid parameter \"query\""
    );
    assert!(PrometheusSource::parse(b"<html>", 0.0).is_err());
}

#[rstest::rstest]
#[case::nan_mean(|r: &mut WindowsReport| r.cpu_cores.ten_minutes.mean = f64::NAN, "10m mean of cpu cores is NaN")]
#[case::infinite_max(|r: &mut WindowsReport| r.cpu_cores.one_minute.max = f64::INFINITY, "1m max of cpu cores is inf")]
#[case::negative_min(|r: &mut WindowsReport| r.cpu_cores.five_minutes.min = -3.0, "negative")]
#[case::beyond_the_node(|r: &mut WindowsReport| r.cpu_cores.ten_minutes.max = 500.0, "above 33.6")]
#[case::nan_latest(|r: &mut WindowsReport| r.latest.as_mut().unwrap().cpu_cores = f64::NAN, "latest cpu cores is NaN")]
#[case::absurd_allocatable(|r: &mut WindowsReport| r.batch_allocatable.as_mut().unwrap().cpu_cores = Some(1e12), "batch allocatable cpu cores")]
fn impossible_values_make_the_reading_invalid(
    #[case] spoil: fn(&mut WindowsReport),
    #[case] said: &str,
) {
    let mut bad = report(Some(1.0));
    spoil(&mut bad);
    let error = reading_from_report(&bad).unwrap_err();
    assert_eq!(error.category(), "invalid_metrics", "{error}");
    assert!(error.to_string().contains(said), "{error}");
}

#[test]
fn an_empty_window_may_hold_anything() {
    let mut report = report(Some(1.0));
    report.memory_bytes.ten_minutes.mean = f64::NAN;
    assert!(reading_from_report(&report).is_ok(), "count 0: not read");
}

#[test]
fn a_sample_from_the_future_is_refused_but_clock_skew_is_not() {
    let error = reading_from_report(&report(Some(-120.0))).unwrap_err();
    assert_eq!(error.category(), "future_timestamp");
    let skewed = reading_from_report(&report(Some(-5.0))).unwrap();
    assert_eq!(skewed.availability.age_seconds, 0);
}

#[test]
fn the_exporters_allocatable_keeps_its_own_age() {
    let mut report = report(Some(1.0));
    report.batch_allocatable.as_mut().unwrap().age_seconds = Some(95.5);
    let reading = reading_from_report(&report).unwrap();
    assert_eq!(reading.batch_allocatable.unwrap().age_seconds, 95);
}

#[test]
fn prometheus_values_that_cannot_be_are_invalid_and_future_scrapes_refused() {
    let answer = |scrape: f64, latest: &str| {
        serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "elastic_yarn_batch_cpu_available_latest_cores", "node": "w1"}, "value": [0.0, latest]},
                {"metric": {"__name__": "elastic_yarn_batch_memory_available_latest_bytes", "node": "w1"}, "value": [0.0, "1073741824"]},
                {"metric": {"__name__": "elastic_yarn_koordlet_last_scrape_timestamp_seconds", "node": "w1"}, "value": [0.0, scrape.to_string()]},
            ]}
        })
        .to_string()
    };
    let now = 1_790_000_000.0;
    let parsed = PrometheusSource::parse(answer(now - 2.0, "NaN").as_bytes(), now).unwrap();
    assert_eq!(
        parsed["w1"].as_ref().unwrap_err().category(),
        "invalid_metrics"
    );
    let parsed = PrometheusSource::parse(answer(now + 600.0, "4").as_bytes(), now).unwrap();
    assert_eq!(
        parsed["w1"].as_ref().unwrap_err().category(),
        "future_timestamp"
    );
    let parsed = PrometheusSource::parse(answer(now - 2.0, "4").as_bytes(), now).unwrap();
    assert_eq!(parsed["w1"].as_ref().unwrap().availability.age_seconds, 2);
}
