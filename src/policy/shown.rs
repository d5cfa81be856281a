//! How a caller's arguments appear in what the policy writes (denials, `explain`, argument
//! mismatches): each quoted, and shortened so that a huge argument cannot flood a message.

/// The longest rendering of an argument list in a message, in characters.
pub(super) const SHOWN_ARGS_CHARS: usize = 300;
/// The longest rendering of one argument in a message, in characters.
const SHOWN_ARG_CHARS: usize = 100;

/// One argument quoted, shortened past [`SHOWN_ARG_CHARS`].
pub(super) fn show_arg(arg: &str) -> String {
    match arg.char_indices().nth(SHOWN_ARG_CHARS) {
        Some((end, _)) => format!("{:?}...", &arg[..end]),
        None => format!("{arg:?}"),
    }
}

/// `["a", "b", ... 3 more]`, shortened past [`SHOWN_ARGS_CHARS`].
pub(super) fn show_args(args: &[String]) -> String {
    let mut shown = Vec::new();
    let mut used = 0;
    for arg in args {
        let quoted = show_arg(arg);
        if used + quoted.len() > SHOWN_ARGS_CHARS {
            break;
        }
        used += quoted.len() + 2;
        shown.push(quoted);
    }
    let left = args.len() - shown.len();
    if left > 0 {
        shown.push(format!("... {left} more"));
    }
    format!("[{}]", shown.join(", "))
}
