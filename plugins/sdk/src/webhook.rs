//! Reading webhook requests and writing the answers platforms expect.

use sha1::{Digest, Sha1};

use crate::{WebhookRequest, WebhookResponse};

impl WebhookRequest {
    /// The first query parameter `name` (already percent-decoded by the ingress).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http::header(&self.headers, name)
    }
}

impl WebhookResponse {
    /// A 200 answer with a plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type: "text/plain; charset=utf-8".to_owned(),
            body: body.into().into_bytes(),
        }
    }

    /// A 200 answer with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json".to_owned(),
            body: value.to_string().into_bytes(),
        }
    }
}

/// A stable de-duplication id for events the platform gives no id: the hex SHA-1 of the
/// identifying fields, separated so that ("ab","c") and ("a","bc") differ.
pub fn dedupe_id(parts: &[&str]) -> String {
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.len().to_be_bytes());
        hasher.update(part.as_bytes());
    }
    to_hex(&hasher.finalize())
}

/// The age at `now_ms` of a signed `timestamp` in Unix seconds, in seconds (negative: from
/// the future); `None` if it is not a number. A plugin refuses a callback whose age is outside
/// its window: a replay carries the timestamp it was first signed with.
pub fn timestamp_age_seconds(timestamp: &str, now_ms: i64) -> Option<i64> {
    let sent: i64 = timestamp.trim().parse().ok()?;
    Some(now_ms.div_euclid(1000).saturating_sub(sent))
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_age_is_whole_seconds_either_way() {
        assert_eq!(timestamp_age_seconds("100", 160_999), Some(60));
        assert_eq!(timestamp_age_seconds(" 100 ", 40_000), Some(-60));
        assert_eq!(timestamp_age_seconds("yesterday", 0), None);
        assert_eq!(
            timestamp_age_seconds(&i64::MIN.to_string(), i64::MAX),
            Some(i64::MAX)
        );
    }

    #[test]
    fn dedupe_id_separates_fields() {
        assert_ne!(dedupe_id(&["ab", "c"]), dedupe_id(&["a", "bc"]));
        assert_eq!(dedupe_id(&["a", "b"]), dedupe_id(&["a", "b"]));
        assert_eq!(dedupe_id(&["a"]).len(), 40);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let request = WebhookRequest {
            method: "POST".to_owned(),
            query: vec![("nonce".to_owned(), "1".to_owned())],
            headers: vec![("X-Douyin-Signature".to_owned(), "ab".to_owned())],
            body: Vec::new(),
        };
        assert_eq!(request.header("x-douyin-signature"), Some("ab"));
        assert_eq!(request.query_param("nonce"), Some("1"));
        assert_eq!(request.query_param("echostr"), None);
    }
}
