//! The known bypass programs and `deny_interpreters`.

use super::*;

/// Requests that run `rm -rf /` (or any command) through a program that may look harmless,
/// as canonical paths on Debian.
fn bypasses() -> Vec<(ResolvedRequest, &'static str)> {
    vec![
        (
            argv("/usr/bin/env", &["rm", "-rf", "/"]).named("env"),
            "env",
        ),
        (
            argv(
                "/usr/bin/find",
                &["/srv/app", "-exec", "rm", "-rf", "/", ";"],
            ),
            "find",
        ),
        (
            argv("/usr/bin/git", &["-c", "alias.x=!sh -c id", "x"]),
            "git",
        ),
        (
            argv("/usr/bin/dash", &["-c", "rm -rf /"]).named("sh"),
            "dash",
        ),
        (argv("/usr/bin/bash", &["-c", "rm -rf /"]), "bash"),
        (
            argv("/usr/bin/python3.11", &["-c", "import os; os.system('id')"]).named("python3"),
            "python*",
        ),
        (argv("/usr/bin/xargs", &["rm", "-rf"]), "xargs"),
        (argv("/usr/bin/sudo", &["rm", "-rf", "/"]), "sudo"),
        (argv("/usr/bin/su", &["-c", "id"]), "su"),
        (argv("/usr/bin/doas", &["id"]), "doas"),
        (argv("/usr/bin/nohup", &["id"]), "nohup"),
        (argv("/usr/bin/setsid", &["id"]), "setsid"),
        (argv("/usr/bin/timeout", &["5", "id"]), "timeout"),
        (argv("/usr/bin/nice", &["id"]), "nice"),
        (argv("/usr/bin/strace", &["id"]), "strace"),
        (
            argv("/usr/bin/perl5.36.0", &["-e", "system 'id'"]).named("perl"),
            "perl*",
        ),
        (
            argv("/usr/bin/mawk", &["BEGIN{system(\"id\")}"]).named("awk"),
            "mawk",
        ),
        (argv("/usr/bin/busybox", &["sh", "-c", "id"]), "busybox"),
    ]
}

#[test]
fn allowing_a_bypass_program_allows_arbitrary_commands() {
    // With the net off, a broad allow permits every one of these: the policy sees `env`,
    // `find`, `git`, not the `rm` they run. With the net on (the default under
    // default = "deny"), the same requests are denied by deny_interpreters.
    let pairs = bypasses()
        .into_iter()
        .map(|(request, entry)| Pair {
            name: entry,
            policy: BROAD_NO_NET,
            allowed: request.clone(),
            permit_rule: "allow[0]",
            near_miss_policy: Some(BROAD),
            near_misses: vec![(
                request,
                "deny_interpreters",
                "so allowing it would allow any command",
            )],
        })
        .collect();
    check_pairs(pairs);
    for (request, entry) in bypasses() {
        let found = bypass_program(request.program()).map(|bypass| bypass.name);
        assert_eq!(found, Some(entry), "{}", request.program().display());
    }
}

#[test]
fn bypass_list_is_by_file_name_and_spares_ordinary_programs() {
    check_pairs(vec![Pair {
        name: "ordinary programs pass the net",
        policy: BROAD,
        allowed: argv("/usr/bin/systemctl", &["restart", "nginx"]),
        permit_rule: "allow[0]",
        near_miss_policy: None,
        near_misses: vec![(
            argv("/usr/bin/env", &["systemctl", "restart", "nginx"]),
            "deny_interpreters",
            "built-in entry \"env\"",
        )],
    }]);
    for (loader, entry) in [
        (
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "ld-linux*",
        ),
        ("/usr/lib/ld-musl-x86_64.so.1", "ld-musl*"),
        ("/usr/bin/python3-config", "python*"),
    ] {
        let found = bypass_program(Path::new(loader)).map(|bypass| bypass.name);
        assert_eq!(found, Some(entry), "{loader}");
    }
    for ordinary in [
        "/usr/bin/ls",
        "/usr/bin/systemctl",
        "/usr/bin/envsubst",
        "/usr/bin/shred",
    ] {
        assert_eq!(bypass_program(Path::new(ordinary)), None, "{ordinary}");
    }
}

#[test]
fn allow_interpreter_is_needed_and_args_still_bind() {
    check_pairs(vec![
        Pair {
            name: "find with fixed args allowed; -exec is not in them",
            policy: OPS,
            allowed: argv("/usr/bin/find", &["/srv/app", "-name", "*.log"]),
            permit_rule: "allow[4]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv(
                        "/usr/bin/find",
                        &["/srv/app", "-name", "x", "-exec", "sh", ";"],
                    ),
                    "deny_interpreters",
                    "-exec, -execdir, -ok and -okdir run any command",
                ),
                (
                    argv("/usr/bin/find", &["/srv/app", "-exec", "sh", ";"]),
                    "deny_interpreters",
                    "allow_interpreter = true",
                ),
                // Only an option kept allow[4] from matching: the denial says which.
                (
                    argv("/usr/bin/find", &["/srv/app", "-name", "-exec"]),
                    "deny_interpreters",
                    "allow_interpreter = true. In allow[4], argv[3] \"-exec\" is an option",
                ),
            ],
        },
        Pair {
            name: "an allow rule without allow_interpreter does not allow a bypass program",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/env"
                [[policy.allow]]
                program = "/usr/bin/env"
                args = ["LANG=C", "/usr/bin/ls"]
                allow_interpreter = true
            "#,
            allowed: argv("/usr/bin/env", &["LANG=C", "/usr/bin/ls"]),
            permit_rule: "allow[1]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/env", &["rm", "-rf", "/"]),
                "deny_interpreters",
                "runs its arguments as a command",
            )],
        },
    ]);
}
