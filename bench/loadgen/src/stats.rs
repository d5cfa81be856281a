//! Latency percentiles and error tallies, reported as JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Percentile `p` (0..=100) of sorted nanosecond samples, in milliseconds.
pub fn percentile_ms(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index] as f64 / 1e6)
}

/// `{"p50":..,"p90":..,"p99":..,"max":..,"mean":..}` in milliseconds (sorts `samples`).
pub fn latency_json(samples: &mut [u64]) -> Value {
    samples.sort_unstable();
    let mean = if samples.is_empty() {
        None
    } else {
        Some(samples.iter().map(|&v| v as f64).sum::<f64>() / samples.len() as f64 / 1e6)
    };
    json!({
        "p50": percentile_ms(samples, 50.0),
        "p90": percentile_ms(samples, 90.0),
        "p99": percentile_ms(samples, 99.0),
        "max": percentile_ms(samples, 100.0),
        "mean": mean,
    })
}

/// Error counts by kind, with the first message seen of each kind.
#[derive(Default)]
pub struct Errors {
    pub counts: BTreeMap<String, u64>,
    pub examples: BTreeMap<String, String>,
}

impl Errors {
    pub fn add(&mut self, kind: String, message: impl FnOnce() -> String) {
        if !self.examples.contains_key(&kind) {
            self.examples.insert(kind.clone(), message());
        }
        *self.counts.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.examples {
            self.examples.entry(k).or_insert(v);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn json(&self) -> (Value, Value) {
        (json!(self.counts), json!(self.examples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile_ms(&v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&v, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&v, 100.0), Some(100.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }
}
