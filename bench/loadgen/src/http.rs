//! HTTP/1.1 client plumbing: one keep-alive connection per `Conn` (hyper's low-level
//! client, no pool), request building, whole-body reads, and an SSE event reader.

use std::{
    io,
    net::{SocketAddr, ToSocketAddrs},
};

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response,
    body::Incoming,
    client::conn::http1::{self, SendRequest},
    header::{self, HeaderName, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::mcp::Error;

/// The server under test.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub auth: Option<HeaderValue>,
}

impl Target {
    pub fn parse(url: &str, token: Option<&str>) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs: {url}"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("no address for {authority}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{addr} is not a loopback address; the benchmark only targets loopback"
            ));
        }
        let auth = match token {
            Some(t) if !t.is_empty() => {
                Some(HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        Ok(Self {
            addr,
            host: HeaderValue::from_str(authority).map_err(|e| e.to_string())?,
            auth,
        })
    }

    /// A request with Host, Authorization and the MCP Accept header set.
    pub fn request(&self, method: hyper::Method, path: &str) -> hyper::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .header(
                header::ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            );
        if let Some(auth) = &self.auth {
            b = b.header(header::AUTHORIZATION, auth.clone());
        }
        b
    }

    pub fn post(
        &self,
        path: &str,
        body: Bytes,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Request<Full<Bytes>> {
        let mut b = self.request(hyper::Method::POST, path).header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (k, v) in extra {
            b = b.header(k, v);
        }
        b.body(Full::new(body)).expect("valid request")
    }
}

/// One HTTP/1.1 connection.
pub struct Conn {
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub async fn connect(target: &Target) -> io::Result<Self> {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { send: Some(send) })
    }

    /// A connection that is already closed (drops the real one's socket).
    pub fn closed() -> Self {
        Self { send: None }
    }

    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, Error> {
        let send = self
            .send
            .as_mut()
            .ok_or_else(|| Error::Transport("connection closed".into()))?;
        send.ready()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        send.send_request(request)
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }

    pub fn is_closed(&self) -> bool {
        self.send.as_ref().is_none_or(SendRequest::is_closed)
    }
}

/// Read a whole body.
pub async fn body_bytes(response: Response<Incoming>) -> Result<Bytes, Error> {
    response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Error::Transport(e.to_string()))
}

/// Is this response an SSE stream?
pub fn is_event_stream<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// One server-sent event.
#[derive(Debug, Default)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

/// Parse every complete event in `buf` (lines end in \n or \r\n; a blank line ends an
/// event), consuming what was parsed.
pub fn parse_events(buf: &mut BytesMut, out: &mut Vec<Event>) {
    let mut current = Event::default();
    let mut has_fields = false;
    let mut consumed = 0;
    let mut pos = 0;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let mut line = &buf[pos..pos + nl];
        pos += nl + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            if has_fields {
                out.push(std::mem::take(&mut current));
                has_fields = false;
            }
            consumed = pos;
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if has_fields && !current.data.is_empty() {
                    current.data.push('\n');
                }
                current.data.push_str(&value);
                has_fields = true;
            }
            b"event" => {
                current.event = Some(value.into_owned());
                has_fields = true;
            }
            _ => has_fields = true,
        }
    }
    buf.advance(consumed);
}

/// Reads events from a long-lived SSE response.
pub struct SseReader {
    body: Incoming,
    buf: BytesMut,
    ready: std::collections::VecDeque<Event>,
}

impl SseReader {
    pub fn new(response: Response<Incoming>) -> Self {
        Self {
            body: response.into_body(),
            buf: BytesMut::with_capacity(4096),
            ready: Default::default(),
        }
    }

    /// The next event, or None when the stream ends.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Ok(Some(e));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Transport(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                        let mut events = Vec::new();
                        parse_events(&mut self.buf, &mut events);
                        self.ready.extend(events);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lf_and_crlf_events_and_keeps_partial_ones() {
        let mut buf = BytesMut::from(
            &b"event: endpoint\r\ndata: /messages/?session_id=ab\r\n\r\n: ping\n\ndata: {\"a\":1}\n\ndata: par"[..],
        );
        let mut out = Vec::new();
        parse_events(&mut buf, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].event.as_deref(), Some("endpoint"));
        assert_eq!(out[0].data, "/messages/?session_id=ab");
        assert_eq!(out[1].data, "{\"a\":1}");
        assert_eq!(&buf[..], b"data: par");
    }

    #[test]
    fn priming_event_with_empty_data_is_an_event() {
        let mut buf = BytesMut::from(&b"data: \nid: 0\nretry: 3000\n\ndata: {}\nid: 1\n\n"[..]);
        let mut out = Vec::new();
        parse_events(&mut buf, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, "");
        assert_eq!(out[1].data, "{}");
    }
}
