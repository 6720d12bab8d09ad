//! The outage tracker: a pure state machine per probe, no I/O.
//!
//! `failure_threshold` consecutive failing results open an outage (it started
//! at the first of them); `success_threshold` consecutive usable results close
//! it (it ended at the first of those). User-side statuses (`auth_error`,
//! `billing_error`, `invalid_request`, `blocked`) and `offline` neither extend
//! nor break a streak: they say nothing about DeepSeek. Entering a user-side
//! status raises `action_needed` once, not once per result.
//!
//! The state is plain data, persisted with every result, so a restart carries
//! on exactly where it stopped: no outage re-opened, re-announced or lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::result::Status;

/// The per-probe settings the tracker obeys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub failure: u32,
    pub success: u32,
    /// `Duration::ZERO`: no reminders.
    pub reminder_every: Duration,
}

/// Failing results seen, by status: what an outage is "about".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Causes {
    pub busy: u32,
    pub rate_limited: u32,
    pub down: u32,
    pub timeout: u32,
}

impl Causes {
    fn add(&mut self, s: Status) {
        match s {
            Status::Busy => self.busy += 1,
            Status::RateLimited => self.rate_limited += 1,
            Status::Down => self.down += 1,
            Status::Timeout => self.timeout += 1,
            _ => {}
        }
    }

    /// The most frequent failing status; ties go to the first in this order.
    pub fn main(&self) -> Status {
        let all = [
            (self.busy, Status::Busy),
            (self.rate_limited, Status::RateLimited),
            (self.down, Status::Down),
            (self.timeout, Status::Timeout),
        ];
        let mut best = all[0];
        for c in all {
            if c.0 > best.0 {
                best = c;
            }
        }
        best.1
    }
}

/// An outage in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Open {
    pub started_ms: i64,
    pub failed_results: u32,
    pub causes: Causes,
    /// Usable results in a row since the last failure, and when the first came.
    pub success_streak: u32,
    pub success_started_ms: Option<i64>,
    pub last_reminder_ms: i64,
}

/// Everything the tracker remembers about one probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackerState {
    /// Failing results in a row outside an outage, and when the first came.
    pub fail_streak: u32,
    pub fail_started_ms: Option<i64>,
    pub fail_causes: Causes,
    pub open: Option<Open>,
    /// The user-side status the probe is in, if any.
    pub action: Option<String>,
}

impl TrackerState {
    pub fn in_outage(&self) -> bool {
        self.open.is_some()
    }
}

/// What a result changed, for the store to record and announce.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Opened {
        started_ms: i64,
        cause: Status,
        failed_results: u32,
    },
    /// Another failure while in outage.
    Extended {
        cause: Status,
        failed_results: u32,
    },
    Closed {
        started_ms: i64,
        ended_ms: i64,
        cause: Status,
        failed_results: u32,
    },
    ActionNeeded {
        status: Status,
    },
    Reminder {
        started_ms: i64,
        cause: Status,
    },
}

/// Applies one result (its status and time) to the state.
pub fn step(
    prev: &TrackerState,
    status: Status,
    at_ms: i64,
    th: &Thresholds,
) -> (TrackerState, Vec<Change>) {
    let mut s = prev.clone();
    let mut changes = Vec::new();

    if status.needs_action() {
        if s.action.as_deref() != Some(status.as_str()) {
            s.action = Some(status.as_str().to_string());
            changes.push(Change::ActionNeeded { status });
        }
    } else if status.is_usable() || status.counts_toward_outage() {
        // A conclusive answer about DeepSeek ends the user-side episode.
        s.action = None;
    }

    match s.open.as_mut() {
        None if status.counts_toward_outage() => {
            if s.fail_streak == 0 {
                s.fail_started_ms = Some(at_ms);
                s.fail_causes = Causes::default();
            }
            s.fail_streak += 1;
            s.fail_causes.add(status);
            if s.fail_streak >= th.failure.max(1) {
                let open = Open {
                    started_ms: s.fail_started_ms.unwrap_or(at_ms),
                    failed_results: s.fail_streak,
                    causes: s.fail_causes,
                    success_streak: 0,
                    success_started_ms: None,
                    last_reminder_ms: at_ms,
                };
                changes.push(Change::Opened {
                    started_ms: open.started_ms,
                    cause: open.causes.main(),
                    failed_results: open.failed_results,
                });
                s.open = Some(open);
                s.fail_streak = 0;
                s.fail_started_ms = None;
                s.fail_causes = Causes::default();
            }
        }
        None if status.is_usable() => {
            s.fail_streak = 0;
            s.fail_started_ms = None;
            s.fail_causes = Causes::default();
        }
        None => {}
        Some(open) => {
            if status.counts_toward_outage() {
                open.failed_results += 1;
                open.causes.add(status);
                open.success_streak = 0;
                open.success_started_ms = None;
                changes.push(Change::Extended {
                    cause: open.causes.main(),
                    failed_results: open.failed_results,
                });
            } else if status.is_usable() {
                if open.success_streak == 0 {
                    open.success_started_ms = Some(at_ms);
                }
                open.success_streak += 1;
            }
            if open.success_streak >= th.success.max(1) {
                changes.push(Change::Closed {
                    started_ms: open.started_ms,
                    ended_ms: open.success_started_ms.unwrap_or(at_ms),
                    cause: open.causes.main(),
                    failed_results: open.failed_results,
                });
                s.open = None;
            } else if !th.reminder_every.is_zero()
                && at_ms - open.last_reminder_ms
                    >= i64::try_from(th.reminder_every.as_millis()).unwrap_or(i64::MAX)
            {
                open.last_reminder_ms = at_ms;
                changes.push(Change::Reminder {
                    started_ms: open.started_ms,
                    cause: open.causes.main(),
                });
            }
        }
    }
    (s, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const TH: Thresholds = Thresholds {
        failure: 3,
        success: 2,
        reminder_every: Duration::ZERO,
    };

    /// Runs statuses one second apart from t = 1000 s; returns the final state
    /// and every change with the index of the result that caused it.
    fn run(statuses: &[Status], th: &Thresholds) -> (TrackerState, Vec<(usize, Change)>) {
        let mut s = TrackerState::default();
        let mut all = Vec::new();
        for (i, st) in statuses.iter().enumerate() {
            let (next, changes) = step(&s, *st, at(i), th);
            all.extend(changes.into_iter().map(|c| (i, c)));
            s = next;
        }
        (s, all)
    }

    fn at(i: usize) -> i64 {
        1_000_000 + i as i64 * 1000
    }

    fn opened_closed(changes: &[(usize, Change)]) -> Vec<(usize, &'static str)> {
        changes
            .iter()
            .filter_map(|(i, c)| match c {
                Change::Opened { .. } => Some((*i, "opened")),
                Change::Closed { .. } => Some((*i, "closed")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn threshold_failures_open_with_the_first_failure_time() {
        let (s, ch) = run(&[Up, Busy, Busy, Busy], &TH);
        assert_eq!(
            ch,
            vec![(
                3,
                Change::Opened {
                    started_ms: at(1),
                    cause: Busy,
                    failed_results: 3
                }
            )]
        );
        assert!(s.in_outage());
    }

    #[test]
    fn fewer_failures_than_the_threshold_open_nothing() {
        let (s, ch) = run(&[Busy, Busy, Up, Busy, Busy, Up], &TH);
        assert!(ch.is_empty());
        assert!(!s.in_outage());
        assert_eq!(s.fail_streak, 0);
    }

    #[test]
    fn success_threshold_closes_with_the_first_success_time() {
        let (s, ch) = run(&[Busy, Busy, Busy, Down, Up, Slow], &TH);
        assert_eq!(opened_closed(&ch), vec![(2, "opened"), (5, "closed")]);
        let closed = ch.iter().find_map(|(_, c)| match c {
            Change::Closed {
                started_ms,
                ended_ms,
                cause,
                failed_results,
            } => Some((*started_ms, *ended_ms, *cause, *failed_results)),
            _ => None,
        });
        assert_eq!(closed, Some((at(0), at(4), Busy, 4)));
        assert!(!s.in_outage());
    }

    #[test]
    fn flapping_during_recovery_restarts_the_success_count() {
        let (s, ch) = run(&[Busy, Busy, Busy, Up, Busy, Up, Busy, Up, Up], &TH);
        assert_eq!(opened_closed(&ch), vec![(2, "opened"), (8, "closed")]);
        let ended = ch.iter().find_map(|(_, c)| match c {
            Change::Closed { ended_ms, .. } => Some(*ended_ms),
            _ => None,
        });
        assert_eq!(
            ended,
            Some(at(7)),
            "ended at the first of the two final successes"
        );
        assert!(!s.in_outage());
    }

    #[test]
    fn flapping_below_the_threshold_never_opens() {
        let pattern: Vec<Status> = (0..100)
            .map(|i| if i % 3 == 2 { Up } else { Busy })
            .collect();
        let (_, ch) = run(&pattern, &TH);
        assert!(ch.is_empty(), "{ch:?}");
    }

    #[test]
    fn user_side_and_offline_neither_extend_nor_break_a_streak() {
        // Two failures, then inconclusive results, then one more failure: opens.
        let (s, ch) = run(&[Busy, Busy, Offline, AuthError, Blocked, Busy], &TH);
        assert_eq!(opened_closed(&ch), vec![(5, "opened")]);
        assert!(s.in_outage());
        // Inconclusive results alone never open an outage.
        let (_, ch) = run(&[Offline; 10], &TH);
        assert!(ch.is_empty());
        // In outage: they do not count toward recovery either.
        let (s, ch) = run(&[Busy, Busy, Busy, Up, Offline, BillingError, Up], &TH);
        assert_eq!(opened_closed(&ch), vec![(2, "opened"), (6, "closed")]);
        assert!(!s.in_outage());
        // And they do not break the success streak.
        let (_, ch) = run(&[Busy, Busy, Busy, Up, Offline], &TH);
        assert_eq!(opened_closed(&ch), vec![(2, "opened")]);
    }

    #[test]
    fn action_needed_once_per_entry() {
        let (_, ch) = run(
            &[
                AuthError,
                AuthError,
                AuthError,
                Up,
                AuthError,
                BillingError,
                BillingError,
            ],
            &TH,
        );
        let actions: Vec<(usize, Status)> = ch
            .iter()
            .filter_map(|(i, c)| match c {
                Change::ActionNeeded { status } => Some((*i, *status)),
                _ => None,
            })
            .collect();
        assert_eq!(
            actions,
            vec![(0, AuthError), (4, AuthError), (5, BillingError)]
        );
        // Offline in between does not end the episode.
        let (_, ch) = run(&[Blocked, Offline, Blocked], &TH);
        assert_eq!(ch.len(), 1);
        // No outage from user-side statuses.
        let (s, _) = run(&[InvalidRequest; 10], &TH);
        assert!(!s.in_outage());
    }

    #[test]
    fn cause_is_the_most_frequent_failure() {
        let (_, ch) = run(&[Timeout, Busy, Busy, Down, Up, Up], &TH);
        let cause = ch.iter().find_map(|(_, c)| match c {
            Change::Closed { cause, .. } => Some(*cause),
            _ => None,
        });
        assert_eq!(cause, Some(Busy));
    }

    #[test]
    fn every_failure_in_outage_is_counted() {
        let (s, ch) = run(&[Busy, Busy, Busy, RateLimited, Timeout], &TH);
        assert_eq!(s.open.as_ref().unwrap().failed_results, 5);
        assert!(matches!(
            ch.last(),
            Some((
                4,
                Change::Extended {
                    failed_results: 5,
                    ..
                }
            ))
        ));
    }

    #[test]
    fn reminders_every_interval_while_open() {
        let th = Thresholds {
            reminder_every: Duration::from_secs(5),
            ..TH
        };
        let (_, ch) = run(&[Busy; 15], &th);
        let reminders: Vec<usize> = ch
            .iter()
            .filter_map(|(i, c)| matches!(c, Change::Reminder { .. }).then_some(*i))
            .collect();
        // Opened at result 2; reminders 5 s and 10 s later.
        assert_eq!(reminders, vec![7, 12]);
        let (_, ch) = run(&[Busy; 15], &TH);
        assert!(!ch.iter().any(|(_, c)| matches!(c, Change::Reminder { .. })));
    }

    #[test]
    fn thresholds_of_one() {
        let th = Thresholds {
            failure: 1,
            success: 1,
            reminder_every: Duration::ZERO,
        };
        let (_, ch) = run(&[Down, Up, Down, Up], &th);
        assert_eq!(
            opened_closed(&ch),
            vec![(0, "opened"), (1, "closed"), (2, "opened"), (3, "closed")]
        );
    }

    #[test]
    fn state_round_trips_through_json_and_resumes() {
        // A restart in the middle of an outage: persist, reload, carry on.
        let (mid, _) = run(&[Busy, Busy, Busy, Up], &TH);
        let json = serde_json::to_string(&mid).unwrap();
        let back: TrackerState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, mid);
        let (after, ch) = step(&back, Up, at(4), &TH);
        assert!(matches!(ch.as_slice(), [Change::Closed { ended_ms, .. }] if *ended_ms == at(3)));
        assert!(!after.in_outage());
        // Re-applying the state never re-opens or re-announces.
        let (_, ch) = step(&mid, Offline, at(5), &TH);
        assert!(ch.is_empty());
    }

    /// Every sequence of 6 results over 4 representative statuses: outages
    /// alternate open/close, never nest, and a close always follows an open.
    #[test]
    fn exhaustive_short_sequences_keep_invariants() {
        let alphabet = [Up, Busy, AuthError, Offline];
        let n = 6;
        for code in 0..alphabet.len().pow(n as u32) {
            let mut c = code;
            let seq: Vec<Status> = (0..n)
                .map(|_| {
                    let s = alphabet[c % alphabet.len()];
                    c /= alphabet.len();
                    s
                })
                .collect();
            let (s, ch) = run(&seq, &TH);
            let mut open = false;
            for (_, change) in &ch {
                match change {
                    Change::Opened { .. } => {
                        assert!(!open, "{seq:?}");
                        open = true;
                    }
                    Change::Closed {
                        started_ms,
                        ended_ms,
                        ..
                    } => {
                        assert!(open && ended_ms > started_ms, "{seq:?}");
                        open = false;
                    }
                    Change::Extended { .. } | Change::Reminder { .. } => assert!(open, "{seq:?}"),
                    Change::ActionNeeded { .. } => {}
                }
            }
            assert_eq!(open, s.in_outage(), "{seq:?}");
            let busy = seq.iter().filter(|s| **s == Busy).count();
            if busy < 3 {
                assert!(!s.in_outage(), "{seq:?}");
            }
        }
    }
}
