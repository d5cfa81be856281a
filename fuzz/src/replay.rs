//! The corpus replay: every file under `corpus/<target>/` through its target's `run`,
//! without libFuzzer. This is what CI runs (`scripts/fuzz.sh replay`); a crash found by
//! fuzzing is fixed, and its input added to the corpus, so it is replayed here for good.

use std::{fs, path::Path};

/// A target's body: the `run` of its module.
type Body = fn(&[u8]);

/// Each target with its body. `every_target_binary_is_replayed` keeps this list whole.
const TARGETS: [(&str, Body); 5] = [
    ("audit_verify", crate::audit_verify::run),
    ("config_file", crate::config_file::run),
    ("policy_decide", crate::policy_decide::run),
    ("policy_glob", crate::policy_glob::run),
    ("sse_messages", crate::sse_messages::run),
];

fn corpus_files(target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let run = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a listed target");
    let files = corpus_files(target);
    assert!(!files.is_empty(), "corpus/{target} has no seeds");
    for file in &files {
        let data = fs::read(file).expect("a readable corpus file");
        // A panic names the file that caused it.
        eprintln!("replay {target}: {}", file.display());
        run(&data);
    }
    eprintln!("replay {target}: {} inputs", files.len());
}

#[test]
fn audit_verify_corpus() {
    replay("audit_verify");
}

#[test]
fn config_file_corpus() {
    replay("config_file");
}

#[test]
fn policy_decide_corpus() {
    replay("policy_decide");
}

#[test]
fn policy_glob_corpus() {
    replay("policy_glob");
}

#[test]
fn sse_messages_corpus() {
    replay("sse_messages");
}

/// A target binary added without a corpus and a replay here fails this test.
#[test]
fn every_target_binary_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets");
    let mut binaries: Vec<String> = fs::read_dir(&dir)
        .expect("fuzz_targets/")
        .map(|entry| entry.expect("an entry").path())
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    binaries.sort();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(binaries, listed);
}
