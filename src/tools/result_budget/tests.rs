use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::json;

use super::*;

fn text_of(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("a text block").text
}

#[test]
fn a_result_within_the_budget_is_unchanged() {
    let mut result = CallToolResult::success(vec![ContentBlock::text("x".repeat(1000))]);
    result.structured_content = Some(json!({"stdout": "y".repeat(1000), "exit_code": 0}));
    let size = serialized_len(&result);
    assert_eq!(
        size,
        serde_json::to_vec(&result).unwrap().len(),
        "the bytes on the wire"
    );
    assert_eq!(fit(result.clone(), size), result, "exactly at the budget");
}

#[test]
fn a_result_one_byte_over_is_cut_to_the_budget_with_exact_counts() {
    let line = "0123456789abcdef\n";
    let body = line.repeat(10_000); // 170,000 bytes, 10,000 lines
    let mut result = CallToolResult::success(vec![ContentBlock::text(body.clone())]);
    result.structured_content =
        Some(json!({"stdout": body, "exit_code": 0, "job_id": "j".repeat(300)}));
    for budget in [serialized_len(&result) - 1, 100 * 1024, 20_000, 4_000] {
        let fitted = fit(result.clone(), budget);
        assert!(serialized_len(&fitted) <= budget, "budget {budget}");
        assert_ne!(fitted.is_error, Some(true), "budget {budget}");
        let text = text_of(&fitted);
        assert!(
            text.starts_with(line) && text.contains("lines) omitted here"),
            "{budget}"
        );
        assert!(text.contains("result budget of"), "says why");
        // The structured part keeps its shape: same keys, a string still a string.
        let structured = fitted.structured_content.as_ref().unwrap();
        assert_eq!(structured["exit_code"], 0);
        assert!(
            structured["stdout"]
                .as_str()
                .unwrap()
                .contains("omitted here")
        );
    }
}

#[test]
fn head_and_tail_counts_exactly_what_it_omits() {
    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    let (shown, omitted) = head_and_tail(&text, 400);
    let marker = omitted.marker();
    let (head, tail) = shown.split_once(&marker).expect("one marker");
    assert_eq!(head.len() + tail.len() + omitted.bytes as usize, text.len());
    assert!(text.starts_with(head) && text.ends_with(tail));
    let cut = &text[head.len()..text.len() - tail.len()];
    assert_eq!(omitted.lines, count_lines(cut.as_bytes()));
    assert!(head.len() + tail.len() <= 400);
    assert_eq!(
        head_and_tail("short", 400),
        ("short".to_owned(), Omitted::default())
    );
}

#[test]
fn cuts_fall_on_character_boundaries() {
    let text = "é€😀".repeat(5_000);
    for keep in [0, 1, 2, 3, 5, 99, 1000] {
        let (shown, omitted) = head_and_tail(&text, keep);
        assert!(shown.len() <= keep + omitted.marker().len(), "keep {keep}");
    }
}

#[test]
fn escapes_count_against_the_budget() {
    // Each control byte is six bytes on the wire.
    let body = "\u{1}".repeat(50_000);
    let mut result = CallToolResult::success(vec![ContentBlock::text(body.clone())]);
    result.structured_content = Some(json!({"stdout": body}));
    let fitted = fit(result, 10_000);
    assert!(serialized_len(&fitted) <= 10_000);
    assert_ne!(fitted.is_error, Some(true));
}

#[test]
fn many_small_values_that_cannot_be_cut_become_an_error_saying_so() {
    let items: Vec<String> = (0..2_000).map(|i| format!("item-{i}")).collect();
    let mut result = CallToolResult::success(vec![ContentBlock::text("list")]);
    result.structured_content = Some(json!({ "items": items }));
    let fitted = fit(result, 4_000);
    assert_eq!(fitted.is_error, Some(true));
    assert!(text_of(&fitted).contains("over the result budget of 4000 bytes"));
    assert!(serialized_len(&fitted) <= 4_000);
}
