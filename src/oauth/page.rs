//! The consent page and the error page: server-rendered HTML, no JavaScript, every value
//! escaped, sent with headers that keep it out of frames and caches: a CSP of
//! `default-src 'none'` (inline style only, forms posting to this server and to the
//! client's redirect origin, which the redirect after the POST needs in Chromium),
//! `frame-ancestors 'none'`, `X-Frame-Options: DENY`, `Referrer-Policy: same-origin`,
//! `Cache-Control: no-store`.
//!
//! Why `same-origin` and not `no-referrer`: under `no-referrer` Chromium sends the form's
//! POST with `Origin: null`, which the host guard refuses as a foreign origin, so the owner
//! could never approve from a real browser (found by `tests/e2e/test_oauth_browser.py`).
//! `same-origin` sends this server's origin on that POST and no referrer to any other
//! origin; the redirect that answers the POST carries `no-referrer` itself, so the
//! client's callback gets none.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// What the consent page shows and carries.
#[derive(Debug)]
pub struct ConsentView<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    /// `scheme://host[:port]` of the redirect URI.
    pub redirect_origin: &'a str,
    pub scope: &'a str,
    /// The form's single-use nonce (CSRF).
    pub nonce: &'a str,
    /// Shown above the form after a refused token.
    pub error: Option<&'a str>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}\
code{background:#eee;padding:0 .2rem}.error{color:#a00}input[type=password]{width:100%;padding:.4rem}\
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}";

/// Escape text for an HTML text node or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The consent page.
pub fn consent(view: &ConsentView<'_>) -> Response {
    let error = view.error.map_or_else(String::new, |error| {
        format!(r#"<p class="error" role="alert">{}</p>"#, escape(error))
    });
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Authorize {name} - hostmcp</title><style>{STYLE}</style></head><body>
<h1>Authorize <span id="client-name">{name}</span></h1>
<p>The application <strong>{name}</strong> (client <code>{client_id}</code>) asks to use this hostmcp server with scope <code id="scope">{scope}</code>. After you approve, it is sent back to <code id="redirect-host">{origin}</code>.</p>
<p>It will act as the hostmcp token you enter below, with that token's role or less, until you or the operator revoke it or the token stops working.</p>
{error}<form method="post" action="/oauth/authorize">
<input type="hidden" name="nonce" value="{nonce}">
<label for="token">hostmcp token</label>
<input type="password" id="token" name="token" autocomplete="off" autofocus>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>"#,
        name = escape(view.client_name),
        client_id = escape(view.client_id),
        scope = escape(view.scope),
        origin = escape(view.redirect_origin),
        nonce = escape(view.nonce),
    );
    secured(StatusCode::OK, body, Some(view.redirect_origin))
}

/// A page saying the request cannot go on (never a redirect: the redirect URI is not
/// trusted yet, or the form is not one this server showed).
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization error - hostmcp</title><style>{STYLE}</style></head><body><h1>Authorization error</h1><p class="error" id="error">{}</p></body></html>"#,
        escape(message)
    );
    secured(status, body, None)
}

/// `body` with this page's headers, its forms posting to this server only (the approval
/// page, `crate::approval::page`, shares them).
pub fn secured_page(status: StatusCode, body: String) -> Response {
    secured(status, body, None)
}

fn secured(status: StatusCode, body: String, redirect_origin: Option<&str>) -> Response {
    let form_action = match redirect_origin {
        // Chromium applies form-action to the redirect that answers the POST.
        Some(origin)
            if origin
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',') =>
        {
            format!("'self' {origin}")
        }
        _ => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    super::no_store(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_client_name_is_shown_as_text() {
        let view = ConsentView {
            client_name: "<script>alert(1)</script>\"x",
            client_id: "c",
            redirect_origin: "https://claude.ai",
            scope: "hostmcp",
            nonce: "n",
            error: None,
        };
        let response = consent(&view);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("form-action 'self' https://claude.ai;"));
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
