//! Sending events to the daemon as the platforms do: WeCom callbacks signed and encrypted
//! (WXBizMsgCrypt), Douyin webhooks signed with `X-Douyin-Signature` and deduplicable by
//! `Msg-Id`. An attempt that is not answered with 2xx inside the timeout is retried.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use sha1::{Digest, Sha1};
use tokio::sync::Semaphore;

use crate::app::App;

/// Which platform an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// WeCom callback (XML, encrypted).
    Wecom,
    /// Douyin webhook (JSON, signed).
    Douyin,
    /// Demo shop webhook (JSON, HMAC-signed with a timestamp; see `crate::shop::webhook`).
    Shop,
}

/// Where a callback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    /// Being delivered.
    Pending,
    /// The receiver answered 2xx.
    Acked,
    /// Every attempt failed.
    Failed,
    /// No receiver URL is configured; recorded only.
    NotConfigured,
}

/// One event sent (or to be sent) to the daemon.
#[derive(Debug, Clone, Serialize)]
pub struct CallbackRecord {
    /// Sequence number, from 1.
    pub id: u64,
    /// Platform.
    pub platform: Platform,
    /// Event name (`add_external_contact`, `im_receive_msg`, ...).
    pub event: String,
    /// When it was generated, Unix milliseconds.
    pub created_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Outcome.
    pub status: CallbackStatus,
    /// Last failure, if any.
    pub last_error: Option<String>,
    /// Douyin `Msg-Id`; the shop's `X-Shop-Event-Id`.
    pub msg_id: Option<String>,
    /// The plaintext payload (decrypted XML or JSON).
    pub payload: String,
}

/// The most recent callbacks, in order. Long traffic runs would otherwise keep every payload
/// forever, so only the last `capacity` records are kept (ids keep counting).
#[derive(Debug)]
pub struct CallbackLog {
    records: VecDeque<CallbackRecord>,
    first_id: u64,
    next_id: u64,
    capacity: usize,
}

impl Default for CallbackLog {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl CallbackLog {
    /// Keep at most `capacity` records (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            first_id: 1,
            next_id: 1,
            capacity: capacity.max(1),
        }
    }

    /// The kept records, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &CallbackRecord> {
        self.records.iter()
    }

    /// Record `id` if still kept.
    pub fn get(&self, id: u64) -> Option<&CallbackRecord> {
        self.records
            .get(usize::try_from(id.checked_sub(self.first_id)?).ok()?)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut CallbackRecord> {
        self.records
            .get_mut(usize::try_from(id.checked_sub(self.first_id)?).ok()?)
    }

    fn push(&mut self, make: impl FnOnce(u64) -> CallbackRecord) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.records.len() == self.capacity {
            self.records.pop_front();
            self.first_id += 1;
        }
        self.records.push_back(make(id));
        id
    }
}

/// An event ready to send.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Platform.
    pub platform: Platform,
    /// Event name.
    pub event: String,
    /// Plaintext payload.
    pub payload: String,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The HTTP side of delivery.
#[derive(Debug)]
pub struct Deliverer {
    pub(crate) client: HttpClient,
    permits: Arc<Semaphore>,
}

impl Default for Deliverer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deliverer {
    /// A sender with at most 256 callbacks in flight.
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            permits: Arc::new(Semaphore::new(256)),
        }
    }
}

/// Hex `sha1(client_secret + body)`: Douyin's webhook signature.
pub fn douyin_signature(client_secret: &str, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(client_secret.as_bytes());
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where one event goes when not to the configured receiver: a WeCom callback of another
/// corp (encrypted for its receive id) and, optionally, another URL.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Corp index (`WecomConfig::corps`); 0 = the configured corp.
    pub corp: usize,
    /// Deliver here instead of the configured URL.
    pub url: Option<String>,
}

/// Record an event and start delivering it. Returns its id.
pub fn dispatch(app: &App, out: Outbound) -> u64 {
    dispatch_to(app, out, Route::default())
}

/// [`dispatch`] along `route`.
pub fn dispatch_to(app: &App, out: Outbound, route: Route) -> u64 {
    let cfg = &app.config().delivery;
    let now = app.now_ms();
    let url = match out.platform {
        _ if route.url.is_some() => route.url.clone(),
        Platform::Wecom => cfg.wecom_url.clone(),
        Platform::Douyin => cfg.douyin_url.clone(),
        Platform::Shop => cfg.shop_url.clone(),
    };
    let (id, request) = {
        let mut st = app.lock();
        st.counters.events_generated += 1;
        let id = st.callbacks.next_id;
        let random = st.rng.bytes16();
        let nonce = st.rng.next_u64() % 10_000_000_000;
        let msg_id = match out.platform {
            Platform::Douyin => Some(format!("dymsg-{id:010}")),
            Platform::Shop => serde_json::from_str::<serde_json::Value>(&out.payload)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned)),
            Platform::Wecom => None,
        };
        st.callbacks.push(|id| CallbackRecord {
            id,
            platform: out.platform,
            event: out.event.clone(),
            created_ms: now,
            attempts: 0,
            status: if url.is_some() {
                CallbackStatus::Pending
            } else {
                CallbackStatus::NotConfigured
            },
            last_error: None,
            msg_id: msg_id.clone(),
            payload: out.payload.clone(),
        });
        let request = url.map(|url| match out.platform {
            Platform::Wecom => {
                let ts = (now / 1_000).to_string();
                let nonce = nonce.to_string();
                let agent = app.config().wecom.agent_id.to_string();
                let shared = app.shared();
                let crypto = shared.corp_crypto.get(route.corp).unwrap_or(&shared.crypto);
                let (body, sig) =
                    crypto.encrypt_callback(&out.payload, random, &ts, &nonce, &agent);
                let sep = if url.contains('?') { '&' } else { '?' };
                let uri = format!("{url}{sep}msg_signature={sig}&timestamp={ts}&nonce={nonce}");
                Prepared {
                    uri,
                    body,
                    headers: vec![("content-type", "text/xml".to_owned())],
                }
            }
            Platform::Douyin => {
                let secret = &app.config().douyin.client_secret;
                Prepared {
                    uri: url,
                    headers: vec![
                        ("content-type", "application/json".to_owned()),
                        (
                            "x-douyin-signature",
                            douyin_signature(secret, out.payload.as_bytes()),
                        ),
                        ("msg-id", msg_id.unwrap_or_default()),
                    ],
                    body: out.payload,
                }
            }
            Platform::Shop => {
                // Signed once per delivery; retries of this record resend the same bytes.
                let ts = (now / 1_000).to_string();
                let secret = &app.config().shop.webhook_secret;
                let headers = crate::shop::webhook::headers(secret, &ts, &out.payload);
                st.shop.signed_at.insert(id, ts);
                Prepared {
                    uri: url,
                    headers,
                    body: out.payload,
                }
            }
        });
        (id, request)
    };
    if let Some(request) = request {
        let app = app.clone();
        tokio::spawn(async move { deliver(app, id, request).await });
    }
    id
}

#[derive(Debug, Clone)]
struct Prepared {
    uri: String,
    body: String,
    headers: Vec<(&'static str, String)>,
}

async fn deliver(app: App, id: u64, req: Prepared) {
    let cfg = app.config().delivery.clone();
    let shared = app.shared();
    let Ok(_permit) = shared.deliverer.permits.acquire().await else {
        return;
    };
    for attempt in 0..=cfg.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(cfg.retry_backoff_ms)).await;
        }
        let result = send_once(&shared.deliverer.client, &req, cfg.timeout_ms).await;
        let mut st = app.lock();
        st.counters.callback_attempts += 1;
        let acked = result.is_ok();
        if acked {
            st.counters.callbacks_acked += 1;
        } else if attempt == cfg.retries {
            st.counters.callbacks_failed += 1;
        }
        if let Some(r) = st.callbacks.get_mut(id) {
            r.attempts = attempt + 1;
            match result {
                Ok(()) => r.status = CallbackStatus::Acked,
                Err(e) => {
                    r.last_error = Some(e);
                    if attempt == cfg.retries {
                        r.status = CallbackStatus::Failed;
                    }
                }
            }
        }
        if acked {
            return;
        }
    }
}

async fn send_once(client: &HttpClient, req: &Prepared, timeout_ms: u64) -> Result<(), String> {
    let (status, _) = request(
        client,
        "POST",
        &req.uri,
        &req.headers,
        req.body.clone(),
        timeout_ms,
    )
    .await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("receiver answered HTTP {status}"))
    }
}

/// One HTTP request with a deadline; returns status and body.
pub(crate) async fn request(
    client: &HttpClient,
    method: &str,
    uri: &str,
    headers: &[(&'static str, String)],
    body: String,
    timeout_ms: u64,
) -> Result<(u16, String), String> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    let req = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad request: {e}"))?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("send failed: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(Duration::from_millis(timeout_ms), fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {timeout_ms} ms")),
    }
}

/// WeCom URL verification: a signed GET with an encrypted `echostr`; the receiver must answer
/// the plaintext. Returns the plaintext that was expected on success.
pub async fn verify_wecom_url(app: &App) -> Result<String, String> {
    let cfg = app.config();
    let url = cfg
        .delivery
        .wecom_url
        .clone()
        .ok_or("no WeCom callback URL configured")?;
    let now = app.now_ms();
    let (echo, random, nonce) = {
        let mut st = app.lock();
        (
            st.rng.next_u64().to_string(),
            st.rng.bytes16(),
            st.rng.next_u64() % 1_000_000_000,
        )
    };
    let crypto = &app.shared().crypto;
    let echostr = crypto.encrypt(&echo, random);
    let ts = (now / 1_000).to_string();
    let sig = crypto.sign(&ts, &nonce.to_string(), &echostr);
    let sep = if url.contains('?') { '&' } else { '?' };
    let uri = format!(
        "{url}{sep}msg_signature={sig}&timestamp={ts}&nonce={nonce}&echostr={}",
        url_encode(&echostr)
    );
    let (status, body) = request(
        &app.shared().deliverer.client,
        "GET",
        &uri,
        &[],
        String::new(),
        1_000,
    )
    .await?;
    if status == 200 && body == echo {
        Ok(echo)
    } else {
        Err(format!(
            "expected HTTP 200 with {echo:?}, got {status} with {body:?}"
        ))
    }
}

/// Douyin webhook URL check: `verify_webhook` with a challenge to echo back.
pub async fn verify_douyin_url(app: &App) -> Result<u64, String> {
    let cfg = app.config();
    let url = cfg
        .delivery
        .douyin_url
        .clone()
        .ok_or("no Douyin webhook URL configured")?;
    let challenge = app.lock().rng.next_u64() % 100_000_000;
    let body = serde_json::json!({
        "event": "verify_webhook",
        "client_key": cfg.douyin.client_key,
        "content": {"challenge": challenge},
    })
    .to_string();
    let headers = [
        ("content-type", "application/json".to_owned()),
        (
            "x-douyin-signature",
            douyin_signature(&cfg.douyin.client_secret, body.as_bytes()),
        ),
    ];
    let (status, answer) = request(
        &app.shared().deliverer.client,
        "POST",
        &url,
        &headers,
        body,
        5_000,
    )
    .await?;
    let got: serde_json::Value =
        serde_json::from_str(&answer).map_err(|e| format!("answer is not JSON: {e}"))?;
    if status == 200 && got["challenge"] == challenge {
        Ok(challenge)
    } else {
        Err(format!(
            "expected challenge {challenge}, got HTTP {status} {answer}"
        ))
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn douyin_signature_is_sha1_of_secret_and_body() {
        // sha1("abc") is the classic test vector.
        assert_eq!(
            douyin_signature("a", b"bc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    fn record(id: u64) -> CallbackRecord {
        CallbackRecord {
            id,
            platform: Platform::Wecom,
            event: "e".into(),
            created_ms: 0,
            attempts: 0,
            status: CallbackStatus::Pending,
            last_error: None,
            msg_id: None,
            payload: String::new(),
        }
    }

    #[test]
    fn log_keeps_the_most_recent_records() {
        let mut log = CallbackLog::with_capacity(2);
        for _ in 0..3 {
            log.push(record);
        }
        let ids: Vec<u64> = log.all().map(|r| r.id).collect();
        assert_eq!(ids, vec![2, 3]);
        assert!(log.get(1).is_none());
        assert_eq!(log.get(3).map(|r| r.id), Some(3));
        assert!(log.get_mut(4).is_none());
    }

    #[test]
    fn url_encoding_of_base64() {
        assert_eq!(url_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
