//! Status conditions computed in pure code and merged with the previous ones so that
//! `lastTransitionTime` moves only when a condition's status really changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The wanted state of one condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}

impl ConditionUpdate {
    /// A condition that holds.
    pub fn holds(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        ConditionUpdate {
            type_,
            status: true,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn fails(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        ConditionUpdate {
            type_,
            status: false,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// `old` with `updates` applied: a condition whose status is unchanged keeps its
/// `lastTransitionTime`; conditions not updated stay as they were. Sorted by type, so that an
/// unchanged status compares equal and is not written again.
pub fn merge(
    old: &[Condition],
    updates: &[ConditionUpdate],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = old
        .iter()
        .filter(|c| !updates.iter().any(|u| u.type_ == c.type_))
        .cloned()
        .collect();
    for update in updates {
        let status = if update.status { "True" } else { "False" };
        let previous = old.iter().find(|c| c.type_ == update.type_);
        let last_transition_time = match previous {
            Some(previous) if previous.status == status => previous.last_transition_time.clone(),
            _ => now.clone(),
        };
        merged.push(Condition {
            type_: update.type_.to_owned(),
            status: status.to_owned(),
            reason: update.reason.clone(),
            message: update.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    merged.sort_by(|a, b| a.type_.cmp(&b.type_));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let first = merge(
            &[],
            &[ConditionUpdate::holds("Ready", "Online", "3 NodeManagers")],
            Some(1),
            &time("2026-11-24T10:00:00Z"),
        );
        let second = merge(
            &first,
            &[ConditionUpdate::holds("Ready", "Online", "4 NodeManagers")],
            Some(2),
            &time("2026-11-24T10:05:00Z"),
        );
        assert_eq!(second[0].last_transition_time, time("2026-11-24T10:00:00Z"));
        assert_eq!(second[0].message, "4 NodeManagers");
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn flipped_status_moves_the_transition_time_and_others_stay() {
        let old = merge(
            &[],
            &[
                ConditionUpdate::holds("Ready", "Online", ""),
                ConditionUpdate::holds("MetricsFresh", "Fresh", ""),
            ],
            Some(1),
            &time("2026-11-24T10:00:00Z"),
        );
        let new = merge(
            &old,
            &[
                ConditionUpdate::fails(
                    "ResourceManagerReachable",
                    "NoActiveResourceManager",
                    "rm1 and rm2 are standby",
                ),
                ConditionUpdate::fails("Ready", "ResourceManagerUnreachable", ""),
            ],
            Some(1),
            &time("2026-11-24T10:07:00Z"),
        );
        let types: Vec<&str> = new.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["MetricsFresh", "Ready", "ResourceManagerReachable"]);
        assert_eq!(new[0], old[0], "MetricsFresh untouched");
        assert_eq!(new[1].status, "False");
        assert_eq!(new[1].last_transition_time, time("2026-11-24T10:07:00Z"));
        assert_eq!(new[2].reason, "NoActiveResourceManager");
    }

    #[test]
    fn merging_the_same_updates_twice_is_stable() {
        let updates = [ConditionUpdate::holds("DatasetsReady", "Bound", "2 of 2")];
        let once = merge(&[], &updates, Some(3), &time("2026-11-24T10:00:00Z"));
        let twice = merge(&once, &updates, Some(3), &time("2026-11-24T11:00:00Z"));
        assert_eq!(once, twice);
    }
}
