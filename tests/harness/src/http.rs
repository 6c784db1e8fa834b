//! A small JSON-over-HTTP client for the admin API and the emulator's inspection routes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::{Error, fail};

/// One HTTP base URL (e.g. `http://127.0.0.1:19090`), optionally with a bearer token.
#[derive(Clone, Debug)]
pub struct Http {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An answer: status and body.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body as received.
    pub body: Bytes,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error(format!(
                "status {}: not JSON ({e}): {}",
                self.status,
                self.text()
            ))
        })
    }

    /// The body as JSON if the status is 2xx, else an error naming status and body.
    pub fn ok_json(&self) -> Result<Value, Error> {
        if (200..300).contains(&self.status) {
            self.json()
        } else {
            fail!("status {}: {}", self.status, self.text())
        }
    }
}

impl Http {
    /// A client for `base` (no trailing slash).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            token: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The same client sending `Authorization: Bearer token`.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with an optional body (JSON values are serialized, strings sent
    /// as they are) and returns the answer, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> Result<Reply, Error> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method.clone()).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", content_type);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| Error(format!("{method} {url}: {e}")))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| Error(format!("{method} {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error(format!("{method} {url}: reading the body: {e}")))?
            .to_bytes();
        Ok(Reply { status, body })
    }

    /// `method path` with a JSON body, whatever the status.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Reply, Error> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON serializes"));
        self.send(method, path, Some(bytes), "application/json")
            .await
    }

    /// `GET path`, whatever the status.
    pub async fn get_raw(&self, path: &str) -> Result<Reply, Error> {
        self.send(Method::GET, path, None, "").await
    }

    /// `GET path`, expecting 2xx JSON.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        self.get_raw(path).await?.ok_json()
    }

    /// `POST path` with a JSON body, whatever the status.
    pub async fn post_raw(&self, path: &str, body: &Value) -> Result<Reply, Error> {
        self.send_json(Method::POST, path, body).await
    }

    /// `POST path` with a JSON body, expecting 2xx JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.post_raw(path, body).await?.ok_json()
    }

    /// `PUT path` with a JSON body, whatever the status.
    pub async fn put_raw(&self, path: &str, body: &Value) -> Result<Reply, Error> {
        self.send_json(Method::PUT, path, body).await
    }

    /// `PATCH path` with a JSON body, whatever the status.
    pub async fn patch_raw(&self, path: &str, body: &Value) -> Result<Reply, Error> {
        self.send_json(Method::PATCH, path, body).await
    }

    /// `PATCH path` with a JSON body, expecting 2xx JSON (e.g. the admin API's group edits).
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.patch_raw(path, body).await?.ok_json()
    }

    /// `PUT path` with a JSON body, expecting 2xx JSON (e.g. the emulator's
    /// `/_emulator/faults`).
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.put_raw(path, body).await?.ok_json()
    }
}
