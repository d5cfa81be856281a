//! Globs over names, paths and argument lists.

use super::*;

#[test]
fn globs_match_whole_strings() {
    use super::glob::Glob;
    let cases = [
        ("status", "status", true),
        ("status", "statusx", false),
        ("status", "xstatus", false),
        ("*", "", true),
        ("*", "nginx; reboot", true),
        ("-c*", "-c", true),
        ("-c*", "-calias.x=!sh", true),
        ("-c*", "x-c", false),
        ("--exec-path*", "--exec-path=/tmp", true),
        ("?", "", false),
        ("?", "é", true),
        ("a?c", "abc", true),
        ("a?c", "abbc", false),
        ("*.log", "a.log", true),
        ("*.log", "a.log.gz", false),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
        ("[ab]", "a", false),
        ("[ab]", "[ab]", true),
        ("\\*", "\\anything", true),
        ("**", "x", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            Glob::new(pattern).matches(text),
            expected,
            "{pattern:?} vs {text:?}"
        );
    }
}

#[test]
fn glob_lists_match_element_wise_with_a_final_rest() {
    use super::glob::GlobList;
    let cases: [(&[&str], &[&str], bool); 9] = [
        (&["status", "*"], &["status", "nginx"], true),
        (&["status", "*"], &["status"], false),
        (&["status", "*"], &["status", "a", "b"], false),
        (&["-rf", "**"], &["-rf"], true),
        (&["-rf", "**"], &["-rf", "/", "x"], true),
        (&["-rf", "**"], &["-r", "-f", "/"], false),
        (&["**"], &[], true),
        (&[], &[], true),
        (&[], &["x"], false),
    ];
    for (patterns, items, expected) in cases {
        let list = GlobList::parse(patterns).expect("valid");
        assert_eq!(list.matches(items), expected, "{patterns:?} vs {items:?}");
    }
    assert_eq!(
        GlobList::parse(&["**", "x"]).map(|_| ()),
        Err(glob::MisplacedRest { index: 0 })
    );
    assert_eq!(
        GlobList::parse(&["a**"]).map(|_| ()),
        Err(glob::MisplacedRest { index: 0 })
    );
}
