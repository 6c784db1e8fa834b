//! `http.fetch`: the only way out of the sandbox.
//!
//! Built on hyper's HTTP/1.1 client connection rather than a pooled client (or reqwest) because
//! the host must connect to exactly the address it vetted: we resolve the name, refuse
//! non-public addresses, open the TCP connection ourselves, then hand the socket to hyper. No
//! proxy environment variables, no connection reuse across plugins, no hidden redirects.
//!
//! Redirects (301, 302, 303, 307, 308) are followed by the host, each hop checked exactly like
//! a new request from the plugin (allow-list, re-pointing, address vetting) and counted against
//! the call's request budget.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
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

/// Headers the host sets itself; a plugin's values for them are dropped.
const HOST_OWNED: [HeaderName; 6] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
];

/// Shared pieces of the HTTP client.
#[derive(Clone)]
pub(crate) struct HttpClient {
    resolver: Arc<dyn Resolver>,
    tls: TlsConnector,
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
        let stream = connect(&addrs, target.port).await?;
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(target.path_and_query.as_str())
            .header(header::HOST, target.authority.as_str());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Error::Denied(format!("invalid request: {e}")))?;
        match target.scheme {
            Scheme::Http => exchange(TokioIo::new(stream), request, budget).await,
            Scheme::Https => {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| Error::Denied(format!("invalid TLS server name: {e}")))?;
                let tls = self
                    .tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| not_sent(format!("TLS handshake failed: {e}")))?;
                exchange(TokioIo::new(tls), request, budget).await
            }
        }
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

async fn exchange<IO>(
    io: TokioIo<IO>,
    request: hyper::Request<Full<Bytes>>,
    budget: &FetchBudget,
) -> Result<Response, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| not_sent(format!("HTTP handshake failed: {e}")))?;
    // The connection task dies with this call, whichever way the call ends.
    let conn = AbortOnDrop(tokio::spawn(conn));
    let response = sender.send_request(request).await.map_err(|e| {
        Error::Connection(ConnectionFailure {
            message: format!("request failed: {e}"),
            sent: true,
        })
    })?;
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
        return Err(Error::TooLarge);
    }
    let mut incoming = response.into_body();
    let mut body = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| {
            Error::Connection(ConnectionFailure {
                message: format!("reading the response failed: {e}"),
                sent: true,
            })
        })?;
        if let Ok(data) = frame.into_data() {
            if body.len() + data.len() > budget.max_response_bytes {
                return Err(Error::TooLarge);
            }
            body.extend_from_slice(&data);
        }
    }
    drop(conn);
    Ok(Response {
        status,
        headers,
        body,
    })
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
