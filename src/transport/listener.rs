//! The accept loop under the HTTP server, plain or TLS: admission against the connection
//! caps ([`super::connections`]), TCP_NODELAY, a bounded TLS handshake, and hyper's HTTP/1
//! with a timer, so the header-read timeout applies — to a new connection waiting for
//! its first request head and to a kept-alive one waiting for its next (hyper arms the
//! same timer for both, so it is also the idle keep-alive timeout). A response in flight,
//! such as an SSE stream, is not waiting for a head and is never timed out here; streams
//! are capped per principal instead ([`super::streams`]). Each request carries the client
//! address as `ConnectInfo<SocketAddr>`, as `axum::serve` gave it, and whether the listener
//! is TLS (`ListenerScheme`, for URLs built without a public URL).
//!
//! A connection over a cap is closed at once, before any byte of HTTP is read: on plain
//! HTTP with a short `503` written first (best effort, never waited for), on TLS without
//! a word (a 503 would need a handshake the flood would make us pay for).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{
    connections::{ConnectionGuard, ConnectionTracker, RateLimitedLog, Refusal},
    tls::ReloadableTls,
};
use crate::auth::public_origin::ListenerScheme;

/// How long shutdown waits for open connections before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (such as EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// What a refused plain-HTTP connection is sent before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain\r\ncontent-length: 21\r\nretry-after: 5\r\nconnection: close\r\n\r\n\
too many connections\n";

/// What every listener of one server shares.
pub struct Acceptor {
    pub router: Router,
    pub tracker: Arc<ConnectionTracker>,
    pub header_timeout: Duration,
    pub tls: Option<(Arc<ReloadableTls>, Duration)>,
    pub refusals: RateLimitedLog,
}

impl Acceptor {
    /// Accept on `listener` until `shutdown` is cancelled, then wait up to
    /// [`SHUTDOWN_GRACE`] for the open connections to finish.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let graceful = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let guard = match self.tracker.admit(peer.ip()) {
                Ok(guard) => guard,
                Err(refusal) => {
                    self.refuse(stream, peer, refusal);
                    continue;
                }
            };
            // Without it, SSE-framed responses wait on delayed ACKs (~40 ms a call).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            let this = self.clone();
            let http = http.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _guard: ConnectionGuard = guard;
                match &this.tls {
                    None => this.serve(stream, peer, &http, watcher).await,
                    Some((tls, handshake_timeout)) => {
                        let handshake = tls.acceptor().accept(stream);
                        match tokio::time::timeout(*handshake_timeout, handshake).await {
                            // An ACME TLS-ALPN-01 validation: the handshake was all of it.
                            Ok(Ok(stream)) if super::acme::is_challenge(&stream) => {
                                tracing::debug!(%peer, "ACME TLS-ALPN-01 validation handshake");
                            }
                            Ok(Ok(stream)) => this.serve(stream, peer, &http, watcher).await,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace period; closing");
        }
    }

    /// Serve HTTP/1 on one admitted connection until it closes.
    async fn serve<I>(
        &self,
        io: I,
        peer: SocketAddr,
        http: &http1::Builder,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let scheme = if self.tls.is_some() {
            ListenerScheme::Https
        } else {
            ListenerScheme::Http
        };
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request.extensions_mut().insert(scheme);
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }

    /// Close a connection over a cap (see the module doc), logging at a bounded rate.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, refusal: Refusal) {
        if self.tls.is_none() {
            // Read what already arrived so the close is a FIN, not a reset that could
            // discard the 503 before the client reads it; never wait for more.
            let mut scratch = [0u8; 1024];
            for _ in 0..8 {
                match stream.try_read(&mut scratch) {
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
            let _ = stream.try_write(REFUSAL);
        }
        drop(stream);
        self.refusals.warn(|suppressed| {
            tracing::warn!(
                client = %peer.ip(),
                reason = %refusal,
                suppressed,
                "connection refused"
            );
        });
    }
}

#[cfg(test)]
mod tests;
