use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

#[test]
fn the_address_cap_refuses_the_next_connection_and_another_address_still_gets_in() {
    let tracker = ConnectionTracker::new(10, 2);
    let _first = tracker.admit(A).unwrap();
    let _second = tracker.admit(A).unwrap();
    assert_eq!(
        tracker.admit(A).unwrap_err(),
        Refusal::PerAddress { limit: 2 }
    );
    let _other = tracker
        .admit(B)
        .expect("another address is under its own cap");
    assert_eq!((tracker.open(), tracker.open_from(A)), (3, 2));
}

#[test]
fn the_total_cap_refuses_every_address_and_one_place_less_admits() {
    let tracker = ConnectionTracker::new(3, 2);
    let guards = [tracker.admit(A).unwrap(), tracker.admit(B).unwrap()];
    let third = tracker.admit(B).expect("the third of three is admitted");
    let fresh = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(
        tracker.admit(fresh).unwrap_err(),
        Refusal::Total { limit: 3 }
    );
    drop(third);
    assert!(tracker.admit(fresh).is_ok());
    drop(guards);
}

#[test]
fn dropping_a_guard_gives_the_place_back_and_forgets_empty_addresses() {
    let tracker = ConnectionTracker::new(10, 1);
    let guard = tracker.admit(A).unwrap();
    assert!(tracker.admit(A).is_err());
    drop(guard);
    assert_eq!((tracker.open(), tracker.open_from(A)), (0, 0));
    assert!(tracker.counts.lock().per_address.is_empty());
    let _again = tracker.admit(A).expect("the place was given back");
}

#[test]
fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
    let tracker = ConnectionTracker::new(10, 1);
    let _v4 = tracker.admit(A).unwrap();
    let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 2).to_ipv6_mapped());
    assert_eq!(
        tracker.admit(mapped).unwrap_err(),
        Refusal::PerAddress { limit: 1 }
    );
    let _v6 = tracker
        .admit(IpAddr::V6(Ipv6Addr::LOCALHOST))
        .expect("a real IPv6 address is its own");
}

#[test]
fn counts_stay_exact_under_concurrent_admits_and_drops() {
    let tracker = ConnectionTracker::new(10_000, 10_000);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1000 {
                    let guard = tracker.admit(A).unwrap();
                    drop(guard);
                }
            });
        }
    });
    assert_eq!(tracker.open(), 0);
}

#[test]
fn the_log_speaks_once_per_interval_and_counts_what_it_kept_quiet() {
    let log = RateLimitedLog::default();
    let mut said = Vec::new();
    assert!(log.warn(|suppressed| said.push(suppressed)));
    for _ in 0..5 {
        assert!(!log.warn(|suppressed| said.push(suppressed)));
    }
    assert_eq!(said, [0]);
    // Pretend the interval is over.
    log.quiet_until.store(0, Ordering::Relaxed);
    assert!(log.warn(|suppressed| said.push(suppressed)));
    assert_eq!(said, [0, 5]);
}

#[test]
fn the_connection_cap_leaves_room_under_the_file_limit() {
    assert_eq!(fit_to_fd_limit(1024, 1_048_576), 1024);
    assert_eq!(fit_to_fd_limit(1024, 1024), 1024 - FD_RESERVE as usize);
    assert_eq!(fit_to_fd_limit(1024, 1024 + FD_RESERVE), 1024);
    assert_eq!(fit_to_fd_limit(1024, 256), 64);
}

#[test]
fn raising_the_file_limit_reaches_the_hard_limit() {
    use nix::sys::resource::{Resource, getrlimit};
    let limit = raise_fd_limit().expect("getrlimit works");
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert_eq!((limit.after, soft), (hard, hard));
    assert!(limit.before <= limit.after);
}
