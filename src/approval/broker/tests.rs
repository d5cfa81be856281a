//! The broker decides each request once: approve or deny before the deadline, the timeout
//! after it, never two of them; a principal's pending requests are capped; secrets and form
//! nonces are checked and spent.

use super::*;

fn draft(principal: &str) -> Draft {
    Draft {
        principal: principal.to_owned(),
        command: CommandLine::Argv(vec!["systemctl".into(), "restart".into(), "nginx".into()]),
        program: "/usr/bin/systemctl".to_owned(),
        working_dir: Some("/srv".to_owned()),
        run_as: Some("root".to_owned()),
        rule: "allow[0]".to_owned(),
        reason: Some("restarts a service".to_owned()),
        tool: Some("run_command".to_owned()),
        stdin: None,
    }
}

fn by(via: Via, verdict: Verdict, who: &str) -> Decided {
    Decided {
        verdict,
        decider: Decider {
            via,
            who: who.to_owned(),
        },
    }
}

const LONG: Duration = Duration::from_secs(300);

#[tokio::test]
async fn an_approval_reaches_the_waiting_ticket() {
    let broker = Broker::new();
    let mut ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let id = ticket.request.id.clone();
    assert_eq!(broker.list().len(), 1);
    broker
        .decide(&id, by(Via::Cli, Verdict::Approved, "root"))
        .unwrap();
    let decided = ticket.decision().await;
    assert_eq!(decided, by(Via::Cli, Verdict::Approved, "root"));
    assert!(broker.list().is_empty());
}

#[tokio::test]
async fn a_request_is_decided_once_the_second_decision_is_refused() {
    let broker = Broker::new();
    let mut ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let id = ticket.request.id.clone();
    broker
        .decide(&id, by(Via::Page, Verdict::Denied, "admin"))
        .unwrap();
    assert_eq!(
        broker.decide(&id, by(Via::Cli, Verdict::Approved, "root")),
        Err(BrokerError::NotPending(id.clone()))
    );
    assert_eq!(ticket.decision().await.verdict, Verdict::Denied);
}

#[tokio::test]
async fn the_timeout_denies_and_a_late_approval_is_refused() {
    let broker = Broker::new();
    let mut ticket = broker
        .open(draft("alice"), Duration::from_millis(100), 4)
        .unwrap();
    let id = ticket.request.id.clone();
    let decided = ticket.decision().await;
    assert_eq!(decided.verdict, Verdict::TimedOut);
    assert_eq!(decided.decider.via, Via::Timeout);
    assert!(
        broker
            .decide(&id, by(Via::Cli, Verdict::Approved, "root"))
            .is_err()
    );
}

#[tokio::test]
async fn approve_racing_the_timeout_gives_exactly_one_outcome() {
    // The approval takes the entry first; the deadline passes before the ticket looks:
    // the approval stands, and the timeout decides nothing.
    let broker = Broker::new();
    let mut ticket = broker
        .open(draft("alice"), Duration::from_millis(100), 4)
        .unwrap();
    let id = ticket.request.id.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker
        .decide(&id, by(Via::Cli, Verdict::Approved, "root"))
        .unwrap();
    assert_eq!(ticket.decision().await.verdict, Verdict::Approved);
    // Near miss: the timeout first, then the approval, which is refused.
    let mut ticket = broker
        .open(draft("alice"), Duration::from_millis(100), 4)
        .unwrap();
    let id = ticket.request.id.clone();
    assert_eq!(ticket.decision().await.verdict, Verdict::TimedOut);
    assert!(
        broker
            .decide(&id, by(Via::Cli, Verdict::Approved, "root"))
            .is_err()
    );
}

#[tokio::test]
async fn many_deciders_at_once_one_wins() {
    let broker = Broker::new();
    let mut ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let id = ticket.request.id.clone();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (broker, id) = (broker.clone(), id.clone());
            tokio::spawn(async move {
                let verdict = if n % 2 == 0 {
                    Verdict::Approved
                } else {
                    Verdict::Denied
                };
                broker
                    .decide(&id, by(Via::Cli, verdict, &n.to_string()))
                    .is_ok()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    ticket.decision().await;
}

#[test]
fn pending_requests_are_capped_per_principal() {
    let broker = Broker::new();
    let _one = broker.open(draft("alice"), LONG, 2).unwrap();
    let two = broker.open(draft("alice"), LONG, 2).unwrap();
    assert_eq!(
        broker.open(draft("alice"), LONG, 2).unwrap_err(),
        BrokerError::TooManyPending {
            principal: "alice".to_owned(),
            limit: 2
        }
    );
    // Near misses: another principal is not counted against alice; a withdrawn request
    // frees its place.
    let _bob = broker.open(draft("bob"), LONG, 2).unwrap();
    drop(two);
    assert!(broker.open(draft("alice"), LONG, 2).is_ok());
}

#[test]
fn a_dropped_ticket_withdraws_its_request() {
    let broker = Broker::new();
    let ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let id = ticket.request.id.clone();
    drop(ticket);
    assert!(broker.list().is_empty());
    assert!(
        broker
            .decide(&id, by(Via::Cli, Verdict::Approved, "root"))
            .is_err()
    );
}

#[test]
fn withdraw_returns_a_decision_that_came_first() {
    let broker = Broker::new();
    let mut ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    broker
        .decide(&ticket.request.id, by(Via::Cli, Verdict::Approved, "root"))
        .unwrap();
    assert_eq!(ticket.withdraw().verdict, Verdict::Approved);
    let mut ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let withdrawn = ticket.withdraw();
    assert_eq!(
        (withdrawn.verdict, withdrawn.decider.via),
        (Verdict::Denied, Via::Cancelled)
    );
}

#[test]
fn secrets_and_form_nonces_are_checked_and_spent() {
    let broker = Broker::new();
    let ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let id = ticket.request.id.clone();
    let (page, webhook) = (&ticket.secrets.page, &ticket.secrets.webhook);
    assert_eq!(broker.visit(&id, page).unwrap().1, SecretKind::Page);
    assert_eq!(broker.visit(&id, webhook).unwrap().1, SecretKind::Webhook);
    // Near misses: a wrong secret, another request's id.
    assert!(broker.visit(&id, "0000").is_err());
    assert!(broker.visit(&id, "").is_err());
    assert!(broker.visit("ap-0000000000000000", page).is_err());
    // No nonce shown yet: nothing spends.
    assert!(broker.spend_form_nonce(&id, page, "").is_err());
    let nonce = broker.new_form_nonce(&id, page).unwrap();
    assert!(broker.new_form_nonce(&id, "wrong").is_err());
    assert!(broker.spend_form_nonce(&id, page, "wrong").is_err());
    assert!(broker.spend_form_nonce(&id, "wrong", &nonce).is_err());
    assert_eq!(
        broker.spend_form_nonce(&id, page, &nonce).unwrap(),
        SecretKind::Page
    );
    // Spent: the same nonce again is refused.
    assert!(broker.spend_form_nonce(&id, page, &nonce).is_err());
}

#[test]
fn secrets_are_not_in_debug_output() {
    let broker = Broker::new();
    let ticket = broker.open(draft("alice"), LONG, 4).unwrap();
    let shown = format!("{ticket:?} {:?}", ticket.secrets);
    assert!(!shown.contains(&ticket.secrets.page), "{shown}");
    assert!(!shown.contains(&ticket.secrets.webhook), "{shown}");
}
