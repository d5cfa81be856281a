//! The resolver, on a real filesystem.

use super::*;

/// A temporary directory removed on drop; its path is canonical.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hostmcp-policy-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        Self(fs::canonicalize(&path).expect("canonical temp dir"))
    }
    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
    fn dir(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(&path).expect("create dir");
        path
    }
    fn executable(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
    fn str(&self, relative: &str) -> String {
        self.path(relative)
            .to_str()
            .expect("utf-8 temp dir")
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn canonical(path: &str) -> PathBuf {
    fs::canonicalize(path).expect("exists on the test machine")
}

fn request<'a>(argv: &'a [String], working_dir: Option<&'a Path>) -> CommandRequest<'a> {
    CommandRequest {
        principal_name: "alice",
        role: Role::Operator,
        // Leaked: a test's request lives as long as the test process.
        command: Box::leak(Box::new(CommandLine::Argv(argv.to_vec()))),
        working_dir,
        env: &[],
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// A policy allowing the real `ls` by its canonical path, resolved like the server does.
fn allow_ls() -> Policy {
    let text = "[policy]\n[[policy.allow]]\nprogram = \"/bin/ls\"";
    resolve_policy(parse(text).expect("parses"), &|_| Ok(())).expect("validates")
}

#[test]
fn a_symlink_named_like_an_allowed_program_is_judged_by_its_target() {
    let tmp = TempDir::new();
    symlink(canonical("/bin/rm"), tmp.path("ls")).expect("symlink");
    let argv = strings(&["ls", "-la"]);
    let policy = allow_ls();

    // Near miss first: the temp dir is first on PATH, so `ls` is rm.
    let path = format!("{}:/usr/bin:/bin", tmp.str(""));
    let evil = resolve(&request(&argv, None), &path).expect("resolves");
    assert_eq!(evil.program(), canonical("/bin/rm"));
    assert_eq!(evil.requested_program(), "ls");
    let denial = decide(&policy, &evil).into_result().expect_err("denied");
    assert_eq!(denial.rule(), "default");
    assert!(
        denial.reason().contains("(resolved from \"ls\")"),
        "{}",
        denial.reason()
    );

    let real = resolve(&request(&argv, None), "/usr/bin:/bin").expect("resolves");
    assert_eq!(real.program(), canonical("/bin/ls"));
    assert_eq!(decide(&policy, &real).rule(), "allow[0]");
}

#[test]
fn a_renamed_copy_is_judged_by_where_it_is() {
    let tmp = TempDir::new();
    fs::copy(canonical("/bin/rm"), tmp.path("ls")).expect("copy");
    let argv = strings(&["ls"]);
    let copy = resolve(&request(&argv, None), &tmp.str("")).expect("resolves");
    assert_eq!(copy.program(), tmp.path("ls"));
    assert_eq!(decide(&allow_ls(), &copy).rule(), "default");
    let real = resolve(&request(&argv, None), "/usr/bin").expect("resolves");
    assert_eq!(decide(&allow_ls(), &real).rule(), "allow[0]");
}

#[test]
fn working_dirs_on_disk_dotdot_and_symlinks_escaping_a_root() {
    let tmp = TempDir::new();
    tmp.dir("app/sub");
    tmp.dir("app2");
    tmp.dir("outside");
    symlink(tmp.path("outside"), tmp.path("app/link")).expect("symlink");
    symlink(tmp.path("app"), tmp.path("app-link")).expect("symlink");
    let text = format!(
        "[policy]\nworking_dirs = [\"{}\"]\n[[policy.allow]]\nprogram = \"/bin/ls\"",
        tmp.str("app-link")
    );
    let policy = resolve_policy(parse(&text).expect("parses"), &|_| Ok(())).expect("validates");
    let argv = strings(&["ls"]);
    let judge = |dir: &str| {
        let dir = tmp.path(dir);
        let resolved = resolve(&request(&argv, Some(&dir)), "/usr/bin").expect("resolves");
        decide(&policy, &resolved).rule().to_owned()
    };
    // The root is written as a symlink (app-link -> app); resolve_policy canonicalized it.
    for allowed in ["app", "app/sub", "app/sub/..", "app-link/sub"] {
        assert_eq!(judge(allowed), "allow[0]", "{allowed}");
    }
    for escaping in [
        "app2",
        "app/../outside",
        "app/link",
        "app/sub/../../outside",
        ".",
    ] {
        assert_eq!(judge(escaping), "working_dirs", "{escaping}");
    }
    // Without resolve_policy the symlinked root is compared as written and matches nothing.
    let unresolved =
        Policy::from_config(parse(&text).expect("parses").expect("table")).expect("validates");
    let dir = tmp.path("app/sub");
    let resolved = resolve(&request(&argv, Some(&dir)), "/usr/bin").expect("resolves");
    assert_eq!(decide(&unresolved, &resolved).rule(), "working_dirs");
}

#[test]
fn resolve_policy_canonicalizes_directories_and_deny_targets_but_never_widens_allows() {
    let tmp = TempDir::new();
    tmp.dir("real");
    tmp.dir("bin");
    tmp.executable("real/tool-1.2");
    symlink(tmp.path("real/tool-1.2"), tmp.path("bin/tool")).expect("symlink");
    symlink(tmp.path("real"), tmp.path("linkdir")).expect("symlink");
    let argv = strings(&["tool", "--version"]);
    let resolved = resolve(&request(&argv, None), &tmp.str("bin")).expect("resolves");
    assert_eq!(resolved.program(), tmp.path("real/tool-1.2"));
    let load =
        |text: &str| resolve_policy(parse(text).expect("parses"), &|_| Ok(())).expect("validates");
    let as_written = |text: &str| {
        Policy::from_config(parse(text).expect("parses").expect("table")).expect("validates")
    };

    // Directories are canonicalized, for allow and deny rules: a symlinked directory in a
    // pattern means its target. Compared as written, the same rules miss.
    for written in [
        format!("{}/*", tmp.str("linkdir")),
        format!("{}/tool-1.2", tmp.str("linkdir")),
    ] {
        let text = format!("[policy]\n[[policy.allow]]\nprogram = \"{written}\"");
        assert_eq!(
            decide(&load(&text), &resolved).rule(),
            "allow[0]",
            "{written}"
        );
        assert!(explain(&load(&text), &resolved).contains(&format!("program {written} (= ")));
        assert_eq!(
            decide(&as_written(&text), &resolved).rule(),
            "default",
            "{written}"
        );
    }

    // A deny rule naming an alias (bin/tool -> real/tool-1.2) denies the real binary;
    // an allow rule naming the alias does not allow it.
    let alias = tmp.str("bin/tool");
    let deny = format!("[policy]\ndefault = \"allow\"\n[[policy.deny]]\nprogram = \"{alias}\"");
    assert_eq!(decide(&load(&deny), &resolved).rule(), "deny[0]");
    assert_eq!(decide(&as_written(&deny), &resolved).rule(), "default");
    let allow = format!("[policy]\n[[policy.allow]]\nprogram = \"{alias}\"");
    assert_eq!(decide(&load(&allow), &resolved).rule(), "default");

    // The real system: `sh` is judged as what /bin/sh links to. A deny rule naming /bin/sh
    // catches it; an allow rule must name the canonical file.
    let sh = strings(&["sh", "-c", "id"]);
    let resolved = resolve(&request(&sh, None), "/usr/bin:/bin").expect("resolves");
    assert_eq!(resolved.program(), canonical("/bin/sh"));
    let deny = "[policy]\ndefault = \"allow\"\n[[policy.deny]]\nprogram = \"/bin/sh\"";
    assert_eq!(decide(&load(deny), &resolved).rule(), "deny[0]");
    let allow = format!(
        "[policy]\n[[policy.allow]]\nprogram = \"{}\"\nallow_interpreter = true",
        canonical("/bin/sh").display()
    );
    assert_eq!(decide(&load(&allow), &resolved).rule(), "allow[0]");
    assert_eq!(
        resolve_policy(None, &|_| Ok(())).map(|p| p.is_configured()),
        Ok(false)
    );
}

#[test]
fn shell_mode_resolves_to_the_canonical_shell() {
    let tmp = TempDir::new();
    let dir = tmp.dir("work");
    let resolved = resolve(
        &CommandRequest {
            principal_name: "ci",
            role: Role::Operator,
            command: &CommandLine::Shell("ls; rm -rf /".to_owned()),
            working_dir: Some(&dir),
            env: &[("LANG".to_owned(), "C".to_owned())],
        },
        "",
    )
    .expect("resolves");
    assert!(resolved.is_shell());
    assert_eq!(resolved.program(), canonical(SHELL));
    assert_eq!(resolved.args(), ["-c", "ls; rm -rf /"]);
    assert_eq!(resolved.working_dir(), Some(dir.as_path()));
    assert_eq!(resolved.env_names().collect::<Vec<_>>(), ["LANG"]);
    assert_eq!(
        (resolved.principal(), resolved.role()),
        ("ci", Role::Operator)
    );
}

#[test]
fn path_lookup_follows_execvp_without_the_current_directory() {
    let tmp = TempDir::new();
    tmp.dir("a");
    tmp.dir("b");
    tmp.executable("b/tool");
    fs::write(tmp.path("a/tool"), "not executable").expect("write");
    tmp.dir("c/tool");
    let argv = strings(&["tool"]);
    // A non-executable file and a directory of the same name are skipped.
    let path = format!("{}:{}:{}", tmp.str("a"), tmp.str("c"), tmp.str("b"));
    let found = resolve(&request(&argv, None), &path).expect("resolves");
    assert_eq!(found.program(), tmp.path("b/tool"));
    // Empty and relative entries do not mean the current directory.
    let near = resolve(&request(&argv, None), ":.:a");
    assert!(
        matches!(near, Err(ResolveError::NotFound { .. })),
        "{near:?}"
    );

    // A relative path is taken against the working dir, and needs one.
    let dot = strings(&["./tool"]);
    let dir = tmp.path("b");
    let found = resolve(&request(&dot, Some(&dir)), "").expect("resolves");
    assert_eq!(found.program(), tmp.path("b/tool"));
    let near = resolve(&request(&dot, None), "");
    assert!(
        matches!(near, Err(ResolveError::RelativeProgram { .. })),
        "{near:?}"
    );
}

#[test]
fn malformed_requests_are_resolve_errors() {
    let tmp = TempDir::new();
    let file = tmp.executable("file");
    let empty: Vec<String> = Vec::new();
    let nul = strings(&["ls", "a\0b"]);
    let ls = strings(&["ls"]);
    let not_exec = strings(&[tmp.str("plain").as_str()]);
    fs::write(tmp.path("plain"), "x").expect("write");
    let relative = PathBuf::from("srv/app");
    let missing = tmp.path("missing");
    let bad_env = [("A=B".to_owned(), "x".to_owned())];
    type Case<'a> = (CommandRequest<'a>, &'a str, fn(&ResolveError) -> bool);
    let cases: Vec<Case<'_>> = vec![
        (request(&empty, None), "/usr/bin", |e| {
            matches!(e, ResolveError::EmptyArgv)
        }),
        (request(&nul, None), "/usr/bin", |e| {
            matches!(e, ResolveError::NulByte { .. })
        }),
        (request(&ls, Some(&relative)), "/usr/bin", |e| {
            matches!(e, ResolveError::RelativeWorkingDir { .. })
        }),
        (request(&ls, Some(&missing)), "/usr/bin", |e| {
            matches!(e, ResolveError::WorkingDir { .. })
        }),
        (request(&ls, Some(&file)), "/usr/bin", |e| {
            matches!(e, ResolveError::NotADirectory { .. })
        }),
        (request(&not_exec, None), "/usr/bin", |e| {
            matches!(e, ResolveError::NotExecutable { .. })
        }),
        (request(&ls, None), "", |e| {
            matches!(e, ResolveError::NotFound { .. })
        }),
        (
            CommandRequest {
                env: &bad_env,
                ..request(&ls, None)
            },
            "/usr/bin",
            |e| matches!(e, ResolveError::BadEnvName { .. }),
        ),
    ];
    for (index, (request, path, expected)) in cases.into_iter().enumerate() {
        let error = resolve(&request, path).expect_err("fails");
        assert!(expected(&error), "case {index}: {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn a_program_not_found_names_the_program_not_the_servers_path() {
    let missing = strings(&["hostmcp-no-such-program"]);
    let search_path = "/opt/site-layout/bin:/usr/bin";
    let error = resolve(&request(&missing, None), search_path).expect_err("not found");
    let message = error.to_string();
    assert!(
        message.contains("program \"hostmcp-no-such-program\" was not found on this host"),
        "{message}"
    );
    assert!(
        !message.contains("/opt/site-layout") && !message.contains("PATH"),
        "{message}"
    );
    // The operator's view (`policy explain`) keeps the PATH that was searched.
    assert!(
        error
            .detail()
            .ends_with("(PATH searched: /opt/site-layout/bin:/usr/bin)"),
        "{}",
        error.detail()
    );
    // Near miss: a program that is there resolves through the same PATH.
    let ls = strings(&["ls"]);
    assert!(resolve(&request(&ls, None), search_path).is_ok());
}

/// F10 (red team): with `working_dirs`, a working dir outside the roots gets one answer
/// whether it exists, is a file, cannot be entered, or is missing; inside a root, the real
/// error stays (the near miss), and a dir inside a root is resolved as usual.
#[test]
fn a_working_dir_outside_the_roots_does_not_reveal_whether_it_exists() {
    let tmp = TempDir::new();
    tmp.dir("root/sub");
    tmp.dir("outside");
    fs::write(tmp.path("file"), "x").expect("write");
    let locked = tmp.dir("locked");
    let locked_in = tmp.dir("root/locked");
    for dir in [&locked, &locked_in] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let confined = policy(&format!(
        "[policy]\nworking_dirs = [{:?}]\n[[policy.allow]]\nprogram = \"/usr/bin/ls\"\n",
        tmp.str("root")
    ));
    let ls = strings(&["ls"]);
    let dot = strings(&["./tool"]);
    let refusal = |argv: &[String], dir: &str| {
        let dir = tmp.path(dir);
        match resolve_confined(&confined, &request(argv, Some(&dir)), "/usr/bin") {
            Err(error @ ResolveError::OutsideRoots(_)) => {
                assert_eq!(error.rule(), "working_dirs");
                error
                    .to_string()
                    .replace(dir.to_str().expect("utf-8"), "DIR")
            }
            other => panic!("{}: expected OutsideRoots, got {other:?}", dir.display()),
        }
    };
    let expected = format!(
        "denied by working_dirs ({}): working dir DIR is not inside an allowed root; pass a \
         working_dir that is a root or inside one, after `..` and symlinks are resolved.",
        tmp.str("root")
    );
    let root_user = nix::unistd::Uid::effective().is_root();
    let mut outside = vec![
        "outside",
        "missing",
        "missing/deeper",
        "file",
        "root/../outside",
    ];
    if !root_user {
        outside.push("locked");
    }
    for dir in outside {
        assert_eq!(refusal(&ls, dir), expected, "{dir}");
        // Nothing else is judged first: a program relative to it gets the same answer.
        assert_eq!(refusal(&dot, dir), expected, "{dir} with ./tool");
    }

    // Near misses: inside a root, a dir resolves, and a missing or locked one says so.
    let sub = tmp.path("root/sub");
    let found = resolve_confined(&confined, &request(&ls, Some(&sub)), "/usr/bin");
    assert_eq!(found.expect("inside").working_dir(), Some(sub.as_path()));
    let missing = tmp.path("root/missing");
    let error = resolve_confined(&confined, &request(&ls, Some(&missing)), "/usr/bin")
        .expect_err("missing");
    assert!(
        matches!(error, ResolveError::WorkingDir { .. }),
        "{error:?}"
    );
    assert_eq!(error.rule(), "resolve");
    if !root_user {
        let error = resolve_confined(&confined, &request(&ls, Some(&locked_in)), "/usr/bin")
            .expect_err("locked");
        assert!(
            error
                .to_string()
                .contains("cannot be entered: the server's user may not search"),
            "{error}"
        );
    }
    // An admin the policy does not bind gets the real error; one it binds does not.
    let missing = tmp.path("missing");
    let admin = CommandRequest {
        role: Role::Admin,
        ..request(&ls, Some(&missing))
    };
    let error = resolve_confined(&confined, &admin, "/usr/bin").expect_err("missing");
    assert!(
        matches!(error, ResolveError::WorkingDir { .. }),
        "{error:?}"
    );
    let restricted = policy(&format!(
        "[policy]\nrestrict_admin = true\nworking_dirs = [{:?}]\n",
        tmp.str("root")
    ));
    let error = resolve_confined(&restricted, &admin, "/usr/bin").expect_err("missing");
    assert!(matches!(error, ResolveError::OutsideRoots(_)), "{error:?}");
    // Without roots there is nothing to hide: the real errors.
    let open = Policy::permissive();
    let outside = tmp.path("missing");
    let error =
        resolve_confined(&open, &request(&ls, Some(&outside)), "/usr/bin").expect_err("missing");
    assert!(
        matches!(error, ResolveError::WorkingDir { .. }),
        "{error:?}"
    );
    if !root_user {
        // F10 (b): an unsearchable dir is reported as such, not as a program not executable.
        let error =
            resolve_confined(&open, &request(&ls, Some(&locked)), "/usr/bin").expect_err("locked");
        assert!(
            matches!(error, ResolveError::NotSearchable { .. }),
            "{error:?}"
        );
    }
    for dir in [&locked, &locked_in] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod back");
    }
}
