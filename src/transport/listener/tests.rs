//! The accept loop on a real loopback socket, in process: admission, refusal, the
//! header/keep-alive timeout, and the client address handed to the router.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo, routing::get};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

use super::*;

/// Generous bound for anything the server should do "at once" on a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(5);

struct Running {
    address: SocketAddr,
    tracker: Arc<ConnectionTracker>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the accept loop stops")
            .unwrap();
    }
}

/// An acceptor whose router answers `/peer` with the client address it was given.
async fn start(max_per_address: usize, header_timeout: Duration) -> Running {
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let tracker = ConnectionTracker::new(16, max_per_address);
    let acceptor = Arc::new(Acceptor {
        router,
        tracker: tracker.clone(),
        header_timeout,
        tls: None,
        refusals: RateLimitedLog::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(acceptor.run(listener, shutdown.clone()));
    Running {
        address,
        tracker,
        shutdown,
        task,
    }
}

/// Everything until the server closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(PROMPTLY, async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    received
}

/// One request on a kept-alive connection; the body of its (small) response.
async fn get_peer(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(PROMPTLY, async {
        while !String::from_utf8_lossy(&response).ends_with("127.0.0.1") {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&response));
            response.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("an answer");
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn the_connection_over_the_address_cap_gets_the_503_and_a_freed_place_admits_again() {
    let server = start(1, Duration::from_secs(30)).await;
    let mut admitted = TcpStream::connect(server.address).await.unwrap();
    assert!(get_peer(&mut admitted).await.starts_with("HTTP/1.1 200"));

    let mut refused = TcpStream::connect(server.address).await.unwrap();
    assert_eq!(read_to_close(&mut refused).await, REFUSAL);

    drop(admitted);
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    while server.tracker.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = TcpStream::connect(server.address).await.unwrap();
    assert!(get_peer(&mut again).await.starts_with("HTTP/1.1 200"));
    drop(again);
    server.stop().await;
}

#[tokio::test]
async fn a_head_that_never_ends_is_cut_and_a_kept_alive_connection_makes_two_calls_first() {
    let timeout = Duration::from_millis(300);
    let server = start(4, timeout).await;

    let mut kept = TcpStream::connect(server.address).await.unwrap();
    let first = get_peer(&mut kept).await;
    // The router saw the client address, as ConnectInfo.
    assert!(first.starts_with("HTTP/1.1 200") && first.ends_with("127.0.0.1"));
    assert!(get_peer(&mut kept).await.starts_with("HTTP/1.1 200"));
    // Then, idle, it is closed by the same timer.
    let started = tokio::time::Instant::now();
    read_to_close(&mut kept).await;
    assert!(started.elapsed() >= timeout / 2, "{:?}", started.elapsed());

    let mut slow = TcpStream::connect(server.address).await.unwrap();
    slow.write_all(b"GET /peer HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let answer = read_to_close(&mut slow).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
    assert!(started.elapsed() >= timeout / 2, "{:?}", started.elapsed());
    server.stop().await;
}

#[test]
fn the_refusal_is_one_well_formed_response() {
    let text = std::str::from_utf8(REFUSAL).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 503 "));
    assert!(head.contains(&format!("content-length: {}", body.len())));
}
