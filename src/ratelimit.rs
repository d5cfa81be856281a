//! Fixed-window counters per key: at most `limit` events per `window` for each key (a
//! client address, a principal). Used for failed authentications and for tool calls.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Keys tracked before old windows are swept out.
const SWEEP_AT: usize = 10_000;

/// Counts events per key in fixed windows.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

/// The key is over its limit; it may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            counts: Mutex::default(),
        }
    }

    /// Is `key` over its limit now? (Counts nothing.)
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        match self.lock().get(key) {
            Some((start, count))
                if now.duration_since(*start) < self.window && *count >= self.limit =>
            {
                Err(Limited {
                    retry_after: self.window - now.duration_since(*start),
                })
            }
            _ => Ok(()),
        }
    }

    /// Count one event for `key`; `Err` when this event is over the limit.
    pub fn hit(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        let mut counts = self.lock();
        if counts.len() >= SWEEP_AT {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(Limited {
                retry_after: self.window - now.duration_since(entry.0),
            });
        }
        entry.1 += 1;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, u32)>> {
        // Each update is a single entry write; a poisoned lock is still consistent.
        self.counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_limited_within_its_window_and_others_are_not() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.hit(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.hit(&"a").is_ok());
        assert!(limiter.check(&"a").is_err());
        let limited = limiter.hit(&"a").unwrap_err();
        assert!(limited.retry_after <= Duration::from_secs(60));
        assert!(limiter.hit(&"b").is_ok());
    }

    #[test]
    fn a_new_window_starts_afresh() {
        let limiter = RateLimiter::new(1, Duration::from_millis(50));
        assert!(limiter.hit(&1).is_ok());
        assert!(limiter.hit(&1).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.hit(&1).is_ok());
    }
}
