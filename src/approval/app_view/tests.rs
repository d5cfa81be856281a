//! Who may list and decide in the MCP Apps view: each refusal beside its near miss, the
//! decision reaching the waiting ticket with the view's decider, and the view secret never
//! opening the page (nor the page's secrets the view).

use std::time::Duration;

use super::*;
use crate::{
    approval::{ApprovalSettings, broker::Draft},
    command::CommandLine,
};

const LONG: Duration = Duration::from_secs(300);

fn draft(principal: &str) -> Draft {
    Draft {
        principal: principal.to_owned(),
        command: CommandLine::Argv(vec!["touch".into(), "/tmp/x".into()]),
        program: "/usr/bin/touch".to_owned(),
        working_dir: None,
        run_as: None,
        rule: "allow[0]".to_owned(),
        reason: Some("creates a marker".to_owned()),
    }
}

/// Approvals whose `[approval] app_view_tokens` names `enabled`.
fn approvals(enabled: &[&str]) -> Arc<Approvals> {
    let approvals = Approvals::new();
    approvals.configure(ApprovalSettings {
        app_view_tokens: enabled.iter().map(|name| (*name).to_owned()).collect(),
        ..ApprovalSettings::default()
    });
    approvals
}

fn view(principal: &str) -> ViewCaller<'_> {
    ViewCaller {
        principal,
        renders_apps: true,
    }
}

#[tokio::test]
async fn the_view_approves_its_own_request_with_its_secret_and_the_ticket_hears_it() {
    let approvals = approvals(&["alice"]);
    let mut ticket = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let listed = pending(&approvals, view("alice")).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].request.id, ticket.request.id);
    assert!(listed[0].expires_in_secs > 250 && listed[0].expires_in_secs <= 300);
    let secret = listed[0].secret.clone();
    decide(&approvals, view("alice"), &ticket.request.id, true, &secret).unwrap();
    let decided = ticket.decision().await;
    assert_eq!(decided.verdict, Verdict::Approved);
    assert_eq!(decided.decider.via, Via::App);
    assert_eq!(decided.decider.via.as_str(), "mcp-app");
    assert_eq!(decided.decider.who, "mcp-app:alice");
    // Decided once: the same click again finds nothing.
    assert_eq!(
        decide(
            &approvals,
            view("alice"),
            &ticket.request.id,
            false,
            &secret
        ),
        Err(AppViewError::NotPending(ticket.request.id.clone()))
    );
}

#[tokio::test]
async fn the_view_denies_and_the_ticket_hears_a_denial() {
    let approvals = approvals(&["alice"]);
    let mut ticket = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let secret = pending(&approvals, view("alice")).unwrap()[0]
        .secret
        .clone();
    decide(
        &approvals,
        view("alice"),
        &ticket.request.id,
        false,
        &secret,
    )
    .unwrap();
    let decided = ticket.decision().await;
    assert_eq!(
        (decided.verdict, decided.decider.who.as_str()),
        (Verdict::Denied, "mcp-app:alice")
    );
}

#[tokio::test]
async fn the_id_without_the_view_secret_decides_nothing() {
    let approvals = approvals(&["alice"]);
    let ticket = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let id = ticket.request.id.clone();
    // The model knows the id (it is in the progress text) but not the secret; nor does the
    // page's one-time secret (in the URL the model may read) open the view.
    for wrong in [
        "",
        "00",
        ticket.secrets.page.as_str(),
        ticket.secrets.webhook.as_str(),
    ] {
        assert_eq!(
            decide(&approvals, view("alice"), &id, true, wrong),
            Err(AppViewError::NotPending(id.clone())),
            "{wrong:?}"
        );
    }
    assert_eq!(approvals.broker.list().len(), 1, "still pending");
    // Near miss: the view's secret does.
    decide(&approvals, view("alice"), &id, true, &ticket.secrets.view).unwrap();
    assert!(approvals.broker.list().is_empty());
}

#[tokio::test]
async fn the_view_secret_does_not_open_the_page() {
    let approvals = approvals(&["alice"]);
    let ticket = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let id = &ticket.request.id;
    assert!(approvals.broker.visit(id, &ticket.secrets.view).is_err());
    assert!(
        approvals
            .broker
            .new_form_nonce(id, &ticket.secrets.view)
            .is_err()
    );
    // Near miss: the page's secret does.
    assert!(approvals.broker.visit(id, &ticket.secrets.page).is_ok());
}

#[tokio::test]
async fn a_client_that_renders_no_apps_is_refused_even_with_the_secret() {
    let approvals = approvals(&["alice"]);
    let ticket = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let model = ViewCaller {
        principal: "alice",
        renders_apps: false,
    };
    assert_eq!(
        pending(&approvals, model).unwrap_err(),
        AppViewError::NotAnAppsClient
    );
    assert_eq!(
        decide(
            &approvals,
            model,
            &ticket.request.id,
            true,
            &ticket.secrets.view
        ),
        Err(AppViewError::NotAnAppsClient)
    );
    assert_eq!(approvals.broker.list().len(), 1, "still pending");
}

#[tokio::test]
async fn a_token_not_named_in_app_view_tokens_is_refused() {
    let approvals = approvals(&["bob"]);
    let ticket = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let refused = AppViewError::NotEnabled {
        principal: "alice".to_owned(),
    };
    assert_eq!(pending(&approvals, view("alice")).unwrap_err(), refused);
    assert_eq!(
        decide(
            &approvals,
            view("alice"),
            &ticket.request.id,
            true,
            &ticket.secrets.view
        ),
        Err(refused)
    );
    // The default names nobody.
    let default = Approvals::new();
    assert!(matches!(
        pending(&default, view("alice")),
        Err(AppViewError::NotEnabled { .. })
    ));
}

#[tokio::test]
async fn a_view_sees_and_decides_only_its_own_tokens_requests() {
    let approvals = approvals(&["alice", "bob"]);
    let alices = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let _bobs = approvals.broker.open(draft("bob"), LONG, 4).unwrap();
    let listed = pending(&approvals, view("bob")).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].request.principal, "bob");
    // Even with alice's view secret, bob's view cannot decide alice's request.
    assert_eq!(
        decide(
            &approvals,
            view("bob"),
            &alices.request.id,
            true,
            &alices.secrets.view
        ),
        Err(AppViewError::NotPending(alices.request.id.clone()))
    );
    assert_eq!(approvals.broker.list().len(), 2);
}
