//! What the runtime hands a plugin and gets back, in serde form (JSON as `serde_json::Value`),
//! and the checks the host applies at the boundary: input size caps on the way in, JSON
//! validity and output size caps on the way out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::wit;
use crate::error::HostError;

/// The platform account an invocation acts for. `config` holds secrets: never log it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The operator's name for the account.
    pub id: String,
    /// Account configuration matching the manifest's `account_schema`.
    pub config: Value,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("config", &"<redacted>")
            .finish()
    }
}

/// One action to perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// Action name from the manifest.
    pub action: String,
    /// Account to act for.
    pub account: Account,
    /// Input object.
    pub input: Value,
    /// Deterministic per (run, step, iteration).
    pub idempotency_key: String,
}

/// Result of a successful `invoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvokeOutcome {
    /// Complete, with its output.
    Done(Value),
    /// Accepted by the platform; ask `check_outcome` later.
    Accepted(Pending),
}

/// An accepted action whose outcome comes later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Opaque handle the plugin understands.
    pub handle: String,
    /// When to ask again, in milliseconds from now.
    pub check_after_ms: u64,
    /// What the platform answered on acceptance.
    pub output: Value,
}

/// The state of an asynchronous action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Finished, with its output.
    Done(Value),
    /// Not finished; ask again after this many milliseconds.
    Pending(u64),
    /// Finished without effect, with a reason.
    Failed(String),
}

/// The plugin's own typed failure. The runtime decides from the case, never from the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginError {
    /// The platform said "too fast".
    RateLimited {
        /// When to retry.
        retry_after_ms: u64,
        /// The platform's words.
        message: String,
    },
    /// Credentials refused even after a refresh.
    AuthExpired(String),
    /// The input can never succeed.
    InvalidInput(String),
    /// Might succeed later.
    Transient(String),
    /// Will not succeed.
    Permanent(String),
    /// The request may or may not have taken effect.
    OutcomeUnknown(String),
}

/// A webhook request as the ingress received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// HTTP method.
    pub method: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

/// The exact answer the platform expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

/// A platform event in the runtime's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedEvent {
    /// One of the manifest's event kinds.
    pub kind: String,
    /// For de-duplicating retries.
    pub dedupe_id: String,
    /// Unix milliseconds.
    pub occurred_at_ms: i64,
    /// The customer concerned.
    pub contact: Option<String>,
    /// The staff member concerned.
    pub staff: Option<String>,
    /// The group concerned.
    pub group: Option<String>,
    /// Everything else.
    pub attributes: Value,
}

/// A verified webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookOutcome {
    /// The answer to give.
    pub response: WebhookResponse,
    /// Events to commit before answering.
    pub events: Vec<NormalizedEvent>,
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookError {
    /// Bad signature, stale timestamp, wrong receiver.
    VerificationFailed(String),
    /// Signed correctly but unreadable.
    Malformed(String),
}

/// Counts bytes crossing the boundary against a cap.
#[derive(Debug)]
pub(crate) struct SizeCap {
    used: usize,
    limit: usize,
    input: bool,
}

impl SizeCap {
    pub fn input(limit: usize) -> Self {
        Self {
            used: 0,
            limit,
            input: true,
        }
    }

    pub fn output(limit: usize) -> Self {
        Self {
            used: 0,
            limit,
            input: false,
        }
    }

    pub fn add(&mut self, bytes: usize) -> Result<(), HostError> {
        self.used = self.used.saturating_add(bytes);
        if self.used <= self.limit {
            Ok(())
        } else if self.input {
            Err(HostError::InputTooLarge {
                size: self.used,
                limit: self.limit,
            })
        } else {
            Err(HostError::OutputTooLarge {
                size: self.used,
                limit: self.limit,
            })
        }
    }

    /// Serializes a JSON value for the guest, counting it.
    pub fn json_in(&mut self, v: &Value) -> Result<String, HostError> {
        let text = v.to_string();
        self.add(text.len())?;
        Ok(text)
    }

    /// Parses JSON text from the guest, counting it.
    pub fn json_out(&mut self, what: &str, text: &str) -> Result<Value, HostError> {
        self.add(text.len())?;
        serde_json::from_str(text)
            .map_err(|e| HostError::InvalidOutput(format!("{what} is not valid JSON: {e}")))
    }

    pub fn string_out(&mut self, s: String) -> Result<String, HostError> {
        self.add(s.len())?;
        Ok(s)
    }
}

pub(crate) fn account_in(a: &Account, cap: &mut SizeCap) -> Result<wit::Account, HostError> {
    cap.add(a.id.len())?;
    Ok(wit::Account {
        id: a.id.clone(),
        config: cap.json_in(&a.config)?,
    })
}

pub(crate) fn invocation_in(
    inv: &Invocation,
    cap: &mut SizeCap,
) -> Result<wit::Invocation, HostError> {
    cap.add(inv.action.len() + inv.idempotency_key.len())?;
    Ok(wit::Invocation {
        action: inv.action.clone(),
        account: account_in(&inv.account, cap)?,
        input: cap.json_in(&inv.input)?,
        idempotency_key: inv.idempotency_key.clone(),
    })
}

pub(crate) fn webhook_in(
    r: &WebhookRequest,
    cap: &mut SizeCap,
) -> Result<wit::WebhookRequest, HostError> {
    let pairs = |p: &[(String, String)]| p.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    cap.add(r.method.len() + pairs(&r.query) + pairs(&r.headers) + r.body.len())?;
    Ok(wit::WebhookRequest {
        method: r.method.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    })
}

pub(crate) fn plugin_error_out(
    e: wit::PluginError,
    cap: &mut SizeCap,
) -> Result<PluginError, HostError> {
    Ok(match e {
        wit::PluginError::RateLimited(i) => PluginError::RateLimited {
            retry_after_ms: i.retry_after_ms,
            message: cap.string_out(i.message)?,
        },
        wit::PluginError::AuthExpired(m) => PluginError::AuthExpired(cap.string_out(m)?),
        wit::PluginError::InvalidInput(m) => PluginError::InvalidInput(cap.string_out(m)?),
        wit::PluginError::Transient(m) => PluginError::Transient(cap.string_out(m)?),
        wit::PluginError::Permanent(m) => PluginError::Permanent(cap.string_out(m)?),
        wit::PluginError::OutcomeUnknown(m) => PluginError::OutcomeUnknown(cap.string_out(m)?),
    })
}

pub(crate) fn invoke_outcome_out(
    o: wit::InvokeOutcome,
    cap: &mut SizeCap,
) -> Result<InvokeOutcome, HostError> {
    Ok(match o {
        wit::InvokeOutcome::Done(json) => {
            InvokeOutcome::Done(cap.json_out("invoke output", &json)?)
        }
        wit::InvokeOutcome::Accepted(p) => InvokeOutcome::Accepted(Pending {
            handle: cap.string_out(p.handle)?,
            check_after_ms: p.check_after_ms,
            output: cap.json_out("accepted output", &p.output)?,
        }),
    })
}

pub(crate) fn outcome_status_out(
    s: wit::OutcomeStatus,
    cap: &mut SizeCap,
) -> Result<OutcomeStatus, HostError> {
    Ok(match s {
        wit::OutcomeStatus::Done(json) => {
            OutcomeStatus::Done(cap.json_out("outcome output", &json)?)
        }
        wit::OutcomeStatus::Pending(ms) => OutcomeStatus::Pending(ms),
        wit::OutcomeStatus::Failed(m) => OutcomeStatus::Failed(cap.string_out(m)?),
    })
}

pub(crate) fn webhook_outcome_out(
    o: wit::WebhookOutcome,
    known_kinds: &[String],
    cap: &mut SizeCap,
) -> Result<WebhookOutcome, HostError> {
    let r = o.response;
    cap.add(r.content_type.len() + r.body.len())?;
    let response = WebhookResponse {
        status: r.status,
        content_type: r.content_type,
        body: r.body,
    };
    if !(100..=599).contains(&response.status) {
        return Err(HostError::InvalidOutput(format!(
            "webhook response status {} is not an HTTP status",
            response.status
        )));
    }
    let mut events = Vec::with_capacity(o.events.len());
    for e in o.events {
        if !known_kinds.contains(&e.kind) {
            return Err(HostError::InvalidOutput(format!(
                "event kind {:?} is not declared in the manifest",
                e.kind
            )));
        }
        let opt = |s: Option<String>, cap: &mut SizeCap| s.map(|s| cap.string_out(s)).transpose();
        events.push(NormalizedEvent {
            attributes: cap.json_out("event attributes", &e.attributes)?,
            kind: cap.string_out(e.kind)?,
            dedupe_id: cap.string_out(e.dedupe_id)?,
            occurred_at_ms: e.occurred_at_ms,
            contact: opt(e.contact, cap)?,
            staff: opt(e.staff, cap)?,
            group: opt(e.group, cap)?,
        });
    }
    Ok(WebhookOutcome { response, events })
}

pub(crate) fn webhook_error_out(
    e: wit::WebhookError,
    cap: &mut SizeCap,
) -> Result<WebhookError, HostError> {
    Ok(match e {
        wit::WebhookError::VerificationFailed(m) => {
            WebhookError::VerificationFailed(cap.string_out(m)?)
        }
        wit::WebhookError::Malformed(m) => WebhookError::Malformed(cap.string_out(m)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_debug_hides_config() {
        let a = Account {
            id: "corp-a".into(),
            config: serde_json::json!({"secret": "s3cr3t"}),
        };
        let shown = format!("{a:?}");
        assert!(shown.contains("corp-a") && !shown.contains("s3cr3t"));
    }

    #[test]
    fn caps_distinguish_input_from_output() {
        let mut cap = SizeCap::input(4);
        assert!(cap.add(4).is_ok());
        assert!(matches!(
            cap.add(1),
            Err(HostError::InputTooLarge { size: 5, limit: 4 })
        ));
        let mut cap = SizeCap::output(10);
        assert!(matches!(
            cap.json_out("x", "{\"a\": 1234567}"),
            Err(HostError::OutputTooLarge { .. })
        ));
        let mut cap = SizeCap::output(100);
        assert!(matches!(
            cap.json_out("x", "{nope"),
            Err(HostError::InvalidOutput(_))
        ));
    }

    #[test]
    fn undeclared_event_kinds_are_invalid_output() {
        let outcome = wit::WebhookOutcome {
            response: wit::WebhookResponse {
                status: 200,
                content_type: "text/plain".into(),
                body: b"ok".to_vec(),
            },
            events: vec![wit::NormalizedEvent {
                kind: "surprise".into(),
                dedupe_id: "1".into(),
                occurred_at_ms: 0,
                contact: None,
                staff: None,
                group: None,
                attributes: "{}".into(),
            }],
        };
        let err = webhook_outcome_out(
            outcome,
            &["contact_added".into()],
            &mut SizeCap::output(1000),
        );
        assert!(matches!(err, Err(HostError::InvalidOutput(m)) if m.contains("surprise")));
    }
}
