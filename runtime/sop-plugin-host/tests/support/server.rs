//! A tiny HTTP/1.1 server on loopback standing in for a platform (or the emulator) in tests.
//! It answers by path and counts requests; it never talks to anything but its own clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running test server; it stops when the runtime does.
#[derive(Debug, Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        Self { addr, hits }
    }

    /// Base URL for re-pointing a manifest host here.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Answers requests on one connection: one, then closes, except on the keep-alive paths.
async fn serve(mut stream: TcpStream) {
    while serve_one(&mut stream).await {}
}

/// One request; whether the connection stays open for another.
async fn serve_one(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or("")
        .to_owned();
    let (status, location, body): (&str, Option<&str>, Vec<u8>) = match target.split('?').next() {
        Some("/hello") => (
            "200 OK",
            None,
            format!("hello {target} via {host}").into_bytes(),
        ),
        Some("/redirect-ok") => ("302 Found", Some("/hello?redirected=1"), vec![]),
        Some("/redirect-metadata") => (
            "302 Found",
            Some("http://169.254.169.254/latest/meta-data/"),
            vec![],
        ),
        Some("/redirect-unlisted") => (
            "301 Moved Permanently",
            Some("https://evil.example.com/"),
            vec![],
        ),
        Some("/big") => ("200 OK", None, vec![b'x'; 5 << 20]),
        Some("/keep-alive" | "/keep-alive-then-close") => {
            let body = format!("kept {target}");
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            // The second closes as a server's idle timeout would, without saying so.
            return target.starts_with("/keep-alive?");
        }
        Some("/silent") => {
            // Hold the connection open without answering: the caller's timeout must fire.
            let _ = stream.read(&mut buf).await;
            return false;
        }
        _ => ("404 Not Found", None, b"not found".to_vec()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(l) = location {
        response.push_str(&format!("location: {l}\r\n"));
    }
    response.push_str("content-type: text/plain\r\n\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
    false
}
