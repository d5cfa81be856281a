use std::time::Duration;

use super::*;
use crate::exec::slots::{CommandSlots, SlotLimits};

const SIZE: TerminalSize = TerminalSize { rows: 24, cols: 80 };

fn registry(max_per_principal: usize, idle_timeout: Duration) -> Arc<TerminalRegistry> {
    TerminalRegistry::new(
        TerminalSettings {
            max_per_principal,
            idle_timeout,
            scrollback_lines: 100,
        },
        BaseEnv::from_server_env(),
        CancellationToken::new(),
        AuditLog::disabled(),
    )
}

fn opening(argv: &[&str], slots: &Arc<CommandSlots>, owner: &str) -> Opening {
    Opening {
        spec: CommandSpec::for_test(
            argv.iter().map(|arg| (*arg).to_owned()).collect(),
            Duration::from_secs(60),
        ),
        lease: Lease::forever(),
        session: None,
        description: argv.join(" "),
        command_id: "c-test".to_owned(),
        size: SIZE,
        slot: slots.try_acquire(owner).unwrap(),
        on_end: Box::new(|_| Box::pin(async {})),
    }
}

fn slots() -> Arc<CommandSlots> {
    CommandSlots::new(SlotLimits {
        max_total: 16,
        max_per_principal: 16,
    })
}

fn until(pattern: &str) -> Wait {
    Wait {
        until: Some(Regex::new(pattern).unwrap()),
        settle: None,
        timeout: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn another_principals_terminal_is_refused_like_an_unknown_one() {
    let registry = registry(4, Duration::from_secs(600));
    let slots = slots();
    let opened = registry
        .open("alice", opening(&["/bin/cat"], &slots, "alice"))
        .unwrap();
    let id = &opened.terminal_id;
    // The owner types and reads.
    registry
        .send("alice", id, "hello", &["Enter".to_owned()])
        .await
        .unwrap();
    let read = registry
        .read("alice", id, 0, 10, until("hello\\s+hello"))
        .await
        .unwrap();
    assert_eq!(read.matched, Some(true), "{}", read.view.screen);

    // Another principal gets what an unknown id gets, for every operation.
    let unknown = registry
        .read("bob", "term_nope", 0, 10, Wait::default())
        .await;
    let foreign = registry.read("bob", id, 0, 10, Wait::default()).await;
    assert!(matches!(unknown, Err(TerminalError::NotFound(_))));
    assert!(matches!(foreign, Err(TerminalError::NotFound(_))));
    assert!(matches!(
        registry.send("bob", id, "x", &[]).await,
        Err(TerminalError::NotFound(_))
    ));
    assert!(matches!(
        registry.resize("bob", id, SIZE),
        Err(TerminalError::NotFound(_))
    ));
    assert!(matches!(
        registry.close("bob", id).await,
        Err(TerminalError::NotFound(_))
    ));
    assert!(registry.belongs_to_another("bob", id));
    assert!(!registry.belongs_to_another("alice", id));

    let exit = registry.close("alice", id).await.unwrap();
    assert_eq!(exit.reason, EndReason::Closed);
    assert_eq!(registry.running(), 0);
}

#[tokio::test]
async fn a_principal_over_its_limit_is_refused_and_others_are_not() {
    let registry = registry(1, Duration::from_secs(600));
    let slots = slots();
    let first = registry
        .open("alice", opening(&["/bin/cat"], &slots, "alice"))
        .unwrap();
    assert!(matches!(
        registry.check_room("alice"),
        Err(TerminalError::TooMany(1))
    ));
    // Near miss: bob has room.
    registry.check_room("bob").unwrap();
    registry.close("alice", &first.terminal_id).await.unwrap();
    registry.check_room("alice").unwrap();
}

#[tokio::test]
async fn an_idle_terminal_is_ended_and_a_busy_one_is_not() {
    let registry = registry(4, Duration::from_millis(600));
    let slots = slots();
    let idle = registry
        .open("alice", opening(&["/bin/cat"], &slots, "alice"))
        .unwrap();
    let ended = async {
        loop {
            let read = registry
                .read("alice", &idle.terminal_id, 0, 0, Wait::default())
                .await
                .unwrap();
            if let Some(exit) = read.exit {
                return exit;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Reading counts as use: let it go idle for a while.
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
    };
    let exit = tokio::time::timeout(Duration::from_secs(30), ended)
        .await
        .unwrap();
    assert_eq!(exit.reason, EndReason::IdleTimeout);
    assert!(
        gone(i32::try_from(idle.pid).unwrap()),
        "the idle terminal's program is gone"
    );
}

/// Whether `pid` no longer runs (gone, or a zombie waiting for its reaper).
fn gone(pid: i32) -> bool {
    procfs::process::Process::new(pid)
        .and_then(|process| process.stat())
        .map_or(true, |stat| stat.state == 'Z')
}

#[tokio::test]
async fn ctrl_c_interrupts_the_foreground_program() {
    let registry = registry(4, Duration::from_secs(600));
    let slots = slots();
    let opened = registry
        .open(
            "alice",
            opening(
                &["/bin/sh", "-c", "sleep 100; echo after=$?"],
                &slots,
                "alice",
            ),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    registry
        .send("alice", &opened.terminal_id, "", &["Ctrl-C".to_owned()])
        .await
        .unwrap();
    let read = registry
        .read("alice", &opened.terminal_id, 0, 10, until("after=130"))
        .await
        .unwrap();
    // The shell got SIGINT too (it is in the foreground group): it may die before echoing.
    let interrupted = read.matched == Some(true)
        || read
            .exit
            .as_ref()
            .is_some_and(|exit| exit.signal == Some(2));
    assert!(interrupted, "{:?} {}", read.exit, read.view.screen);
}

#[test]
fn the_terminals_table_resolves_with_defaults_and_refuses_a_zero_idle_timeout() {
    let defaults = TerminalSettings::resolve(&FileTerminals::default()).unwrap();
    assert_eq!(defaults, TerminalSettings::default());
    let file: FileTerminals =
        toml::from_str("max_per_principal = 2\nidle_timeout_secs = 60\nscrollback_lines = 50")
            .unwrap();
    let settings = TerminalSettings::resolve(&file).unwrap();
    assert_eq!(settings.max_per_principal, 2);
    assert_eq!(settings.idle_timeout, Duration::from_secs(60));
    assert_eq!(settings.scrollback_lines, 50);
    let zero: FileTerminals = toml::from_str("idle_timeout_secs = 0").unwrap();
    assert!(TerminalSettings::resolve(&zero).is_err());
    // A typo is an error, not a silence.
    assert!(toml::from_str::<FileTerminals>("idle_timeout = 5").is_err());
}
