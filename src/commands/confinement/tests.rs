use std::collections::HashMap;
use std::path::PathBuf;

use super::*;
use crate::policy::{PolicyConfig, resolve_policy};

fn policy(toml_text: &str) -> Policy {
    let config: PolicyConfig = toml::from_str(toml_text).unwrap();
    resolve_policy(Some(config), &|_| Ok(())).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hostmcp-confine-{}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::canonicalize(dir).unwrap()
}

fn files(dir: &std::path::Path) -> ServerFiles {
    ServerFiles {
        state_dir: Some(dir.join("state")),
        config_file: Some(dir.join("config.toml")),
        ..ServerFiles::default()
    }
}

fn host() -> Support {
    Support {
        landlock_abi: 7,
        netns: true,
    }
}

#[test]
fn a_rule_root_over_the_state_dir_is_refused_and_a_sibling_root_is_not() {
    let dir = scratch("rule");
    let over = policy(&format!(
        "[[allow]]\nprogram = \"/usr/bin/cat\"\nfs_read = [\"/usr\", \"{}\"]",
        dir.display()
    ));
    let error = check(&HashMap::new(), &over, &files(&dir), host(), false).unwrap_err();
    assert!(
        matches!(error, ConfinementError::Protected { ref location, .. } if location == "policy.allow[0]"),
        "{error}"
    );
    let sibling = policy(&format!(
        "[[allow]]\nprogram = \"/usr/bin/cat\"\nfs_read = [\"/usr\", \"{}\"]",
        dir.join("data").display()
    ));
    assert_eq!(
        check(&HashMap::new(), &sibling, &files(&dir), host(), false).unwrap(),
        Vec::<String>::new()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_token_root_over_the_config_file_is_refused() {
    let dir = scratch("token");
    let reach = Reach {
        fs_write: Some(vec![dir.clone()]),
        fs_read: Some(Vec::new()),
        network: None,
    };
    let tokens = HashMap::from([("ops".to_owned(), reach)]);
    let error = check(&tokens, &policy(""), &files(&dir), host(), false).unwrap_err();
    assert!(error.to_string().contains("token \"ops\""), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_proc_root_is_refused_and_one_proc_file_is_not() {
    let dir = scratch("proc");
    let proc_root =
        policy("[[allow]]\nprogram = \"/usr/bin/cat\"\nfs_read = [\"/usr\", \"/proc\"]");
    let error = check(&HashMap::new(), &proc_root, &files(&dir), host(), false).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("/proc/{}", std::process::id())),
        "{error}"
    );
    let one_file =
        policy("[[allow]]\nprogram = \"/usr/bin/cat\"\nfs_read = [\"/usr\", \"/proc/meminfo\"]");
    assert!(check(&HashMap::new(), &one_file, &files(&dir), host(), false).is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_landlock_a_confining_rule_fails_closed_unless_degraded() {
    let dir = scratch("abi");
    let confining = policy("[[allow]]\nprogram = \"/usr/bin/cat\"\nfs_read = [\"/usr\"]");
    let no_landlock = Support {
        landlock_abi: 0,
        netns: false,
    };
    let refused = check(
        &HashMap::new(),
        &confining,
        &files(&dir),
        no_landlock,
        false,
    );
    assert!(matches!(refused, Err(ConfinementError::Unenforceable(_))));
    let degraded = check(&HashMap::new(), &confining, &files(&dir), no_landlock, true).unwrap();
    assert_eq!(degraded.len(), 1);
    // Near miss: a rule that confines nothing needs no Landlock.
    let plain = policy("[[allow]]\nprogram = \"/usr/bin/cat\"");
    assert!(check(&HashMap::new(), &plain, &files(&dir), no_landlock, false).is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}
