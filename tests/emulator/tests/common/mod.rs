//! Shared helpers: start the emulator in-process on an ephemeral port with a manual clock,
//! and a small JSON-over-HTTP client.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sop_clock::{DateTime, TimeDelta};
use sop_emulator::{ClockChoice, Config, Running, VirtualClock, start};

/// 2024-03-05 10:00 UTC+8: a 31-day month.
pub const START_MS: u64 = 1_709_604_000_000;

/// The emulator's virtual clock, moved in milliseconds as the tests think of platform time.
pub struct Clock(pub VirtualClock);

impl Clock {
    pub fn advance(&self, ms: u64) {
        self.0
            .advance(TimeDelta::milliseconds(i64::try_from(ms).unwrap()));
    }

    pub fn set(&self, ms: u64) {
        self.0
            .set(DateTime::from_timestamp_millis(i64::try_from(ms).unwrap()).unwrap());
    }
}

pub struct Emu {
    pub running: Running,
    pub clock: Clock,
    pub http: Http,
}

impl Emu {
    pub async fn start(config: Config) -> Self {
        let start_at = DateTime::from_timestamp_millis(START_MS as i64).unwrap();
        let clock = Clock(VirtualClock::new(start_at));
        let running = start(
            config,
            ClockChoice::Manual(clock.0.clone()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("emulator starts");
        let http = Http::new(running.url());
        Self {
            running,
            clock,
            http,
        }
    }

    /// A fresh WeCom access token for the default secret.
    pub async fn wecom_token(&self) -> String {
        let corp = &self.running.app.config().wecom.corp_id;
        let v = self
            .http
            .get(&format!(
                "/cgi-bin/gettoken?corpid={corp}&corpsecret=emu-secret"
            ))
            .await;
        assert_eq!(v["errcode"], 0, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// The enterprise account's Douyin user token.
    pub async fn douyin_token(&self) -> String {
        let d = &self.running.app.config().douyin;
        let body = serde_json::json!({
            "client_key": d.client_key,
            "client_secret": d.client_secret,
            "code": "emu-code",
            "grant_type": "authorization_code",
        });
        let v = self.http.post("/oauth/access_token/", &body).await;
        assert_eq!(v["data"]["error_code"], 0, "{v}");
        v["data"]["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn event(&self, ev: Value) -> Value {
        let (status, v) = self
            .http
            .send("POST", "/_emulator/events", &[], Some(&ev))
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    pub async fn deliveries(&self, query: &str) -> Vec<Value> {
        let v = self
            .http
            .get(&format!("/_emulator/deliveries{query}"))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }
}

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
}

impl Http {
    pub fn new(base: String) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        self.send("GET", path, &[], None).await.1
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        self.send("POST", path, &[], Some(body)).await.1
    }

    /// Status and JSON body (a non-JSON body comes back as a JSON string).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, text) = self
            .raw(
                method,
                path,
                headers,
                body.map(|b| b.to_string()).unwrap_or_default(),
            )
            .await
            .expect("request succeeds");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<(u16, String), String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}
