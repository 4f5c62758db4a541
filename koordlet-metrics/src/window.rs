//! Rolling time windows with mean, variance, min and max in O(1) amortized per sample.
//!
//! Sums are kept relative to a shift value (a recent mean) so that the variance of large
//! numbers (memory in bytes) does not drown in cancellation; the shift is renewed with an exact
//! recomputation once per window's worth of evictions, which keeps the cost amortized O(1).
//! Minimum and maximum come from monotonic deques. The variance is the population variance,
//! the same quantity as Prometheus' `stdvar_over_time`.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The window spans of the contract: 1, 5 and 10 minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WindowSpan {
    /// The last minute.
    #[serde(rename = "1m")]
    OneMinute,
    /// The last five minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// The last ten minutes.
    #[serde(rename = "10m")]
    TenMinutes,
}

impl WindowSpan {
    /// Every span, shortest first.
    pub const ALL: [WindowSpan; 3] = [
        WindowSpan::OneMinute,
        WindowSpan::FiveMinutes,
        WindowSpan::TenMinutes,
    ];

    /// Length of the span in seconds.
    pub const fn seconds(self) -> u64 {
        match self {
            WindowSpan::OneMinute => 60,
            WindowSpan::FiveMinutes => 300,
            WindowSpan::TenMinutes => 600,
        }
    }

    /// Value of the `window` label.
    pub const fn label(self) -> &'static str {
        match self {
            WindowSpan::OneMinute => "1m",
            WindowSpan::FiveMinutes => "5m",
            WindowSpan::TenMinutes => "10m",
        }
    }

    const fn index(self) -> usize {
        match self {
            WindowSpan::OneMinute => 0,
            WindowSpan::FiveMinutes => 1,
            WindowSpan::TenMinutes => 2,
        }
    }
}

impl fmt::Display for WindowSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Statistics of the samples inside one window. `count == 0` means the window holds no sample
/// and every other field is meaningless (zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Number of samples in the window.
    pub count: u32,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population variance.
    pub variance: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
}

impl WindowStats {
    /// True when the window holds no sample.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Population standard deviation.
    pub fn std_dev(&self) -> f64 {
        self.variance.max(0.0).sqrt()
    }

    /// Statistics of a constant value, as if one sample had been seen. Handy for tests and for
    /// inputs that are known exactly.
    pub const fn constant(value: f64) -> Self {
        WindowStats {
            count: 1,
            mean: value,
            variance: 0.0,
            min: value,
            max: value,
        }
    }
}

/// The three windows of one series, as exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowSet {
    /// The last minute.
    #[serde(rename = "1m")]
    pub one_minute: WindowStats,
    /// The last five minutes.
    #[serde(rename = "5m")]
    pub five_minutes: WindowStats,
    /// The last ten minutes.
    #[serde(rename = "10m")]
    pub ten_minutes: WindowStats,
}

impl WindowSet {
    /// Statistics of one span.
    pub const fn get(&self, span: WindowSpan) -> &WindowStats {
        match span {
            WindowSpan::OneMinute => &self.one_minute,
            WindowSpan::FiveMinutes => &self.five_minutes,
            WindowSpan::TenMinutes => &self.ten_minutes,
        }
    }

    /// The same statistics in every window; for tests and exact inputs.
    pub const fn constant(value: f64) -> Self {
        let stats = WindowStats::constant(value);
        WindowSet {
            one_minute: stats,
            five_minutes: stats,
            ten_minutes: stats,
        }
    }

    /// Every statistic multiplied by `factor` (variance by its square); used to change units.
    pub fn scaled(&self, factor: f64) -> Self {
        let scale = |s: &WindowStats| WindowStats {
            count: s.count,
            mean: s.mean * factor,
            variance: s.variance * factor * factor,
            min: s.min * factor,
            max: s.max * factor,
        };
        WindowSet {
            one_minute: scale(&self.one_minute),
            five_minutes: scale(&self.five_minutes),
            ten_minutes: scale(&self.ten_minutes),
        }
    }
}

/// Why a sample was refused. Refused samples never enter a window, so a window only ever
/// holds real measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleRejected {
    /// NaN or infinite.
    NotFinite,
    /// Older than the newest sample already held (a clock that went backwards).
    OutOfOrder,
}

impl SampleRejected {
    /// Short stable category, for metric labels.
    pub const fn category(self) -> &'static str {
        match self {
            SampleRejected::NotFinite => "not_finite",
            SampleRejected::OutOfOrder => "out_of_order",
        }
    }
}

impl fmt::Display for SampleRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleRejected::NotFinite => f.write_str("sample is NaN or infinite"),
            SampleRejected::OutOfOrder => f.write_str("sample is older than the newest one held"),
        }
    }
}

impl std::error::Error for SampleRejected {}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at_ms: u64,
    value: f64,
}

/// One rolling window over a time span. Samples are kept while `at > now - span`.
#[derive(Clone, Debug)]
pub struct RollingWindow {
    span_ms: u64,
    samples: VecDeque<Sample>,
    shift: f64,
    shifted_sum: f64,
    shifted_sum_sq: f64,
    evictions_since_rebase: usize,
    min_queue: VecDeque<Sample>,
    max_queue: VecDeque<Sample>,
}

impl RollingWindow {
    /// A window over `span_ms` milliseconds.
    pub fn new(span_ms: u64) -> Self {
        RollingWindow {
            span_ms: span_ms.max(1),
            samples: VecDeque::new(),
            shift: 0.0,
            shifted_sum: 0.0,
            shifted_sum_sq: 0.0,
            evictions_since_rebase: 0,
            min_queue: VecDeque::new(),
            max_queue: VecDeque::new(),
        }
    }

    /// A window of one of the contract's spans.
    pub fn for_span(span: WindowSpan) -> Self {
        RollingWindow::new(span.seconds() * 1000)
    }

    /// Adds a sample taken at `at_ms` and forgets those that left the window.
    pub fn push(&mut self, at_ms: u64, value: f64) -> Result<(), SampleRejected> {
        if !value.is_finite() {
            return Err(SampleRejected::NotFinite);
        }
        if self.samples.back().is_some_and(|last| at_ms < last.at_ms) {
            return Err(SampleRejected::OutOfOrder);
        }
        self.expire(at_ms);
        if self.samples.is_empty() {
            self.shift = value;
            self.shifted_sum = 0.0;
            self.shifted_sum_sq = 0.0;
            self.evictions_since_rebase = 0;
        }
        let sample = Sample { at_ms, value };
        let delta = value - self.shift;
        self.shifted_sum += delta;
        self.shifted_sum_sq += delta * delta;
        self.samples.push_back(sample);
        while self.min_queue.back().is_some_and(|s| s.value >= value) {
            self.min_queue.pop_back();
        }
        self.min_queue.push_back(sample);
        while self.max_queue.back().is_some_and(|s| s.value <= value) {
            self.max_queue.pop_back();
        }
        self.max_queue.push_back(sample);
        Ok(())
    }

    /// Forgets the samples that are no longer inside the window at `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let Some(oldest_kept) = now_ms.checked_sub(self.span_ms) else {
            return;
        };
        while let Some(front) = self.samples.front().copied() {
            if front.at_ms > oldest_kept {
                break;
            }
            self.samples.pop_front();
            let delta = front.value - self.shift;
            self.shifted_sum -= delta;
            self.shifted_sum_sq -= delta * delta;
            self.evictions_since_rebase += 1;
        }
        while self
            .min_queue
            .front()
            .is_some_and(|s| s.at_ms <= oldest_kept)
        {
            self.min_queue.pop_front();
        }
        while self
            .max_queue
            .front()
            .is_some_and(|s| s.at_ms <= oldest_kept)
        {
            self.max_queue.pop_front();
        }
        if self.evictions_since_rebase > self.samples.len().max(16) {
            self.rebase();
        }
    }

    /// Recomputes the sums exactly around the current mean, removing accumulated rounding.
    fn rebase(&mut self) {
        self.evictions_since_rebase = 0;
        let n = self.samples.len();
        if n == 0 {
            self.shifted_sum = 0.0;
            self.shifted_sum_sq = 0.0;
            return;
        }
        let mean = self.samples.iter().map(|s| s.value).sum::<f64>() / n as f64;
        self.shift = mean;
        let (sum, sum_sq) = self.samples.iter().fold((0.0, 0.0), |(sum, sq), s| {
            let delta = s.value - mean;
            (sum + delta, sq + delta * delta)
        });
        self.shifted_sum = sum;
        self.shifted_sum_sq = sum_sq;
    }

    /// Number of samples currently held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Statistics of the samples held now (call [`RollingWindow::expire`] first to move the
    /// window to the present when no sample arrived).
    pub fn stats(&self) -> WindowStats {
        let n = self.samples.len();
        let (Some(min), Some(max)) = (self.min_queue.front(), self.max_queue.front()) else {
            return WindowStats::default();
        };
        let count = n as f64;
        let mean_delta = self.shifted_sum / count;
        let variance = (self.shifted_sum_sq / count - mean_delta * mean_delta).max(0.0);
        WindowStats {
            count: u32::try_from(n).unwrap_or(u32::MAX),
            mean: self.shift + mean_delta,
            variance,
            min: min.value,
            max: max.value,
        }
    }
}

/// One series with its three windows and the time and value of its newest sample.
#[derive(Clone, Debug)]
pub struct WindowedSeries {
    windows: [RollingWindow; 3],
    newest: Option<(u64, f64)>,
}

impl Default for WindowedSeries {
    fn default() -> Self {
        WindowedSeries::new()
    }
}

impl WindowedSeries {
    /// Empty windows of 1, 5 and 10 minutes.
    pub fn new() -> Self {
        WindowedSeries {
            windows: WindowSpan::ALL.map(RollingWindow::for_span),
            newest: None,
        }
    }

    /// Adds one sample to every window.
    pub fn push(&mut self, at_ms: u64, value: f64) -> Result<(), SampleRejected> {
        if !value.is_finite() {
            return Err(SampleRejected::NotFinite);
        }
        if self.newest.is_some_and(|(at, _)| at_ms < at) {
            return Err(SampleRejected::OutOfOrder);
        }
        for window in &mut self.windows {
            window.push(at_ms, value)?;
        }
        self.newest = Some((at_ms, value));
        Ok(())
    }

    /// Moves every window to `now_ms`, forgetting samples that left them.
    pub fn expire(&mut self, now_ms: u64) {
        for window in &mut self.windows {
            window.expire(now_ms);
        }
    }

    /// Statistics of every window as they stand.
    pub fn snapshot(&self) -> WindowSet {
        WindowSet {
            one_minute: self.windows[WindowSpan::OneMinute.index()].stats(),
            five_minutes: self.windows[WindowSpan::FiveMinutes.index()].stats(),
            ten_minutes: self.windows[WindowSpan::TenMinutes.index()].stats(),
        }
    }

    /// Time (ms) and value of the newest sample ever accepted.
    pub const fn newest(&self) -> Option<(u64, f64)> {
        self.newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(samples: &[(u64, f64)], now_ms: u64, span_ms: u64) -> WindowStats {
        let kept: Vec<f64> = samples
            .iter()
            .filter(|(at, _)| *at + span_ms > now_ms && *at <= now_ms)
            .map(|(_, v)| *v)
            .collect();
        if kept.is_empty() {
            return WindowStats::default();
        }
        let n = kept.len() as f64;
        let mean = kept.iter().sum::<f64>() / n;
        let variance = kept.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        WindowStats {
            count: kept.len() as u32,
            mean,
            variance,
            min: kept.iter().copied().fold(f64::INFINITY, f64::min),
            max: kept.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    fn close(a: f64, b: f64, scale: f64) -> bool {
        (a - b).abs() <= 1e-9 * scale.max(1.0)
    }

    #[test]
    fn one_minute_window_keeps_exactly_sixty_one_hertz_samples() {
        let mut window = RollingWindow::for_span(WindowSpan::OneMinute);
        for second in 0..100u64 {
            window.push(second * 1000, second as f64).unwrap();
        }
        let stats = window.stats();
        assert_eq!(stats.count, 60);
        assert_eq!(stats.min, 40.0);
        assert_eq!(stats.max, 99.0);
        assert!((stats.mean - 69.5).abs() < 1e-12);
        // Population variance of 60 consecutive integers: (60^2 - 1) / 12.
        assert!((stats.variance - 299.916_666_666_666_7).abs() < 1e-9);
    }

    #[test]
    fn expiring_without_samples_empties_the_window() {
        let mut window = RollingWindow::for_span(WindowSpan::OneMinute);
        window.push(0, 5.0).unwrap();
        window.expire(59_999);
        assert_eq!(window.stats().count, 1);
        window.expire(60_000);
        assert!(window.stats().is_empty());
        assert!(window.is_empty());
    }

    #[test]
    fn refuses_nan_infinity_and_time_going_backwards() {
        let mut series = WindowedSeries::new();
        assert_eq!(series.push(1000, f64::NAN), Err(SampleRejected::NotFinite));
        assert_eq!(
            series.push(1000, f64::INFINITY),
            Err(SampleRejected::NotFinite)
        );
        series.push(2000, 1.0).unwrap();
        assert_eq!(series.push(1000, 2.0), Err(SampleRejected::OutOfOrder));
        let snapshot = series.snapshot();
        assert_eq!(snapshot.one_minute.count, 1);
        assert_eq!(snapshot.ten_minutes.mean, 1.0);
        assert_eq!(series.newest(), Some((2000, 1.0)));
    }

    #[test]
    fn variance_of_byte_sized_values_stays_exact() {
        // Memory in bytes around 100 GiB with a few MiB of movement: naive sums of squares
        // (1e22) would lose every digit of a variance around 1e12.
        let base = 100.0 * 1024.0 * 1024.0 * 1024.0;
        let mut window = RollingWindow::for_span(WindowSpan::TenMinutes);
        let mut all = Vec::new();
        for second in 0..5_000u64 {
            let value = base + ((second * 7919) % 4096) as f64 * 1024.0;
            window.push(second * 1000, value).unwrap();
            all.push((second * 1000, value));
        }
        let expected = naive(&all, 4_999_000, 600_000);
        let stats = window.stats();
        assert_eq!(stats.count, expected.count);
        assert!((stats.variance - expected.variance).abs() / expected.variance < 1e-9);
        assert!(close(stats.mean, expected.mean, base));
    }

    proptest! {
        #[test]
        fn matches_naive_recomputation(
            steps in prop::collection::vec((0u64..3_000, -1e6f64..1e6), 1..400),
            span_s in 1u64..120,
        ) {
            let span_ms = span_s * 1000;
            let mut window = RollingWindow::new(span_ms);
            let mut now = 0u64;
            let mut seen = Vec::new();
            for (gap, value) in steps {
                now += gap;
                window.push(now, value).unwrap();
                seen.push((now, value));
                let expected = naive(&seen, now, span_ms);
                let got = window.stats();
                prop_assert_eq!(got.count, expected.count);
                prop_assert_eq!(got.min, expected.min);
                prop_assert_eq!(got.max, expected.max);
                prop_assert!(close(got.mean, expected.mean, 1e6));
                prop_assert!((got.variance - expected.variance).abs() <= 1e-6 * expected.variance.max(1.0));
            }
        }

        #[test]
        fn windows_of_a_series_are_nested(values in prop::collection::vec(0f64..64.0, 1..900)) {
            let mut series = WindowedSeries::new();
            for (second, value) in values.iter().enumerate() {
                series.push(second as u64 * 1000, *value).unwrap();
            }
            let set = series.snapshot();
            prop_assert!(set.one_minute.count <= set.five_minutes.count);
            prop_assert!(set.five_minutes.count <= set.ten_minutes.count);
            prop_assert!(set.ten_minutes.min <= set.one_minute.min);
            prop_assert!(set.ten_minutes.max >= set.one_minute.max);
        }
    }

    #[test]
    fn window_set_serializes_with_contract_labels() {
        let json = serde_json::to_value(WindowSet::constant(2.0)).unwrap();
        assert!(json.get("1m").is_some());
        assert!(json.get("5m").is_some());
        assert_eq!(json["10m"]["mean"], 2.0);
        let labels: Vec<&str> = WindowSpan::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["1m", "5m", "10m"]);
    }
}
