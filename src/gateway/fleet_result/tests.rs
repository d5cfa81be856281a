use serde_json::{Value, json};

use super::*;

fn run(host: &str, outcome: Outcome, exit_code: Option<i64>, stdout: &str) -> HostRun {
    HostRun {
        host: host.to_owned(),
        outcome,
        exit_code,
        stdout: stdout.to_owned(),
        stderr: String::new(),
        error: None,
        duration_ms: 3,
    }
}

fn all(count: usize) -> Window {
    Window {
        matched: count,
        offset: 0,
    }
}

fn text_of(result: &CallToolResult) -> &str {
    let ContentBlock::Text(text) = &result.content[0] else {
        panic!("no text block")
    };
    &text.text
}

/// `count` hosts: every 10th fails (exit 2, a few distinct messages), every 50th times out,
/// every 97th is offline, every 7th ok one prints 200 KB; the rest print the same line.
fn varied(count: usize) -> Vec<HostRun> {
    let big = "y".repeat(200_000);
    (0..count)
        .map(|i| {
            let host = format!("web-{i:05}");
            if i % 97 == 0 {
                let mut offline = run(&host, Outcome::Offline, None, "");
                // Real offline errors name their host, so they do not group yet (left to do).
                offline.error = Some("offline (last beat 7 s ago)".to_owned());
                offline
            } else if i % 50 == 0 {
                run(&host, Outcome::TimedOut, None, "partial\n")
            } else if i % 10 == 0 {
                let mut failed = run(&host, Outcome::Failed, Some(2), "");
                failed.stderr = format!("disk {} full\n{}", i % 3, "z".repeat(30_000));
                failed
            } else if i % 7 == 0 {
                run(&host, Outcome::Ok, Some(0), &big)
            } else {
                run(
                    &host,
                    Outcome::Ok,
                    Some(0),
                    "up 1 day, load average: 0.00\n",
                )
            }
        })
        .collect()
}

fn check_fits_failures_first(count: usize) {
    let budget = 100_000;
    let result = shape(varied(count), all(count), budget);
    let size = result_budget::serialized_len(&result);
    assert!(size <= budget, "{count} hosts: {size} bytes");
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    let structured = result.structured_content.clone().unwrap();
    let summary = structured["summary"].as_object().unwrap();
    let total: u64 = summary.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, count as u64);
    let groups = structured["groups"].as_array().unwrap();
    let outcomes: Vec<&str> = groups
        .iter()
        .map(|group| group["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[0], "failed", "{outcomes:?}");
    let first_ok = outcomes.iter().position(|o| *o == "ok").unwrap();
    assert!(
        outcomes[first_ok..].iter().all(|o| *o == "ok"),
        "{outcomes:?}"
    );
    // Identical outputs are one group, its hosts as ranges.
    let same = groups
        .iter()
        .find(|group| group["stdout"] == "up 1 day, load average: 0.00\n")
        .unwrap();
    assert!(same["count"].as_u64().unwrap() > count as u64 / 2);
    assert!(
        same["hosts"].as_str().unwrap().starts_with("web-["),
        "{same}"
    );
    // A big output is cut with a marker saying what was left out.
    let big = groups
        .iter()
        .find(|group| group["stdout"].as_str().unwrap().starts_with("yyy"))
        .unwrap();
    assert!(big["stdout"].as_str().unwrap().contains("omitted"), "{big}");
    // Every host is accounted for: listed, or counted as not listed.
    let rows = structured["hosts"].as_array().unwrap();
    assert_eq!(
        rows.len() as u64 + structured["hosts_not_listed"].as_u64().unwrap(),
        count as u64
    );
    assert_eq!(rows[0]["outcome"], "failed");
    let text = text_of(&result);
    assert!(
        text.starts_with(&format!("{count} hosts: failed ")),
        "{text:.200}"
    );
    let failed_at = text.find(": failed (exit 2)").unwrap();
    let ok_at = text.find(": ok (exit 0)").unwrap();
    assert!(failed_at < ok_at);
}

#[test]
fn a_thousand_hosts_fit_the_budget_failures_first_identical_outputs_grouped() {
    check_fits_failures_first(1000);
}

#[test]
fn ten_thousand_hosts_fit_the_budget_too() {
    check_fits_failures_first(10_000);
}

#[test]
fn ten_thousand_distinct_outputs_fit_and_say_which_hosts_were_left_out() {
    let count = 10_000;
    let runs: Vec<HostRun> = (0..count)
        .map(|i| {
            let outcome = if i % 2 == 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            };
            let code = if i % 2 == 0 { 1 } else { 0 };
            run(
                &format!("n{i}"),
                outcome,
                Some(code),
                &format!("{i}\n{}", "q".repeat(900)),
            )
        })
        .collect();
    let budget = 100_000;
    let result = shape(runs, all(count), budget);
    assert!(result_budget::serialized_len(&result) <= budget);
    assert_ne!(result.is_error, Some(true));
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["summary"], json!({"failed": 5000, "ok": 5000}));
    let shown = structured["groups"].as_array().unwrap().len() as u64;
    assert!(shown > 10, "{shown} groups");
    assert_eq!(
        structured["groups_left_out"].as_u64().unwrap() + shown,
        10_000
    );
    let left_out = structured["left_out_hosts"].as_str().unwrap();
    assert!(
        left_out.starts_with("n[") && left_out.len() <= 1024,
        "{left_out}"
    );
    assert!(
        structured["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["outcome"] == "failed")
    );
}

#[test]
fn a_few_hosts_are_each_listed_whole_in_outcome_then_name_order() {
    let mut offline = run("db1", Outcome::Offline, None, "");
    offline.error = Some("gone".to_owned());
    let runs = vec![
        run("web2", Outcome::Failed, Some(1), "no"),
        run("web1", Outcome::Ok, Some(0), "12:00 up 3 days"),
        offline,
    ];
    let result = shape(runs, all(3), 100_000);
    let structured = result.structured_content.clone().unwrap();
    assert_eq!(
        structured["summary"],
        json!({"ok": 1, "failed": 1, "offline": 1})
    );
    let hosts: Vec<&str> = structured["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| host["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["web2", "db1", "web1"]);
    assert_eq!(structured["groups"][2]["stdout"], "12:00 up 3 days");
    assert_eq!(structured["hosts"][2]["group"], 2);
    assert_eq!(structured["hosts_not_listed"], 0);
    assert_eq!(structured["groups_left_out"], 0);
    assert!(structured.get("next_offset").is_none());
    let text = text_of(&result);
    assert!(
        text.starts_with(
            "3 hosts: failed 1, offline 1, ok 1\n\n== web2 (1 host): failed (exit 1)\nno\n"
        ),
        "{text}"
    );
    assert!(text.contains("== db1 (1 host): offline\ngone\n"), "{text}");
}

#[test]
fn a_window_says_where_the_next_one_starts() {
    let runs: Vec<HostRun> = (100..200)
        .map(|i| run(&format!("h{i}"), Outcome::Ok, Some(0), "same"))
        .collect();
    let middle = shape(
        runs,
        Window {
            matched: 300,
            offset: 100,
        },
        100_000,
    );
    let structured: Value = middle.structured_content.clone().unwrap();
    assert_eq!(structured["next_offset"], 200);
    assert_eq!(structured["groups"][0]["hosts"], "h[100-199]");
    assert!(
        text_of(&middle).contains(
            "(hosts 100-199 of the 300 matched, in name order; next window: hosts_offset=200)"
        ),
        "{}",
        text_of(&middle)
    );
    // The near miss: the last window has no next one.
    let runs: Vec<HostRun> = (200..300)
        .map(|i| run(&format!("h{i}"), Outcome::Ok, Some(0), "same"))
        .collect();
    let last = shape(
        runs,
        Window {
            matched: 300,
            offset: 200,
        },
        100_000,
    );
    assert!(
        last.structured_content
            .unwrap()
            .get("next_offset")
            .is_none()
    );
}

#[test]
fn the_water_level_keeps_small_needs_whole() {
    assert_eq!(water_level(&[10, 20], 30), usize::MAX);
    assert_eq!(water_level(&[10, 100, 100], 110), 50);
    assert_eq!(water_level(&[100, 100], 10), 5);
}
