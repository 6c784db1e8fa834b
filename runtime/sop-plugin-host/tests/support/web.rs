//! Plain HTTP for tests that drive the emulator: a one-shot JSON client for its control API and
//! an ingress standing in for the daemon's, which hands every request to a handler (the plugin's
//! `parse-webhook`), answers with what the handler says, and keeps the request exactly as sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A request as the ingress got it, with the answer it gave.
#[derive(Debug, Clone)]
pub struct Captured {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Request target: path and raw query.
    pub target: String,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The status the handler answered.
    pub answered: u16,
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

/// What the ingress answers: status, content type, body.
pub type Answer = (u16, String, Vec<u8>);

/// Turns one received request into the answer.
pub type Handler =
    Arc<dyn Fn(Captured) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// A [`Handler`] from an async closure.
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Captured) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    Arc::new(move |c| -> Pin<Box<dyn Future<Output = Answer> + Send>> { Box::pin(f(c)) })
}

/// Hands every request to its handler and keeps what it received.
#[derive(Clone)]
pub struct Ingress {
    /// `http://127.0.0.1:port`.
    pub url: String,
    got: Arc<Mutex<Vec<Captured>>>,
    /// Requests answered so far, to wait on without polling.
    count: tokio::sync::watch::Receiver<usize>,
}

impl Ingress {
    /// Listens on an ephemeral loopback port.
    pub async fn start(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let (tx, count) = tokio::sync::watch::channel(0);
        let tx = Arc::new(tx);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (sink, tx, handler) = (sink.clone(), tx.clone(), handler.clone());
                tokio::spawn(async move {
                    if let Some(c) = serve(stream, &handler).await {
                        let n = {
                            let mut all = sink.lock().expect("ingress lock");
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

    /// Everything answered so far with `method` whose target starts with `prefix`.
    pub fn received(&self, prefix: &str, method: &str) -> Vec<Captured> {
        let got = self.got.lock().expect("ingress lock");
        got.iter()
            .filter(|c| c.method == method && c.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until `n` `method` requests under `prefix` were answered (the emulator delivers
    /// callbacks on a task of its own); fails after 30 s of real time rather than hang.
    pub async fn wait_for(&self, prefix: &str, method: &str, n: usize) -> Vec<Captured> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(
            Duration::from_secs(30),
            count.wait_for(|_| self.received(prefix, method).len() >= n),
        )
        .await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "expected {n} {method} requests under {prefix}, got {:?}",
            self.received(prefix, method)
        );
        self.received(prefix, method)
    }
}

/// Reads one HTTP/1.1 request, answers it through `handler`, and closes the connection.
async fn serve(mut stream: TcpStream, handler: &Handler) -> Option<Captured> {
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
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
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
    let mut captured = Captured {
        method,
        target,
        headers,
        body: data[head_end..].to_vec(),
        answered: 0,
    };
    let (status, content_type, body) = handler(captured.clone()).await;
    captured.answered = status;
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
    Some(captured)
}
