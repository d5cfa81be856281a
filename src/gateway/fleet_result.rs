//! The one result of `fleet_run`, for any number of hosts, within the result budget and in
//! the order an operator reads it (text and `structuredContent` have the same shape):
//!
//! 1. counts per outcome over every host run (`summary`), failures first;
//! 2. groups of hosts whose outcome, exit code, error and output are identical, as
//!    `dshbak -c` prints them (`web-[001-950] (950 hosts): ok`), failures first, each
//!    group's output cut to its share with a marker saying exactly what was left out;
//! 3. one row per host (`host`, `outcome`, `exit_code`, `duration_ms`, `group`), failures
//!    first, as many as fit; the rest are counted in `hosts_not_listed` (their outcome is in
//!    `summary` and their names in their group's ranges);
//! 4. groups that did not fit are counted (`groups_left_out`) and their hosts named as
//!    ranges (`left_out_hosts`), so a caller knows whom to ask again.
//!
//! The gateway keeps nothing: a fleet larger than one result is paged by running it in
//! windows of the matched hosts in name order (`hosts_offset`, `hosts_limit`; the result's
//! `next_offset` is where the next window starts), which any gateway can serve.

use std::collections::{BTreeMap, HashMap};

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

use super::{
    fan_out::{self, HostRun, Outcome},
    hostlist,
};
use crate::tools::result_budget;

/// Which hosts of the matched ones this run covered (all of them unless the call paged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Hosts the selector matched.
    pub matched: usize,
    /// The first matched host (in name order) this run covered.
    pub offset: usize,
}

/// Hosts that ended the same way with the same output.
#[derive(Debug, Serialize)]
pub struct Group {
    /// Its hosts as ranges (`web-[001-950]`), at most [`RANGES_CAP`] bytes (`+N more`).
    pub hosts: String,
    pub count: usize,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

/// One host's line.
#[derive(Debug, Serialize)]
pub struct Row {
    pub host: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub duration_ms: u64,
    /// Its group's index in `groups`; absent when that group did not fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
}

/// The structured result of `fleet_run`.
#[derive(Debug, Serialize)]
pub struct FleetRunOutput {
    /// Hosts run per outcome.
    pub summary: BTreeMap<Outcome, usize>,
    pub hosts_run: usize,
    pub hosts_matched: usize,
    pub hosts_offset: usize,
    /// Where the next window starts (`hosts_offset`), when hosts are left to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    pub groups: Vec<Group>,
    pub groups_left_out: usize,
    /// The hosts of the groups left out, as ranges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out_hosts: Option<String>,
    pub hosts: Vec<Row>,
    pub hosts_not_listed: usize,
}

/// Bytes of a group's host ranges.
const RANGES_CAP: usize = 240;
/// Bytes of the hosts of groups left out.
const LEFT_OUT_CAP: usize = 1024;
/// A group's own bytes besides its output, in text and structured content together.
const GROUP_OVERHEAD: usize = 2 * RANGES_CAP + 320;
/// Output bytes a group is listed with at least (else it is left out).
const GROUP_FLOOR: usize = 160;
/// A string's marker, when it is cut.
const MARKER_ROOM: usize = 96;

/// `runs` (the hosts of `window`) as one result within `budget` bytes.
pub fn shape(runs: Vec<HostRun>, window: Window, budget: usize) -> CallToolResult {
    let summary = fan_out::count(&runs);
    let mut runs = runs;
    runs.sort_by(|a, b| (a.outcome, &a.host).cmp(&(b.outcome, &b.host)));
    let (members, mut groups) = group(&runs);
    // Half the budget for the groups, three tenths for the rows, the rest for the lines
    // around them; `result_budget::fit` still guards the whole against JSON escaping.
    let shown = fit_groups(&mut groups, budget / 2);
    let group_of: HashMap<usize, usize> = members
        .iter()
        .take(shown)
        .enumerate()
        .flat_map(|(index, hosts)| hosts.iter().map(move |&run| (run, index)))
        .collect();
    let left_out_hosts = (shown < members.len()).then(|| {
        let names = members[shown..]
            .iter()
            .flatten()
            .map(|&run| runs[run].host.as_str());
        hostlist::compress(names, LEFT_OUT_CAP)
    });
    let groups_left_out = groups.len() - shown;
    groups.truncate(shown);
    let rows = rows(&runs, &group_of, budget * 3 / 10);
    let next = window.offset + runs.len();
    let output = FleetRunOutput {
        summary,
        hosts_run: runs.len(),
        hosts_matched: window.matched,
        hosts_offset: window.offset,
        next_offset: (next < window.matched).then_some(next),
        hosts_not_listed: runs.len() - rows.len(),
        groups,
        groups_left_out,
        left_out_hosts,
        hosts: rows,
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text(&output))]);
    result.structured_content = serde_json::to_value(&output).ok();
    // Hosts that failed are still an answer: the per-host outcomes say what happened.
    result_budget::fit(result, budget)
}

/// The groups of `runs` (sorted failures first), in that order, each with the indexes of
/// its runs; outputs are whole.
fn group(runs: &[HostRun]) -> (Vec<Vec<usize>>, Vec<Group>) {
    type Key<'a> = (Outcome, Option<i64>, Option<&'a str>, &'a str, &'a str);
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (at, run) in runs.iter().enumerate() {
        let key = (
            run.outcome,
            run.exit_code,
            run.error.as_deref(),
            run.stdout.as_str(),
            run.stderr.as_str(),
        );
        let next = members.len();
        let slot = *index.entry(key).or_insert(next);
        if slot == next {
            members.push(Vec::new());
        }
        members[slot].push(at);
    }
    // Failures first; within an outcome the biggest group first, then by first host.
    members.sort_by(|a, b| {
        let (first_a, first_b) = (&runs[a[0]], &runs[b[0]]);
        (first_a.outcome, std::cmp::Reverse(a.len()), &first_a.host).cmp(&(
            first_b.outcome,
            std::cmp::Reverse(b.len()),
            &first_b.host,
        ))
    });
    let groups = members
        .iter()
        .map(|hosts| {
            let run = &runs[hosts[0]];
            Group {
                hosts: hostlist::compress(
                    hosts.iter().map(|&at| runs[at].host.as_str()),
                    RANGES_CAP,
                ),
                count: hosts.len(),
                outcome: run.outcome,
                exit_code: run.exit_code,
                error: run.error.clone(),
                stdout: run.stdout.clone(),
                stderr: run.stderr.clone(),
            }
        })
        .collect();
    (members, groups)
}

/// How many of `groups` are listed within `room` bytes, their outputs cut to fit (each
/// output appears twice: text and structured content).
fn fit_groups(groups: &mut [Group], room: usize) -> usize {
    let mut shown = 0;
    let mut used = 0;
    for group in groups.iter() {
        let need = GROUP_OVERHEAD + 2 * output_len(group).min(GROUP_FLOOR);
        if used + need > room {
            break;
        }
        used += need;
        shown += 1;
    }
    let room = room.saturating_sub(shown * GROUP_OVERHEAD) / 2;
    let needs: Vec<usize> = groups[..shown].iter().map(output_len).collect();
    let share = water_level(&needs, room);
    for group in &mut groups[..shown] {
        cut_group(group, share);
    }
    shown
}

fn output_len(group: &Group) -> usize {
    group.stdout.len() + group.stderr.len() + group.error.as_ref().map_or(0, String::len)
}

/// The largest cap such that the `needs`, each cut to it, sum to at most `room`
/// (`usize::MAX` when all of them fit whole).
fn water_level(needs: &[usize], room: usize) -> usize {
    if needs.iter().sum::<usize>() <= room {
        return usize::MAX;
    }
    let mut sorted = needs.to_vec();
    sorted.sort_unstable();
    let mut left = room;
    for (at, need) in sorted.iter().enumerate() {
        let rest = sorted.len() - at;
        if need * rest > left {
            return left / rest;
        }
        left -= need;
    }
    usize::MAX
}

/// `group`'s error, stdout and stderr within `share` bytes together, each cut string with
/// its marker.
fn cut_group(group: &mut Group, share: usize) {
    if output_len(group) <= share {
        return;
    }
    let mut strings: Vec<&mut String> = [&mut group.stdout, &mut group.stderr]
        .into_iter()
        .chain(group.error.as_mut())
        .collect();
    let needs: Vec<usize> = strings.iter().map(|text| text.len()).collect();
    let cap = water_level(&needs, share);
    for text in &mut strings {
        if text.len() > cap {
            let keep = cap.saturating_sub(MARKER_ROOM);
            **text = result_budget::head_and_tail(text, keep).0;
        }
    }
}

/// One row per run in order, as many as serialize within `room` bytes.
fn rows(runs: &[HostRun], group_of: &HashMap<usize, usize>, room: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut used = 0;
    for (at, run) in runs.iter().enumerate() {
        let row = Row {
            host: run.host.clone(),
            outcome: run.outcome,
            exit_code: run.exit_code,
            duration_ms: run.duration_ms,
            group: group_of.get(&at).copied(),
        };
        used += serde_json::to_vec(&row).map_or(room, |bytes| bytes.len() + 1);
        if used > room {
            break;
        }
        rows.push(row);
    }
    rows
}

/// The text content: the same parts in the same order.
fn text(output: &FleetRunOutput) -> String {
    let mut text = format!(
        "{} hosts: {}\n",
        output.hosts_run,
        fan_out::summary_line(&output.summary)
    );
    if output.hosts_run < output.hosts_matched {
        text.push_str(&format!(
            "(hosts {}-{} of the {} matched, in name order",
            output.hosts_offset,
            output.hosts_offset + output.hosts_run.saturating_sub(1),
            output.hosts_matched
        ));
        match output.next_offset {
            Some(next) => text.push_str(&format!("; next window: hosts_offset={next})\n")),
            None => text.push_str(")\n"),
        }
    }
    for group in &output.groups {
        let hosts = if group.count == 1 { "host" } else { "hosts" };
        text.push_str(&format!(
            "\n== {} ({} {hosts}): {}",
            group.hosts,
            group.count,
            group.outcome.as_str()
        ));
        if let Some(code) = group.exit_code {
            text.push_str(&format!(" (exit {code})"));
        }
        text.push('\n');
        if let Some(error) = &group.error {
            push_line(&mut text, "", error);
        }
        if !group.stdout.is_empty() {
            push_line(&mut text, "", &group.stdout);
        }
        if !group.stderr.is_empty() {
            push_line(&mut text, "stderr: ", &group.stderr);
        }
    }
    if let Some(hosts) = &output.left_out_hosts {
        text.push_str(&format!(
            "\n{} more groups not shown (outputs differ), hosts: {hosts}. Ask them again with \
             a narrower selector or one host's run_command.\n",
            output.groups_left_out
        ));
    }
    text
}

fn push_line(text: &mut String, label: &str, line: &str) {
    text.push_str(label);
    text.push_str(line);
    if !line.ends_with('\n') {
        text.push('\n');
    }
}

#[cfg(test)]
mod tests;
