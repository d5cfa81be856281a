//! What the gateway knows of each host: its last presence beat and when it came. A host is
//! online while its beats keep coming; one that said it goes offline, or missed
//! [`MISSED_BEATS`] beats in a row, is offline. Rebuilt from the bus by every gateway
//! (beats and the answers to `hostmcp.discover`): nothing here is state another gateway
//! would need.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;

use super::selector::Selector;

/// Beats a host may miss before it is shown offline.
pub const MISSED_BEATS: u32 = 3;

/// The beat interval assumed when a beat does not say it.
pub const DEFAULT_BEAT_INTERVAL: Duration = Duration::from_secs(2);

/// One presence beat, as the gateway keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    /// False in the last beat of a host that shuts down cleanly.
    pub online: bool,
    pub version: String,
    pub labels: BTreeMap<String, String>,
    /// The host's facts summary (OS, kernel, CPUs, memory, ...), as it sent it.
    pub facts: serde_json::Value,
    /// How often the host beats.
    pub interval: Duration,
}

struct Entry {
    beat: Beat,
    seen: Instant,
    seen_wall: SystemTime,
}

/// Whether a call to a host can go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    Online,
    /// Known, but not beating: the message says since when.
    Offline(String),
    /// Never heard of.
    Unknown,
}

/// A host as `host_list` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostView {
    pub name: String,
    pub online: bool,
    /// Seconds since the last beat.
    pub last_seen_secs_ago: u64,
    /// The last beat's time, RFC 3339.
    pub last_seen: String,
    pub version: String,
    pub labels: BTreeMap<String, String>,
    pub facts: serde_json::Value,
}

/// Every host heard of.
#[derive(Default)]
pub struct PresenceTable {
    hosts: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for PresenceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceTable")
            .field("hosts", &self.lock().len())
            .finish()
    }
}

impl PresenceTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A beat from `name` arrived now.
    pub fn observe(&self, name: &str, beat: Beat) {
        self.observe_at(name, beat, Instant::now(), SystemTime::now());
    }

    fn observe_at(&self, name: &str, beat: Beat, seen: Instant, seen_wall: SystemTime) {
        let mut hosts = self.lock();
        if let Some(entry) = hosts.get_mut(name) {
            if entry.beat.online != beat.online {
                tracing::info!(
                    host = name,
                    online = beat.online,
                    "fleet host presence changed"
                );
            }
            *entry = Entry {
                beat,
                seen,
                seen_wall,
            };
        } else {
            tracing::info!(host = name, online = beat.online, "fleet host seen");
            hosts.insert(
                name.to_owned(),
                Entry {
                    beat,
                    seen,
                    seen_wall,
                },
            );
        }
    }

    /// Can a call reach `name` now?
    pub fn reachability(&self, name: &str) -> Reachability {
        self.reachability_at(name, Instant::now())
    }

    fn reachability_at(&self, name: &str, now: Instant) -> Reachability {
        let hosts = self.lock();
        let Some(entry) = hosts.get(name) else {
            return Reachability::Unknown;
        };
        if entry.online_at(now) {
            Reachability::Online
        } else {
            Reachability::Offline(format!(
                "host {name:?} is offline (last beat {} s ago{})",
                now.saturating_duration_since(entry.seen).as_secs(),
                if entry.beat.online {
                    ""
                } else {
                    ", it said it was shutting down"
                }
            ))
        }
    }

    /// The hosts `selector` matches, by name.
    pub fn select(&self, selector: &Selector) -> Vec<HostView> {
        self.select_at(selector, Instant::now())
    }

    fn select_at(&self, selector: &Selector, now: Instant) -> Vec<HostView> {
        let hosts = self.lock();
        let mut views: Vec<HostView> = hosts
            .iter()
            .filter(|(name, entry)| selector.matches(name, &entry.beat.labels))
            .map(|(name, entry)| HostView {
                name: name.clone(),
                online: entry.online_at(now),
                last_seen_secs_ago: now.saturating_duration_since(entry.seen).as_secs(),
                last_seen: rfc3339(entry.seen_wall),
                version: entry.beat.version.clone(),
                labels: entry.beat.labels.clone(),
                facts: entry.beat.facts.clone(),
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }
}

/// `time` in RFC 3339, UTC, to the second.
fn rfc3339(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .map(|time| time.round(jiff::Unit::Second).unwrap_or(time).to_string())
        .unwrap_or_default()
}

impl Entry {
    fn online_at(&self, now: Instant) -> bool {
        let interval = self.beat.interval.max(Duration::from_millis(200));
        self.beat.online && now.saturating_duration_since(self.seen) <= interval * MISSED_BEATS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(online: bool, env: &str) -> Beat {
        Beat {
            online,
            version: "1.0".to_owned(),
            labels: [("env".to_owned(), env.to_owned())].into(),
            facts: serde_json::json!({"cpus": 2}),
            interval: Duration::from_secs(2),
        }
    }

    #[test]
    fn a_host_that_keeps_beating_is_online_and_one_that_missed_three_beats_is_not() {
        let table = PresenceTable::default();
        let start = Instant::now();
        table.observe_at("web1", beat(true, "prod"), start, SystemTime::now());
        assert_eq!(
            table.reachability_at("web1", start + Duration::from_secs(6)),
            Reachability::Online
        );
        assert!(matches!(
            table.reachability_at("web1", start + Duration::from_millis(6_100)),
            Reachability::Offline(_)
        ));
        table.observe_at(
            "web1",
            beat(true, "prod"),
            start + Duration::from_secs(7),
            SystemTime::now(),
        );
        assert_eq!(
            table.reachability_at("web1", start + Duration::from_secs(8)),
            Reachability::Online
        );
    }

    #[test]
    fn a_host_that_said_goodbye_is_offline_at_once() {
        let table = PresenceTable::default();
        let now = Instant::now();
        table.observe_at("db1", beat(false, "prod"), now, SystemTime::now());
        let Reachability::Offline(message) = table.reachability_at("db1", now) else {
            panic!("offline expected");
        };
        assert!(message.contains("shutting down"), "{message}");
        assert_eq!(table.reachability_at("db2", now), Reachability::Unknown);
    }

    #[test]
    fn select_filters_by_the_selector_and_sorts_by_name() {
        let table = PresenceTable::default();
        let now = Instant::now();
        table.observe_at("web2", beat(true, "prod"), now, SystemTime::now());
        table.observe_at("web1", beat(true, "prod"), now, SystemTime::now());
        table.observe_at("web3", beat(true, "dev"), now, SystemTime::now());
        let names = |selector: &str| -> Vec<String> {
            table
                .select_at(&Selector::parse(selector).unwrap(), now)
                .into_iter()
                .map(|view| view.name)
                .collect()
        };
        assert_eq!(names("env=prod"), ["web1", "web2"]);
        assert_eq!(names(""), ["web1", "web2", "web3"]);
        assert_eq!(names("web3"), ["web3"]);
        assert!(names("db*").is_empty());
    }
}
