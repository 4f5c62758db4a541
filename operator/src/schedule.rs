//! Online windows of a `Periodic` pool: three cron expressions each (online, drain start,
//! offline) read in an IANA time zone, with excluded dates.
//!
//! An occurrence of a window starts at an `online` time; its drain starts at the first
//! `drainStart` time after that, and it ends at the first `offline` time at or after the drain
//! start. Cron times that fall into a daylight-saving gap or fold are resolved by croner on jiff
//! (a gap time is skipped, a fold time is taken once), so a window never opens twice in one night.

use std::collections::BTreeSet;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::crd::PeriodicSpec;
use crate::validate::SpecError;

/// Longest a window may stay open before it counts as never closing.
const MAX_WINDOW: SignedDuration = SignedDuration::from_hours(31 * 24);
/// How far ahead consistency is checked.
const CHECK_HORIZON: SignedDuration = SignedDuration::from_hours(400 * 24);
/// Occurrences checked per window (enough for a year of daily windows).
const CHECK_OCCURRENCES: usize = 400;

/// Parses a standard five-field cron expression (or an `@daily`-style nickname).
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    let trimmed = expression.trim();
    if !trimmed.starts_with('@') && trimmed.split_whitespace().count() != 5 {
        return Err(format!(
            "{expression:?} must have five fields (minute hour day-of-month month day-of-week)"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(trimmed)
        .map_err(|err| format!("{expression:?} is not a valid cron expression: {err}"))
}

#[derive(Clone, Debug)]
struct WindowCrons {
    online: Cron,
    drain_start: Cron,
    offline: Cron,
}

/// One opening of a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// Index of the window in the spec.
    pub window: usize,
    /// NodeManagers come online.
    pub online: Zoned,
    /// Draining starts.
    pub drain_start: Zoned,
    /// NodeManagers are removed.
    pub offline: Zoned,
}

/// Where a pool stands in its schedule at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulePhase {
    /// Inside a window, before its drain.
    Online,
    /// Inside a window, draining.
    Draining,
    /// Outside every window.
    Offline,
}

/// The phase at an instant and when it changes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseAt {
    /// Current phase.
    pub phase: SchedulePhase,
    /// Next online, drain or offline time; `None` when the schedule never fires again.
    pub next_transition: Option<Timestamp>,
}

/// A parsed, checked `Periodic` schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    time_zone: TimeZone,
    windows: Vec<WindowCrons>,
    excluded: BTreeSet<Date>,
}

impl Schedule {
    /// Parses every field, collecting every problem rather than stopping at the first. Fields are
    /// named relative to `spec.lifecycle.periodic`.
    pub fn parse(spec: &PeriodicSpec) -> Result<Schedule, Vec<SpecError>> {
        let mut errors = Vec::new();
        let time_zone = match TimeZone::get(spec.time_zone.trim()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                errors.push(SpecError {
                    field: "timeZone".to_owned(),
                    reason: "UnknownTimeZone",
                    message: format!(
                        "{:?} is not an IANA time zone (e.g. Asia/Shanghai, Europe/Berlin, UTC)",
                        spec.time_zone
                    ),
                });
                None
            }
        };
        if spec.windows.is_empty() {
            errors.push(SpecError {
                field: "windows".to_owned(),
                reason: "NoWindows",
                message: "a Periodic pool needs at least one window".to_owned(),
            });
        }
        let mut windows = Vec::with_capacity(spec.windows.len());
        for (index, window) in spec.windows.iter().enumerate() {
            let mut parse = |name: &str, expression: &str| match parse_cron(expression) {
                Ok(cron) => Some(cron),
                Err(message) => {
                    errors.push(SpecError {
                        field: format!("windows[{index}].{name}"),
                        reason: "InvalidCron",
                        message,
                    });
                    None
                }
            };
            let online = parse("online", &window.online);
            let drain_start = parse("drainStart", &window.drain_start);
            let offline = parse("offline", &window.offline);
            if let (Some(online), Some(drain_start), Some(offline)) = (online, drain_start, offline)
            {
                windows.push(WindowCrons {
                    online,
                    drain_start,
                    offline,
                });
            }
        }
        let mut excluded = BTreeSet::new();
        for (index, text) in spec.excluded_dates.iter().enumerate() {
            let field = format!("excludedDates[{index}]");
            match text.trim().parse::<Date>() {
                Ok(date) if text.trim().len() == 10 => {
                    if !excluded.insert(date) {
                        errors.push(SpecError {
                            field,
                            reason: "DuplicateDate",
                            message: format!("{text:?} is listed twice"),
                        });
                    }
                }
                _ => errors.push(SpecError {
                    field,
                    reason: "InvalidDate",
                    message: format!("{text:?} is not a date in the form YYYY-MM-DD"),
                }),
            }
        }
        match time_zone {
            Some(time_zone) if errors.is_empty() => Ok(Schedule {
                time_zone,
                windows,
                excluded,
            }),
            _ => Err(errors),
        }
    }

    /// The schedule's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    fn is_excluded(&self, online: &Zoned) -> bool {
        self.excluded.contains(&online.date())
    }

    /// The occurrence of window `index` that opens at `online`.
    fn occurrence_at(&self, index: usize, online: Zoned) -> Result<Occurrence, String> {
        let crons = &self.windows[index];
        let drain_start = crons
            .drain_start
            .find_next_occurrence(&online, false)
            .map_err(|err| format!("drainStart never follows online at {online}: {err}"))?;
        let offline = crons
            .offline
            .find_next_occurrence(&drain_start, true)
            .map_err(|err| format!("offline never follows drainStart at {drain_start}: {err}"))?;
        if offline.timestamp().duration_since(online.timestamp()) > MAX_WINDOW {
            return Err(format!(
                "the window opening at {online} closes only at {offline}, more than 31 days later"
            ));
        }
        Ok(Occurrence {
            window: index,
            online,
            drain_start,
            offline,
        })
    }

    /// Checks that every window fires, closes after it opens and before it opens again, and
    /// that no two windows overlap, over roughly a year from `now`.
    pub fn check(&self, now: Timestamp) -> Vec<SpecError> {
        let mut errors = Vec::new();
        let start = now.to_zoned(self.time_zone.clone());
        let horizon = now.saturating_add(CHECK_HORIZON).unwrap_or(Timestamp::MAX);
        let mut all: Vec<Occurrence> = Vec::new();
        for (index, crons) in self.windows.iter().enumerate() {
            let onlines: Vec<Zoned> = crons
                .online
                .iter_after(start.clone())
                .take_while(|t| t.timestamp() <= horizon)
                .take(CHECK_OCCURRENCES)
                .collect();
            if onlines.is_empty() {
                errors.push(SpecError {
                    field: format!("windows[{index}].online"),
                    reason: "WindowNeverFires",
                    message: "online never fires within the next 400 days".to_owned(),
                });
                continue;
            }
            for (position, online) in onlines.iter().enumerate() {
                let occurrence = match self.occurrence_at(index, online.clone()) {
                    Ok(occurrence) => occurrence,
                    Err(message) => {
                        errors.push(SpecError {
                            field: format!("windows[{index}]"),
                            reason: "WindowNeverCloses",
                            message,
                        });
                        break;
                    }
                };
                if let Some(next) = onlines.get(position + 1)
                    && next.timestamp() < occurrence.offline.timestamp()
                {
                    errors.push(SpecError {
                        field: format!("windows[{index}]"),
                        reason: "InconsistentWindow",
                        message: format!(
                            "online fires again at {next} before the window that opened at {} \
                             goes offline at {}; check that drainStart and offline come between \
                             two online times",
                            occurrence.online, occurrence.offline
                        ),
                    });
                    break;
                }
                if !self.is_excluded(online) {
                    all.push(occurrence);
                }
            }
        }
        all.sort_by_key(|o| o.online.timestamp());
        for pair in all.windows(2) {
            let (first, second) = (&pair[0], &pair[1]);
            if first.window != second.window
                && second.online.timestamp() < first.offline.timestamp()
            {
                errors.push(SpecError {
                    field: format!("windows[{}]", second.window),
                    reason: "OverlappingWindows",
                    message: format!(
                        "window {} opens at {} while window {} is open ({} to {})",
                        second.window, second.online, first.window, first.online, first.offline
                    ),
                });
                break;
            }
        }
        errors
    }

    /// Occurrences that are open at some point in `[from, until)`, in time order, excluded
    /// dates left out.
    pub fn occurrences(&self, from: Timestamp, until: Timestamp) -> Vec<Occurrence> {
        let look_back = from.saturating_sub(MAX_WINDOW).unwrap_or(Timestamp::MIN);
        let start = look_back.to_zoned(self.time_zone.clone());
        let mut found = Vec::new();
        for (index, crons) in self.windows.iter().enumerate() {
            for online in crons.online.iter_after(start.clone()) {
                if online.timestamp() >= until {
                    break;
                }
                if self.is_excluded(&online) {
                    continue;
                }
                let Ok(occurrence) = self.occurrence_at(index, online) else {
                    break;
                };
                if occurrence.offline.timestamp() > from {
                    found.push(occurrence);
                }
            }
        }
        found.sort_by_key(|o| o.online.timestamp());
        found
    }

    /// The phase at `now` and the next time it changes.
    pub fn phase_at(&self, now: Timestamp) -> PhaseAt {
        let until = now.saturating_add(MAX_WINDOW).unwrap_or(Timestamp::MAX);
        let occurrences = self.occurrences(now, until);
        if let Some(open) = occurrences
            .iter()
            .find(|o| o.online.timestamp() <= now && now < o.offline.timestamp())
        {
            let (phase, next) = if now < open.drain_start.timestamp() {
                (SchedulePhase::Online, open.drain_start.timestamp())
            } else {
                (SchedulePhase::Draining, open.offline.timestamp())
            };
            return PhaseAt {
                phase,
                next_transition: Some(next),
            };
        }
        PhaseAt {
            phase: SchedulePhase::Offline,
            next_transition: occurrences
                .iter()
                .map(|o| o.online.timestamp())
                .find(|t| *t > now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ScheduleWindow;

    fn spec(time_zone: &str, windows: &[(&str, &str, &str)], excluded: &[&str]) -> PeriodicSpec {
        PeriodicSpec {
            time_zone: time_zone.to_owned(),
            windows: windows
                .iter()
                .map(|(online, drain_start, offline)| ScheduleWindow {
                    online: (*online).to_owned(),
                    drain_start: (*drain_start).to_owned(),
                    offline: (*offline).to_owned(),
                })
                .collect(),
            excluded_dates: excluded.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn nightly() -> PeriodicSpec {
        spec(
            "Asia/Shanghai",
            &[("0 22 * * *", "0 6 * * *", "30 6 * * *")],
            &[],
        )
    }

    #[test]
    fn a_nightly_window_is_consistent() {
        let schedule = Schedule::parse(&nightly()).unwrap();
        assert!(schedule.check(at("2026-11-24T00:00:00Z")).is_empty());
    }

    #[test]
    fn phases_follow_the_window_in_its_time_zone() {
        let schedule = Schedule::parse(&nightly()).unwrap();
        // 23:00 in Shanghai is 15:00 UTC.
        let phase = schedule.phase_at(at("2026-11-24T15:00:00Z"));
        assert_eq!(phase.phase, SchedulePhase::Online);
        assert_eq!(phase.next_transition, Some(at("2026-11-24T22:00:00Z")));
        let phase = schedule.phase_at(at("2026-11-24T22:10:00Z"));
        assert_eq!(phase.phase, SchedulePhase::Draining);
        assert_eq!(phase.next_transition, Some(at("2026-11-24T22:30:00Z")));
        let phase = schedule.phase_at(at("2026-11-25T03:00:00Z"));
        assert_eq!(phase.phase, SchedulePhase::Offline);
        assert_eq!(phase.next_transition, Some(at("2026-11-25T14:00:00Z")));
    }

    #[test]
    fn excluded_dates_skip_the_window_that_opens_on_them() {
        let mut periodic = nightly();
        periodic.excluded_dates = vec!["2026-11-25".to_owned()];
        let schedule = Schedule::parse(&periodic).unwrap();
        let phase = schedule.phase_at(at("2026-11-25T03:00:00Z"));
        assert_eq!(phase.next_transition, Some(at("2026-11-26T14:00:00Z")));
        let occurrences =
            schedule.occurrences(at("2026-11-24T00:00:00Z"), at("2026-11-28T00:00:00Z"));
        let dates: Vec<String> = occurrences
            .iter()
            .map(|o| o.online.date().to_string())
            .collect();
        assert_eq!(dates, ["2026-11-24", "2026-11-26", "2026-11-27"]);
    }

    #[test]
    fn daylight_saving_changes_keep_one_window_per_night() {
        // Berlin leaves summer time on 2026-10-25 at 03:00 (02:00-03:00 happens twice) and enters
        // it on 2026-03-29 at 02:00 (02:00-03:00 does not exist).
        let periodic = spec(
            "Europe/Berlin",
            &[("30 2 * * *", "0 5 * * *", "0 6 * * *")],
            &[],
        );
        let schedule = Schedule::parse(&periodic).unwrap();
        assert!(schedule.check(at("2026-03-01T00:00:00Z")).is_empty());
        let autumn = schedule.occurrences(at("2026-10-24T00:00:00Z"), at("2026-10-27T00:00:00Z"));
        let dates: Vec<String> = autumn.iter().map(|o| o.online.date().to_string()).collect();
        assert_eq!(dates, ["2026-10-24", "2026-10-25", "2026-10-26"]);
        let spring = schedule.occurrences(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"));
        for occurrence in &spring {
            assert!(occurrence.online.timestamp() < occurrence.drain_start.timestamp());
            assert!(occurrence.drain_start.timestamp() <= occurrence.offline.timestamp());
        }
    }

    #[test]
    fn bad_fields_are_all_reported() {
        let periodic = spec(
            "Mars/Olympus",
            &[("0 22 * *", "61 6 * * *", "0 7 * * *")],
            &["2026-13-01", "tomorrow"],
        );
        let errors = Schedule::parse(&periodic).unwrap_err();
        let reasons: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("timeZone", "UnknownTimeZone"),
                ("windows[0].online", "InvalidCron"),
                ("windows[0].drainStart", "InvalidCron"),
                ("excludedDates[0]", "InvalidDate"),
                ("excludedDates[1]", "InvalidDate"),
            ]
        );
        assert!(errors[1].message.contains("five fields"));
    }

    #[test]
    fn a_window_that_reopens_before_it_closes_is_inconsistent() {
        // Online every hour but offline only once a day.
        let periodic = spec("UTC", &[("0 * * * *", "0 6 * * *", "0 7 * * *")], &[]);
        let errors = Schedule::parse(&periodic)
            .unwrap()
            .check(at("2026-11-24T00:00:00Z"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason, "InconsistentWindow");
    }

    #[test]
    fn overlapping_windows_are_refused() {
        let periodic = spec(
            "UTC",
            &[
                ("0 20 * * *", "0 4 * * *", "0 5 * * *"),
                ("0 2 * * *", "0 8 * * *", "0 9 * * *"),
            ],
            &[],
        );
        let errors = Schedule::parse(&periodic)
            .unwrap()
            .check(at("2026-11-24T00:00:00Z"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason, "OverlappingWindows");
    }

    #[test]
    fn a_window_on_the_thirtieth_of_february_never_fires() {
        let periodic = spec("UTC", &[("0 0 30 2 *", "0 6 * * *", "0 7 * * *")], &[]);
        let errors = Schedule::parse(&periodic)
            .unwrap()
            .check(at("2026-11-24T00:00:00Z"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason, "WindowNeverFires");
    }

    #[test]
    fn weekday_windows_and_nicknames_parse() {
        let periodic = spec(
            "America/New_York",
            &[
                ("0 20 * * MON-FRI", "0 5 * * TUE-SAT", "0 6 * * TUE-SAT"),
                ("@weekly", "0 12 * * SUN", "0 13 * * SUN"),
            ],
            &["2026-12-25"],
        );
        let schedule = Schedule::parse(&periodic).unwrap();
        assert!(schedule.check(at("2026-11-24T00:00:00Z")).is_empty());
    }
}
