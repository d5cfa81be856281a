//! The per-principal cap on open MCP streams: `GET /sse` (a legacy SSE session) and
//! `GET /mcp` (a session's standalone stream, or a resumed one). A stream is a response
//! body in flight, so connection timeouts never end it; without a cap one token could
//! hold every connection slot. [`StreamCapLayer`] sits behind authentication: a GET takes
//! a slot of its principal before the route runs and gives it back when the response
//! body is dropped (the stream closed), or at once if the route answered with an error.
//! A GET over the cap gets 429 and never reaches the route. Other methods pass through
//! untouched: no lock, no allocation.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::connections::RateLimitedLog;
use crate::auth::Principal;

/// Open streams per principal name.
#[derive(Debug)]
pub struct StreamSlots {
    max_per_principal: usize,
    open: Mutex<HashMap<Arc<str>, usize>>,
    refusals: RateLimitedLog,
}

impl StreamSlots {
    pub fn new(max_per_principal: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_principal,
            open: Mutex::default(),
            refusals: RateLimitedLog::default(),
        })
    }

    /// A slot for one more stream of `principal`, or `None` at the cap.
    pub fn acquire(self: &Arc<Self>, principal: &str) -> Option<StreamSlot> {
        let mut open = self.lock();
        let count = open.entry(Arc::from(principal)).or_insert(0);
        if *count >= self.max_per_principal {
            return None;
        }
        *count += 1;
        let (name, _) = open.get_key_value(principal)?;
        Some(StreamSlot {
            slots: self.clone(),
            principal: name.clone(),
        })
    }

    /// Streams `principal` has open.
    pub fn open(&self, principal: &str) -> usize {
        self.lock().get(principal).copied().unwrap_or(0)
    }

    fn release(&self, principal: &str) {
        let mut open = self.lock();
        if let Some(count) = open.get_mut(principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(principal);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, usize>> {
        // Every update is one whole step: a poisoned map is still consistent.
        self.open
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// One open stream; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    principal: Arc<str>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.slots.release(&self.principal);
    }
}

/// Enforces [`StreamSlots`] on the routes it wraps (put it inside authentication).
#[derive(Debug, Clone)]
pub struct StreamCapLayer {
    slots: Arc<StreamSlots>,
}

impl StreamCapLayer {
    pub fn new(slots: Arc<StreamSlots>) -> Self {
        Self { slots }
    }
}

impl<S> tower::Layer<S> for StreamCapLayer {
    type Service = StreamCap<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamCap {
            inner,
            slots: self.slots.clone(),
        }
    }
}

/// The service [`StreamCapLayer`] makes.
#[derive(Debug, Clone)]
pub struct StreamCap<S> {
    inner: S,
    slots: Arc<StreamSlots>,
}

impl<S> tower::Service<Request> for StreamCap<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = StreamCapFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() != Method::GET {
            return StreamCapFuture::Pass {
                inner: self.inner.call(request),
                slot: None,
            };
        }
        // Authentication put the principal there; without one there is nothing to count.
        let slot = match request.extensions().get::<Principal>() {
            None => None,
            Some(principal) => match self.slots.acquire(principal.name()) {
                Some(slot) => Some(slot),
                None => {
                    let limit = self.slots.max_per_principal;
                    self.slots.refusals.warn(|suppressed| {
                        tracing::warn!(
                            principal = principal.name(),
                            limit,
                            suppressed,
                            "stream refused: the principal has its maximum of open streams"
                        );
                    });
                    return StreamCapFuture::Refused {
                        response: Some(too_many_streams(limit)),
                    };
                }
            },
        };
        StreamCapFuture::Pass {
            inner: self.inner.call(request),
            slot,
        }
    }
}

fn too_many_streams(limit: usize) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many open streams for this token (limit {limit}); close one first\n"),
    )
        .into_response()
}

pin_project! {
    /// The response of a [`StreamCap`]: the route's, holding the slot in its body.
    #[project = StreamCapProjection]
    pub enum StreamCapFuture<F> {
        Pass { #[pin] inner: F, slot: Option<StreamSlot> },
        Refused { response: Option<Response> },
    }
}

impl<F> Future for StreamCapFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StreamCapProjection::Pass { inner, slot } => {
                let response = std::task::ready!(inner.poll(cx))?;
                Poll::Ready(Ok(match slot.take() {
                    // An error answer is no stream: the slot goes back now.
                    Some(slot) if response.status().is_success() => response.map(|body| {
                        Body::new(SlotBody {
                            inner: body,
                            _slot: slot,
                        })
                    }),
                    _ => response,
                }))
            }
            StreamCapProjection::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| StatusCode::TOO_MANY_REQUESTS.into_response()))),
        }
    }
}

/// A response body that keeps its stream's slot until it is dropped.
struct SlotBody {
    inner: Body,
    _slot: StreamSlot,
}

impl HttpBody for SlotBody {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
