//! The answer to closing a session (`DELETE /mcp`): 200, where rmcp answers 202. The
//! Python SDK takes 200, 204 or 405 and warns "Session termination failed: 202" after
//! every session otherwise. Other methods and statuses pass unchanged.

use axum::{
    extract::Request,
    http::{Method, StatusCode},
    middleware::Next,
    response::Response,
};

/// Turn the 202 of a session's `DELETE` into 200.
pub async fn delete_answers_ok(request: Request, next: Next) -> Response {
    let delete = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::any};
    use tower::ServiceExt;

    use super::*;

    async fn status(method: Method, answer: StatusCode) -> StatusCode {
        let app = Router::new()
            .route("/mcp", any(move || async move { answer }))
            .layer(axum::middleware::from_fn(delete_answers_ok));
        let request = Request::builder()
            .method(method)
            .uri("/mcp")
            .body(Body::empty())
            .unwrap();
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_delete_answered_202_is_200_and_nothing_else_changes() {
        assert_eq!(
            status(Method::DELETE, StatusCode::ACCEPTED).await,
            StatusCode::OK
        );
        // Near misses: a POST's 202 (a notification) and a DELETE's 404 stay.
        assert_eq!(
            status(Method::POST, StatusCode::ACCEPTED).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            status(Method::DELETE, StatusCode::NOT_FOUND).await,
            StatusCode::NOT_FOUND
        );
    }
}
