use std::convert::Infallible;

use axum::{
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    response::Response,
};
use tower::{Layer, ServiceExt};

use super::*;
use crate::auth::Principal;

#[test]
fn a_principal_gets_its_cap_and_no_more_while_another_still_gets_a_slot() {
    let slots = StreamSlots::new(2);
    let first = slots.acquire("alice").unwrap();
    let _second = slots.acquire("alice").unwrap();
    assert!(slots.acquire("alice").is_none());
    let _bob = slots.acquire("bob").expect("bob has his own slots");
    drop(first);
    assert_eq!(slots.open("alice"), 1);
    assert!(
        slots.acquire("alice").is_some(),
        "a closed stream frees its slot"
    );
}

#[test]
fn released_principals_are_forgotten() {
    let slots = StreamSlots::new(1);
    drop(slots.acquire("alice").unwrap());
    assert!(slots.open.lock().is_empty());
}

/// A route that answers every request with `status` and a one-chunk body.
fn route(
    status: StatusCode,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
    tower::service_fn(move |_request: Request| async move {
        let mut response = Response::new(Body::from("data: x\n\n"));
        *response.status_mut() = status;
        Ok::<_, Infallible>(response)
    })
}

fn get_as(principal: Option<Principal>, method: Method) -> Request {
    let mut request = Request::builder()
        .method(method)
        .uri("/sse")
        .body(Body::empty())
        .unwrap();
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    request
}

#[tokio::test]
async fn a_stream_holds_its_slot_until_its_body_is_dropped_and_the_next_get_is_refused() {
    let slots = StreamSlots::new(1);
    let service = StreamCapLayer::new(slots.clone()).layer(route(StatusCode::OK));
    let principal = crate::auth::danger::unauthenticated_local();
    let open = service
        .clone()
        .oneshot(get_as(Some(principal.clone()), Method::GET))
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(slots.open(principal.name()), 1);

    let refused = service
        .clone()
        .oneshot(get_as(Some(principal.clone()), Method::GET))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = axum::body::to_bytes(Body::new(refused.into_body()), 1024)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("limit 1"));

    // Near miss: a POST of the same principal is not a stream and is not counted.
    let post = service
        .clone()
        .oneshot(get_as(Some(principal.clone()), Method::POST))
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);

    drop(open);
    assert_eq!(slots.open(principal.name()), 0);
    let reopened = service
        .oneshot(get_as(Some(principal), Method::GET))
        .await
        .unwrap();
    assert_eq!(reopened.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_error_answer_gives_the_slot_back_at_once() {
    let slots = StreamSlots::new(1);
    let service = StreamCapLayer::new(slots.clone()).layer(route(StatusCode::NOT_FOUND));
    let principal = crate::auth::danger::unauthenticated_local();
    let answer = service
        .oneshot(get_as(Some(principal.clone()), Method::GET))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(slots.open(principal.name()), 0);
}

#[tokio::test]
async fn the_body_passes_through_unchanged() {
    let slots = StreamSlots::new(1);
    let service = StreamCapLayer::new(slots.clone()).layer(route(StatusCode::OK));
    let answer = service
        .oneshot(get_as(
            Some(crate::auth::danger::unauthenticated_local()),
            Method::GET,
        ))
        .await
        .unwrap();
    let body = axum::body::to_bytes(Body::new(answer.into_body()), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"data: x\n\n");
    assert_eq!(
        slots.open("anonymous"),
        0,
        "a finished body gave its slot back"
    );
}
