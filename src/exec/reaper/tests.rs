//! Tests of the orphan reaper: tokens, judging, sweeping.

use super::*;

fn owner(principal: &str, command_id: &str) -> Owner {
    Owner {
        principal: Some(principal.to_owned()),
        command_id: Some(command_id.to_owned()),
    }
}

/// A table with one running command (token 7, uid 1000, boss's c-1) and one ended
/// one (token 9, alice's c-2).
fn table() -> Live {
    let mut live = Live::default();
    live.commands.insert(
        7,
        Entry {
            uid: 1000,
            owner: owner("boss", "c-1"),
        },
    );
    live.ended.push_back((9, owner("alice", "c-2")));
    live
}

#[test]
fn stat_parsing_survives_odd_command_names() {
    let (state, ppid) = stat_fields(std::process::id() as i32).unwrap();
    assert!(matches!(state, 'R' | 'S'));
    assert_eq!(ppid, nix::unistd::getppid().as_raw() as u32);
}

#[test]
fn an_orphan_naming_a_running_command_of_its_own_uid_lives() {
    assert_eq!(judge(Claim::Token(7), Some(1000), &table()), None);
}

#[test]
fn an_orphan_without_a_token_dies_even_while_commands_run() {
    assert_eq!(
        judge(Claim::Absent, Some(1000), &table()),
        Some((OrphanReason::NoCommandId, Owner::default()))
    );
    // An empty environment (`env -i`), once the sweep has looked twice.
    assert_eq!(
        judge(Claim::Empty, Some(1000), &table()),
        Some((OrphanReason::NoCommandId, Owner::default()))
    );
}

#[test]
fn an_orphan_naming_a_running_command_of_another_uid_dies() {
    assert_eq!(
        judge(Claim::Token(7), Some(1001), &table()),
        Some((OrphanReason::WrongUser, owner("boss", "c-1")))
    );
    // Its uid unreadable: not the command's uid either.
    assert_eq!(
        judge(Claim::Token(7), None, &table()).map(|(reason, _)| reason),
        Some(OrphanReason::WrongUser)
    );
}

#[test]
fn an_orphan_of_an_ended_command_dies_under_its_owner() {
    assert_eq!(
        judge(Claim::Token(9), Some(1000), &table()),
        Some((OrphanReason::CommandEnded, owner("alice", "c-2")))
    );
}

#[test]
fn an_orphan_naming_a_token_nobody_issued_dies() {
    assert_eq!(
        judge(Claim::Token(8), Some(1000), &table()),
        Some((OrphanReason::UnknownCommandId, Owner::default()))
    );
    // An old-style sequential id is no token at all: forged too.
    assert_eq!(
        judge(Claim::Malformed, Some(1000), &table()),
        Some((OrphanReason::UnknownCommandId, Owner::default()))
    );
}

#[test]
fn tokens_are_32_hex_digits_and_round_trip() {
    let token = fresh_token();
    let text = format_token(token);
    assert_eq!(text.len(), 32);
    assert_eq!(parse_token(text.as_bytes()), Some(token));
    // The old sequential ids, and anything else, are no token.
    for bad in [
        "2",
        "",
        "+0000000000000000000000000000001",
        &text[1..],
        &format!("{text}0"),
    ] {
        assert_eq!(parse_token(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn registrations_are_unique_and_remembered_once_ended() {
    let first = CommandRegistration::new(1000, owner("boss", "c-1"));
    let second = CommandRegistration::new(1000, Owner::default());
    assert_ne!(first.id(), second.id());
    let token = first.token;
    assert!(live_write().commands.contains_key(&token));
    let mut first = first;
    first.end();
    first.end();
    drop(first);
    let live = live_write();
    assert!(!live.commands.contains_key(&token));
    assert_eq!(live.ended_owner(token), Some(&owner("boss", "c-1")));
    let remembered = live
        .ended
        .iter()
        .filter(|(ended, _)| *ended == token)
        .count();
    assert_eq!(remembered, 1, "ended once, remembered once");
}

#[test]
fn real_uid_is_read_from_proc() {
    assert_eq!(
        real_uid_of(std::process::id() as i32),
        Some(nix::unistd::getuid().as_raw())
    );
}
