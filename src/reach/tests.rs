use std::path::PathBuf;

use super::*;

fn written(toml_text: &str) -> ReachWritten {
    #[derive(serde::Deserialize)]
    struct Table {
        fs_read: Option<Vec<PathBuf>>,
        fs_write: Option<Vec<PathBuf>>,
        network: Option<NetworkWritten>,
    }
    let table: Table = toml::from_str(toml_text).unwrap();
    ReachWritten {
        fs_read: table.fs_read,
        fs_write: table.fs_write,
        network: table.network,
    }
}

fn parsed(toml_text: &str) -> Result<Reach, ReachError> {
    written(toml_text).parse()
}

#[test]
fn network_words_and_connect_ports_are_read() {
    assert_eq!(
        parsed("network = \"none\"").unwrap().network,
        Some(Network::None)
    );
    assert_eq!(
        parsed("network = \"any\"").unwrap().network,
        Some(Network::Any)
    );
    assert_eq!(
        parsed("network = { connect = [\"*:443\", \"*:53\", \"*:443\"] }")
            .unwrap()
            .network,
        Some(Network::Connect(vec![53, 443]))
    );
    assert_eq!(parsed("").unwrap(), Reach::default());
}

#[test]
fn a_named_host_is_refused_and_any_host_on_the_port_is_not() {
    assert_eq!(
        parsed("network = { connect = [\"example.org:443\"] }"),
        Err(ReachError::Destination("example.org:443".to_owned()))
    );
    assert!(parsed("network = { connect = [\"*:443\"] }").is_ok());
    for bad in ["*:0", "*:70000", "*:", "443"] {
        let text = format!("network = {{ connect = [\"{bad}\"] }}");
        assert!(parsed(&text).is_err(), "{bad}");
    }
}

#[test]
fn an_empty_connect_list_and_an_unknown_word_are_refused() {
    assert_eq!(
        parsed("network = { connect = [] }"),
        Err(ReachError::EmptyConnect)
    );
    assert!(matches!(
        parsed("network = \"loopback\""),
        Err(ReachError::UnknownNetwork(_))
    ));
}

#[test]
fn a_relative_root_is_refused_and_an_absolute_one_is_not() {
    assert!(matches!(
        parsed("fs_read = [\"usr\"]"),
        Err(ReachError::Relative {
            field: "fs_read",
            ..
        })
    ));
    assert!(parsed("fs_read = [\"/usr\"]").unwrap().confines_fs());
}

#[test]
fn write_roots_alone_confine_reading_to_them() {
    let reach = parsed("fs_write = [\"/tmp\"]").unwrap();
    assert_eq!(reach.fs_read, Some(Vec::new()));
    assert!(reach.confines_fs());
    assert!(!reach.confines_network());
}

#[test]
fn a_missing_root_is_an_error_and_a_symlinked_one_is_resolved() {
    let dir = std::env::temp_dir().join(format!("hostmcp-reach-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("real")).unwrap();
    let link = dir.join("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(dir.join("real"), &link).unwrap();
    let reach = Reach {
        fs_read: Some(vec![link]),
        ..Reach::default()
    };
    let canonical = reach.canonicalize().unwrap();
    assert_eq!(
        canonical.fs_read,
        Some(vec![std::fs::canonicalize(dir.join("real")).unwrap()])
    );
    let missing = Reach {
        fs_write: Some(vec![dir.join("missing")]),
        ..Reach::default()
    };
    assert!(matches!(
        missing.canonicalize(),
        Err(ReachError::Missing {
            field: "fs_write",
            ..
        })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_root_holding_or_inside_a_protected_path_is_refused_and_a_sibling_is_not() {
    let protected = vec![PathBuf::from("/var/lib/hostmcp")];
    let reach = |root: &str| Reach {
        fs_read: Some(vec![PathBuf::from("/usr"), PathBuf::from(root)]),
        ..Reach::default()
    };
    for root in [
        "/",
        "/var",
        "/var/lib",
        "/var/lib/hostmcp",
        "/var/lib/hostmcp/keys",
    ] {
        assert!(
            matches!(
                reach(root).check_protected(&protected),
                Err(ReachError::Protected { .. })
            ),
            "{root}"
        );
    }
    // Near misses: a sibling, and a name that only shares a prefix.
    for root in ["/var/log", "/var/lib/hostmcp-other"] {
        assert_eq!(reach(root).check_protected(&protected), Ok(()), "{root}");
    }
}

#[test]
fn every_process_dir_under_proc_is_refused_and_process_independent_files_are_not() {
    let reach = |root: &str| Reach {
        fs_read: Some(vec![PathBuf::from("/usr"), PathBuf::from(root)]),
        ..Reach::default()
    };
    let server_thread = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .last()
        .unwrap();
    let refused = [
        format!("/proc/{}", std::process::id()),
        format!("/proc/{server_thread}"),
        format!("/proc/{server_thread}/environ"),
        "/proc/1".to_owned(),
        "/proc/4194304/environ".to_owned(),
        "/proc/self".to_owned(),
        "/proc/self/environ".to_owned(),
        "/proc/thread-self".to_owned(),
    ];
    for root in &refused {
        assert!(
            matches!(
                reach(root).check_protected(&[]),
                Err(ReachError::ProcessDir {
                    field: "fs_read",
                    ..
                })
            ),
            "{root}"
        );
    }
    let write = Reach {
        fs_write: Some(vec![PathBuf::from("/proc/self/fd")]),
        ..Reach::default()
    };
    assert!(matches!(
        write.check_protected(&[]),
        Err(ReachError::ProcessDir {
            field: "fs_write",
            ..
        })
    ));
    // Near misses: files that describe the host, not a process, and names that only
    // look numeric or start like a process directory.
    for root in [
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/loadavg",
        "/proc/sys/kernel",
        "/proc/selfish",
        "/proc/12a",
        "/srv/proc/1",
    ] {
        assert_eq!(reach(root).check_protected(&[]), Ok(()), "{root}");
    }
}

#[test]
fn a_reach_is_described_for_people() {
    assert_eq!(Reach::default().describe(), "unconfined");
    let reach =
        parsed("fs_read = [\"/usr\"]\nfs_write = [\"/srv\"]\nnetwork = { connect = [\"*:443\"] }")
            .unwrap();
    assert_eq!(
        reach.describe(),
        "fs_read [/usr]; fs_write [/srv]; network TCP connect to *:443 only"
    );
}
