//! Host names compressed into ranges, as `pdsh`/`dshbak -c` print them: `web-[001-950,952]`
//! for `web-001` … `web-950` and `web-952`, names without a trailing number as they are.
//! This file owns only that notation and its byte cap (past the cap: `+N more`).

use std::collections::BTreeMap;

/// One name split at its trailing digits: `web-` and `007`.
fn split(name: &str) -> (&str, Option<&str>) {
    let digits = name.len() - name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == name.len() {
        (name, None)
    } else {
        (&name[..digits], Some(&name[digits..]))
    }
}

/// One run of consecutive numbers of the same width under one prefix.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: u128,
    last: u128,
    width: usize,
}

impl Run {
    fn render(self) -> String {
        let width = self.width;
        if self.first == self.last {
            format!("{:0width$}", self.first)
        } else {
            format!("{:0width$}-{:0width$}", self.first, self.last)
        }
    }

    fn hosts(self) -> usize {
        usize::try_from(self.last - self.first + 1).unwrap_or(usize::MAX)
    }
}

/// A prefix's hosts as runs (`web-` and `001-950`, `952`), or one name without a number
/// (an empty prefix and the name as its only run).
#[derive(Debug)]
struct Piece {
    prefix: String,
    runs: Vec<(String, usize)>,
}

/// `names` as ranges, at most about `cap` bytes: whole pieces (one prefix each) until the
/// next would pass the cap, then `+N more` with the hosts left out. Duplicates count once.
pub fn compress<'a>(names: impl IntoIterator<Item = &'a str>, cap: usize) -> String {
    // Prefix → width → numbers; and the names without a trailing number.
    let mut numbered: BTreeMap<&str, BTreeMap<usize, Vec<u128>>> = BTreeMap::new();
    let mut plain: Vec<&str> = Vec::new();
    for name in names {
        match split(name) {
            (prefix, Some(digits)) if digits.len() <= 38 => {
                let number = digits.parse::<u128>().unwrap_or_default();
                // Runs join numbers of one width: `web-001`..`web-950`, not `web1` and `web01`.
                let width = digits.len();
                numbered
                    .entry(prefix)
                    .or_default()
                    .entry(width)
                    .or_default()
                    .push(number);
            }
            _ => plain.push(name),
        }
    }
    let mut pieces = Vec::new();
    for (prefix, widths) in numbered {
        let mut runs: Vec<Run> = Vec::new();
        for (width, mut numbers) in widths {
            numbers.sort_unstable();
            numbers.dedup();
            for number in numbers {
                match runs.last_mut() {
                    Some(run) if run.width == width && run.last + 1 == number => run.last = number,
                    _ => runs.push(Run {
                        first: number,
                        last: number,
                        width,
                    }),
                }
            }
        }
        pieces.push(Piece {
            prefix: prefix.to_owned(),
            runs: runs.iter().map(|run| (run.render(), run.hosts())).collect(),
        });
    }
    plain.sort_unstable();
    plain.dedup();
    pieces.extend(plain.into_iter().map(|name| Piece {
        prefix: String::new(),
        runs: vec![(name.to_owned(), 1)],
    }));
    render(&pieces, cap)
}

/// Room kept for ` +N more`.
const MORE_ROOM: usize = 24;

fn render(pieces: &[Piece], cap: usize) -> String {
    let total: usize = pieces
        .iter()
        .flat_map(|piece| &piece.runs)
        .map(|(_, hosts)| hosts)
        .sum();
    let mut text = String::new();
    let mut shown = 0;
    'pieces: for piece in pieces {
        let mut inner: Vec<&str> = Vec::new();
        let mut hosts = 0;
        for (run, count) in &piece.runs {
            let after = text.len()
                + usize::from(!text.is_empty())
                + piece.prefix.len()
                + 2
                + inner.iter().map(|run| run.len() + 1).sum::<usize>()
                + run.len();
            let more = if shown + hosts + count < total {
                MORE_ROOM
            } else {
                0
            };
            if after + more > cap {
                push_piece(&mut text, &piece.prefix, &inner, hosts);
                shown += hosts;
                break 'pieces;
            }
            inner.push(run);
            hosts += count;
        }
        push_piece(&mut text, &piece.prefix, &inner, hosts);
        shown += hosts;
    }
    if shown < total {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("+{} more", total - shown));
    }
    text
}

/// `prefix[runs]`, or `prefix<run>` for a single host, after a comma when not first.
fn push_piece(text: &mut String, prefix: &str, runs: &[&str], hosts: usize) {
    if runs.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push(',');
    }
    text.push_str(prefix);
    if hosts == 1 || prefix.is_empty() {
        text.push_str(runs[0]);
    } else {
        text.push('[');
        text.push_str(&runs.join(","));
        text.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(names: &[&str]) -> String {
        compress(names.iter().copied(), 1000)
    }

    #[test]
    fn consecutive_numbers_become_ranges_and_gaps_split_them() {
        let names: Vec<String> = (1..=950)
            .chain([952])
            .map(|i| format!("web-{i:03}"))
            .collect();
        assert_eq!(
            compress(names.iter().map(String::as_str), 100),
            "web-[001-950,952]"
        );
        assert_eq!(ranges(&["db1", "db2", "db3", "db10"]), "db[1-3,10]");
        assert_eq!(ranges(&["web-07"]), "web-07");
    }

    #[test]
    fn prefixes_widths_and_plain_names_stay_apart() {
        assert_eq!(
            ranges(&["web01", "web02", "web1", "db2", "gateway", "alpha", "web01"]),
            "db2,web[1,01-02],alpha,gateway"
        );
    }

    #[test]
    fn past_the_cap_the_rest_is_counted_not_named() {
        let names: Vec<String> = (0..5000).map(|i| format!("h{}-x{}", i, i * 2)).collect();
        let text = compress(names.iter().map(String::as_str), 200);
        assert!(text.len() <= 200, "{} bytes: {text}", text.len());
        let (shown, more) = text.rsplit_once(" +").unwrap();
        let more: usize = more.strip_suffix(" more").unwrap().parse().unwrap();
        assert_eq!(shown.split(',').count() + more, 5000, "{text}");
        // One prefix with many runs is cut between runs, the rest counted.
        let odd: Vec<String> = (0..5000).step_by(2).map(|i| format!("n{i}")).collect();
        let text = compress(odd.iter().map(String::as_str), 100);
        assert!(text.len() <= 100, "{text}");
        assert!(text.starts_with("n[0,2,4,"), "{text}");
        let (shown, more) = text.rsplit_once(" +").unwrap();
        let more: usize = more.strip_suffix(" more").unwrap().parse().unwrap();
        assert_eq!(shown.split(',').count() + more, 2500, "{text}");
        // The near miss: everything fits, nothing is counted away.
        assert!(!compress(names[..3].iter().map(String::as_str), 200).contains("more"));
    }
}
