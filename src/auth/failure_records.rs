//! The server-wide cap on `auth_failed` records and log lines. The per-address budget
//! ([`super::layer::AuthGate::failures`]) stops one address; many addresses (a /16 of
//! loopback, a botnet) each stay under it, and each failure would still cost a log line and
//! an audit record. Past [`AUTH_FAILED_RECORDS_PER_MINUTE`] in a window the rest are only
//! counted, and one `auth_failed_dropped` record per such window says how many: written
//! when the window ends, whether or not another failure comes.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

/// `auth_failed` records written at most per window (one minute) across all addresses.
pub const AUTH_FAILED_RECORDS_PER_MINUTE: u32 = 600;

/// What to do with one failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write its record and log line.
    Record,
    /// Count it only. `first`: the window's first dropped failure, whose caller schedules
    /// the summary at `window_end`.
    Drop { first: bool, window_end: Instant },
}

/// Counts failed authentications in fixed windows, server-wide.
#[derive(Debug)]
pub struct FailureRecordCap {
    limit: u32,
    window: Duration,
    state: parking_lot::Mutex<CapState>,
}

#[derive(Debug)]
struct CapState {
    start: Instant,
    recorded: u32,
    /// Failures dropped per window start, not yet summarised.
    dropped: Vec<(Instant, u64)>,
}

impl FailureRecordCap {
    pub fn new(limit: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self {
            limit,
            window,
            state: parking_lot::Mutex::new(CapState {
                start: Instant::now(),
                recorded: 0,
                dropped: Vec::new(),
            }),
        })
    }

    /// Count one failure.
    pub fn admit(&self) -> Admission {
        let now = Instant::now();
        let mut state = self.state.lock();
        if now.duration_since(state.start) >= self.window {
            state.start = now;
            state.recorded = 0;
        }
        if state.recorded < self.limit {
            state.recorded += 1;
            return Admission::Record;
        }
        let start = state.start;
        let window_end = start + self.window;
        match state.dropped.iter_mut().find(|(at, _)| *at == start) {
            Some((_, count)) => {
                *count += 1;
                Admission::Drop {
                    first: false,
                    window_end,
                }
            }
            None => {
                state.dropped.push((start, 1));
                Admission::Drop {
                    first: true,
                    window_end,
                }
            }
        }
    }

    /// How many failures the window ending at `window_end` dropped; forgets them.
    pub fn take_dropped(&self, window_end: Instant) -> u64 {
        let start = window_end - self.window;
        let mut state = self.state.lock();
        let position = state.dropped.iter().position(|(at, _)| *at == start);
        position.map_or(0, |index| state.dropped.swap_remove(index).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_is_recorded_the_rest_counted_and_the_next_window_records_again() {
        let cap = FailureRecordCap::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert_eq!(cap.admit(), Admission::Record);
        }
        let Admission::Drop { first, window_end } = cap.admit() else {
            panic!("the 4th failure of the window is recorded");
        };
        assert!(first);
        for _ in 0..9 {
            assert!(matches!(cap.admit(), Admission::Drop { first: false, .. }));
        }
        tokio::time::sleep_until(window_end).await;
        assert_eq!(cap.admit(), Admission::Record, "a new window records again");
        assert_eq!(cap.take_dropped(window_end), 10);
        assert_eq!(cap.take_dropped(window_end), 0, "a summary is taken once");
    }
}
