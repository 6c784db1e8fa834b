//! `http.fetch`: the only way out of the sandbox.
//!
//! Built on hyper's HTTP/1.1 client connection rather than a pooled client (or reqwest) because
//! the host must connect to exactly the address it vetted: we resolve the name, refuse
//! non-public addresses, open the TCP connection ourselves, then hand the socket to hyper. No
//! proxy environment variables, no connection reuse across plugins, no hidden redirects.
//!
//! Each plugin keeps its own idle keep-alive connections, by scheme, server name, port and
//! vetted address: a platform API call then costs no TCP (and, in production, no TLS)
//! handshake. A connection is reused only to an address the policy allows for this request,
//! only while it has been idle a short time, and a request a stale connection did not take
//! (hyper hands it back unsent) goes out on a fresh one; anything else is the call's error.
//!
//! Redirects (301, 302, 303, 307, 308) are followed by the host, each hop checked exactly like
//! a new request from the plugin (allow-list, re-pointing, address vetting) and counted against
//! the call's request budget.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::bindings::sop::plugin::http::{ConnectionFailure, Error, Request, Response};
use crate::egress::{EgressPolicy, Scheme, Target};
use crate::resolver::Resolver;

const MAX_REDIRECTS: u32 = 5;

/// How long an idle connection is kept for reuse: well under the idle timeouts servers
/// commonly use (nginx 60 s, many load balancers 5-60 s), so the server rarely closes one
/// just as it is reused.
const KEEP_IDLE: Duration = Duration::from_secs(4);

/// Idle connections kept per destination; more concurrent calls than this open new ones.
const MAX_IDLE_PER_DESTINATION: usize = 16;

/// Headers the host sets itself; a plugin's values for them are dropped.
const HOST_OWNED: [HeaderName; 6] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
];

/// The HTTP client: shared pieces, and the idle connections of one plugin (see
/// [`HttpClient::for_plugin`]).
#[derive(Clone)]
pub(crate) struct HttpClient {
    resolver: Arc<dyn Resolver>,
    tls: TlsConnector,
    pool: Arc<Pool>,
}

/// Where a kept connection goes. The server name is part of it: a TLS session is bound to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Destination {
    https: bool,
    host: String,
    port: u16,
    ip: IpAddr,
}

/// A keep-alive connection: its request handle, the task driving it (aborted, and the socket
/// closed, when this is dropped) and when it was last used.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    _conn: AbortOnDrop<()>,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<Destination, Vec<Idle>>>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Destination, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used open connection to one of `ips`, if any.
    fn take(&self, target: &Target, ips: &[IpAddr]) -> Option<(Destination, Idle)> {
        let now = Instant::now();
        let mut idle = self.lock();
        for ip in ips {
            let destination = destination(target, *ip);
            let Some(list) = idle.get_mut(&destination) else {
                continue;
            };
            list.retain(|c| now.duration_since(c.since) < KEEP_IDLE && !c.sender.is_closed());
            while let Some(candidate) = list.pop() {
                if candidate.sender.is_ready() {
                    return Some((destination, candidate));
                }
            }
        }
        None
    }

    fn put(&self, destination: Destination, connection: Idle) {
        let mut idle = self.lock();
        let list = idle.entry(destination).or_default();
        if list.len() < MAX_IDLE_PER_DESTINATION {
            list.push(connection);
        }
    }
}

fn destination(target: &Target, ip: IpAddr) -> Destination {
    Destination {
        https: target.scheme == Scheme::Https,
        host: target.host.clone(),
        port: target.port,
        ip,
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

/// What one call may still spend on HTTP.
#[derive(Debug)]
pub(crate) struct FetchBudget {
    pub requests_left: u32,
    pub deadline: Instant,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
}

impl HttpClient {
    pub fn new(resolver: Arc<dyn Resolver>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports the default TLS versions"))
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            resolver,
            tls: TlsConnector::from(Arc::new(config)),
            pool: Arc::default(),
        }
    }

    /// The same client with an empty pool of its own: connections are never shared between
    /// plugins.
    pub fn for_plugin(&self) -> Self {
        Self {
            resolver: self.resolver.clone(),
            tls: self.tls.clone(),
            pool: Arc::default(),
        }
    }

    /// Performs the plugin's request under `policy`, following checked redirects.
    pub async fn fetch(
        &self,
        policy: &EgressPolicy,
        req: Request,
        budget: &mut FetchBudget,
    ) -> Result<Response, Error> {
        if req.body.len() > budget.max_request_bytes {
            return Err(Error::Denied(format!(
                "request body of {} bytes exceeds the {} byte limit",
                req.body.len(),
                budget.max_request_bytes
            )));
        }
        let now = Instant::now();
        let deadline = match req.timeout_ms {
            0 => budget.deadline,
            ms => budget
                .deadline
                .min(now + Duration::from_millis(u64::from(ms))),
        };
        let mut url = req.url;
        let mut method = parse_method(&req.method)?;
        let mut headers = parse_headers(&req.headers)?;
        let mut body = Bytes::from(req.body);
        for hop in 0..=MAX_REDIRECTS {
            if budget.requests_left == 0 {
                return Err(Error::Denied(
                    "HTTP request budget of this call is spent".into(),
                ));
            }
            budget.requests_left -= 1;
            let target = policy.route(&url).map_err(|e| {
                Error::Denied(if hop == 0 {
                    e
                } else {
                    format!("redirect refused: {e}")
                })
            })?;
            let exchange = self.send(policy, &target, &method, &headers, body.clone(), budget);
            let response = tokio::time::timeout_at(deadline, exchange)
                .await
                .map_err(|_| Error::Timeout)??;
            let location = response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.clone());
            let Some(location) = location.filter(|_| is_redirect(response.status)) else {
                return Ok(response);
            };
            let next = join_url(&url, &location);
            if host_of(&next) != host_of(&url) {
                // Credentials never follow a redirect to another host.
                headers.retain(|(k, _)| k != header::AUTHORIZATION && k != header::COOKIE);
            }
            if response.status == 303
                || (matches!(response.status, 301 | 302) && method == hyper::Method::POST)
            {
                method = hyper::Method::GET;
                body = Bytes::new();
            }
            url = next;
        }
        Err(Error::Denied(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    async fn send(
        &self,
        policy: &EgressPolicy,
        target: &Target,
        method: &hyper::Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        budget: &FetchBudget,
    ) -> Result<Response, Error> {
        let addrs = self.vetted_addresses(policy, target).await?;
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(target.path_and_query.as_str())
            .header(header::HOST, target.authority.as_str());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let mut request = request
            .body(Full::new(body))
            .map_err(|e| Error::Denied(format!("invalid request: {e}")))?;
        loop {
            let (destination, mut connection, fresh) = match self.pool.take(target, &addrs) {
                Some((destination, connection)) => (destination, connection, false),
                None => {
                    let (destination, connection) = self.open(target, &addrs).await?;
                    (destination, connection, true)
                }
            };
            match exchange(&mut connection.sender, request, budget).await {
                Exchanged::Answered(response, keep) => {
                    if keep {
                        connection.since = Instant::now();
                        self.pool.put(destination, connection);
                    }
                    return Ok(response);
                }
                // A kept connection the server closed meanwhile; the request never left.
                Exchanged::Unsent(back) if !fresh => request = back,
                Exchanged::Unsent(_) => {
                    return Err(not_sent("the new connection closed at once".into()));
                }
                Exchanged::Failed(error) => return Err(error),
            }
        }
    }

    /// A new connection to the first of `addrs` that answers, TLS on top for `https`.
    async fn open(&self, target: &Target, addrs: &[IpAddr]) -> Result<(Destination, Idle), Error> {
        let stream = connect(addrs, target.port).await?;
        let ip = stream
            .peer_addr()
            .map_err(|e| not_sent(format!("connected socket has no peer: {e}")))?
            .ip();
        let (sender, conn) = match target.scheme {
            Scheme::Http => handshake(TokioIo::new(stream)).await?,
            Scheme::Https => {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| Error::Denied(format!("invalid TLS server name: {e}")))?;
                let tls = self
                    .tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| not_sent(format!("TLS handshake failed: {e}")))?;
                handshake(TokioIo::new(tls)).await?
            }
        };
        let connection = Idle {
            sender,
            _conn: conn,
            since: Instant::now(),
        };
        Ok((destination(target, ip), connection))
    }

    /// Resolves `host` and keeps only addresses the policy allows; refuses when none remain.
    async fn vetted_addresses(
        &self,
        policy: &EgressPolicy,
        target: &Target,
    ) -> Result<Vec<IpAddr>, Error> {
        let host = target.host.as_str();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let candidates = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .resolver
                .lookup(host)
                .await
                .map_err(|e| not_sent(format!("cannot resolve {host}: {e}")))?,
        };
        let mut refusals = Vec::new();
        let allowed: Vec<IpAddr> = candidates
            .into_iter()
            .filter(|ip| match policy.address_refusal(*ip, target.repointed) {
                None => true,
                Some(reason) => {
                    refusals.push(format!("{ip} is {reason}"));
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            return Err(Error::Denied(format!(
                "{host} resolves to no allowed address ({})",
                if refusals.is_empty() {
                    "no addresses".into()
                } else {
                    refusals.join(", ")
                }
            )));
        }
        Ok(allowed)
    }
}

async fn connect(addrs: &[IpAddr], port: u16) -> Result<TcpStream, Error> {
    let mut last = String::new();
    for ip in addrs {
        match TcpStream::connect(SocketAddr::new(*ip, port)).await {
            Ok(s) => {
                // Small JSON API calls: latency matters more than packet count.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("connect to {ip}:{port}: {e}"),
        }
    }
    Err(not_sent(last))
}

/// A new HTTP/1.1 connection over `io`, its driving task spawned.
async fn handshake<IO>(
    io: TokioIo<IO>,
) -> Result<(SendRequest<Full<Bytes>>, AbortOnDrop<()>), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| not_sent(format!("HTTP handshake failed: {e}")))?;
    // The connection task dies with its handle: with the call, or when the pool drops it.
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    Ok((sender, conn))
}

/// How one request on one connection went.
enum Exchanged {
    /// The answer, and whether the connection may carry another request.
    Answered(Response, bool),
    /// The connection was closed before the request was written: it can go on another one.
    Unsent(hyper::Request<Full<Bytes>>),
    Failed(Error),
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
    budget: &FetchBudget,
) -> Exchanged {
    let response = match sender.try_send_request(request).await {
        Ok(response) => response,
        Err(mut error) => {
            return match error.take_message() {
                Some(request) => Exchanged::Unsent(request),
                None => Exchanged::Failed(Error::Connection(ConnectionFailure {
                    message: format!("request failed: {}", error.error()),
                    sent: true,
                })),
            };
        }
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > budget.max_response_bytes as u64) {
        return Exchanged::Failed(Error::TooLarge);
    }
    let closing = response
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        });
    let mut incoming = response.into_body();
    let mut body = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                return Exchanged::Failed(Error::Connection(ConnectionFailure {
                    message: format!("reading the response failed: {e}"),
                    sent: true,
                }));
            }
        };
        if let Ok(data) = frame.into_data() {
            if body.len() + data.len() > budget.max_response_bytes {
                return Exchanged::Failed(Error::TooLarge);
            }
            body.extend_from_slice(&data);
        }
    }
    let response = Response {
        status,
        headers,
        body,
    };
    Exchanged::Answered(response, !closing && !sender.is_closed())
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn not_sent(message: String) -> Error {
    Error::Connection(ConnectionFailure {
        message,
        sent: false,
    })
}

fn parse_method(m: &str) -> Result<hyper::Method, Error> {
    let method = hyper::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::Denied(format!("invalid HTTP method {m:?}")))?;
    if method == hyper::Method::CONNECT {
        return Err(Error::Denied("CONNECT is not allowed".into()));
    }
    Ok(method)
}

fn parse_headers(pairs: &[(String, String)]) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::Denied(format!("invalid header name {k:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| Error::Denied(format!("invalid value for header {k:?}")))?;
        if !HOST_OWNED.contains(&name) {
            out.push((name, value));
        }
    }
    Ok(out)
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The part of an absolute URL between `://` and the next `/`, `?` or `#`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// Resolves a `Location` against the URL the plugin asked for (not the re-pointed one), so a
/// relative redirect from the emulator stays on the same manifest host.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority = host_of(base);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority.len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("/");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_plugin_url() {
        let base = "https://api.example.com/a/b?x=1";
        assert_eq!(
            join_url(base, "https://other.example.com/z"),
            "https://other.example.com/z"
        );
        assert_eq!(
            join_url(base, "//other.example.com/z"),
            "https://other.example.com/z"
        );
        assert_eq!(join_url(base, "/z?q=2"), "https://api.example.com/z?q=2");
        assert_eq!(join_url(base, "c"), "https://api.example.com/a/c");
    }

    #[test]
    fn host_owned_and_invalid_headers() {
        let ok = parse_headers(&[
            ("Host".into(), "evil".into()),
            ("Content-Type".into(), "application/json".into()),
        ])
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].0, header::CONTENT_TYPE);
        assert!(matches!(
            parse_headers(&[("bad header".into(), "x".into())]),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            parse_headers(&[("x".into(), "a\nb".into())]),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn methods_are_checked() {
        assert_eq!(parse_method("post").unwrap(), hyper::Method::POST);
        assert!(parse_method("CONNECT").is_err());
        assert!(parse_method("GE T").is_err());
    }
}
