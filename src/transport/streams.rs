//! The per-principal cap on open MCP streams: `GET /sse` (a legacy SSE session) and
//! `GET /mcp` (a session's standalone stream, or a resumed one). A stream is a response
//! body in flight, so connection timeouts never end it; without a cap one token could
//! hold every connection slot. [`StreamCapLayer`] sits behind authentication: a GET takes
//! a slot of its principal before the route runs and gives it back when the response
//! body is dropped (the stream closed), or at once if the route answered with an error.
//! A GET over the cap gets 429 and never reaches the route. Other methods pass through
//! untouched: no lock, no allocation (the body wrapper is inline).

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use parking_lot::Mutex;
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
        let mut open = self.open.lock();
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
        self.open.lock().get(principal).copied().unwrap_or(0)
    }

    fn release(&self, principal: &str) {
        let mut open = self.open.lock();
        if let Some(count) = open.get_mut(principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(principal);
            }
        }
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

/// Enforces [`StreamSlots`] on the service it wraps. Put it where only stream-opening
/// routes pay for it, behind authentication: inside the `/mcp` service (whose boxed route
/// it then adds nothing to) and on the `GET /sse` route.
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

impl<S, RequestBody, ResponseBody> tower::Service<Request<RequestBody>> for StreamCap<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<CappedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = StreamCapFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
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
                    return StreamCapFuture::Refused { limit };
                }
            },
        };
        StreamCapFuture::Pass {
            inner: self.inner.call(request),
            slot,
        }
    }
}

fn too_many_streams<B>(limit: usize) -> Response<CappedBody<B>> {
    let text = format!("too many open streams for this token (limit {limit}); close one first\n");
    let mut response = Response::new(CappedBody {
        inner: Inner::Refusal {
            text: Some(Bytes::from(text)),
        },
        _slot: None,
    });
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pin_project! {
    /// The response of a [`StreamCap`]: the route's, holding the slot in its body.
    #[project = StreamCapProjection]
    pub enum StreamCapFuture<F> {
        Pass { #[pin] inner: F, slot: Option<StreamSlot> },
        Refused { limit: usize },
    }
}

impl<F, B, E> Future for StreamCapFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CappedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StreamCapProjection::Pass { inner, slot } => {
                let response = std::task::ready!(inner.poll(cx))?;
                // An error answer is no stream: its slot goes back now.
                let slot = slot.take().filter(|_| response.status().is_success());
                Poll::Ready(Ok(response.map(|body| CappedBody {
                    inner: Inner::Route { body },
                    _slot: slot,
                })))
            }
            StreamCapProjection::Refused { limit } => Poll::Ready(Ok(too_many_streams(*limit))),
        }
    }
}

pin_project! {
    /// The route's response body, holding its stream's slot (if any) until it is dropped;
    /// or the refusal's text.
    pub struct CappedBody<B> {
        #[pin]
        inner: Inner<B>,
        _slot: Option<StreamSlot>,
    }
}

pin_project! {
    #[project = InnerProjection]
    enum Inner<B> {
        Route { #[pin] body: B },
        Refusal { text: Option<Bytes> },
    }
}

impl<B> HttpBody for CappedBody<B>
where
    B: HttpBody<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.project() {
            InnerProjection::Route { body } => body.poll_frame(cx),
            InnerProjection::Refusal { text } => Poll::Ready(text.take().map(Frame::data).map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Route { body } => body.is_end_stream(),
            Inner::Refusal { text } => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Route { body } => body.size_hint(),
            Inner::Refusal { text } => {
                SizeHint::with_exact(text.as_ref().map_or(0, |text| text.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests;
