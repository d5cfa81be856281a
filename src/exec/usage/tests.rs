use crate::exec::test_support::{run_ok, sh};

#[tokio::test]
async fn a_command_that_touches_64_mib_reports_at_least_that_and_true_reports_little() {
    let big = run_ok(sh(
        "python3 -c 'b = bytearray(64 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096])'",
    ))
    .await;
    assert!(big.is_success(), "{}", big.stderr.to_text());
    let usage = big.usage.expect("usage reported");
    assert!(
        usage.peak_memory_bytes >= 64 * 1024 * 1024,
        "{}",
        usage.describe()
    );
    let small = run_ok(sh("true")).await.usage.expect("usage reported");
    assert!(
        small.peak_memory_bytes < 32 * 1024 * 1024,
        "{}",
        small.describe()
    );
}

#[tokio::test]
async fn cpu_time_counts_the_children_the_shell_waited_for() {
    // A child spins for ~0.3 s of CPU; the shell itself uses almost none.
    let spun = run_ok(sh(
        "python3 -c 'import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass'; true",
    ))
    .await;
    assert!(spun.is_success(), "{}", spun.stderr.to_text());
    let usage = spun.usage.expect("usage reported");
    assert!(usage.cpu_time.as_millis() >= 300, "{}", usage.describe());
}

#[tokio::test]
async fn a_command_killed_on_timeout_still_reports_usage() {
    let spec =
        crate::exec::CommandSpec::shell_for_test("sleep 30", std::time::Duration::from_millis(200));
    let outcome = run_ok(spec).await;
    assert!(outcome.timed_out);
    assert!(outcome.usage.is_some());
}
