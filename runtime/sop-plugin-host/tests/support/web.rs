//! Plain HTTP for tests that drive the emulator: a one-shot JSON client for its control API and
//! a receiver standing in for the daemon's ingress, capturing callbacks exactly as sent.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request to `base` + `path` (`body` as JSON when given); the answer's status and JSON
/// (`Value::Null` when the body is not JSON).
pub async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let authority = base.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&authority).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &authority)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Request target: path and raw query.
    pub target: String,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Captured {
    /// Percent-decoded query pairs.
    pub fn query(&self) -> Vec<(String, String)> {
        let query = self.target.split_once('?').map_or("", |(_, q)| q);
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect()
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers every POST with `200 success` and keeps what it received.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:port`.
    pub url: String,
    got: Arc<Mutex<Vec<Captured>>>,
    /// Requests received so far, to wait on without polling.
    count: tokio::sync::watch::Receiver<usize>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let (tx, count) = tokio::sync::watch::channel(0);
        let tx = Arc::new(tx);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (sink, tx) = (sink.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(c) = read_request(stream).await {
                        let n = {
                            let mut all = sink.lock().expect("receiver lock");
                            all.push(c);
                            all.len()
                        };
                        tx.send_replace(n);
                    }
                });
            }
        });
        Self { url, got, count }
    }

    /// Everything received so far whose target starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<Captured> {
        let got = self.got.lock().expect("receiver lock");
        got.iter()
            .filter(|c| c.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until `n` requests under `prefix` arrived (the emulator delivers callbacks on a
    /// task of its own); fails after 30 s of real time rather than hang.
    pub async fn wait_for(&self, prefix: &str, n: usize) -> Vec<Captured> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            count.wait_for(|_| self.received(prefix).len() >= n),
        )
        .await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "expected {n} callbacks under {prefix}, got {:?}",
            self.received(prefix)
        );
        self.received(prefix)
    }
}

async fn read_request(mut stream: TcpStream) -> Option<Captured> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = data[head_end..].to_vec();
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nsuccess")
        .await;
    let _ = stream.shutdown().await;
    Some(Captured {
        target,
        headers,
        body,
    })
}
