//! The actions WeCom offers playbooks, one module per API family.

pub mod contact;
pub mod groups;
pub mod mass_send;
pub mod staff;
pub mod welcome;

use sop_plugin_sdk::action::Actions;
use sop_plugin_sdk::{PluginError, json};

use crate::client::Client;

/// Every attachment WeCom accepts in welcome and mass messages.
const ATTACHMENT_TYPES: [&str; 5] = ["image", "link", "miniprogram", "video", "file"];
/// WeCom's cap on attachments per message.
pub const MAX_ATTACHMENTS: usize = 9;

/// Text and attachments, shared by welcome and mass messages.
#[derive(Debug, Clone, Default)]
pub struct Content {
    text: Option<String>,
    attachments: Vec<serde_json::Value>,
}

impl Content {
    /// Content from an action's `text` and `attachments` fields.
    pub fn new(text: Option<String>, attachments: Vec<serde_json::Value>) -> Self {
        Self { text, attachments }
    }

    /// Checks the content and writes `text` and `attachments` into a request body.
    pub fn write_into(
        &self,
        body: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), PluginError> {
        let text = self.text.as_deref().filter(|t| !t.is_empty());
        if text.is_none() && self.attachments.is_empty() {
            return Err(PluginError::invalid_input(
                "a message needs `text` or at least one attachment",
            ));
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(PluginError::invalid_input(format!(
                "{} attachments; WeCom accepts at most {MAX_ATTACHMENTS}",
                self.attachments.len()
            )));
        }
        let mut attachments = Vec::with_capacity(self.attachments.len());
        for (i, attachment) in self.attachments.iter().enumerate() {
            attachments.push(normalize_attachment(attachment).ok_or_else(|| {
                PluginError::invalid_input(format!(
                    "attachment {i}: needs `msgtype` (one of {}) and an object of that name, \
                     or just that object, e.g. {{\"link\": {{..}}}}",
                    ATTACHMENT_TYPES.join(", ")
                ))
            })?);
        }
        if let Some(text) = text {
            body.insert("text".to_owned(), serde_json::json!({ "content": text }));
        }
        if !self.attachments.is_empty() {
            body.insert(
                "attachments".to_owned(),
                serde_json::Value::Array(attachments),
            );
        }
        Ok(())
    }
}

/// WeCom's `{"msgtype": "link", "link": {..}}`, also written by playbooks as the shorthand
/// `{"link": {..}}`, which gets its `msgtype` here.
fn normalize_attachment(attachment: &serde_json::Value) -> Option<serde_json::Value> {
    let object = attachment.as_object()?;
    let msgtype = match object.get("msgtype") {
        Some(t) => t.as_str()?,
        None if object.len() == 1 => object.keys().next()?.as_str(),
        None => return None,
    };
    if !ATTACHMENT_TYPES.contains(&msgtype) || !object.get(msgtype)?.is_object() {
        return None;
    }
    Some(serde_json::json!({ "msgtype": msgtype, msgtype: object[msgtype] }))
}

/// The platform's answer without its `errcode`/`errmsg` envelope.
pub fn strip_envelope(mut answer: serde_json::Value) -> serde_json::Value {
    if let Some(object) = answer.as_object_mut() {
        object.remove("errcode");
        object.remove("errmsg");
    }
    answer
}

/// Done with the platform's answer as output.
pub fn done(answer: serde_json::Value) -> sop_plugin_sdk::InvokeOutcome {
    sop_plugin_sdk::InvokeOutcome::Done(json::to_json(&strip_envelope(answer)))
}

/// Every action, in manifest order.
pub fn all<'a>() -> Actions<Client<'a>> {
    let actions = Actions::new();
    let actions = welcome::register(actions);
    let actions = mass_send::register(actions);
    let actions = staff::register(actions);
    let actions = contact::register(actions);
    groups::register(actions)
}
