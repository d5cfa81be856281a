//! Who may list and decide in the MCP Apps view: each refusal beside its near miss, the
//! decision reaching the waiting ticket with the view's decider, and the view secret never
//! opening the page (nor the page's secrets the view).

use std::time::Duration;

use super::*;
use crate::{
    approval::{ApprovalSettings, broker::Draft},
    auth::Role,
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
        tool: Some("run_command".to_owned()),
        stdin: None,
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

/// The view of an operator token (no approver by default).
fn view(principal: &str) -> ViewCaller<'_> {
    ViewCaller {
        principal,
        role: Role::Operator,
        renders_apps: true,
    }
}

/// The view of an admin token (an approver by default).
fn admin_view(principal: &str) -> ViewCaller<'_> {
    ViewCaller {
        principal,
        role: Role::Admin,
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
        role: Role::Operator,
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

/// Approvals whose `app_view_tokens` names `enabled` and whose `approvers` is `approvers`.
fn with_approvers(enabled: &[&str], approvers: Option<&[&str]>) -> Arc<Approvals> {
    let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect();
    let approvals = Approvals::new();
    approvals.configure(ApprovalSettings {
        app_view_tokens: names(enabled),
        approvers: approvers.map(names),
        ..ApprovalSettings::default()
    });
    approvals
}

#[tokio::test]
async fn an_approvers_view_sees_and_decides_another_tokens_request_as_itself() {
    // By default admins approve: boss (admin) sees alice's request beside its own.
    let approvals = approvals(&["alice", "boss"]);
    let mut alices = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let bosss = approvals.broker.open(draft("boss"), LONG, 4).unwrap();
    let listed = pending(&approvals, admin_view("boss")).unwrap();
    let seen: Vec<_> = listed
        .iter()
        .map(|item| (item.request.principal.as_str(), item.own))
        .collect();
    assert_eq!(seen, [("alice", false), ("boss", true)]);
    let secret = listed[0].secret.clone();
    decide(
        &approvals,
        admin_view("boss"),
        &alices.request.id,
        true,
        &secret,
    )
    .unwrap();
    let decided = alices.decision().await;
    assert_eq!(
        (
            decided.verdict,
            decided.decider.via,
            decided.decider.who.as_str()
        ),
        (Verdict::Approved, Via::App, "mcp-app:boss")
    );
    // Near miss: alice, no approver, still sees only her own, never boss's.
    let mine = pending(&approvals, view("alice")).unwrap();
    assert!(
        mine.is_empty(),
        "alice's request is decided, boss's is not hers"
    );
    assert_eq!(
        decide(
            &approvals,
            view("alice"),
            &bosss.request.id,
            false,
            &bosss.secrets.view
        ),
        Err(AppViewError::NotPending(bosss.request.id.clone()))
    );
    assert_eq!(approvals.broker.list().len(), 1, "boss's still waits");
}

#[tokio::test]
async fn a_plain_tokens_view_neither_sees_nor_decides_another_tokens_request() {
    let approvals = approvals(&["alice", "bob"]);
    let alices = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    assert!(pending(&approvals, view("bob")).unwrap().is_empty());
    for secret in ["", "0", alices.secrets.view.as_str()] {
        assert_eq!(
            decide(&approvals, view("bob"), &alices.request.id, true, secret),
            Err(AppViewError::NotPending(alices.request.id.clone())),
            "{secret:?}"
        );
    }
    assert_eq!(approvals.broker.list().len(), 1, "still pending");
    // Near miss: the same operator named in `approvers` sees and decides it.
    let named = with_approvers(&["alice", "bob"], Some(&["bob"]));
    let alices = named.broker.open(draft("alice"), LONG, 4).unwrap();
    let listed = pending(&named, view("bob")).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].own);
    decide(
        &named,
        view("bob"),
        &alices.request.id,
        false,
        &listed[0].secret,
    )
    .unwrap();
    assert!(named.broker.list().is_empty());
}

#[tokio::test]
async fn the_page_rules_hold_in_the_view_an_admin_off_the_list_and_an_approver_not_opted_in() {
    // Once `approvers` is set, an admin not on it is no approver, in the view as on the page.
    let approvals = with_approvers(&["alice", "boss"], Some(&["lead"]));
    let alices = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    assert!(pending(&approvals, admin_view("boss")).unwrap().is_empty());
    assert_eq!(
        decide(
            &approvals,
            admin_view("boss"),
            &alices.request.id,
            true,
            &alices.secrets.view
        ),
        Err(AppViewError::NotPending(alices.request.id.clone()))
    );
    // An approver the server does not name in app_view_tokens does not use the view at all.
    assert_eq!(
        pending(&approvals, view("lead")).unwrap_err(),
        AppViewError::NotEnabled {
            principal: "lead".to_owned()
        }
    );
    // Near miss: named in both, it decides.
    let both = with_approvers(&["alice", "lead"], Some(&["lead"]));
    let alices = both.broker.open(draft("alice"), LONG, 4).unwrap();
    decide(
        &both,
        view("lead"),
        &alices.request.id,
        true,
        &alices.secrets.view,
    )
    .unwrap();
}

#[tokio::test]
async fn a_reload_that_drops_an_approver_takes_effect_for_requests_already_waiting() {
    let approvals = with_approvers(&["alice", "lead"], Some(&["lead"]));
    let alices = approvals.broker.open(draft("alice"), LONG, 4).unwrap();
    let secret = pending(&approvals, view("lead")).unwrap()[0].secret.clone();
    approvals.configure(ApprovalSettings {
        app_view_tokens: vec!["alice".to_owned(), "lead".to_owned()],
        approvers: Some(vec!["someone-else".to_owned()]),
        ..ApprovalSettings::default()
    });
    assert!(pending(&approvals, view("lead")).unwrap().is_empty());
    assert_eq!(
        decide(&approvals, view("lead"), &alices.request.id, true, &secret),
        Err(AppViewError::NotPending(alices.request.id.clone()))
    );
    assert_eq!(approvals.broker.list().len(), 1);
}
