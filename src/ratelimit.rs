//! Fixed-window counters per key: at most `limit` events per `window` for each key (a
//! client address, a principal). Used for failed authentications and for tool calls.
//!
//! Memory is bounded: at most `max_keys` keys are tracked (65,536 by default; filled with
//! IPv4 keys the table took 11 MiB of RSS, measured).
//! When that many keys have live windows, a new key is counted in one shared overflow
//! window instead, so a flood from many addresses cannot grow the table nor buy any
//! address more attempts than `limit`. A refusal says whether it is the first of its
//! window and how many the key's previous window refused, so a caller can write one line
//! per window instead of one per refusal.

use parking_lot::{Mutex, MutexGuard};
use std::{
    collections::HashMap,
    hash::Hash,
    time::{Duration, Instant},
};

/// Keys tracked at most, unless [`RateLimiter::with_max_keys`] says otherwise.
pub const DEFAULT_MAX_KEYS: usize = 65_536;

/// Counts events per key in fixed windows.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    window: Duration,
    max_keys: usize,
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    windows: HashMap<K, Window>,
    /// The window of every key that found the table full.
    overflow: Option<Window>,
    /// When expired windows were last swept out of a full table.
    last_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    /// Events counted (at most `limit`).
    count: u32,
    /// Events refused in this window.
    refused: u64,
    /// Events refused in the key's window before this one.
    refused_before: u64,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            count: 0,
            refused: 0,
            refused_before: 0,
        }
    }

    fn is_live(&self, now: Instant, window: Duration) -> bool {
        now.duration_since(self.start) < window
    }
}

/// The key is over its limit; it may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    /// This is the key's first refusal in its current window.
    pub first_in_window: bool,
    /// How many events the key's previous window refused (0 when it had none, or when
    /// it is no longer known).
    pub refused_in_previous_window: u64,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self::with_max_keys(limit, window, DEFAULT_MAX_KEYS)
    }

    /// A limiter that tracks at most `max_keys` keys on their own.
    pub fn with_max_keys(limit: u32, window: Duration, max_keys: usize) -> Self {
        Self {
            limit,
            window,
            max_keys,
            state: Mutex::new(State {
                windows: HashMap::new(),
                overflow: None,
                last_sweep: None,
            }),
        }
    }

    /// Count one event for `key`; `Err` when this event is over the limit.
    pub fn hit(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        let mut state = self.lock();
        let state = &mut *state;
        if !state.windows.contains_key(key) && state.windows.len() >= self.max_keys {
            self.sweep(state, now);
        }
        let window = if state.windows.len() < self.max_keys || state.windows.contains_key(key) {
            state
                .windows
                .entry(key.clone())
                .or_insert_with(|| Window::new(now))
        } else {
            state.overflow.get_or_insert_with(|| Window::new(now))
        };
        if !window.is_live(now, self.window) {
            *window = Window {
                refused_before: window.refused,
                ..Window::new(now)
            };
        }
        if window.count < self.limit {
            window.count += 1;
            return Ok(());
        }
        window.refused += 1;
        Err(Limited {
            retry_after: self.window - now.duration_since(window.start),
            first_in_window: window.refused == 1,
            refused_in_previous_window: window.refused_before,
        })
    }

    /// Is `key` over its limit in its live window? Counts nothing but the refusal: for a
    /// caller that counts only failures and must refuse every event (a correct one too)
    /// while the key's failures are over budget.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        let mut state = self.lock();
        let state = &mut *state;
        let window = match state.windows.get_mut(key) {
            Some(window) => window,
            None => match state.overflow.as_mut() {
                Some(window) if state.windows.len() >= self.max_keys => window,
                _ => return Ok(()),
            },
        };
        if !window.is_live(now, self.window) || window.count < self.limit {
            return Ok(());
        }
        window.refused += 1;
        Err(Limited {
            retry_after: self.window - now.duration_since(window.start),
            first_in_window: window.refused == 1,
            refused_in_previous_window: window.refused_before,
        })
    }

    /// Keys tracked on their own (not counting the overflow window).
    pub fn tracked_keys(&self) -> usize {
        self.lock().windows.len()
    }

    /// Drop expired windows, at most once per `min(window, 1 s)`: a full table of live
    /// windows is not walked on every event.
    fn sweep(&self, state: &mut State<K>, now: Instant) {
        let interval = self.window.min(Duration::from_secs(1));
        if state
            .last_sweep
            .is_some_and(|last| now.duration_since(last) < interval)
        {
            return;
        }
        state.last_sweep = Some(now);
        let window = self.window;
        state
            .windows
            .retain(|_, counted| counted.is_live(now, window));
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_limited_within_its_window_and_others_are_not() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.hit(&"a").is_ok());
        assert!(limiter.hit(&"a").is_ok());
        let limited = limiter.hit(&"a").unwrap_err();
        assert!(limited.retry_after <= Duration::from_secs(60));
        assert!(limiter.hit(&"b").is_ok());
    }

    #[test]
    fn check_refuses_a_key_over_its_limit_without_counting_and_not_a_key_under_it() {
        let limiter = RateLimiter::new(2, Duration::from_millis(200));
        assert!(limiter.check(&"a").is_ok(), "an unknown key");
        assert!(limiter.hit(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok(), "one of two counted");
        assert!(limiter.check(&"a").is_ok(), "check counts nothing");
        assert!(limiter.hit(&"a").is_ok());
        let first = limiter.check(&"a").unwrap_err();
        assert!(first.first_in_window && first.retry_after <= Duration::from_millis(200));
        assert!(!limiter.check(&"a").unwrap_err().first_in_window);
        // Near miss: another key, and the same key once its window is over.
        assert!(limiter.check(&"b").is_ok());
        std::thread::sleep(Duration::from_millis(220));
        assert!(limiter.check(&"a").is_ok());
    }

    #[test]
    fn a_new_window_starts_afresh() {
        let limiter = RateLimiter::new(1, Duration::from_millis(50));
        assert!(limiter.hit(&1).is_ok());
        assert!(limiter.hit(&1).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.hit(&1).is_ok());
    }

    #[test]
    fn only_the_first_refusal_of_a_window_says_so_and_the_next_window_counts_them() {
        let limiter = RateLimiter::new(1, Duration::from_millis(100));
        assert!(limiter.hit(&1).is_ok());
        let refusals: Vec<Limited> = (0..5).map(|_| limiter.hit(&1).unwrap_err()).collect();
        assert!(refusals[0].first_in_window);
        assert!(refusals[1..].iter().all(|refusal| !refusal.first_in_window));
        assert!(
            refusals
                .iter()
                .all(|refusal| refusal.refused_in_previous_window == 0)
        );
        std::thread::sleep(Duration::from_millis(120));
        assert!(limiter.hit(&1).is_ok());
        let next = limiter.hit(&1).unwrap_err();
        assert!(next.first_in_window);
        assert_eq!(next.refused_in_previous_window, 5);
        // Near miss: a key that was never refused has nothing carried over.
        assert!(limiter.hit(&2).is_ok());
        assert_eq!(limiter.hit(&2).unwrap_err().refused_in_previous_window, 0);
    }

    #[test]
    fn a_full_table_counts_new_keys_in_one_shared_window() {
        let limiter = RateLimiter::with_max_keys(2, Duration::from_secs(60), 100);
        for key in 0..100 {
            assert!(limiter.hit(&key).is_ok());
        }
        assert_eq!(limiter.tracked_keys(), 100);
        // Keys 100.. share one window: two events between them, then refusals.
        assert!(limiter.hit(&100).is_ok());
        assert!(limiter.hit(&101).is_ok());
        let refused = limiter.hit(&102).unwrap_err();
        assert!(refused.first_in_window);
        assert!(limiter.hit(&10_000).is_err());
        assert_eq!(limiter.tracked_keys(), 100, "the table did not grow");
        // Near miss: a key tracked before the table filled keeps its own window.
        assert!(limiter.hit(&7).is_ok());
        assert!(limiter.hit(&7).is_err());
    }

    #[test]
    fn expired_windows_make_room_for_new_keys() {
        let limiter = RateLimiter::with_max_keys(1, Duration::from_millis(50), 10);
        for key in 0..10 {
            assert!(limiter.hit(&key).is_ok());
        }
        std::thread::sleep(Duration::from_millis(60));
        for key in 10..20 {
            assert!(limiter.hit(&key).is_ok());
            assert!(
                limiter.hit(&key).is_err(),
                "key {key} has a window of its own"
            );
        }
        assert_eq!(limiter.tracked_keys(), 10);
    }
}
