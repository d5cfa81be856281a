//! Paging of lists with an opaque cursor and a page-size cap, for list tools (`job_list`).
//!
//! Items are ordered by a sort key that never changes for an item (a job's start time and
//! id); a cursor is the key of the last item shown, encoded (base64url) so clients treat it
//! as opaque, as MCP asks. The next page is the items whose key comes after it: no repeats
//! and no gaps, even when items before the cursor were forgotten meanwhile, and items added
//! later (later keys) come on later pages. A cursor that does not decode is the caller's
//! error.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// Items per page when the caller names no limit.
pub const DEFAULT_PAGE_ITEMS: usize = 50;
/// Most items per page, whatever the caller asks.
pub const MAX_PAGE_ITEMS: usize = 100;

/// A cursor that is not one this server gave out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: pass the next_cursor of the previous page, or no cursor to start over")]
pub struct BadCursor;

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The page of `items` (ordered here by `key`) after `cursor`, at most `limit` items
/// (default [`DEFAULT_PAGE_ITEMS`], capped at [`MAX_PAGE_ITEMS`], at least 1).
pub fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Result<Page<T>, BadCursor> {
    items.sort_by_cached_key(|item| key(item));
    let start = match cursor {
        None => 0,
        Some(cursor) => {
            let last = decode(cursor)?;
            items.partition_point(|item| key(item) <= last)
        }
    };
    let limit = limit.unwrap_or(DEFAULT_PAGE_ITEMS).clamp(1, MAX_PAGE_ITEMS);
    let end = start.saturating_add(limit).min(items.len());
    let next_cursor = (end < items.len()).then(|| encode(&key(&items[end - 1])));
    let items = items.into_iter().skip(start).take(end - start).collect();
    Ok(Page { items, next_cursor })
}

fn encode(last_key: &str) -> String {
    format!("c{}", URL_SAFE_NO_PAD.encode(last_key))
}

fn decode(cursor: &str) -> Result<String, BadCursor> {
    let encoded = cursor.strip_prefix('c').ok_or(BadCursor)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| BadCursor)?;
    String::from_utf8(bytes).map_err(|_| BadCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("job{i}")).collect()
    }

    fn walk(items: &[String], limit: Option<usize>) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let page = page(items.to_vec(), String::clone, cursor.as_deref(), limit).unwrap();
            pages.push(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_cover_the_list_once_in_order() {
        let items = names(7);
        let pages = walk(&items, Some(3));
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(pages.concat(), items);
        assert_eq!(
            walk(&items, None),
            vec![items.clone()],
            "one page by default"
        );
        assert_eq!(walk(&[], None), vec![Vec::<String>::new()], "an empty list");
        let exact = walk(&names(6), Some(3));
        assert_eq!(exact.len(), 2, "no empty page after an exact fit");
    }

    #[test]
    fn the_page_size_is_capped_and_at_least_one() {
        let items = names(250);
        assert_eq!(walk(&items, Some(1000))[0].len(), MAX_PAGE_ITEMS);
        assert_eq!(walk(&items, None)[0].len(), DEFAULT_PAGE_ITEMS);
        assert_eq!(walk(&items, Some(0))[0].len(), 1);
    }

    #[test]
    fn a_forgotten_item_does_not_repeat_or_lose_the_rest() {
        let items = names(6);
        let first = page(items.clone(), String::clone, None, Some(3)).unwrap();
        let cursor = first.next_cursor.unwrap();
        // job1 (before the cursor) and job2 (the cursor's own item) are forgotten.
        let fewer: Vec<String> = items
            .iter()
            .filter(|n| *n != "job1" && *n != "job2")
            .cloned()
            .collect();
        let next = page(fewer, String::clone, Some(&cursor), Some(3)).unwrap();
        assert_eq!(next.items, ["job3", "job4", "job5"], "no repeat, no gap");
    }

    #[test]
    fn a_cursor_that_was_not_given_out_is_refused_and_a_real_one_accepted() {
        for bad in ["", "am9iMA", "cnot base64!", "c_w"] {
            // "am9iMA" is "job0" without the leading "c"; "_w" decodes to a byte that is
            // not UTF-8.
            assert_eq!(
                page(names(3), String::clone, Some(bad), None),
                Err(BadCursor),
                "{bad:?}"
            );
        }
        let good = encode("job0");
        assert_eq!(good, "cam9iMA");
        let page = page(names(3), String::clone, Some(&good), None).unwrap();
        assert_eq!(page.items, ["job1", "job2"]);
    }
}
