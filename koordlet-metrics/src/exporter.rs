//! The exporter's state: one scrape in, at most one sample out. No I/O here; the scrape loop
//! fetches the page and reads the cgroups, then hands both to [`Exporter::observe`].
//!
//! Time comes in two clocks: a monotonic one (milliseconds since start) orders samples and ages
//! them, so a wall-clock jump can neither reorder the windows nor make old data look fresh; the
//! wall clock only stamps what is published.

use std::collections::BTreeMap;

use crate::availability::{
    self, AvailabilityError, BatchAvailable, FormulaSettings, NodeCapacity, SampleInputs,
    SuppressTracker, YarnUsage,
};
use crate::cgroup::CgroupError;
use crate::koordlet::{self, PageError};
use crate::report::{BatchAllocatable, LatestSample, WindowsReport};
use crate::window::{SampleRejected, WindowedSeries};

pub use controlkit::process::{Clock, Moment};

/// Why fetching the page failed (the scrape loop's transport errors).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// Nothing listens, or the connection broke.
    #[error("cannot connect to koordlet: {0}")]
    Connect(String),
    /// No complete answer within the scrape timeout.
    #[error("koordlet did not answer within {0} ms")]
    Timeout(u64),
    /// An HTTP status other than 200.
    #[error("koordlet answered HTTP {0}")]
    Status(u16),
    /// The body was too large, cut short or not UTF-8.
    #[error("koordlet's answer is unusable: {0}")]
    Body(String),
}

impl FetchError {
    /// Short stable category, for metric labels.
    pub const fn category(&self) -> &'static str {
        match self {
            FetchError::Connect(_) => "connect",
            FetchError::Timeout(_) => "timeout",
            FetchError::Status(_) => "http_status",
            FetchError::Body(_) => "body",
        }
    }
}

/// Why a scrape produced no sample.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeFailure {
    /// The page could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The page was fetched but is not a usable koordlet page.
    #[error(transparent)]
    Page(#[from] PageError),
    /// The page lacks something the formula needs, or holds impossible values.
    #[error(transparent)]
    Availability(#[from] AvailabilityError),
    /// YARN's use could not be read.
    #[error("YARN usage: {0}")]
    YarnUsage(#[from] CgroupError),
    /// The windows refused the sample (cannot happen with a monotonic clock; kept honest).
    #[error("sample refused: {0}")]
    Rejected(#[from] SampleRejected),
    /// koordlet serves the very same page, byte for byte, for too long: it is hung, and its
    /// values are no news. No sample is taken, so the windows go stale.
    #[error("koordlet has served the same page for {seconds} s")]
    Frozen {
        /// For how long.
        seconds: u64,
    },
}

impl ScrapeFailure {
    /// Short stable category, for metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            ScrapeFailure::Fetch(e) => e.category(),
            ScrapeFailure::Page(e) => e.category(),
            ScrapeFailure::Availability(e) => e.category(),
            ScrapeFailure::YarnUsage(e) => e.category(),
            ScrapeFailure::Rejected(e) => e.category(),
            ScrapeFailure::Frozen { .. } => "frozen_page",
        }
    }
}

/// Every category a scrape can fail with, so that each counter exists from the start.
pub const SCRAPE_ERROR_REASONS: [&str; 15] = [
    "connect",
    "timeout",
    "http_status",
    "body",
    "duplicate_series",
    "invalid_value",
    "wrong_node",
    "missing_series",
    "out_of_range",
    "cgroup_read",
    "no_cgroup_layout",
    "bad_pattern",
    "not_finite",
    "out_of_order",
    "frozen_page",
];

/// A page identical to the last ones for this long counts as frozen: koordlet's node usage
/// series change with every collection (each second by default).
pub const FROZEN_AFTER_MS: u64 = 60_000;
/// Koordinator's batch allocatable counts this long after koordlet last reported it; then it is
/// left out of the report rather than repeated forever.
pub const BATCH_ALLOCATABLE_TTL_MS: u64 = 120_000;

/// What one scrape gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScrapeOutcome {
    /// A sample entered the windows.
    Sample(BatchAvailable),
    /// Nothing wrong, but YARN's CPU rate needs a second read first.
    WarmingUp,
}

/// Fixed facts about the node and the formula.
#[derive(Clone, Debug, PartialEq)]
pub struct ExporterConfig {
    /// Kubernetes node name; koordlet's `node` label must match it.
    pub node: String,
    /// The node's size.
    pub capacity: NodeCapacity,
    /// Formula settings.
    pub settings: FormulaSettings,
}

#[derive(Clone, Copy, Debug)]
struct Latest {
    available: BatchAvailable,
    at: Moment,
    inputs: SampleInputs,
}

/// The exporter's state.
#[derive(Debug)]
pub struct Exporter {
    config: ExporterConfig,
    cpu: WindowedSeries,
    memory: WindowedSeries,
    suppress: SuppressTracker,
    latest: Option<Latest>,
    /// koord-manager's batch allocatable and when koordlet last reported it (monotonic ms).
    batch_allocatable: Option<(BatchAllocatable, u64)>,
    /// A hash of the last page and since when it has been the same (monotonic ms).
    same_page: Option<(u64, u64)>,
    scrapes: u64,
    errors: BTreeMap<&'static str, u64>,
    last_error: Option<String>,
}

impl Exporter {
    /// A new exporter with empty windows.
    pub fn new(config: ExporterConfig) -> Exporter {
        Exporter {
            config,
            cpu: WindowedSeries::new(),
            memory: WindowedSeries::new(),
            suppress: SuppressTracker::default(),
            latest: None,
            batch_allocatable: None,
            same_page: None,
            scrapes: 0,
            errors: BTreeMap::new(),
            last_error: None,
        }
    }

    /// The node served.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// Takes one scrape: the page (or why it could not be fetched) and YARN's use (`Ok(None)`
    /// while its CPU rate is not known yet). Failures are counted by category and leave the
    /// windows untouched.
    pub fn observe(
        &mut self,
        at: Moment,
        page: Result<&str, FetchError>,
        yarn: Result<Option<YarnUsage>, CgroupError>,
    ) -> Result<ScrapeOutcome, ScrapeFailure> {
        self.scrapes += 1;
        let outcome = self.sample(at, page, yarn);
        match &outcome {
            Ok(_) => self.last_error = None,
            Err(failure) => {
                *self.errors.entry(failure.category()).or_default() += 1;
                self.last_error = Some(failure.to_string());
            }
        }
        outcome
    }

    fn sample(
        &mut self,
        at: Moment,
        page: Result<&str, FetchError>,
        yarn: Result<Option<YarnUsage>, CgroupError>,
    ) -> Result<ScrapeOutcome, ScrapeFailure> {
        let text = page?;
        self.check_not_frozen(at.monotonic_ms, text)?;
        let page = koordlet::parse_page(text, Some(&self.config.node))?;
        self.suppress.observe(at.monotonic_ms, &page);
        if page.batch_allocatable_cpu_cores.is_some()
            || page.batch_allocatable_memory_bytes.is_some()
        {
            self.batch_allocatable = Some((
                BatchAllocatable {
                    cpu_cores: page.batch_allocatable_cpu_cores,
                    memory_bytes: page.batch_allocatable_memory_bytes,
                    age_seconds: None,
                },
                at.monotonic_ms,
            ));
        }
        let suppress = self
            .suppress
            .current(at.monotonic_ms, &self.config.settings)?;
        let Some(yarn) = yarn? else {
            return Ok(ScrapeOutcome::WarmingUp);
        };
        let inputs = availability::sample_inputs(
            &page,
            suppress,
            yarn,
            self.config.capacity,
            &self.config.settings,
        )?;
        let available = availability::batch_available(&inputs);
        self.cpu.push(at.monotonic_ms, available.cpu_cores)?;
        self.memory.push(at.monotonic_ms, available.memory_bytes)?;
        self.latest = Some(Latest {
            available,
            at,
            inputs,
        });
        Ok(ScrapeOutcome::Sample(available))
    }

    /// Fails when koordlet has served this very page for [`FROZEN_AFTER_MS`] or longer.
    fn check_not_frozen(&mut self, now_ms: u64, text: &str) -> Result<(), ScrapeFailure> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let hash = hasher.finish();
        match self.same_page {
            Some((last, since)) if last == hash => {
                let for_ms = now_ms.saturating_sub(since);
                if for_ms >= FROZEN_AFTER_MS {
                    return Err(ScrapeFailure::Frozen {
                        seconds: for_ms / 1000,
                    });
                }
            }
            _ => self.same_page = Some((hash, now_ms)),
        }
        Ok(())
    }

    /// The windows as they stand at `now` (samples older than a window leave it, even when no
    /// scrape succeeds).
    pub fn report(&mut self, now: Moment) -> WindowsReport {
        self.cpu.expire(now.monotonic_ms);
        self.memory.expire(now.monotonic_ms);
        WindowsReport {
            node: self.config.node.clone(),
            cpu_cores: self.cpu.snapshot(),
            memory_bytes: self.memory.snapshot(),
            latest: self.latest.map(|latest| LatestSample {
                cpu_cores: latest.available.cpu_cores,
                memory_bytes: latest.available.memory_bytes,
                timestamp_seconds: latest.at.wall_seconds,
                age_seconds: now.monotonic_ms.saturating_sub(latest.at.monotonic_ms) as f64
                    / 1000.0,
                inputs: latest.inputs,
            }),
            scrapes: self.scrapes,
            scrape_errors: self
                .errors
                .iter()
                .map(|(reason, count)| ((*reason).to_owned(), *count))
                .collect(),
            last_error: self.last_error.clone(),
            batch_allocatable: self.batch_allocatable.and_then(|(allocatable, at_ms)| {
                let age_ms = now.monotonic_ms.saturating_sub(at_ms);
                (age_ms < BATCH_ALLOCATABLE_TTL_MS).then_some(BatchAllocatable {
                    age_seconds: Some(age_ms as f64 / 1000.0),
                    ..allocatable
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::koordlet::SuppressPolicy;
    use crate::replay::{KoordletValues, render_page};

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    fn exporter() -> Exporter {
        Exporter::new(ExporterConfig {
            node: "node-a".to_owned(),
            capacity: NodeCapacity {
                cpu_cores: 32.0,
                memory_bytes: 128.0 * GIB,
            },
            settings: FormulaSettings::default(),
        })
    }

    fn at(second: u64) -> Moment {
        Moment {
            monotonic_ms: second * 1000,
            wall_seconds: 1_800_000_000.0 + second as f64,
        }
    }

    fn values(suppress: f64) -> KoordletValues {
        KoordletValues {
            suppress_policy: SuppressPolicy::CfsQuota,
            suppress_cores: Some(suppress),
            be_used_cpu_cores: 4.0,
            ls_used_cpu_cores: 10.0,
            node_used_cpu_cores: 14.0,
            node_used_memory_bytes: 64.0 * GIB,
            batch_allocatable_milli_cores: 16_000.0,
            batch_allocatable_memory_bytes: 40.0 * GIB,
        }
    }

    fn yarn(cpu: f64) -> Result<Option<YarnUsage>, CgroupError> {
        Ok(Some(YarnUsage {
            cpu_cores: cpu,
            memory_bytes: 8.0 * GIB,
            cgroups: 1,
        }))
    }

    #[test]
    fn a_good_page_becomes_a_sample_in_every_window() {
        let mut exporter = exporter();
        let page = render_page("node-a", &values(20.0), 0);
        let outcome = exporter.observe(at(1), Ok(&page), yarn(3.0)).unwrap();
        // 20 − (4 − 3) = 19 cores; 0.7 × 128 − (64 − 8) = 33.6 GiB.
        let ScrapeOutcome::Sample(sample) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(sample.cpu_cores, 19.0);
        assert!((sample.memory_bytes - 33.6 * GIB).abs() < 1.0);
        let report = exporter.report(at(2));
        assert_eq!(report.cpu_cores.ten_minutes.count, 1);
        assert_eq!(report.cpu_cores.one_minute.mean, 19.0);
        let latest = report.latest.unwrap();
        assert_eq!(latest.age_seconds, 1.0);
        assert_eq!(latest.timestamp_seconds, 1_800_000_001.0);
        assert_eq!(report.batch_allocatable.unwrap().cpu_cores, Some(16.0));
        assert!(report.scrape_errors.is_empty());
    }

    #[test]
    fn a_page_that_never_changes_is_frozen_and_the_windows_go_stale() {
        let mut exporter = exporter();
        let page = render_page("node-a", &values(20.0), 0);
        for second in 0..60 {
            exporter
                .observe(at(second), Ok(&page), yarn(3.0))
                .expect("the same page is fine for a while");
        }
        let frozen = exporter.observe(at(60), Ok(&page), yarn(3.0));
        assert!(
            matches!(frozen, Err(ScrapeFailure::Frozen { seconds: 60 })),
            "{frozen:?}"
        );
        let report = exporter.report(at(90));
        assert_eq!(report.scrape_errors.get("frozen_page"), Some(&1));
        assert_eq!(
            report.latest.unwrap().age_seconds,
            31.0,
            "no sample since 59 s"
        );
        // koordlet comes back: a new page is a sample again.
        let moved = render_page("node-a", &values(21.0), 0);
        assert!(exporter.observe(at(91), Ok(&moved), yarn(3.0)).is_ok());
    }

    #[test]
    fn batch_allocatable_ages_and_leaves_the_report_when_koordlet_stops_reporting_it() {
        let mut exporter = exporter();
        exporter
            .observe(
                at(0),
                Ok(&render_page("node-a", &values(20.0), 0)),
                yarn(3.0),
            )
            .unwrap();
        let without = render_page("node-a", &values(20.5), 0)
            .lines()
            .filter(|l| !l.contains("node_resource_allocatable"))
            .collect::<Vec<_>>()
            .join("\n");
        exporter.observe(at(30), Ok(&without), yarn(3.0)).unwrap();
        let report = exporter.report(at(30));
        let allocatable = report.batch_allocatable.expect("still within its time");
        assert_eq!(allocatable.age_seconds, Some(30.0));
        let later = render_page("node-a", &values(21.0), 0)
            .lines()
            .filter(|l| !l.contains("node_resource_allocatable"))
            .collect::<Vec<_>>()
            .join("\n");
        exporter.observe(at(120), Ok(&later), yarn(3.0)).unwrap();
        assert_eq!(exporter.report(at(120)).batch_allocatable, None);
    }

    #[test]
    fn failures_are_counted_and_never_enter_the_windows() {
        let mut exporter = exporter();
        let good = render_page("node-a", &values(20.0), 0);
        exporter.observe(at(1), Ok(&good), yarn(0.0)).unwrap();
        let failures = [
            exporter.observe(at(2), Err(FetchError::Timeout(800)), yarn(0.0)),
            exporter.observe(at(3), Err(FetchError::Status(500)), yarn(0.0)),
            exporter.observe(at(4), Ok("<html>oops</html>"), yarn(0.0)),
            exporter.observe(
                at(5),
                Ok(&good.replace(
                    "node_used_memory_bytes{node=\"node-a\"} ",
                    "node_used_memory_bytes{node=\"node-a\"} -",
                )),
                yarn(0.0),
            ),
            exporter.observe(
                at(6),
                Ok(&render_page("node-b", &values(20.0), 0)),
                yarn(0.0),
            ),
            exporter.observe(
                at(7),
                Ok(&render_page("node-a", &values(4096.0), 0)),
                yarn(0.0),
            ),
        ];
        let categories: Vec<&str> = failures
            .iter()
            .map(|f| f.as_ref().unwrap_err().category())
            .collect();
        assert_eq!(
            categories,
            [
                "timeout",
                "http_status",
                "missing_series",
                "invalid_value",
                "wrong_node",
                "out_of_range"
            ]
        );
        let report = exporter.report(at(8));
        assert_eq!(report.cpu_cores.one_minute.count, 1, "only the good sample");
        assert_eq!(report.cpu_cores.one_minute.max, 16.0);
        assert_eq!(report.scrapes, 7);
        assert_eq!(report.scrape_errors.values().sum::<u64>(), 6);
        assert_eq!(report.latest.unwrap().age_seconds, 7.0, "age keeps growing");
        assert!(report.last_error.unwrap().contains("4096"));
    }

    #[test]
    fn a_quota_koordlet_stopped_repeating_is_held() {
        let mut exporter = exporter();
        exporter
            .observe(
                at(1),
                Ok(&render_page("node-a", &values(20.0), 0)),
                yarn(0.0),
            )
            .unwrap();
        // koordlet restarted: the quota gauge is not re-emitted until it changes by 1%.
        let quiet = KoordletValues {
            suppress_cores: None,
            ..values(20.0)
        };
        let outcome = exporter
            .observe(at(2), Ok(&render_page("node-a", &quiet, 0)), yarn(0.0))
            .unwrap();
        assert_eq!(
            outcome,
            ScrapeOutcome::Sample(BatchAvailable {
                cpu_cores: 16.0,
                memory_bytes: 0.7 * 128.0 * GIB - (64.0 - 8.0) * GIB,
            })
        );
        let report = exporter.report(at(2));
        assert_eq!(report.latest.unwrap().inputs.suppress.age_ms, 1000);
    }

    #[test]
    fn windows_empty_out_when_koordlet_stays_down() {
        let mut exporter = exporter();
        exporter
            .observe(
                at(0),
                Ok(&render_page("node-a", &values(20.0), 0)),
                yarn(0.0),
            )
            .unwrap();
        for second in 1..=61 {
            assert!(
                exporter
                    .observe(
                        at(second),
                        Err(FetchError::Connect("refused".into())),
                        yarn(0.0)
                    )
                    .is_err()
            );
        }
        let report = exporter.report(at(61));
        assert!(report.cpu_cores.one_minute.is_empty());
        assert_eq!(report.cpu_cores.five_minutes.count, 1);
        assert_eq!(report.scrape_errors["connect"], 61);
    }

    proptest::proptest! {
        /// The text input path end to end, on arbitrary bytes and on pages mutated byte by
        /// byte: never a panic, never a sample that is not a finite, non-negative number.
        #[test]
        fn arbitrary_input_never_panics_nor_yields_a_bad_sample(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..16),
        ) {
            let mut exporter = exporter();
            let noise = String::from_utf8_lossy(&bytes).into_owned();
            let mut page = render_page("node-a", &values(20.0), 1).into_bytes();
            for (position, byte) in edits {
                let len = page.len();
                page[position % len] = byte;
            }
            let mutated = String::from_utf8_lossy(&page).into_owned();
            for (second, text) in [noise, mutated].iter().enumerate() {
                if let Ok(ScrapeOutcome::Sample(sample)) =
                    exporter.observe(at(second as u64), Ok(text), yarn(1.0))
                {
                    proptest::prop_assert!(sample.cpu_cores.is_finite() && sample.cpu_cores >= 0.0);
                    proptest::prop_assert!(sample.memory_bytes.is_finite() && sample.memory_bytes >= 0.0);
                }
            }
            let report = exporter.report(at(3));
            proptest::prop_assert!(report.cpu_cores.ten_minutes.count <= 2);
            proptest::prop_assert_eq!(report.scrapes, 2);
        }
    }

    #[test]
    fn every_failure_category_is_published_from_the_start() {
        use crate::koordlet::names;
        let io = || std::io::Error::other("gone");
        let failures: Vec<ScrapeFailure> = vec![
            FetchError::Connect(String::new()).into(),
            FetchError::Timeout(1).into(),
            FetchError::Status(500).into(),
            FetchError::Body(String::new()).into(),
            PageError::DuplicateSeries {
                series: names::NODE_USED_CPU_CORES,
                labels: String::new(),
            }
            .into(),
            PageError::InvalidValue {
                series: names::NODE_USED_CPU_CORES,
                value: -1.0,
                why: "negative",
            }
            .into(),
            PageError::WrongNode {
                series: names::NODE_USED_CPU_CORES,
                expected: String::new(),
                found: String::new(),
            }
            .into(),
            AvailabilityError::MissingSeries {
                series: names::NODE_USED_CPU_CORES,
                detail: "",
            }
            .into(),
            AvailabilityError::OutOfRange {
                series: names::NODE_USED_CPU_CORES,
                value: 1.0,
                limit: 0.0,
            }
            .into(),
            CgroupError::Read {
                path: "x".into(),
                source: io(),
            }
            .into(),
            CgroupError::NoLayout { root: "x".into() }.into(),
            CgroupError::BadPattern {
                pattern: String::new(),
                message: String::new(),
            }
            .into(),
            SampleRejected::NotFinite.into(),
            SampleRejected::OutOfOrder.into(),
            ScrapeFailure::Frozen { seconds: 60 },
        ];
        let mut categories: Vec<&str> = failures.iter().map(ScrapeFailure::category).collect();
        categories.sort_unstable();
        let mut published = SCRAPE_ERROR_REASONS.to_vec();
        published.sort_unstable();
        assert_eq!(categories, published);
    }

    #[test]
    fn a_wall_clock_jump_neither_reorders_nor_refreshes_samples() {
        let mut exporter = exporter();
        let page = render_page("node-a", &values(20.0), 0);
        exporter.observe(at(10), Ok(&page), yarn(0.0)).unwrap();
        // NTP steps the wall clock back an hour; the monotonic clock moves on.
        let stepped_back = Moment {
            monotonic_ms: 11_000,
            wall_seconds: at(11).wall_seconds - 3600.0,
        };
        let outcome = exporter
            .observe(stepped_back, Ok(&page), yarn(0.0))
            .unwrap();
        assert!(matches!(outcome, ScrapeOutcome::Sample(_)));
        let report = exporter.report(Moment {
            monotonic_ms: 41_000,
            wall_seconds: stepped_back.wall_seconds + 30.0,
        });
        assert_eq!(report.cpu_cores.one_minute.count, 2);
        let latest = report.latest.unwrap();
        assert_eq!(latest.age_seconds, 30.0, "age from the monotonic clock");
        assert_eq!(latest.timestamp_seconds, stepped_back.wall_seconds);
    }

    #[test]
    fn warming_up_is_not_an_error_and_adds_nothing() {
        let mut exporter = exporter();
        let page = render_page("node-a", &values(20.0), 0);
        assert_eq!(
            exporter.observe(at(1), Ok(&page), Ok(None)).unwrap(),
            ScrapeOutcome::WarmingUp
        );
        let report = exporter.report(at(1));
        assert!(report.cpu_cores.ten_minutes.is_empty());
        assert!(report.scrape_errors.is_empty());
    }
}
