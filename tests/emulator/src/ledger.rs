//! Everything delivered to customers and staff, in order: the record tests assert against
//! ("exactly these messages, no duplicates, nothing missing, no limit exceeded").

use serde::Serialize;
use serde_json::Value;

/// One message that reached a person (or group).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Position in the ledger, from 1.
    pub seq: u64,
    /// When it was delivered, Unix milliseconds.
    pub at_ms: u64,
    /// `wecom` or `douyin`.
    pub platform: &'static str,
    /// `welcome`, `mass_send`, `group_mass_send`, `app_message`, `direct_message`.
    pub channel: &'static str,
    /// The API call that caused it.
    pub call: &'static str,
    /// Task or message id (`msgid` of the mass-send task, Douyin `msg_id`, ...).
    pub task: Option<String>,
    /// Who sent it (staff userid, enterprise open_id).
    pub from: String,
    /// Who received it (external_userid, chat_id, staff userid, open_id).
    pub to: String,
    /// The content as the call gave it (text and attachments).
    pub content: Value,
}

/// The append-only delivery log.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Vec<Delivery>,
}

/// A delivery before it gets its sequence number.
#[derive(Debug)]
pub struct NewDelivery {
    /// See [`Delivery::at_ms`].
    pub at_ms: u64,
    /// See [`Delivery::platform`].
    pub platform: &'static str,
    /// See [`Delivery::channel`].
    pub channel: &'static str,
    /// See [`Delivery::call`].
    pub call: &'static str,
    /// See [`Delivery::task`].
    pub task: Option<String>,
    /// See [`Delivery::from`].
    pub from: String,
    /// See [`Delivery::to`].
    pub to: String,
    /// See [`Delivery::content`].
    pub content: Value,
}

impl Ledger {
    /// Append a delivery.
    pub fn record(&mut self, d: NewDelivery) {
        let seq = self.entries.len() as u64 + 1;
        self.entries.push(Delivery {
            seq,
            at_ms: d.at_ms,
            platform: d.platform,
            channel: d.channel,
            call: d.call,
            task: d.task,
            from: d.from,
            to: d.to,
            content: d.content,
        });
    }

    /// All deliveries in order.
    pub fn entries(&self) -> &[Delivery] {
        &self.entries
    }

    /// One JSON object per line.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for d in &self.entries {
            if let Ok(line) = serde_json::to_string(d) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_as_jsonl() {
        let mut l = Ledger::default();
        for to in ["a", "b"] {
            l.record(NewDelivery {
                at_ms: 5,
                platform: "wecom",
                channel: "welcome",
                call: "externalcontact/send_welcome_msg",
                task: None,
                from: "s".into(),
                to: to.into(),
                content: serde_json::json!({"text": {"content": "hi"}}),
            });
        }
        let lines: Vec<Value> = l
            .to_jsonl()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["seq"], 2);
        assert_eq!(lines[1]["to"], "b");
    }
}
