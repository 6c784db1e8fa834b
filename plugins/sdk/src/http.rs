//! JSON over the host's `http.fetch`, with transport failures mapped to the typed errors.
//!
//! The mapping follows the delivery semantics: when a request may have reached the platform
//! (a timeout, a connection that broke after sending, a 5xx other than 503), an at-most-once
//! action answers `outcome-unknown` so the runtime never repeats a message blindly, while an
//! idempotent action answers `transient` and is retried.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Delivery, FetchError, Host, HttpRequest, HttpResponse, PluginError};

/// Used when the caller sets no timeout; the host caps it by the invocation's remaining time.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Back-off suggested for a 429 without a usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER_MS: u64 = 1_000;

/// One request under construction.
#[derive(Debug, Clone)]
pub struct Fetch {
    request: HttpRequest,
    query: Vec<(String, String)>,
}

impl Fetch {
    /// A request with no body.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            request: HttpRequest {
                method: method.to_owned(),
                url: url.to_owned(),
                headers: vec![("accept".to_owned(), "application/json".to_owned())],
                body: Vec::new(),
                timeout_ms: DEFAULT_TIMEOUT_MS,
            },
            query: Vec::new(),
        }
    }

    /// A `GET`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` of `body` as JSON.
    pub fn post_json<T: Serialize + ?Sized>(url: &str, body: &T) -> Self {
        let mut fetch = Self::new("POST", url).header("content-type", "application/json");
        fetch.request.body = crate::json::to_json(body).into_bytes();
        fetch
    }

    /// A `POST` of `fields` as `application/x-www-form-urlencoded` (OAuth token endpoints).
    pub fn post_form(url: &str, fields: &[(&str, &str)]) -> Self {
        let mut fetch =
            Self::new("POST", url).header("content-type", "application/x-www-form-urlencoded");
        fetch.request.body = encode_pairs(fields.iter().copied()).into_bytes();
        fetch
    }

    /// Appends a query parameter (percent-encoded here).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request
            .headers
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the per-request timeout.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.request.timeout_ms = timeout_ms;
        self
    }

    /// The request as it will be sent.
    pub fn request(&self) -> HttpRequest {
        let mut request = self.request.clone();
        if !self.query.is_empty() {
            let encoded = encode_pairs(self.query.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let separator = if request.url.contains('?') { '&' } else { '?' };
            request.url = format!("{}{separator}{encoded}", request.url);
        }
        request
    }

    /// Sends the request; transport failures and non-2xx statuses become typed errors.
    pub fn send(&self, host: &dyn Host, delivery: Delivery) -> Result<HttpResponse, PluginError> {
        let request = self.request();
        let response = host
            .fetch(&request)
            .map_err(|e| map_fetch_error(&e, delivery, &request))?;
        check_status(&response, delivery, &request)?;
        Ok(response)
    }

    /// Sends the request and parses a 2xx body as `T`.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        host: &dyn Host,
        delivery: Delivery,
    ) -> Result<T, PluginError> {
        let response = self.send(host, delivery)?;
        serde_json::from_slice(&response.body).map_err(|e| {
            let message = format!("{}: unreadable JSON answer: {e}", describe(&self.request));
            // The platform answered, so the request arrived; whether it acted is unknown.
            match delivery {
                Delivery::AtMostOnce => PluginError::outcome_unknown(message),
                Delivery::Idempotent => PluginError::transient(message),
            }
        })
    }
}

fn describe(request: &HttpRequest) -> String {
    // Query strings carry tokens and secrets: never put them in errors or logs.
    let url = request.url.split('?').next().unwrap_or_default();
    format!("{} {url}", request.method)
}

/// Maps a failed `fetch` to the typed error for an action of `delivery`.
pub fn map_fetch_error(
    error: &FetchError,
    delivery: Delivery,
    request: &HttpRequest,
) -> PluginError {
    let what = describe(request);
    let maybe_sent = |message: String| match delivery {
        Delivery::AtMostOnce => PluginError::outcome_unknown(message),
        Delivery::Idempotent => PluginError::transient(message),
    };
    match error {
        FetchError::Denied(reason) => {
            PluginError::permanent(format!("{what}: refused by the host: {reason}"))
        }
        FetchError::Timeout => maybe_sent(format!("{what}: timed out")),
        FetchError::Connection(failure) if failure.sent => maybe_sent(format!(
            "{what}: connection broke after sending: {}",
            failure.message
        )),
        FetchError::Connection(failure) => {
            PluginError::transient(format!("{what}: could not connect: {}", failure.message))
        }
        FetchError::TooLarge => PluginError::permanent(format!("{what}: answer too large")),
    }
}

/// Maps a non-2xx status to the typed error for an action of `delivery`.
pub fn check_status(
    response: &HttpResponse,
    delivery: Delivery,
    request: &HttpRequest,
) -> Result<(), PluginError> {
    let status = response.status;
    let what = format!("{}: HTTP {status}", describe(request));
    match status {
        200..=299 => Ok(()),
        429 => Err(PluginError::rate_limited(
            retry_after_ms(response).unwrap_or(DEFAULT_RETRY_AFTER_MS),
            what,
        )),
        401 => Err(PluginError::auth_expired(what)),
        // 503 means the server declined the work; other 5xx may come after it acted.
        503 => Err(PluginError::transient(what)),
        500..=599 => Err(match delivery {
            Delivery::AtMostOnce => PluginError::outcome_unknown(what),
            Delivery::Idempotent => PluginError::transient(what),
        }),
        _ => Err(PluginError::permanent(what)),
    }
}

/// `Retry-After` in seconds, as milliseconds.
fn retry_after_ms(response: &HttpResponse) -> Option<u64> {
    header(&response.headers, "retry-after")?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.saturating_mul(1000))
}

/// The first value of header `name`, compared case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn encode_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectionFailure;

    fn request() -> HttpRequest {
        Fetch::get("https://api.example.com/x")
            .query("token", "s e/cret")
            .request()
    }

    #[test]
    fn query_is_percent_encoded() {
        assert_eq!(
            request().url,
            "https://api.example.com/x?token=s%20e%2Fcret"
        );
    }

    #[test]
    fn form_bodies_are_encoded() {
        let request = Fetch::post_form("https://h/t", &[("a", "1 2"), ("b", "x&y")]).request();
        assert_eq!(request.body, b"a=1%202&b=x%26y");
        assert!(
            request
                .headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn errors_never_contain_the_query() {
        let err = map_fetch_error(&FetchError::Timeout, Delivery::Idempotent, &request());
        assert!(!err.to_string().contains("cret"), "{err}");
    }

    #[test]
    fn transport_failures_follow_delivery() {
        let req = request();
        let sent = FetchError::Connection(ConnectionFailure {
            message: "reset".to_owned(),
            sent: true,
        });
        let unsent = FetchError::Connection(ConnectionFailure {
            message: "refused".to_owned(),
            sent: false,
        });
        let table = [
            (
                &FetchError::Timeout,
                Delivery::AtMostOnce,
                "outcome-unknown",
            ),
            (&FetchError::Timeout, Delivery::Idempotent, "transient"),
            (&sent, Delivery::AtMostOnce, "outcome-unknown"),
            (&sent, Delivery::Idempotent, "transient"),
            (&unsent, Delivery::AtMostOnce, "transient"),
            (&FetchError::TooLarge, Delivery::Idempotent, "permanent"),
            (
                &FetchError::Denied("not allowlisted".to_owned()),
                Delivery::AtMostOnce,
                "permanent",
            ),
        ];
        for (error, delivery, kind) in table {
            assert_eq!(
                map_fetch_error(error, delivery, &req).kind(),
                kind,
                "{error:?} {delivery:?}"
            );
        }
    }

    #[test]
    fn statuses_follow_delivery() {
        let req = request();
        let response = |status: u16, headers: Vec<(String, String)>| HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let table = [
            (200, Delivery::AtMostOnce, None),
            (401, Delivery::Idempotent, Some("auth-expired")),
            (404, Delivery::Idempotent, Some("permanent")),
            (500, Delivery::AtMostOnce, Some("outcome-unknown")),
            (502, Delivery::Idempotent, Some("transient")),
            (503, Delivery::AtMostOnce, Some("transient")),
        ];
        for (status, delivery, kind) in table {
            let got = check_status(&response(status, vec![]), delivery, &req).err();
            assert_eq!(got.as_ref().map(PluginError::kind), kind, "{status}");
        }
        let limited = check_status(
            &response(429, vec![("Retry-After".to_owned(), "7".to_owned())]),
            Delivery::Idempotent,
            &req,
        );
        assert!(
            matches!(limited, Err(PluginError::RateLimited(ref i)) if i.retry_after_ms == 7_000)
        );
    }
}
