//! Containment of the file operations, each refusal with its allowed twin: `..`, absolute
//! symlinks, relative symlinks out, symlinked directories out, paths beside a root that
//! share its string prefix, symlinks swapped while calls run, hard links; then what the
//! operations return (ranges, binary detection, pages, bounds, atomic writes).

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{
    read::{Range, read},
    *,
};

const INSIDE: &str = "inside\n";
const SECRET: &str = "SECRET\n";

/// A temporary tree: `root/` (the file root) and `outside.txt`, `outside/` beside it.
struct Tree {
    _dir: tempfile::TempDir,
    base: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::create_dir_all(base.join("rootevil")).unwrap();
        fs::write(base.join("outside.txt"), SECRET).unwrap();
        fs::write(base.join("outside/f.txt"), SECRET).unwrap();
        fs::write(base.join("rootevil/f.txt"), SECRET).unwrap();
        fs::write(root.join("inside.txt"), INSIDE).unwrap();
        fs::write(root.join("sub/f.txt"), INSIDE).unwrap();
        symlink("inside.txt", root.join("link_in")).unwrap();
        symlink(base.join("outside.txt"), root.join("link_abs")).unwrap();
        symlink("../outside.txt", root.join("link_out")).unwrap();
        symlink("../inside.txt", root.join("sub/up")).unwrap();
        symlink("sub", root.join("dir_in")).unwrap();
        symlink("../outside", root.join("dir_out")).unwrap();
        fs::hard_link(base.join("outside.txt"), root.join("hard_out")).unwrap();
        Self { _dir: dir, base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn roots(&self, write: bool) -> FileRoots {
        FileRoots::new(FilesConfig {
            roots: vec![RootConfig {
                path: self.root(),
                write,
            }],
        })
        .unwrap()
    }

    /// The absolute path of `relative` under the root, as a caller writes it.
    fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.root().display())
    }
}

fn read_all(roots: &FileRoots, path: &str) -> Result<String, FileError> {
    let located = roots.locate(path)?;
    let outcome = read(
        &located,
        Range::Bytes {
            offset: 0,
            length: 1 << 20,
        },
        1 << 20,
        false,
    )?;
    Ok(outcome.content.unwrap_or_default())
}

/// Each refused path (with the rule that refuses it) beside its allowed twin, which must
/// read the inside content. A pair without a twin cannot be written.
#[test]
fn reads_are_contained_and_each_refusal_has_its_allowed_twin() {
    let tree = Tree::new();
    let roots = tree.roots(false);
    let evil = format!("{}/f.txt", tree.base.join("rootevil").display());
    let pairs: Vec<(&str, String, &str, String)> = vec![
        (
            "dot-dot",
            tree.path("sub/../../outside.txt"),
            "escape",
            tree.path("sub/../inside.txt"),
        ),
        (
            "absolute symlink",
            tree.path("link_abs"),
            "escape",
            tree.path("link_in"),
        ),
        (
            "relative symlink out",
            tree.path("link_out"),
            "escape",
            tree.path("sub/up"),
        ),
        (
            "symlinked directory out",
            tree.path("dir_out/f.txt"),
            "escape",
            tree.path("dir_in/f.txt"),
        ),
        (
            "another directory",
            "/etc/hostname".to_owned(),
            "outside_roots",
            tree.path("inside.txt"),
        ),
        (
            "string prefix of the root",
            evil,
            "outside_roots",
            tree.path("sub/f.txt"),
        ),
        (
            "relative path",
            "root/inside.txt".to_owned(),
            "not_absolute",
            tree.path("./inside.txt"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, refused, rule, allowed) in pairs {
        match read_all(&roots, &refused) {
            Err(error) if error.rule() == rule => {}
            other => failures.push(format!(
                "{name}: {refused} should be refused by {rule}: {other:?}"
            )),
        }
        match read_all(&roots, &allowed) {
            Ok(content) if content == INSIDE => {}
            other => failures.push(format!("{name} twin: {allowed} should read: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn no_roots_says_so_and_a_configured_root_reads() {
    let error = FileRoots::default().locate("/etc/hostname").unwrap_err();
    assert_eq!(error.rule(), "no_roots");
    assert!(error.to_string().contains("[[files.roots]]"), "{error}");
    let tree = Tree::new();
    assert_eq!(
        read_all(&tree.roots(false), &tree.path("inside.txt")).unwrap(),
        INSIDE
    );
}

#[test]
fn roots_must_be_absolute_and_distinct() {
    let root = |path: &str| RootConfig {
        path: PathBuf::from(path),
        write: false,
    };
    let relative = FileRoots::new(FilesConfig {
        roots: vec![root("srv")],
    });
    assert!(matches!(
        relative,
        Err(RootsError::NotAbsolute { index: 0, .. })
    ));
    let twice = FileRoots::new(FilesConfig {
        roots: vec![root("/srv"), root("/srv/")],
    });
    assert!(matches!(twice, Err(RootsError::Duplicate { index: 1, .. })));
    let nested = FileRoots::new(FilesConfig {
        roots: vec![root("/srv"), root("/srv/app")],
    });
    assert_eq!(nested.unwrap().roots().len(), 2);
}

/// A symlink flipped between a target inside the root and one outside while reads run
/// through it: every read either sees the inside content or is refused, never the secret.
/// Both outcomes must occur, or the race was not exercised.
#[test]
fn a_symlink_swapped_during_reads_never_leads_outside() {
    let tree = Tree::new();
    let root = tree.root();
    symlink("inside.txt", root.join("swap")).unwrap();
    symlink("../outside.txt", root.join("swap_out")).unwrap();
    symlink("inside.txt", root.join("swap_in")).unwrap();
    // A directory swapped for a symlink to a directory outside.
    fs::create_dir(root.join("swapdir")).unwrap();
    fs::write(root.join("swapdir/f.txt"), INSIDE).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut flips = 0u32;
            while !stop.load(Ordering::Relaxed) && flips < 200_000 {
                // rename(2) over the link is atomic: `swap` always exists.
                let _ = fs::remove_file(root.join("swap_next"));
                let out = flips.is_multiple_of(2);
                let target = if out { "../outside.txt" } else { "inside.txt" };
                symlink(target, root.join("swap_next")).unwrap();
                fs::rename(root.join("swap_next"), root.join("swap")).unwrap();
                let dir = if out { "../outside" } else { "" };
                if dir.is_empty() {
                    let _ = fs::remove_file(root.join("swapdir"));
                    let _ = fs::create_dir(root.join("swapdir"));
                    let _ = fs::write(root.join("swapdir/f.txt"), INSIDE);
                } else {
                    let _ = fs::remove_dir_all(root.join("swapdir"));
                    let _ = symlink(dir, root.join("swapdir"));
                }
                flips += 1;
            }
        })
    };
    let roots = tree.roots(false);
    let (mut inside, mut refused) = (0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for round in 0..20_000 {
        for path in ["swap", "swapdir/f.txt"] {
            match read_all(&roots, &tree.path(path)) {
                Ok(content) => {
                    assert_ne!(
                        content, SECRET,
                        "round {round}: {path} read outside the root"
                    );
                    if content == INSIDE {
                        inside += 1;
                    }
                }
                Err(_) => refused += 1,
            }
        }
        if (inside > 50 && refused > 50) || std::time::Instant::now() > deadline {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        inside > 0 && refused > 0,
        "inside {inside}, refused {refused}"
    );
}

#[test]
fn a_hard_link_to_a_file_outside_is_read_but_never_written() {
    let tree = Tree::new();
    let roots = tree.roots(true);
    // Read: a hard link is the file itself (see the module doc).
    assert_eq!(read_all(&roots, &tree.path("hard_out")).unwrap(), SECRET);
    let located = roots.locate(&tree.path("hard_out")).unwrap();
    let error = write::prepare(&located, b"new", None).unwrap_err();
    assert_eq!(error.rule(), "hard_linked", "{error}");
    assert_eq!(
        fs::read_to_string(tree.base.join("outside.txt")).unwrap(),
        SECRET
    );
    // The twin: a file with one link is replaced.
    let located = roots.locate(&tree.path("inside.txt")).unwrap();
    write::prepare(&located, b"new", None)
        .unwrap()
        .commit(&located)
        .unwrap();
    assert_eq!(
        fs::read_to_string(tree.root().join("inside.txt")).unwrap(),
        "new"
    );
}

#[test]
fn writes_are_contained_like_reads() {
    let tree = Tree::new();
    let roots = tree.roots(true);
    let cases = [
        ("sub/../../outside.txt", "escape"),
        ("dir_out/f.txt", "escape"),
        ("link_out", "symlink"),
        ("link_in", "symlink"),
        ("sub", "not_regular"),
    ];
    for (path, rule) in cases {
        let located = roots.locate(&tree.path(path)).unwrap();
        let error = write::prepare(&located, b"x", None).unwrap_err();
        assert_eq!(error.rule(), rule, "{path}: {error}");
    }
    assert_eq!(
        fs::read_to_string(tree.base.join("outside.txt")).unwrap(),
        SECRET
    );
    assert_eq!(
        fs::read_to_string(tree.base.join("outside/f.txt")).unwrap(),
        SECRET
    );
    // The twins: through a symlinked directory inside, and a new file in a subdirectory.
    for path in ["dir_in/f.txt", "sub/new.txt"] {
        let located = roots.locate(&tree.path(path)).unwrap();
        let written = write::prepare(&located, b"x", None)
            .unwrap()
            .commit(&located)
            .unwrap();
        assert!(
            written.path.ends_with(path.trim_start_matches("dir_in/")),
            "{written:?}"
        );
    }
    assert_eq!(
        fs::read_to_string(tree.root().join("sub/f.txt")).unwrap(),
        "x"
    );
}

#[test]
fn a_read_only_root_refuses_writes_and_the_longest_root_decides() {
    let tree = Tree::new();
    let root = |path: PathBuf, write| RootConfig { path, write };
    let roots = FileRoots::new(FilesConfig {
        roots: vec![
            root(tree.root(), false),
            root(tree.root().join("sub"), true),
        ],
    })
    .unwrap();
    let located = roots.locate(&tree.path("inside.txt")).unwrap();
    let error = write::prepare(&located, b"x", None).unwrap_err();
    assert_eq!(error.rule(), "read_only_root");
    let located = roots.locate(&tree.path("sub/f.txt")).unwrap();
    write::prepare(&located, b"x", None)
        .unwrap()
        .commit(&located)
        .unwrap();
    // Climbing out of the writable root is not a way into the read-only one's files.
    let located = roots.locate(&tree.path("sub/../inside.txt")).unwrap();
    let error = write::prepare(&located, b"x", None).unwrap_err();
    assert_eq!(error.rule(), "escape");
    assert_eq!(
        fs::read_to_string(tree.root().join("inside.txt")).unwrap(),
        INSIDE
    );
}

#[test]
fn a_read_only_root_inside_a_writable_one_cannot_be_written_by_another_spelling() {
    let tree = Tree::new();
    // root/ is writable, root/sub/ a read-only root inside it; root/ro_link -> sub.
    symlink("sub", tree.root().join("ro_link")).unwrap();
    let root = |path: PathBuf, write| RootConfig { path, write };
    let roots = FileRoots::new(FilesConfig {
        roots: vec![
            root(tree.root(), true),
            root(tree.root().join("sub"), false),
        ],
    })
    .unwrap();
    for spelling in [
        "sub/f.txt",
        "ro_link/f.txt",
        "dir_in/f.txt",
        "sub/../sub/f.txt",
    ] {
        let located = roots.locate(&tree.path(spelling)).unwrap();
        let error = write::prepare(&located, b"x", None).unwrap_err();
        assert_eq!(error.rule(), "read_only_root", "{spelling}");
    }
    // New files there too, whatever the spelling.
    let located = roots.locate(&tree.path("ro_link/new.txt")).unwrap();
    let error = write::prepare(&located, b"x", None).unwrap_err();
    assert_eq!(error.rule(), "read_only_root");
    assert_eq!(
        fs::read_to_string(tree.root().join("sub/f.txt")).unwrap(),
        INSIDE
    );
    assert!(!tree.root().join("sub/new.txt").exists());
    // Near miss: the writable root's own files are written, through a symlink inside it too.
    let located = roots.locate(&tree.path("inside.txt")).unwrap();
    write::prepare(&located, b"x", None)
        .unwrap()
        .commit(&located)
        .unwrap();
    fs::create_dir(tree.root().join("rw")).unwrap();
    symlink("rw", tree.root().join("rw_link")).unwrap();
    let located = roots.locate(&tree.path("rw_link/new.txt")).unwrap();
    write::prepare(&located, b"y", None)
        .unwrap()
        .commit(&located)
        .unwrap();
    assert_eq!(
        fs::read_to_string(tree.root().join("rw/new.txt")).unwrap(),
        "y"
    );
}

#[test]
fn procfs_and_sysfs_are_never_read_even_under_a_root_that_holds_them() {
    // A root of /proc stands in for a root of `/`: the server's own environment is there.
    let roots = FileRoots::new(FilesConfig {
        roots: vec![RootConfig {
            path: PathBuf::from("/proc"),
            write: false,
        }],
    })
    .unwrap();
    for path in ["/proc/self/environ", "/proc/self/status", "/proc/loadavg"] {
        let error = read_all(&roots, path).unwrap_err();
        assert_eq!(error.rule(), "pseudo_filesystem", "{path}");
    }
    let sys = FileRoots::new(FilesConfig {
        roots: vec![RootConfig {
            path: PathBuf::from("/sys"),
            write: false,
        }],
    })
    .unwrap();
    let error = read_all(&sys, "/sys/devices/system/cpu/online").unwrap_err();
    assert_eq!(error.rule(), "pseudo_filesystem");
    // Near miss: an ordinary file under an ordinary root reads.
    let tree = Tree::new();
    assert_eq!(
        read_all(&tree.roots(false), &tree.path("inside.txt")).unwrap(),
        INSIDE
    );
}

#[test]
fn expected_sha256_guards_against_a_concurrent_edit() {
    let tree = Tree::new();
    let roots = tree.roots(true);
    let path = tree.path("inside.txt");
    let located = roots.locate(&path).unwrap();
    let before = read(
        &located,
        Range::Bytes {
            offset: 0,
            length: 100,
        },
        100,
        false,
    )
    .unwrap();
    let hash = before.sha256.unwrap();
    // Someone else edits the file after our read.
    fs::write(tree.root().join("inside.txt"), "theirs\n").unwrap();
    let error = write::prepare(&located, b"ours\n", Some(&hash)).unwrap_err();
    assert_eq!(error.rule(), "conflict");
    assert_eq!(
        fs::read_to_string(tree.root().join("inside.txt")).unwrap(),
        "theirs\n"
    );
    // An edit between prepare and commit is caught too.
    let theirs = read(
        &located,
        Range::Bytes {
            offset: 0,
            length: 100,
        },
        100,
        false,
    )
    .unwrap();
    let prepared = write::prepare(&located, b"ours\n", theirs.sha256.as_deref()).unwrap();
    fs::write(tree.root().join("inside.txt"), "again\n").unwrap();
    assert_eq!(prepared.commit(&located).unwrap_err().rule(), "conflict");
    // The twin: the current hash (in capitals, too) lets the write through.
    let current = read(
        &located,
        Range::Bytes {
            offset: 0,
            length: 100,
        },
        100,
        false,
    )
    .unwrap();
    let upper = current.sha256.unwrap().to_uppercase();
    let written = write::prepare(&located, b"ours\n", Some(&upper))
        .unwrap()
        .commit(&located)
        .unwrap();
    assert_eq!(written.previous_sha256.unwrap(), upper.to_lowercase());
    assert_eq!(
        fs::read_to_string(tree.root().join("inside.txt")).unwrap(),
        "ours\n"
    );
    let located = roots.locate(&tree.path("missing.txt")).unwrap();
    let error = write::prepare(&located, b"x", Some(&upper)).unwrap_err();
    assert_eq!(error.rule(), "expected_missing");
}

#[test]
fn a_write_keeps_the_mode_and_leaves_no_temporary_file() {
    let tree = Tree::new();
    let file = tree.root().join("sub/script.sh");
    fs::write(&file, "old").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o750)).unwrap();
    let roots = tree.roots(true);
    let located = roots.locate(&tree.path("sub/script.sh")).unwrap();
    let written = write::prepare(&located, b"new", None)
        .unwrap()
        .commit(&located)
        .unwrap();
    assert_eq!(written.mode, "0750");
    assert!(!written.created);
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    // A write dropped before commit removes its staged file.
    let staged = write::prepare(&located, b"never", None).unwrap();
    drop(staged);
    let names: Vec<_> = fs::read_dir(tree.root().join("sub"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.contains("hostmcp")),
        "{names:?}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "new");
    let located = roots.locate(&tree.path("sub/created.txt")).unwrap();
    let created = write::prepare(&located, b"c", None)
        .unwrap()
        .commit(&located)
        .unwrap();
    assert!(created.created && created.mode == "0644", "{created:?}");
}

#[test]
fn ranges_lines_and_binary_detection() {
    let tree = Tree::new();
    let root = tree.root();
    let text: String = (1..=100).map(|n| format!("line {n}\n")).collect();
    fs::write(root.join("lines.txt"), &text).unwrap();
    let roots = tree.roots(false);
    let located = roots.locate(&tree.path("lines.txt")).unwrap();
    let lines = read(
        &located,
        Range::Lines {
            first: 10,
            count: 3,
        },
        1000,
        false,
    )
    .unwrap();
    assert_eq!(
        lines.content.as_deref(),
        Some("line 10\nline 11\nline 12\n")
    );
    assert_eq!(
        (lines.first_line, lines.lines, lines.next),
        (Some(10), Some(3), Some(13))
    );
    let bytes = read(
        &located,
        Range::Bytes {
            offset: 5,
            length: 2,
        },
        1000,
        false,
    )
    .unwrap();
    assert_eq!(bytes.content.as_deref(), Some("1\n"));
    assert_eq!(bytes.next, Some(7));
    // The size cap wins over the length asked for.
    let capped = read(
        &located,
        Range::Bytes {
            offset: 0,
            length: 1000,
        },
        10,
        false,
    )
    .unwrap();
    assert_eq!((capped.bytes, capped.next), (10, Some(10)));
    let last = read(
        &located,
        Range::Lines {
            first: 100,
            count: 5,
        },
        1000,
        false,
    )
    .unwrap();
    assert_eq!((last.lines, last.next), (Some(1), None));
    // Binary: NUL bytes or invalid UTF-8 are withheld; a text twin is shown.
    fs::write(root.join("bin"), b"\x7fELF\x00\x01\x02").unwrap();
    fs::write(root.join("latin1"), b"caf\xe9 au lait").unwrap();
    fs::write(root.join("utf8"), "café au lait").unwrap();
    for (name, binary) in [("bin", true), ("latin1", true), ("utf8", false)] {
        let located = roots.locate(&tree.path(name)).unwrap();
        let outcome = read(
            &located,
            Range::Bytes {
                offset: 0,
                length: 100,
            },
            100,
            false,
        )
        .unwrap();
        assert_eq!(outcome.binary, binary, "{name}");
        assert_eq!(outcome.content.is_none(), binary, "{name}");
    }
    // A character cut by the range's end is not binary.
    let located = roots.locate(&tree.path("utf8")).unwrap();
    let cut = read(
        &located,
        Range::Bytes {
            offset: 0,
            length: 4,
        },
        100,
        false,
    )
    .unwrap();
    assert!(!cut.binary);
}

#[test]
fn special_files_are_refused_without_blocking() {
    let tree = Tree::new();
    nix::unistd::mkfifo(
        &tree.root().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let roots = tree.roots(false);
    let error = read_all(&roots, &tree.path("fifo")).unwrap_err();
    assert_eq!(error.rule(), "not_regular", "{error}");
    let error = read_all(&roots, &tree.path("sub")).unwrap_err();
    assert_eq!(error.rule(), "not_regular", "{error}");
}

/// A FIFO is never opened for reading (only with `O_PATH`): a writer blocked in `open`
/// waiting for a reader stays blocked through a `file_read` and a `file_search` of it. The
/// twin: a regular file beside it reads.
#[test]
fn a_fifo_is_checked_without_being_opened_for_reading() {
    let tree = Tree::new();
    let fifo = tree.root().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let opened = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (fifo, opened) = (fifo.clone(), opened.clone());
        // Blocks until a reader opens the FIFO.
        move || {
            let _file = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            opened.store(true, Ordering::SeqCst);
        }
    });
    let roots = tree.roots(false);
    let error = read_all(&roots, &tree.path("fifo")).unwrap_err();
    assert_eq!(error.rule(), "not_regular", "{error}");
    assert!(error.to_string().contains("FIFO"), "{error}");
    let located = roots.locate(&tree.path("")).unwrap();
    let query = search::Query::new(None, Some("inside"), false).unwrap();
    search::search(&located, &query, search::SearchLimits::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !opened.load(Ordering::SeqCst),
        "the FIFO was opened for reading (the writer was released)"
    );
    assert_eq!(read_all(&roots, &tree.path("inside.txt")).unwrap(), INSIDE);
    // Release the writer.
    drop(fs::File::open(&fifo).unwrap());
    writer.join().unwrap();
    assert!(opened.load(Ordering::SeqCst));
}

/// The server's own files are refused by identity under a root that holds them: by their
/// path, through a symlink and through a hard link, and every file of the state directory;
/// a copy with the same content, and the files beside them, read.
#[test]
fn the_servers_own_files_are_refused_by_identity_and_a_copy_reads() {
    let tree = Tree::new();
    let root = tree.root();
    fs::create_dir(root.join("state")).unwrap();
    fs::write(root.join("config.toml"), "[[tokens]]\n").unwrap();
    fs::write(root.join("state/token"), "TOKEN\n").unwrap();
    fs::copy(root.join("config.toml"), root.join("copy.toml")).unwrap();
    fs::hard_link(root.join("config.toml"), root.join("sub/alias")).unwrap();
    symlink("config.toml", root.join("config_link")).unwrap();
    let protected = ProtectedFiles::new([root.join("config.toml")], [root.join("state")]);
    let roots = tree.roots(true).with_protected(protected);
    for refused in ["config.toml", "config_link", "sub/alias", "state/token"] {
        let error = read_all(&roots, &tree.path(refused)).unwrap_err();
        assert_eq!(error.rule(), "server_file", "{refused}: {error}");
    }
    assert_eq!(
        read_all(&roots, &tree.path("copy.toml")).unwrap(),
        "[[tokens]]\n"
    );
    assert_eq!(read_all(&roots, &tree.path("inside.txt")).unwrap(), INSIDE);
    // Search skips them; the copy is found.
    let located = roots.locate(&tree.path("")).unwrap();
    let query = search::Query::new(None, Some("tokens"), false).unwrap();
    let found = search::search(&located, &query, search::SearchLimits::default()).unwrap();
    let paths: Vec<_> = found.matches.iter().map(|m| m.path.clone()).collect();
    assert_eq!(paths, vec![tree.path("copy.toml")], "{paths:?}");
    // Nor written, nor created in the state directory; a file beside them is.
    for refused in ["config.toml", "state/new"] {
        let located = roots.locate(&tree.path(refused)).unwrap();
        let error = write::prepare(&located, b"x", None).unwrap_err();
        assert_eq!(error.rule(), "server_file", "{refused}: {error}");
    }
    let located = roots.locate(&tree.path("new.txt")).unwrap();
    write::prepare(&located, b"x", None).unwrap();
}

#[test]
fn listing_pages_with_a_cursor_and_shows_symlinks_unfollowed() {
    let tree = Tree::new();
    let roots = tree.roots(false);
    let located = roots.locate(&tree.path("")).unwrap();
    let mut names = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = list::list(&located, cursor.as_deref(), 3).unwrap();
        assert!(page.entries.len() <= 3);
        names.extend(page.entries.iter().map(|entry| entry.name.clone()));
        if let Some(entry) = page.entries.iter().find(|entry| entry.name == "link_abs") {
            assert_eq!(entry.kind, "symlink");
            assert_eq!(
                entry.target.as_deref(),
                Some(tree.base.join("outside.txt").to_str().unwrap())
            );
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            assert_eq!(page.total, names.len());
            break;
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.contains(&"inside.txt".to_owned()) && names.contains(&"dir_out".to_owned()));
    let located = roots.locate(&tree.path("dir_out")).unwrap();
    assert_eq!(list::list(&located, None, 10).unwrap_err().rule(), "escape");
    let located = roots.locate(&tree.path("inside.txt")).unwrap();
    assert_eq!(
        list::list(&located, None, 10).unwrap_err().rule(),
        "not_directory"
    );
}

#[test]
fn search_finds_names_and_content_without_following_symlinks_out() {
    let tree = Tree::new();
    let roots = tree.roots(false);
    let located = roots.locate(&tree.path("")).unwrap();
    let query = search::Query::new(None, Some("SECRET"), false).unwrap();
    let found = search::search(&located, &query, search::SearchLimits::default()).unwrap();
    // hard_out is the one file inside the root holding the secret (see the hard-link test);
    // the symlinks out (link_abs, link_out, dir_out) are not followed.
    let paths: Vec<_> = found
        .matches
        .iter()
        .map(|found| found.path.clone())
        .collect();
    assert_eq!(paths, vec![tree.path("hard_out")]);
    let query = search::Query::new(Some("*.txt"), None, false).unwrap();
    let found = search::search(&located, &query, search::SearchLimits::default()).unwrap();
    let paths: Vec<_> = found
        .matches
        .iter()
        .map(|found| found.path.clone())
        .collect();
    assert_eq!(paths, vec![tree.path("inside.txt"), tree.path("sub/f.txt")]);
    let query = search::Query::new(Some("*.txt"), Some(r"^ins\w+$"), true).unwrap();
    let found = search::search(&located, &query, search::SearchLimits::default()).unwrap();
    assert_eq!(found.matches.len(), 2);
    assert_eq!(found.matches[0].line, Some(1));
    assert_eq!(found.matches[0].text.as_deref(), Some("inside"));
    assert!(search::Query::new(Some("a[b"), None, false).is_err());
    assert!(search::Query::new(None, None, false).is_err());
}

#[test]
fn search_stops_at_its_bounds_and_says_which() {
    let tree = Tree::new();
    let many = tree.root().join("many");
    fs::create_dir(&many).unwrap();
    for n in 0..50 {
        fs::write(many.join(format!("{n:02}.log")), "hit\nhit\n").unwrap();
    }
    let roots = tree.roots(false);
    let located = roots.locate(&tree.path("many")).unwrap();
    let query = search::Query::new(None, Some("hit"), false).unwrap();
    let limits = search::SearchLimits {
        max_matches: 5,
        ..Default::default()
    };
    let found = search::search(&located, &query, limits).unwrap();
    assert_eq!(
        (found.matches.len(), found.stopped_by),
        (5, Some("matches"))
    );
    let limits = search::SearchLimits {
        max_entries: 10,
        ..Default::default()
    };
    let found = search::search(&located, &query, limits).unwrap();
    assert_eq!(
        (found.entries_visited, found.stopped_by),
        (10, Some("entries"))
    );
    let limits = search::SearchLimits {
        max_bytes: 40,
        ..Default::default()
    };
    let found = search::search(&located, &query, limits).unwrap();
    assert_eq!(found.stopped_by, Some("bytes"));
    assert!(found.bytes_read <= 48, "{}", found.bytes_read);
    // The twin: within its bounds it searches everything.
    let limits = search::SearchLimits {
        max_matches: 500,
        ..Default::default()
    };
    let found = search::search(&located, &query, limits).unwrap();
    assert_eq!((found.matches.len(), found.stopped_by), (100, None));
}

/// A small range of a file is read without hashing the whole file; asked, the hash is the
/// whole file's; a read that returned the whole file has it for free.
#[test]
fn the_whole_file_is_hashed_only_when_read_whole_or_asked() {
    use sha2::Digest;
    let tree = Tree::new();
    let content = "x".repeat(10_000);
    fs::write(tree.root().join("big.txt"), &content).unwrap();
    let expected = hex::encode(sha2::Sha256::digest(content.as_bytes()));
    let roots = tree.roots(false);
    let located = roots.locate(&tree.path("big.txt")).unwrap();
    let small = Range::Bytes {
        offset: 0,
        length: 10,
    };
    let partial = read(&located, small, 100, false).unwrap();
    assert_eq!((partial.bytes, partial.sha256), (10, None));
    let asked = read(&located, small, 100, true).unwrap();
    assert_eq!(asked.sha256.as_deref(), Some(expected.as_str()));
    let whole = Range::Bytes {
        offset: 0,
        length: 20_000,
    };
    let whole = read(&located, whole, super::read::MAX_READ_BYTES, false).unwrap();
    assert_eq!(whole.sha256.as_deref(), Some(expected.as_str()));
}
