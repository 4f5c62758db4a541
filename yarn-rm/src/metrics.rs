//! Prometheus metrics of the RM client: latency per call, errors by category, failovers and
//! authentications.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The call (`nodes`, `resize`, ...).
    pub call: &'static str,
    /// `ok` or the error category.
    pub outcome: &'static str,
}

/// Labels of an error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The call.
    pub call: &'static str,
    /// [`super::RmError::category`].
    pub category: &'static str,
}

/// Labels of an authentication.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// `spnego` or `cookie_rejected`.
    pub kind: &'static str,
    /// `ok` or the error category.
    pub outcome: &'static str,
}

/// The client's metrics; cheap to clone (every series is shared).
#[derive(Clone, Debug)]
pub struct RmMetrics {
    /// Seconds per call, retries and failovers included.
    pub latency: Family<CallLabels, Histogram>,
    /// Calls that failed, by category.
    pub errors: Family<ErrorLabels, Counter>,
    /// Times the client moved to another RM.
    pub failovers: Counter,
    /// Attempts retried after a transient failure.
    pub retries: Counter,
    /// SPNEGO exchanges and rejected cookies.
    pub authentications: Family<AuthLabels, Counter>,
}

impl Default for RmMetrics {
    fn default() -> Self {
        RmMetrics {
            latency: Family::new_with_constructor(|| {
                // 1 ms to ~16 s: a loopback call up to a slow RM behind retries.
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
            errors: Family::default(),
            failovers: Counter::default(),
            retries: Counter::default(),
            authentications: Family::default(),
        }
    }
}

impl RmMetrics {
    /// Registers every series under `registry` (prefix it with `elastic_yarn_rm` there).
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "request_duration",
            "Duration of ResourceManager calls, retries and failovers included",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "errors",
            "ResourceManager calls that failed, by category",
            self.errors.clone(),
        );
        registry.register(
            "failovers",
            "Times the client moved to another ResourceManager",
            self.failovers.clone(),
        );
        registry.register(
            "retries",
            "ResourceManager attempts retried after a transient failure",
            self.retries.clone(),
        );
        registry.register(
            "authentications",
            "SPNEGO exchanges with the ResourceManager and rejected cookies",
            self.authentications.clone(),
        );
    }

    /// Records a finished call.
    pub fn observe(&self, call: &'static str, outcome: Result<(), &'static str>, seconds: f64) {
        let outcome_label = match outcome {
            Ok(()) => "ok",
            Err(category) => {
                self.errors
                    .get_or_create(&ErrorLabels { call, category })
                    .inc();
                category
            }
        };
        self.latency
            .get_or_create(&CallLabels {
                call,
                outcome: outcome_label,
            })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn errors_and_latency_are_exposed_with_their_labels() {
        let metrics = RmMetrics::default();
        let mut registry = Registry::with_prefix("elastic_yarn_rm");
        metrics.register(&mut registry);
        metrics.observe("resize", Ok(()), 0.004);
        metrics.observe("resize", Err("timeout"), 2.0);
        metrics.failovers.inc();
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(r#"elastic_yarn_rm_errors_total{call="resize",category="timeout"} 1"#)
        );
        assert!(text.contains(
            r#"elastic_yarn_rm_request_duration_seconds_count{call="resize",outcome="ok"} 1"#
        ));
        assert!(text.contains("elastic_yarn_rm_failovers_total 1"));
    }
}
