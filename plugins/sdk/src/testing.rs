//! A fake [`Host`] for native unit tests: a settable clock, an in-memory store with TTLs,
//! recorded HTTP answers consumed in order, and every request and log line kept for asserts.
//!
//! ```
//! use sop_plugin_sdk::testing::{FakeHost, json_response};
//! use sop_plugin_sdk::{Delivery, http::Fetch};
//!
//! let host = FakeHost::new(0);
//! host.respond("GET", "/v1/ping", json_response(200, &serde_json::json!({"ok": true})));
//! let answer: serde_json::Value = Fetch::get("https://api.example.com/v1/ping")
//!     .send_json(&host, Delivery::Idempotent)
//!     .unwrap();
//! assert_eq!(answer["ok"], true);
//! assert_eq!(host.requests().len(), 1);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::{FetchError, Host, HttpRequest, HttpResponse, Level};

type Answer = Result<HttpResponse, FetchError>;
/// A stored value and when it expires (Unix ms), if ever.
type Entry = (Vec<u8>, Option<i64>);

/// The fake host. Interior mutability because [`Host`] takes `&self`, like the real imports.
#[derive(Debug, Default)]
pub struct FakeHost {
    now_ms: Cell<i64>,
    kv: RefCell<BTreeMap<String, Entry>>,
    answers: RefCell<Vec<(String, String, Answer)>>,
    requests: RefCell<Vec<HttpRequest>>,
    logs: RefCell<Vec<(Level, String)>>,
}

/// A response with a JSON body.
pub fn json_response(status: u16, body: &serde_json::Value) -> Answer {
    Ok(HttpResponse {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.to_string().into_bytes(),
    })
}

/// The path of a URL: no scheme, host or query.
pub fn url_path(url: &str) -> &str {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme
        .find('/')
        .map_or("/", |i| &without_scheme[i..]);
    path.split('?').next().unwrap_or(path)
}

/// Query parameter `name` of a URL, percent-decoded.
pub fn url_query(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| percent_decode(v))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeHost {
    /// A fake whose clock reads `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        let host = Self::default();
        host.now_ms.set(now_ms);
        host
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: i64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Queues `answer` for the next `method` request whose URL path is `path`.
    /// Answers for the same route are consumed in the order they were queued.
    pub fn respond(&self, method: &str, path: &str, answer: Answer) {
        self.answers
            .borrow_mut()
            .push((method.to_owned(), path.to_owned(), answer));
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.borrow().clone()
    }

    /// The requests sent to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<HttpRequest> {
        self.requests
            .borrow()
            .iter()
            .filter(|r| url_path(&r.url) == path)
            .cloned()
            .collect()
    }

    /// Answers queued but never asked for.
    pub fn unused_answers(&self) -> usize {
        self.answers.borrow().len()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.borrow().clone()
    }
}

impl Host for FakeHost {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError> {
        self.requests.borrow_mut().push(request.clone());
        let path = url_path(&request.url);
        let mut answers = self.answers.borrow_mut();
        let position = answers
            .iter()
            .position(|(m, p, _)| m.eq_ignore_ascii_case(&request.method) && p == path);
        match position {
            Some(i) => answers.remove(i).2,
            None => Err(FetchError::Denied(format!(
                "FakeHost has no answer for {} {path}",
                request.method
            ))),
        }
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now_ms.get();
        let mut kv = self.kv.borrow_mut();
        match kv.get(key) {
            Some((_, Some(expires))) if *expires <= now => {
                kv.remove(key);
                None
            }
            Some((value, _)) => Some(value.clone()),
            None => None,
        }
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) {
        let expires = ttl_ms.map(|ttl| {
            self.now_ms
                .get()
                .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX))
        });
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), expires));
    }

    fn kv_delete(&self, key: &str) {
        self.kv.borrow_mut().remove(key);
    }

    fn now_ms(&self) -> i64 {
        self.now_ms.get()
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_helpers() {
        assert_eq!(url_path("https://h.example/a/b?x=1"), "/a/b");
        assert_eq!(url_path("https://h.example"), "/");
        assert_eq!(
            url_query("https://h/a?x=1&y=a%20b", "y").as_deref(),
            Some("a b")
        );
        assert_eq!(url_query("https://h/a?x=1", "z"), None);
    }

    #[test]
    fn answers_are_consumed_in_order_per_route() {
        let host = FakeHost::new(0);
        host.respond("GET", "/a", json_response(200, &serde_json::json!(1)));
        host.respond("GET", "/a", json_response(200, &serde_json::json!(2)));
        let get = |url: &str| HttpRequest {
            method: "GET".to_owned(),
            url: url.to_owned(),
            headers: vec![],
            body: vec![],
            timeout_ms: 1,
        };
        assert_eq!(host.fetch(&get("https://h/a")).unwrap().body, b"1");
        assert_eq!(host.fetch(&get("https://h/a?q=1")).unwrap().body, b"2");
        assert!(matches!(
            host.fetch(&get("https://h/a")),
            Err(FetchError::Denied(_))
        ));
        assert_eq!(host.requests_to("/a").len(), 3);
    }
}
