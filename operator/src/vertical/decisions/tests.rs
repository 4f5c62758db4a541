use koordlet_metrics::WindowSet;

use super::*;
use crate::policy::{Availability, CapacityBounds, PolicyKind, PolicySettings};
use crate::vertical::rate::WriteBudget;

const GIB: u64 = 1024;

fn bounds() -> CapacityBounds {
    CapacityBounds {
        floor: Resources::new(0, 0),
        ceiling: Resources::new(40, 160 * GIB),
        memory_per_vcore_mb: 4 * GIB,
    }
}

fn vcores(n: u32) -> Resources {
    bounds().capacity_for_vcores(n)
}

/// The published `threshold` rule: predictable shrinks (to what the node offers, freeing what
/// does not fit) and grows (past 3 vcores).
fn core() -> LoopCore {
    LoopCore::new(LoopSettings {
        policy: PolicyKind::Threshold,
        settings: PolicySettings::with_bounds(bounds()),
        rm_writes_per_second: 100.0,
        rm_write_burst: 100,
        concurrency: 1,
    })
}

fn reading(cpu: f64) -> NodeReading {
    NodeReading {
        availability: Availability {
            cpu_cores: WindowSet::constant(cpu),
            memory_mb: WindowSet::constant(cpu * 4.0 * 1024.0),
            latest_cpu_cores: cpu,
            latest_memory_mb: cpu * 4.0 * 1024.0,
            age_seconds: 1,
        },
        batch_allocatable: None,
    }
}

fn guarder_holding(target: Option<u32>) -> GuarderView {
    GuarderView::Status {
        target: target.map(vcores),
        used: MeasuredUse {
            cpu_cores: 1.0,
            memory_mb: 1024.0,
        },
    }
}

/// An NM of `capacity` vcores with `allocated` vcores of containers, on a node offering `cpu`.
fn observe(capacity: u32, allocated: u32, cpu: f64, guarder: GuarderView) -> Observation {
    Observation {
        node: "worker-1".to_owned(),
        rm: RmView::Registered {
            capacity: vcores(capacity),
            allocated: vcores(allocated),
        },
        reading: Ok(reading(cpu)),
        guarder,
        node_allocatable: None,
        foresight: None,
    }
}

fn one(core: &mut LoopCore, now: u64, observation: Observation) -> NmCommands {
    let mut plans = core.plan(now, &[observation]);
    assert_eq!(plans.len(), 1);
    plans.remove(0)
}

fn target_of(commands: &NmCommands) -> Option<(u32, u32, &str)> {
    commands
        .guarder_target
        .as_ref()
        .map(|t| (t.vcores, t.deadline_seconds, t.reason.as_str()))
}

#[test]
fn a_shrink_writes_the_rm_then_tells_the_guarder_and_a_lost_target_is_sent_again() {
    let mut core = core();
    let first = one(
        &mut core,
        1000,
        observe(20, 20, 10.0, guarder_holding(None)),
    );
    assert_eq!(first.rm_capacity, Some(vcores(10)));
    assert!(matches!(
        first.planned,
        Planned::Resize {
            direction: Direction::Shrink,
            ..
        }
    ));
    assert_eq!(target_of(&first), Some((10, 60, "threshold_shrink")));
    core.rm_written("worker-1", Direction::Shrink, 1000);

    // The guarder holds it: nothing to send.
    let held = one(
        &mut core,
        1015,
        observe(10, 20, 10.0, guarder_holding(Some(10))),
    );
    assert_eq!(held.rm_capacity, None);
    assert_eq!(held.guarder_target, None);

    // The guarder restarted and lost it: sent again with what is left of the deadline.
    let restarted = one(
        &mut core,
        1030,
        observe(10, 20, 10.0, guarder_holding(None)),
    );
    assert_eq!(restarted.rm_capacity, None);
    assert_eq!(target_of(&restarted), Some((10, 30, "threshold_shrink")));

    // Past the deadline it goes with deadline 0: the guarder frees at once.
    let late = one(
        &mut core,
        1100,
        observe(10, 20, 10.0, guarder_holding(None)),
    );
    assert_eq!(target_of(&late), Some((10, 0, "threshold_shrink")));
}

#[test]
fn a_guarder_that_does_not_answer_is_still_sent_its_target() {
    let mut core = core();
    let shrink = one(
        &mut core,
        1000,
        observe(20, 20, 10.0, GuarderView::Unreachable),
    );
    assert_eq!(shrink.rm_capacity, Some(vcores(10)));
    assert_eq!(target_of(&shrink), Some((10, 60, "threshold_shrink")));
    let again = one(
        &mut core,
        1015,
        observe(10, 20, 10.0, GuarderView::Unreachable),
    );
    assert_eq!(target_of(&again), Some((10, 45, "threshold_shrink")));
    let absent = one(&mut core, 1030, observe(10, 20, 10.0, GuarderView::Absent));
    assert_eq!(
        absent.guarder_target, None,
        "no guarder address, nothing to send"
    );
}

#[test]
fn a_shrink_whose_containers_fit_sends_no_target_as_the_simulator_measures() {
    let mut core = core();
    let shrink = one(&mut core, 1000, observe(20, 5, 10.0, guarder_holding(None)));
    assert_eq!(shrink.rm_capacity, Some(vcores(10)));
    assert_eq!(shrink.guarder_target, None);
}

#[test]
fn a_grow_lifts_a_lower_target_the_guarder_still_holds() {
    let mut core = core();
    one(
        &mut core,
        1000,
        observe(20, 20, 10.0, guarder_holding(None)),
    );
    core.rm_written("worker-1", Direction::Shrink, 1000);
    // The grow cool-down (60 s) passes; the node offers 30 cores again.
    let grow = one(
        &mut core,
        1100,
        observe(10, 10, 30.0, guarder_holding(Some(10))),
    );
    assert_eq!(grow.rm_capacity, Some(vcores(30)));
    assert_eq!(target_of(&grow), Some((40, 60, LIFT_REASON)));
    core.rm_written("worker-1", Direction::Grow, 1100);
    let lifted = one(
        &mut core,
        1115,
        observe(30, 10, 30.0, guarder_holding(Some(40))),
    );
    assert_eq!(
        lifted.guarder_target, None,
        "a target at the ceiling limits nothing"
    );
}

#[test]
fn without_the_rm_the_last_capacity_is_used_and_the_guarder_protects_what_runs() {
    let mut core = core();
    let steady = one(
        &mut core,
        1000,
        observe(20, 20, 20.0, guarder_holding(None)),
    );
    assert!(matches!(steady.planned, Planned::Kept(_)), "{steady:?}");
    let mut blind = observe(20, 20, 10.0, guarder_holding(None));
    blind.rm = RmView::Unreadable;
    let protect = one(&mut core, 1015, blind);
    assert!(matches!(protect.planned, Planned::ProtectWithoutRm { .. }));
    assert_eq!(
        protect.rm_capacity, None,
        "nothing is written to an RM that cannot be read"
    );
    assert_eq!(protect.capacity, vcores(20), "the last capacity seen");
    assert_eq!(target_of(&protect), Some((10, 60, "threshold_shrink")));
}

#[test]
fn without_the_rm_and_never_having_read_it_nothing_is_decided() {
    let mut core = core();
    let mut blind = observe(20, 20, 10.0, guarder_holding(None));
    blind.rm = RmView::Unreadable;
    let unknown = one(&mut core, 1000, blind);
    assert_eq!(unknown.planned, Planned::Unknown);
    assert_eq!((unknown.rm_capacity, unknown.guarder_target), (None, None));
}

#[test]
fn shrinks_take_the_write_budget_first_and_a_denied_one_changes_nothing() {
    let mut core = core();
    core.set_budget(WriteBudget::new(0.0, 1));
    let mut grow = observe(10, 0, 30.0, guarder_holding(None));
    grow.node = "worker-grow".to_owned();
    let mut shrink = observe(20, 20, 10.0, guarder_holding(None));
    shrink.node = "worker-shrink".to_owned();
    let plans = core.plan(1000, &[grow, shrink]);
    assert_eq!(plans[0].planned, Planned::RateLimited);
    assert_eq!(
        (plans[0].rm_capacity, &plans[0].guarder_target),
        (None, &None)
    );
    assert_eq!(plans[1].rm_capacity, Some(vcores(10)));
    assert!(plans[1].guarder_target.is_some());
}

#[test]
fn a_new_nm_without_metrics_holds_then_goes_to_the_floor() {
    let mut core = core();
    let mut dark = observe(20, 0, 0.0, guarder_holding(None));
    dark.reading = Err("unreachable");
    let held = one(&mut core, 1000, dark.clone());
    assert_eq!(held.planned, Planned::Kept(KeepReason::StaleMetrics));
    assert_eq!(held.metrics_error, Some("unreachable"));
    let floor = one(&mut core, 1000 + 600, dark);
    assert_eq!(floor.rm_capacity, Some(vcores(0)));
}

#[test]
fn a_node_that_leaves_and_returns_starts_afresh() {
    let mut core = core();
    one(
        &mut core,
        1000,
        observe(20, 20, 10.0, guarder_holding(None)),
    );
    core.plan(1015, &[]);
    let mut unregistered = observe(20, 20, 10.0, guarder_holding(None));
    unregistered.rm = RmView::NotRegistered;
    let back = one(&mut core, 1030, unregistered);
    assert_eq!(back.planned, Planned::NotRegistered);
    assert_eq!(
        back.guarder_target, None,
        "a new registration starts with the guarder free"
    );
    // Registered again with the node as it was: decided from scratch (no cool-down remembered).
    let fresh = one(
        &mut core,
        1045,
        observe(20, 20, 30.0, guarder_holding(None)),
    );
    assert_eq!(fresh.rm_capacity, Some(vcores(30)));
}
