use super::*;
use crate::crd::{PeriodicSpec, ScheduleWindow};
use crate::schedule::Schedule;

const GRACE: Duration = Duration::from_secs(60);

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn nodes(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn running(node: &str) -> ExistingNodeManager {
    ExistingNodeManager {
        node: node.to_owned(),
        drain_deadline: None,
        empty: false,
        node_present: true,
        failed: false,
    }
}

/// Online 22:00, drain 06:00, offline 06:30 in Berlin, not on New Year's Eve.
fn nightly_berlin() -> Lifecycle {
    let spec = PeriodicSpec {
        time_zone: "Europe/Berlin".to_owned(),
        windows: vec![ScheduleWindow {
            online: "0 22 * * *".to_owned(),
            drain_start: "0 6 * * *".to_owned(),
            offline: "30 6 * * *".to_owned(),
        }],
        excluded_dates: vec!["2026-12-31".to_owned()],
    };
    Lifecycle::Periodic(Schedule::parse(&spec).unwrap())
}

#[test]
fn periodic_pool_walks_online_drain_offline_with_exact_boundaries() {
    let lifecycle = nightly_berlin();
    let eligible = nodes(&["w1", "w2"]);
    // 21:59 Berlin (CET, UTC+1) on 24 November: offline, next online 22:00.
    let plan_before = plan(
        &lifecycle,
        at("2026-11-24T20:59:00Z"),
        &eligible,
        &[],
        GRACE,
    );
    assert_eq!(plan_before.phase, PoolPhase::Offline);
    assert!(plan_before.run.is_empty());
    assert_eq!(
        plan_before.next_transition,
        Some(at("2026-11-24T21:00:00Z"))
    );
    assert_eq!(plan_before.requeue_after, Some(Duration::from_secs(60)));

    // 22:00: online on every eligible node; next is the drain at 06:00.
    let online = plan(
        &lifecycle,
        at("2026-11-24T21:00:00Z"),
        &eligible,
        &[],
        GRACE,
    );
    assert_eq!(online.phase, PoolPhase::Online);
    assert_eq!(online.run, eligible);
    assert_eq!(online.next_transition, Some(at("2026-11-25T05:00:00Z")));

    // 06:00: both NMs drain until 06:30.
    let existing = [running("w1"), running("w2")];
    let draining = plan(
        &lifecycle,
        at("2026-11-25T05:00:00Z"),
        &eligible,
        &existing,
        GRACE,
    );
    assert_eq!(draining.phase, PoolPhase::Draining);
    assert!(draining.run.is_empty());
    assert_eq!(draining.drain.len(), 2);
    for drain in draining.drain.values() {
        assert_eq!(drain.deadline, at("2026-11-25T05:30:00Z"));
        assert_eq!(drain.cause, DrainCause::Schedule);
    }
    assert_eq!(draining.requeue_after, Some(Duration::from_secs(1800)));
}

#[test]
fn drained_nms_leave_when_empty_or_at_the_deadline() {
    let lifecycle = nightly_berlin();
    let deadline = at("2026-11-25T05:30:00Z");
    let mut empty = running("w1");
    empty.drain_deadline = Some(deadline);
    empty.empty = true;
    let mut busy = running("w2");
    busy.drain_deadline = Some(deadline);
    let existing = [empty, busy];
    let eligible = nodes(&["w1", "w2"]);

    let mid = plan(
        &lifecycle,
        at("2026-11-25T05:10:00Z"),
        &eligible,
        &existing,
        GRACE,
    );
    assert_eq!(
        mid.remove,
        BTreeMap::from([("w1".to_owned(), RemoveCause::Empty)])
    );
    assert_eq!(mid.drain["w2"].cause, DrainCause::Continuing);
    assert_eq!(mid.drain["w2"].deadline, deadline);

    let end = plan(&lifecycle, deadline, &eligible, &existing, GRACE);
    assert_eq!(end.remove["w2"], RemoveCause::DeadlineReached);
    assert_eq!(end.phase, PoolPhase::Offline);
}

#[test]
fn excluded_date_keeps_the_pool_offline() {
    let lifecycle = nightly_berlin();
    // 31 December 22:30 Berlin: the window of that date does not open.
    let plan = plan(
        &lifecycle,
        at("2026-12-31T21:30:00Z"),
        &nodes(&["w1"]),
        &[running("w1")],
        GRACE,
    );
    assert_eq!(plan.phase, PoolPhase::Offline);
    assert_eq!(plan.remove["w1"], RemoveCause::Offline);
    // The next window is New Year's night, 22:00 CET.
    assert_eq!(plan.next_transition, Some(at("2027-01-01T21:00:00Z")));
}

#[test]
fn daylight_saving_change_moves_the_utc_boundaries() {
    let lifecycle = nightly_berlin();
    // Night of 28 to 29 March 2026: Berlin goes from CET (UTC+1) to CEST (UTC+2) at 02:00.
    let online = plan(
        &lifecycle,
        at("2026-03-28T21:00:00Z"),
        &nodes(&["w1"]),
        &[],
        GRACE,
    );
    assert_eq!(online.phase, PoolPhase::Online);
    // 06:00 CEST is 04:00 UTC: the night is an hour shorter.
    assert_eq!(online.next_transition, Some(at("2026-03-29T04:00:00Z")));
    // Night of 24 to 25 October: back to CET; online at 22:00 CEST = 20:00 UTC, drain at
    // 06:00 CET = 05:00 UTC, an hour longer.
    let october = plan(
        &lifecycle,
        at("2026-10-24T20:00:00Z"),
        &nodes(&["w1"]),
        &[],
        GRACE,
    );
    assert_eq!(october.phase, PoolPhase::Online);
    assert_eq!(october.next_transition, Some(at("2026-10-25T05:00:00Z")));
}

#[test]
fn resident_pool_follows_eligible_nodes() {
    let now = at("2026-11-24T12:00:00Z");
    let existing = [running("w1"), running("w2")];
    // w2 lost its label, w3 appeared, w4's Kubernetes node was deleted.
    let mut gone = running("w4");
    gone.node_present = false;
    let mut with_gone = existing.to_vec();
    with_gone.push(gone);
    let plan = plan(
        &Lifecycle::Resident,
        now,
        &nodes(&["w1", "w3"]),
        &with_gone,
        GRACE,
    );
    assert_eq!(plan.phase, PoolPhase::Online);
    assert_eq!(plan.run, nodes(&["w1", "w3"]));
    assert_eq!(plan.drain["w2"].cause, DrainCause::NodeIneligible);
    assert_eq!(plan.drain["w2"].deadline, at("2026-11-24T12:01:00Z"));
    assert_eq!(plan.remove["w4"], RemoveCause::NodeGone);
    assert_eq!(plan.next_transition, None);
    assert_eq!(plan.requeue_after, Some(GRACE));
}

#[test]
fn on_demand_keeps_existing_nms_and_scales_by_name_order() {
    let now = at("2026-11-24T12:00:00Z");
    let eligible = nodes(&["a", "b", "c", "d"]);
    let grow = plan(
        &Lifecycle::OnDemand { node_managers: 3 },
        now,
        &eligible,
        &[running("d")],
        GRACE,
    );
    assert_eq!(grow.run, nodes(&["a", "b", "d"]));
    assert!(grow.drain.is_empty());

    let shrink = plan(
        &Lifecycle::OnDemand { node_managers: 1 },
        now,
        &eligible,
        &[running("b"), running("d")],
        GRACE,
    );
    assert_eq!(shrink.run, nodes(&["b"]));
    assert_eq!(shrink.drain["d"].cause, DrainCause::ScaleDown);

    // Down to zero: the NM drains first (a grace period), and goes once drained.
    let zero = plan(
        &Lifecycle::OnDemand { node_managers: 0 },
        now,
        &eligible,
        &[running("b")],
        GRACE,
    );
    assert_eq!(zero.phase, PoolPhase::Draining);
    assert!(zero.remove.is_empty());
    assert_eq!(zero.drain["b"].cause, DrainCause::ScaleDown);
    assert_eq!(zero.drain["b"].deadline, after(now, GRACE));
    let mut draining = running("b");
    draining.drain_deadline = Some(after(now, GRACE));
    let done = plan(
        &Lifecycle::OnDemand { node_managers: 0 },
        after(now, GRACE),
        &eligible,
        &[draining],
        GRACE,
    );
    assert_eq!(done.phase, PoolPhase::Offline);
    assert_eq!(done.remove["b"], RemoveCause::DeadlineReached);
}

#[test]
fn a_node_whose_nm_drains_gets_no_second_nm() {
    let now = at("2026-11-24T12:00:00Z");
    let mut draining = running("a");
    draining.drain_deadline = Some(at("2026-11-24T12:05:00Z"));
    let plan = plan(
        &Lifecycle::OnDemand { node_managers: 2 },
        now,
        &nodes(&["a", "b", "c"]),
        &[draining],
        GRACE,
    );
    assert_eq!(plan.run, nodes(&["b", "c"]));
    assert_eq!(plan.drain["a"].cause, DrainCause::Continuing);
}

#[test]
fn no_eligible_node_leaves_the_pool_pending() {
    let plan = plan(
        &Lifecycle::Resident,
        at("2026-11-24T12:00:00Z"),
        &BTreeSet::new(),
        &[],
        GRACE,
    );
    assert_eq!(plan.phase, PoolPhase::Pending);
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn an_evicted_pod_is_removed_and_its_node_gets_a_new_one_later() {
    let mut evicted = running("w1");
    evicted.failed = true;
    let plan = plan(
        &Lifecycle::Resident,
        at("2026-11-24T12:00:00Z"),
        &nodes(&["w1", "w2"]),
        &[evicted, running("w2")],
        GRACE,
    );
    assert_eq!(plan.remove["w1"], RemoveCause::Failed);
    // Not in the same reconcile: the old pod still holds the name.
    assert_eq!(plan.run, nodes(&["w2"]));
}
