use std::net::TcpListener;
use std::path::PathBuf;

use super::*;
use crate::exec::{
    Confinement,
    test_support::{run_ok, scratch_dir, sh},
};

fn support(landlock_abi: i32, netns: bool) -> Support {
    Support {
        landlock_abi,
        netns,
    }
}

fn reach(fs_read: &[&str], network: Option<Network>) -> Reach {
    Reach {
        fs_read: (!fs_read.is_empty()).then(|| fs_read.iter().map(PathBuf::from).collect()),
        fs_write: None,
        network,
    }
}

fn check_one(reach: &Reach, support: Support, degrade: bool) -> Result<usize, Unenforceable> {
    check([("allow[0]".to_owned(), reach)], support, degrade).map(|gaps| gaps.len())
}

#[test]
fn fs_roots_without_landlock_are_refused_and_with_it_are_not() {
    let fs = reach(&["/usr"], None);
    let refused = check_one(&fs, support(0, true), false).unwrap_err();
    assert_eq!(refused.what, "fs_read/fs_write");
    assert!(refused.to_string().contains("degrade = true"), "{refused}");
    assert_eq!(check_one(&fs, support(1, false), false), Ok(0));
}

#[test]
fn degrade_turns_the_refusal_into_a_warning() {
    let fs = reach(&["/usr"], None);
    assert_eq!(check_one(&fs, support(0, false), true), Ok(1));
}

#[test]
fn a_connect_list_needs_abi_4_and_abi_4_is_enough() {
    let connect = reach(&[], Some(Network::Connect(vec![443])));
    assert!(check_one(&connect, support(3, true), false).is_err());
    assert_eq!(check_one(&connect, support(4, false), false), Ok(0));
}

#[test]
fn no_network_needs_a_namespace_or_abi_4() {
    let none = reach(&[], Some(Network::None));
    assert!(check_one(&none, support(3, false), false).is_err());
    assert_eq!(check_one(&none, support(3, true), false), Ok(0));
    assert_eq!(check_one(&none, support(4, false), false), Ok(0));
    let any = reach(&[], Some(Network::Any));
    assert_eq!(check_one(&any, support(0, false), false), Ok(0));
}

/// The rest needs what this host has (Landlock ABI >= 4, documented in DESIGN.md).
fn require_landlock() {
    assert!(
        Support::here().landlock_abi >= 4,
        "these tests need Landlock ABI 4+: {}",
        Support::here().describe()
    );
}

async fn confined(script: &str, layers: Vec<Reach>) -> crate::exec::ExecOutcome {
    require_landlock();
    run_ok(sh(script).confined(Confinement {
        limits: crate::limits::ResourceLimits::default(),
        layers,
    }))
    .await
}

fn canonical(path: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap()
}

#[tokio::test]
async fn a_file_inside_a_read_root_is_read_and_one_outside_is_not() {
    let dir = scratch_dir("landlock-read");
    for name in ["inside", "outside"] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("file"), name).unwrap();
    }
    std::os::unix::fs::symlink(dir.join("outside/file"), dir.join("inside/link")).unwrap();
    let layer = Reach {
        fs_read: Some(vec![PathBuf::from("/usr"), canonical(&dir.join("inside"))]),
        ..Reach::default()
    };
    let inside = confined(
        &format!("cat {}/inside/file", dir.display()),
        vec![layer.clone()],
    )
    .await;
    assert!(inside.is_success(), "{}", inside.stderr.to_text());
    assert_eq!(inside.stdout.to_text(), "inside");
    let outside = confined(
        &format!("cat {}/outside/file", dir.display()),
        vec![layer.clone()],
    )
    .await;
    assert!(!outside.is_success());
    assert!(
        outside.stderr.to_text().contains("Permission denied"),
        "{}",
        outside.stderr.to_text()
    );
    let through_link = confined(&format!("cat {}/inside/link", dir.display()), vec![layer]).await;
    assert!(
        !through_link.is_success(),
        "a symlink out of the root was followed"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_write_root_takes_writes_and_a_read_root_refuses_them() {
    let dir = scratch_dir("landlock-write");
    std::fs::create_dir_all(dir.join("rw")).unwrap();
    std::fs::create_dir_all(dir.join("ro")).unwrap();
    let layer = Reach {
        fs_read: Some(vec![PathBuf::from("/usr"), canonical(&dir.join("ro"))]),
        fs_write: Some(vec![canonical(&dir.join("rw"))]),
        network: None,
    };
    let wrote = confined(
        &format!("echo x > {}/rw/new", dir.display()),
        vec![layer.clone()],
    )
    .await;
    assert!(wrote.is_success(), "{}", wrote.stderr.to_text());
    assert!(dir.join("rw/new").exists());
    let refused = confined(&format!("echo x > {}/ro/new", dir.display()), vec![layer]).await;
    assert!(!refused.is_success());
    assert!(!dir.join("ro/new").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_servers_proc_environ_is_out_of_reach_without_a_proc_root() {
    let server = format!("cat /proc/{}/environ", std::process::id());
    let refused = confined(&server, vec![reach(&["/usr"], None)]).await;
    assert!(!refused.is_success(), "read the server's environment");
    // Near miss: unconfined (as root here), the same read works.
    assert!(confined(&server, Vec::new()).await.is_success());
}

#[tokio::test]
async fn two_layers_allow_only_what_both_allow() {
    let dir = scratch_dir("landlock-layers");
    std::fs::write(dir.join("file"), "x").unwrap();
    let root = canonical(&dir).display().to_string();
    let wide = reach(&["/usr", root.as_str()], None);
    let narrow = reach(&["/usr"], None);
    let read = format!("cat {}/file", dir.display());
    assert!(confined(&read, vec![wide.clone()]).await.is_success());
    assert!(!confined(&read, vec![wide, narrow]).await.is_success());
    std::fs::remove_dir_all(dir).unwrap();
}

/// `python3` connecting to 127.0.0.1:`port`, printing `ok` or the error.
fn connect_script(port: u16) -> String {
    format!(
        "exec python3 -c 'import socket\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), 5).close(); print(\"ok\")\nexcept OSError as e:\n    print(e)'"
    )
}

#[tokio::test]
async fn no_network_refuses_a_connect_that_any_allows() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let none = confined(&connect_script(port), vec![reach(&[], Some(Network::None))]).await;
    assert_ne!(none.stdout.to_text().trim(), "ok");
    let any = confined(&connect_script(port), vec![reach(&[], Some(Network::Any))]).await;
    assert_eq!(
        any.stdout.to_text().trim(),
        "ok",
        "{}",
        any.stderr.to_text()
    );
}

#[tokio::test]
async fn a_listed_port_is_reached_and_an_unlisted_one_is_not() {
    let listed = TcpListener::bind("127.0.0.1:0").unwrap();
    let unlisted = TcpListener::bind("127.0.0.1:0").unwrap();
    let listed_port = listed.local_addr().unwrap().port();
    let layer = reach(&[], Some(Network::Connect(vec![listed_port])));
    let ok = confined(&connect_script(listed_port), vec![layer.clone()]).await;
    assert_eq!(ok.stdout.to_text().trim(), "ok", "{}", ok.stderr.to_text());
    let port = unlisted.local_addr().unwrap().port();
    let refused = confined(&connect_script(port), vec![layer]).await;
    assert!(
        refused.stdout.to_text().contains("Permission denied"),
        "{}",
        refused.stdout.to_text()
    );
}
