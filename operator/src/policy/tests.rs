use koordlet_metrics::{WindowSet, WindowStats};
use proptest::prelude::*;

use super::*;

const GIB: u64 = 1024;

fn bounds() -> CapacityBounds {
    CapacityBounds {
        floor: Resources::new(0, 0),
        ceiling: Resources::new(40, 160 * GIB),
        memory_per_vcore_mb: 4 * GIB,
    }
}

fn settings() -> PolicySettings {
    PolicySettings::with_bounds(bounds())
}

/// Availability that has been constant at `cpu` cores and `memory_gib` GiB.
fn steady(cpu: f64, memory_gib: f64) -> Availability {
    Availability {
        cpu_cores: WindowSet::constant(cpu),
        memory_mb: WindowSet::constant(memory_gib * 1024.0),
        latest_cpu_cores: cpu,
        latest_memory_mb: memory_gib * 1024.0,
        age_seconds: 1,
    }
}

fn input(current: u32, allocated: u32, availability: Option<Availability>) -> DecisionInput {
    DecisionInput {
        now_seconds: 10_000,
        current: bounds().capacity_for_vcores(current),
        allocated: Resources::new(allocated, u64::from(allocated) * 4 * GIB),
        used: None,
        availability,
        batch_allocatable: None,
        foresight: None,
        last_grow_seconds: None,
        last_shrink_seconds: None,
    }
}

fn resize(decision: Decision) -> Resize {
    match decision {
        Decision::Resize(resize) => resize,
        Decision::Keep(reason) => panic!("expected a resize, got Keep({reason:?})"),
    }
}

fn keep(decision: Decision) -> KeepReason {
    match decision {
        Decision::Keep(reason) => reason,
        Decision::Resize(resize) => panic!("expected keep, got {resize:?}"),
    }
}

#[test]
fn capacity_memory_follows_vcores_within_bounds() {
    let b = bounds();
    assert_eq!(b.capacity_for_vcores(10), Resources::new(10, 40 * GIB));
    assert_eq!(b.capacity_for_vcores(99), Resources::new(40, 160 * GIB));
    let tight = CapacityBounds {
        ceiling: Resources::new(40, 100 * GIB),
        ..b
    };
    assert_eq!(tight.capacity_for_vcores(40), Resources::new(40, 100 * GIB));
    assert!((b.supportable_vcores(30.0, 40.0 * 1024.0) - 10.0).abs() < 1e-9);
    assert_eq!(b.supportable_vcores(-3.0, 1e9), 0.0);
    assert_eq!(
        b.supportable_vcores(f64::NAN, 1e9),
        0.0,
        "NaN supports nothing"
    );
    assert_eq!(
        b.supportable_vcores(30.0, f64::NAN),
        0.0,
        "NaN supports nothing"
    );
}

#[test]
fn static_offers_the_published_ten_vcores_and_thirty_gib() {
    let decision = decide(&StaticPolicy, &settings(), &input(0, 0, None));
    let r = resize(decision);
    assert_eq!(r.capacity, Resources::new(10, 30 * GIB));
    assert_eq!(r.direction, Direction::Grow);
    let mut at_static = input(0, 0, None);
    at_static.current = Resources::new(10, 30 * GIB);
    assert_eq!(
        keep(decide(&StaticPolicy, &settings(), &at_static)),
        KeepReason::Unchanged
    );
}

#[test]
fn follow_tracks_batch_allocatable_both_ways_without_hysteresis() {
    let mut i = input(20, 20, None);
    i.batch_allocatable = Some(BatchAllocatable {
        cpu_cores: 19.7,
        memory_mb: 200.0 * 1024.0,
        age_seconds: 5,
    });
    let r = resize(decide(&FollowPolicy, &settings(), &i));
    assert_eq!(r.capacity.vcores, 19);
    assert_eq!(r.direction, Direction::Shrink);
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(19)));

    i.batch_allocatable = Some(BatchAllocatable {
        cpu_cores: 21.2,
        memory_mb: 200.0 * 1024.0,
        age_seconds: 5,
    });
    let r = resize(decide(&FollowPolicy, &settings(), &i));
    assert_eq!(r.capacity.vcores, 21);
    assert_eq!(r.direction, Direction::Grow);
    assert_eq!(r.guarder_target, None);
}

#[test]
fn threshold_grows_only_past_three_vcores() {
    let s = settings();
    assert_eq!(
        keep(decide(
            &ThresholdPolicy,
            &s,
            &input(20, 0, Some(steady(23.0, 200.0)))
        )),
        KeepReason::BelowGrowThreshold
    );
    let r = resize(decide(
        &ThresholdPolicy,
        &s,
        &input(20, 0, Some(steady(23.5, 200.0))),
    ));
    assert_eq!(r.capacity.vcores, 23);
    assert_eq!(r.reason, ResizeReason::ThresholdGrow);
}

#[test]
fn threshold_ignores_shrink_noise_within_ten_percent() {
    let s = settings();
    assert_eq!(
        keep(decide(
            &ThresholdPolicy,
            &s,
            &input(20, 20, Some(steady(18.5, 200.0)))
        )),
        KeepReason::WithinTolerance
    );
    let r = resize(decide(
        &ThresholdPolicy,
        &s,
        &input(20, 20, Some(steady(17.9, 200.0))),
    ));
    assert_eq!(r.capacity.vcores, 17);
    assert_eq!(r.direction, Direction::Shrink);
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(17)));
}

#[test]
fn threshold_watches_memory_at_four_gib_per_vcore() {
    // CPU says 30 vcores but 48 GiB of memory only carries 12.
    let r = resize(decide(
        &ThresholdPolicy,
        &settings(),
        &input(20, 12, Some(steady(30.0, 48.0))),
    ));
    assert_eq!(r.capacity, Resources::new(12, 48 * GIB));
}

#[test]
fn threshold_reads_the_ten_minute_mean() {
    let mut availability = steady(20.0, 200.0);
    availability.cpu_cores.ten_minutes = WindowStats {
        count: 600,
        mean: 30.0,
        variance: 4.0,
        min: 25.0,
        max: 35.0,
    };
    let r = resize(decide(
        &ThresholdPolicy,
        &settings(),
        &input(20, 0, Some(availability)),
    ));
    assert_eq!(r.capacity.vcores, 30);
}

#[test]
fn elastic_offers_an_overcommitted_level_and_grows_in_steps_of_two() {
    // 18 cores x 1.15 = 20.7: not two vcores above 20, so keep.
    assert_eq!(
        keep(decide(
            &ElasticPolicy,
            &settings(),
            &input(20, 20, Some(steady(18.0, 200.0)))
        )),
        KeepReason::Unchanged
    );
    // 19.2 x 1.15 = 22.08: grow to 22.
    let r = resize(decide(
        &ElasticPolicy,
        &settings(),
        &input(20, 20, Some(steady(19.2, 200.0))),
    ));
    assert_eq!(r.capacity.vcores, 22);
    assert_eq!(r.reason, ResizeReason::ElasticGrow);
    assert_eq!(r.guarder_target, None);
}

#[test]
fn elastic_keeps_a_margin_of_one_standard_deviation() {
    let mut availability = steady(30.0, 200.0);
    availability.cpu_cores.five_minutes = WindowStats {
        count: 300,
        mean: 30.0,
        variance: 16.0,
        min: 22.0,
        max: 38.0,
    };
    // (30 - 4) x 1.15 = 29.9.
    let r = resize(decide(
        &ElasticPolicy,
        &settings(),
        &input(10, 10, Some(availability)),
    ));
    assert_eq!(r.capacity.vcores, 29);
}

#[test]
fn elastic_waits_after_a_shrink_before_growing() {
    let mut i = input(20, 20, Some(steady(25.0, 200.0)));
    i.last_shrink_seconds = Some(i.now_seconds - 30);
    assert_eq!(
        keep(decide(&ElasticPolicy, &settings(), &i)),
        KeepReason::Cooldown
    );
    i.last_shrink_seconds = Some(i.now_seconds - 60);
    assert_eq!(
        resize(decide(&ElasticPolicy, &settings(), &i))
            .capacity
            .vcores,
        28
    );
}

#[test]
fn elastic_shrinks_the_rm_only_while_running_containers_are_sustainable() {
    // 14 cores: new containers stop at 16 (14 x 1.15); the 18 vcores running keep a
    // satisfaction of 0.78, above 0.75, so nobody is signalled.
    let r = resize(decide(
        &ElasticPolicy,
        &settings(),
        &input(20, 18, Some(steady(14.0, 200.0))),
    ));
    assert_eq!(r.capacity.vcores, 16);
    assert_eq!(r.direction, Direction::Shrink);
    assert_eq!(r.guarder_target, None);
}

#[test]
fn elastic_frees_immediately_near_koordinators_eviction_line() {
    // 8 cores for 20 running vcores: satisfaction 0.4. Keep 10 (8 / 0.8), deadline 0.
    let r = resize(decide(
        &ElasticPolicy,
        &settings(),
        &input(20, 20, Some(steady(8.0, 200.0))),
    ));
    assert_eq!(r.capacity.vcores, 9);
    assert_eq!(r.reason, ResizeReason::ElasticProtect);
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(10)));
    assert_eq!(r.guarder_deadline_seconds, 0);
}

#[test]
fn elastic_frees_gracefully_when_the_node_only_throttles() {
    // 14 cores for 20 vcores: satisfaction 0.70, below 0.75 but above 0.67.
    let r = resize(decide(
        &ElasticPolicy,
        &settings(),
        &input(20, 20, Some(steady(14.0, 200.0))),
    ));
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(17)));
    assert_eq!(r.guarder_deadline_seconds, 600);
}

#[test]
fn elastic_judges_memory_by_what_containers_really_use() {
    // 16 running vcores hold 64 GiB, but only 40 GiB remain.
    let short = input(16, 16, Some(steady(30.0, 40.0)));
    let r = resize(decide(&ElasticPolicy, &settings(), &short));
    let target = r
        .guarder_target
        .expect("memory over the limit must be freed");
    assert!(target.memory_mb as f64 <= 40.0 * 1024.0);
    assert_eq!(r.guarder_deadline_seconds, 0);
    // Measured, they use 30 GiB of their 64: nothing to free.
    let mut measured = short;
    measured.used = Some(MeasuredUse {
        cpu_cores: 14.0,
        memory_mb: 30.0 * 1024.0,
    });
    let decision = decide(&ElasticPolicy, &settings(), &measured);
    assert!(
        !matches!(
            decision,
            Decision::Resize(Resize {
                guarder_target: Some(_),
                ..
            })
        ),
        "{decision:?}"
    );
}

#[test]
fn elastic_acts_through_the_guarder_alone_when_capacity_is_already_low() {
    // An earlier shrink left 14 vcores running on a capacity of 9; 10 cores now sustain 12
    // (10 / 0.8) and new containers still get no more than 9.
    let r = resize(decide(
        &ElasticPolicy,
        &settings(),
        &input(9, 14, Some(steady(10.0, 200.0))),
    ));
    assert_eq!(r.capacity, bounds().capacity_for_vcores(9));
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(12)));
}

#[test]
fn elastic_falls_back_to_batch_allocatable_while_the_exporter_is_stale() {
    let mut availability = steady(30.0, 200.0);
    availability.age_seconds = 120;
    let mut i = input(20, 20, Some(availability));
    i.batch_allocatable = Some(BatchAllocatable {
        cpu_cores: 10.0,
        memory_mb: 200.0 * 1024.0,
        age_seconds: 20,
    });
    let r = resize(decide(&ElasticPolicy, &settings(), &i));
    assert_eq!(r.reason, ResizeReason::StaleFallback);
    assert_eq!(r.capacity.vcores, 11);
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(12)));
    // A higher batch allocatable never makes it grow while the exporter is stale.
    i.current = bounds().capacity_for_vcores(5);
    i.allocated = Resources::new(5, 5 * 4 * GIB);
    i.batch_allocatable = Some(BatchAllocatable {
        cpu_cores: 30.0,
        memory_mb: 200.0 * 1024.0,
        age_seconds: 20,
    });
    assert_eq!(
        keep(decide(&ElasticPolicy, &settings(), &i)),
        KeepReason::StaleMetrics
    );
}

#[test]
fn oracle_offers_the_least_of_the_near_future() {
    let mut i = input(20, 20, None);
    i.foresight = Some(Foresight {
        cpu_cores_min_soon: 12.4,
        cpu_cores_min: 12.4,
        memory_mb_min: 200.0 * 1024.0,
        horizon_seconds: 135,
    });
    let r = resize(decide(&OraclePolicy, &settings(), &i));
    // 12.4 x 1.15 = 14.26; running containers keep 12.4 / 0.8 = 15.5.
    assert_eq!(r.capacity.vcores, 14);
    assert_eq!(r.guarder_target, Some(bounds().capacity_for_vcores(15)));
    assert_eq!(r.guarder_deadline_seconds, 0);
}

#[test]
fn stale_metrics_hold_then_fall_to_the_floor() {
    let mut s = settings();
    s.bounds.floor = Resources::new(2, 8 * GIB);
    let mut availability = steady(30.0, 200.0);
    availability.age_seconds = 120;
    assert_eq!(
        keep(decide(
            &ElasticPolicy,
            &s,
            &input(10, 10, Some(availability))
        )),
        KeepReason::StaleMetrics
    );
    availability.age_seconds = 600;
    let r = resize(decide(
        &ElasticPolicy,
        &s,
        &input(10, 10, Some(availability)),
    ));
    assert_eq!(r.capacity, Resources::new(2, 8 * GIB));
    assert_eq!(r.reason, ResizeReason::StaleMetricsFloor);
    assert_eq!(r.guarder_target, Some(Resources::new(2, 8 * GIB)));
}

#[test]
fn missing_metrics_mean_the_floor() {
    let r = resize(decide(&ThresholdPolicy, &settings(), &input(10, 0, None)));
    assert_eq!(r.capacity, Resources::new(0, 0));
}

#[test]
fn a_raised_floor_lifts_the_nm_even_on_stale_metrics() {
    let mut s = settings();
    s.bounds.floor = Resources::new(4, 16 * GIB);
    let mut availability = steady(30.0, 200.0);
    availability.age_seconds = 120;
    let r = resize(decide(&ElasticPolicy, &s, &input(2, 0, Some(availability))));
    assert_eq!(r.capacity, Resources::new(4, 16 * GIB));
    assert_eq!(r.reason, ResizeReason::OutOfBounds);
}

#[test]
fn policy_names_parse_and_print() {
    for kind in PolicyKind::ALL {
        assert_eq!(kind.name().parse::<PolicyKind>(), Ok(kind));
        assert_eq!(kind.build().kind(), kind);
    }
    assert!("bogus".parse::<PolicyKind>().is_err());
}

fn any_window() -> impl Strategy<Value = WindowStats> {
    (0f64..64.0, 0f64..64.0, 0f64..100.0).prop_map(|(a, b, variance)| {
        let (min, max) = if a < b { (a, b) } else { (b, a) };
        WindowStats {
            count: 60,
            mean: (min + max) / 2.0,
            variance,
            min,
            max,
        }
    })
}

fn any_window_set(scale: f64) -> impl Strategy<Value = WindowSet> {
    (any_window(), any_window(), any_window()).prop_map(move |(one, five, ten)| {
        WindowSet {
            one_minute: one,
            five_minutes: five,
            ten_minutes: ten,
        }
        .scaled(scale)
    })
}

fn any_input() -> impl Strategy<Value = DecisionInput> {
    (
        (0u32..60, 0u32..60, 0u64..2_000),
        prop::option::of((
            any_window_set(1.0),
            any_window_set(4096.0),
            0f64..64.0,
            0f64..64.0,
        )),
        prop::option::of((0f64..64.0, 0f64..262_144.0, 0u64..2_000)),
        prop::option::of((0f64..64.0, 0f64..262_144.0)),
        prop::option::of(0u64..2_000),
    )
        .prop_map(
            |((current, allocated, age), windows, batch, future, shrunk_ago)| DecisionInput {
                now_seconds: 100_000,
                current: Resources::new(current, u64::from(current) * 4096),
                allocated: Resources::new(allocated, u64::from(allocated) * 4096),
                used: None,
                availability: windows.map(|(cpu, memory, latest_cpu, latest_memory)| {
                    Availability {
                        cpu_cores: cpu,
                        memory_mb: memory,
                        latest_cpu_cores: latest_cpu,
                        latest_memory_mb: latest_memory * 4096.0,
                        age_seconds: age,
                    }
                }),
                batch_allocatable: batch.map(|(cpu_cores, memory_mb, age_seconds)| {
                    BatchAllocatable {
                        cpu_cores,
                        memory_mb,
                        age_seconds,
                    }
                }),
                foresight: future.map(|(cpu_cores_min, memory_mb_min)| Foresight {
                    cpu_cores_min_soon: cpu_cores_min,
                    cpu_cores_min,
                    memory_mb_min,
                    horizon_seconds: 135,
                }),
                last_grow_seconds: None,
                last_shrink_seconds: shrunk_ago.map(|ago| 100_000 - ago),
            },
        )
}

fn any_bounds() -> impl Strategy<Value = CapacityBounds> {
    (0u32..20, 1u32..48).prop_map(|(floor, span)| CapacityBounds {
        floor: Resources::new(floor, u64::from(floor) * 4096),
        ceiling: Resources::new(floor + span, u64::from(floor + span) * 4096),
        memory_per_vcore_mb: 4096,
    })
}

fn stale(policy: &dyn ResizePolicy, settings: &PolicySettings, input: &DecisionInput) -> bool {
    input_age(policy.inputs(), input).is_none_or(|age| age > settings.stale_after_seconds)
}

proptest! {
    #[test]
    fn capacity_stays_within_floor_and_ceiling(
        input in any_input(),
        bounds in any_bounds(),
    ) {
        let settings = PolicySettings::with_bounds(bounds);
        for kind in PolicyKind::ALL {
            let policy = kind.build();
            let after = decide(policy.as_ref(), &settings, &input).capacity_after(input.current);
            prop_assert!(after.vcores >= bounds.floor.vcores, "{kind}: {after} below floor");
            prop_assert!(after.vcores <= bounds.ceiling.vcores, "{kind}: {after} above ceiling");
            prop_assert!(after.memory_mb >= bounds.floor.memory_mb);
            prop_assert!(after.memory_mb <= bounds.ceiling.memory_mb);
        }
    }

    #[test]
    fn never_grows_on_stale_or_missing_metrics(
        input in any_input(),
        bounds in any_bounds(),
    ) {
        let settings = PolicySettings::with_bounds(bounds);
        for kind in PolicyKind::ALL {
            let policy = kind.build();
            if !stale(policy.as_ref(), &settings, &input) {
                continue;
            }
            let after = decide(policy.as_ref(), &settings, &input).capacity_after(input.current);
            let limit = bounds.clamp(input.current);
            prop_assert!(after.vcores <= limit.vcores.max(input.current.vcores), "{kind} grew on stale metrics");
            prop_assert!(after.memory_mb <= limit.memory_mb.max(input.current.memory_mb));
        }
    }

    #[test]
    fn shrinks_respect_the_tolerance_unless_containers_must_go(
        input in any_input(),
        bounds in any_bounds(),
    ) {
        let settings = PolicySettings::with_bounds(bounds);
        for kind in [PolicyKind::Threshold, PolicyKind::Elastic] {
            let policy = kind.build();
            let Decision::Resize(r) = decide(policy.as_ref(), &settings, &input) else { continue };
            if r.direction != Direction::Shrink || stale(policy.as_ref(), &settings, &input) {
                continue;
            }
            if bounds.clamp(input.current) != input.current {
                continue;
            }
            let beyond_tolerance = f64::from(r.capacity.vcores)
                < f64::from(input.current.vcores) * (1.0 - settings.shrink_tolerance);
            let at_floor = r.capacity.vcores == bounds.floor.vcores;
            prop_assert!(
                beyond_tolerance || at_floor || r.guarder_target.is_some(),
                "{kind}: shrink {} -> {} within tolerance without need", input.current, r.capacity
            );
        }
    }

    #[test]
    fn the_guarder_is_asked_only_for_what_runs_beyond_the_target(
        input in any_input(),
        bounds in any_bounds(),
    ) {
        let settings = PolicySettings::with_bounds(bounds);
        for kind in PolicyKind::ALL {
            if let Decision::Resize(r) = decide(kind.build().as_ref(), &settings, &input)
                && let Some(target) = r.guarder_target
            {
                prop_assert_eq!(r.direction, Direction::Shrink);
                prop_assert!(!input.allocated.fits_in(&target));
                prop_assert!(r.capacity.fits_in(&target));
            }
        }
    }
}
