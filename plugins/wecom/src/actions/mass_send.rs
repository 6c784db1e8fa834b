//! Mass sends (`add_msg_template`) to contacts or groups, and their outcome.
//!
//! WeCom only creates a task that the staff member must confirm in their client, so these
//! actions answer `accepted` with the task's `msgid` as handle; `check-outcome` then reads
//! `get_groupmsg_task` (has each sender confirmed?) and `get_groupmsg_send_result` (what
//! happened to each recipient, one sender per request).
//!
//! A task merged from many contacts has many senders, more than the host's per-call request
//! budget lets one call read. So the check is progressive: each call reads the task list and
//! then as many senders' results as [`REQUESTS_PER_CHECK`] allows, keeps each finished
//! sender's rows in the plugin's kv store, and answers `Pending` with a short re-check
//! ([`RESULTS_RECHECK_MS`]) until every confirmed sender is read; the last call assembles the
//! answer from the store and deletes the entries.
//!
//! Both are batched actions (docs/plugins.md, "Batched actions"): the runtime may merge sends
//! that differ only in their single contact or group into one task. Answers report recipients
//! by status under `recipients`, by the ids of the input: `rejected` on acceptance (WeCom's
//! `fail_list`), `sent`, `not_friend`, `over_receive_limit`, `unsent` and `unknown` once done.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{
    Audience, Delivery, InvokeOutcome, OutcomeStatus, Pending, PluginError, json, kv,
};

use super::Content;
use crate::client::Client;

/// WeCom's caps on one task's recipients, also the batch sizes the runtime may merge up to.
const MAX_CONTACTS: u32 = 10_000;
const MAX_GROUPS: u32 = 2_000;
/// First look after this long: staff rarely confirm within seconds.
pub const FIRST_CHECK_MS: u64 = 5 * 60_000;
/// Later looks while the task waits for confirmation.
pub const RECHECK_MS: u64 = 30 * 60_000;
/// The account's `mass_send_check_ms`, else `default`; never below a second (a plugin must
/// not make the runtime poll the platform in a loop).
fn check_interval(client: &Client<'_>, default: u64) -> u64 {
    client
        .config
        .mass_send_check_ms
        .map_or(default, |ms| ms.max(1_000))
}

/// A task nobody confirmed within this long is reported as failed.
pub const CONFIRM_WINDOW_MS: i64 = 3 * 24 * 3_600_000;
/// Requests (`client.post`, every page counted) one outcome check makes at most, the task
/// list included: it is read on every call, since a sender may confirm between calls. The host
/// allows 16 per call by default (`max_http_requests`); the rest covers `gettoken` when the
/// token is not cached and one refresh-and-retry after 40014/42001 (12 + 1 + 2 = 15).
pub const REQUESTS_PER_CHECK: usize = 12;
/// Re-check after this long while confirmed senders' results remain to be read: the task is
/// settled and only our reading is left, so the shortest interval a plugin may ask for (not
/// the account's `mass_send_check_ms`, which paces waiting for staff).
pub const RESULTS_RECHECK_MS: u64 = 1_000;
/// Send-result rows per kv value, and a bound on a value's JSON: the host refuses values over
/// 64 KiB, and 500 rows of real ids (~32 characters) take ~20 KiB.
const ROWS_PER_CHUNK: usize = 500;
const CHUNK_BYTES: usize = 48 * 1024;
/// A recipient id longer than this is kept as unnamed: no real id comes near, and one that
/// long could not be stored within [`CHUNK_BYTES`].
const MAX_ID_BYTES: usize = 1024;

/// Input of `mass_send_contacts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MassSendContacts {
    /// The staff member whose contacts receive it; all who follow them when omitted.
    #[serde(default)]
    pub sender: Option<String>,
    /// Recipients' `external_userid`s (at most 10,000).
    pub contacts: Vec<String>,
    /// The text (`text.content`).
    #[serde(default)]
    pub text: Option<String>,
    /// Up to 9 attachments in WeCom's shape.
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
    /// Let the staff member deselect recipients before confirming.
    #[serde(default)]
    pub allow_select: bool,
}

/// Input of `mass_send_groups`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MassSendGroups {
    /// The group owner who confirms the task (required by WeCom for group sends).
    pub sender: String,
    /// Target groups' `chat_id`s (at most 2,000); all of the sender's groups when empty.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The text (`text.content`).
    #[serde(default)]
    pub text: Option<String>,
    /// Up to 9 attachments in WeCom's shape.
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
}

/// What the plugin remembers about a task, under its idempotency key and its msgid.
#[derive(Debug, Serialize, Deserialize)]
struct TaskRecord {
    msgid: String,
    created_at_ms: i64,
}

fn task_key(msgid: &str) -> String {
    format!("task/{msgid}")
}

/// Idempotency keys may be long; the store caps keys at a few hundred bytes, so use a digest.
fn invocation_key(idempotency_key: &str) -> String {
    format!(
        "invocation/{}",
        sop_plugin_sdk::webhook::dedupe_id(&[idempotency_key])
    )
}

/// Kept a little longer than a task can stay unconfirmed.
const RECORD_TTL_MS: u64 = 7 * 24 * 3_600_000;

/// Which recipients a task reaches; decides the id a send result row is reported by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `mass_send_contacts`: rows are reported by `external_userid`.
    Contacts,
    /// `mass_send_groups`: rows are reported by `chat_id`.
    Groups,
}

impl Target {
    /// The target of a mass-send action, if `action` is one.
    pub fn of(action: &str) -> Option<Self> {
        match action {
            "mass_send_contacts" => Some(Self::Contacts),
            "mass_send_groups" => Some(Self::Groups),
            _ => None,
        }
    }
}

/// `add_msg_template`'s answer as output: without the envelope, and with `fail_list` (the ids
/// WeCom could not send to) moved to `recipients.rejected`, which the runtime turns into a
/// `permanent` error for each of them when it merged the call.
fn acceptance_output(answer: serde_json::Value) -> serde_json::Value {
    let mut output = super::strip_envelope(answer);
    if let Some(object) = output.as_object_mut() {
        let rejected: Vec<serde_json::Value> = match object.remove("fail_list") {
            Some(serde_json::Value::Array(ids)) => ids
                .into_iter()
                .filter(|id| id.as_str().is_some_and(|s| !s.is_empty()))
                .collect(),
            _ => Vec::new(),
        };
        if !rejected.is_empty() {
            object.insert(
                "recipients".to_owned(),
                serde_json::json!({ "rejected": rejected }),
            );
        }
    }
    output
}

fn add_msg_template(
    client: &Client<'_>,
    mut body: serde_json::Map<String, serde_json::Value>,
    content: Content,
) -> Result<InvokeOutcome, PluginError> {
    content.write_into(&mut body)?;
    let answer = client.post(
        "externalcontact/add_msg_template",
        &body,
        Delivery::AtMostOnce,
    )?;
    let msgid = answer
        .get("msgid")
        .and_then(serde_json::Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            // WeCom said ok but gave no task id: something may have been created.
            PluginError::outcome_unknown("add_msg_template: answer without a msgid")
        })?
        .to_owned();
    let record = TaskRecord {
        msgid: msgid.clone(),
        created_at_ms: client.host.now_ms(),
    };
    kv::set_json(client.host, &task_key(&msgid), &record, Some(RECORD_TTL_MS));
    if let Some(key) = client.idempotency_key.as_deref() {
        kv::set_json(
            client.host,
            &invocation_key(key),
            &record,
            Some(RECORD_TTL_MS),
        );
    }
    Ok(InvokeOutcome::Accepted(Pending {
        handle: msgid,
        check_after_ms: check_interval(client, FIRST_CHECK_MS),
        output: json::to_json(&acceptance_output(answer)),
    }))
}

fn mass_send_contacts(
    client: &Client<'_>,
    input: MassSendContacts,
) -> Result<InvokeOutcome, PluginError> {
    if input.contacts.is_empty() || input.contacts.len() > MAX_CONTACTS as usize {
        return Err(PluginError::invalid_input(format!(
            "`contacts` must hold 1 to {MAX_CONTACTS} contacts, got {}",
            input.contacts.len()
        )));
    }
    let mut body = serde_json::Map::new();
    body.insert("chat_type".to_owned(), "single".into());
    body.insert("external_userid".to_owned(), input.contacts.into());
    if let Some(sender) = input.sender {
        body.insert("sender".to_owned(), sender.into());
    }
    body.insert("allow_select".to_owned(), input.allow_select.into());
    add_msg_template(client, body, Content::new(input.text, input.attachments))
}

fn mass_send_groups(
    client: &Client<'_>,
    input: MassSendGroups,
) -> Result<InvokeOutcome, PluginError> {
    if input.sender.is_empty() {
        return Err(PluginError::invalid_input("`sender` is empty"));
    }
    if input.groups.len() > MAX_GROUPS as usize {
        return Err(PluginError::invalid_input(format!(
            "`groups` holds at most {MAX_GROUPS} groups, got {}",
            input.groups.len()
        )));
    }
    let mut body = serde_json::Map::new();
    body.insert("chat_type".to_owned(), "group".into());
    body.insert("sender".to_owned(), input.sender.into());
    if !input.groups.is_empty() {
        body.insert("chat_id_list".to_owned(), input.groups.into());
    }
    add_msg_template(client, body, Content::new(input.text, input.attachments))
}

/// The task creation (`add_msg_template`) counts against the corp's API limits; its outcome
/// checks (`get_groupmsg_task`, `get_groupmsg_send_result`: other APIs, each with the same
/// documented per-API limit) against the `outcome_` ones, so the gate paces both without
/// one taking the other's budget.
const MASS_SEND_LIMITS: [&str; 4] = [
    "api_per_corp_minute",
    "api_per_corp_hour",
    "outcome_query_per_corp_minute",
    "outcome_query_per_corp_hour",
];

/// Registers the mass sends.
pub fn register<'a>(actions: Actions<Client<'a>>) -> Actions<Client<'a>> {
    actions
        .action(
            ActionDef::new(
                "mass_send_contacts",
                "Creates a mass-send task to contacts (add_msg_template, chat_type single). \
                 Nothing is delivered until the staff member confirms it; check-outcome reports \
                 per-recipient results.",
            )
            .at_most_once()
            .audience(Audience::Contact)
            .asynchronous()
            .rate_limits(&MASS_SEND_LIMITS)
            .batch("contacts", MAX_CONTACTS),
            mass_send_contacts,
        )
        .action(
            ActionDef::new(
                "mass_send_groups",
                "Creates a mass-send task to customer groups (add_msg_template, chat_type \
                 group), confirmed by the owner; check-outcome reports per-group results.",
            )
            .at_most_once()
            .audience(Audience::Group)
            .asynchronous()
            .rate_limits(&MASS_SEND_LIMITS)
            .batch("groups", MAX_GROUPS),
            mass_send_groups,
        )
}

#[derive(Debug, Deserialize)]
struct SenderTask {
    userid: String,
    /// 0 not sent yet, 2 sent.
    status: i64,
}

#[derive(Debug, Deserialize)]
struct Recipient {
    /// Absent for group sends.
    #[serde(default)]
    external_userid: Option<String>,
    /// Absent for contact sends.
    #[serde(default)]
    chat_id: Option<String>,
    /// 0 not sent, 1 sent, 2 not a friend, 3 already received another mass message.
    status: i64,
}

impl Recipient {
    /// The id the input named this recipient by; none if WeCom left it out or empty.
    fn id(self, target: Target) -> Option<String> {
        match target {
            Target::Contacts => self.external_userid,
            Target::Groups => self.chat_id,
        }
        .filter(|id| !id.is_empty())
    }
}

fn recipient_status(code: i64) -> &'static str {
    match code {
        0 => "unsent",
        1 => "sent",
        2 => "not_friend",
        3 => "over_receive_limit",
        _ => "unknown",
    }
}

/// Reads every page of `list_field` from `api`, one request of `budget` per page; `None` when
/// the budget runs out before the last page.
fn read_pages<T: serde::de::DeserializeOwned>(
    client: &Client<'_>,
    api: &str,
    base: serde_json::Value,
    list_field: &str,
    budget: &mut usize,
) -> Result<Option<Vec<T>>, PluginError> {
    let mut rows = Vec::new();
    let mut cursor = String::new();
    while *budget > 0 {
        *budget -= 1;
        let mut body = base.clone();
        body["limit"] = 1000.into();
        if !cursor.is_empty() {
            body["cursor"] = cursor.clone().into();
        }
        let answer = client.post(api, &body, Delivery::Idempotent)?;
        let page: Vec<T> = answer
            .get(list_field)
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| PluginError::transient(format!("{api}: unexpected `{list_field}`: {e}")))?
            .unwrap_or_default();
        rows.extend(page);
        cursor = answer
            .get("next_cursor")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if cursor.is_empty() {
            return Ok(Some(rows));
        }
    }
    Ok(None)
}

/// One stored send-result row: WeCom's status code and the recipient's id, if it had one.
type Row = (i64, Option<String>);

/// The kv key of one sender's progress in task `msgid`: present once all of that sender's
/// rows are stored, holding the number of chunks. Per sender rather than one record for the
/// task, so that progress never outgrows a kv value however many senders a task has. The
/// sender is digested: keys are capped at 256 bytes and a `userid` may take 64.
pub(crate) fn sender_key(msgid: &str, sender: &str) -> String {
    format!(
        "check/{msgid}/{}",
        &sop_plugin_sdk::webhook::dedupe_id(&[sender])[..16]
    )
}

/// The kv key of a sender's chunk `n`. Numbered, not appended: a call that dies half-way and
/// is repeated overwrites what it wrote instead of adding to it.
pub(crate) fn chunk_key(sender_key: &str, n: usize) -> String {
    format!("{sender_key}/{n}")
}

/// Splits a sender's rows into kv values of at most [`ROWS_PER_CHUNK`] rows and
/// [`CHUNK_BYTES`] of JSON.
fn into_chunks(rows: Vec<Row>) -> Vec<Vec<Row>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<Row> = Vec::new();
    let mut bytes = 2;
    for row in rows {
        // The row's JSON and a comma.
        let size = json::to_json(&row).len() + 1;
        if !chunk.is_empty() && (chunk.len() == ROWS_PER_CHUNK || bytes + size > CHUNK_BYTES) {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 2;
        }
        bytes += size;
        chunk.push(row);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// Stores a sender's rows; the progress entry is written last, so it never claims chunks a
/// dead call did not write.
fn store_sender(client: &Client<'_>, key: &str, rows: Vec<Row>) {
    let chunks = into_chunks(rows);
    for (n, chunk) in chunks.iter().enumerate() {
        kv::set_json(client.host, &chunk_key(key, n), chunk, Some(RECORD_TTL_MS));
    }
    kv::set_json(client.host, key, &chunks.len(), Some(RECORD_TTL_MS));
}

/// A stored sender's rows, in WeCom's order; `None` when the sender is not stored, or a
/// chunk is missing.
fn load_sender(client: &Client<'_>, key: &str) -> Option<Vec<Row>> {
    let count: usize = kv::get_json(client.host, key)?;
    let mut rows = Vec::new();
    for n in 0..count {
        rows.extend(kv::get_json::<Vec<Row>>(client.host, &chunk_key(key, n))?);
    }
    Some(rows)
}

/// Deletes a sender's progress and chunks, including chunks past the count that a call which
/// died half-way may have left.
fn forget_sender(client: &Client<'_>, key: &str) {
    let count: usize = kv::get_json(client.host, key).unwrap_or(0);
    client.host.kv_delete(key);
    for n in 0.. {
        let chunk = chunk_key(key, n);
        if n >= count && client.host.kv_get(&chunk).is_none() {
            break;
        }
        client.host.kv_delete(&chunk);
    }
}

/// The outcome of the task behind `handle` (or, after a crash, behind `idempotency_key`).
pub fn check(
    client: &Client<'_>,
    target: Target,
    idempotency_key: &str,
    handle: Option<String>,
) -> Result<OutcomeStatus, PluginError> {
    let record = match handle {
        Some(msgid) => {
            kv::get_json::<TaskRecord>(client.host, &task_key(&msgid)).unwrap_or(TaskRecord {
                msgid,
                created_at_ms: client.host.now_ms(),
            })
        }
        None => kv::get_json::<TaskRecord>(client.host, &invocation_key(idempotency_key))
            .ok_or_else(|| {
                PluginError::permanent(
                    "no task was recorded for this idempotency key; WeCom cannot be asked",
                )
            })?,
    };
    let msgid = record.msgid.as_str();
    let mut budget = REQUESTS_PER_CHECK;
    let senders: Vec<SenderTask> = read_pages(
        client,
        "externalcontact/get_groupmsg_task",
        serde_json::json!({ "msgid": msgid }),
        "task_list",
        &mut budget,
    )?
    .ok_or_else(|| {
        PluginError::transient(format!(
            "get_groupmsg_task: task {msgid} lists more than {REQUESTS_PER_CHECK} pages of senders"
        ))
    })?;
    let confirmed: Vec<&SenderTask> = senders.iter().filter(|s| s.status == 2).collect();
    let waiting: Vec<&str> = senders
        .iter()
        .filter(|s| s.status != 2)
        .map(|s| s.userid.as_str())
        .collect();
    let expired = client.host.now_ms() - record.created_at_ms >= CONFIRM_WINDOW_MS;
    if !waiting.is_empty() && !expired {
        return Ok(OutcomeStatus::Pending(check_interval(client, RECHECK_MS)));
    }
    if confirmed.is_empty() {
        return Ok(OutcomeStatus::Failed(format!(
            "task {msgid}: no sender confirmed it within {} hours",
            CONFIRM_WINDOW_MS / 3_600_000
        )));
    }
    // Read the confirmed senders no earlier call stored, while the budget lasts. Progress is
    // per sender, against this call's task list: a sender who confirmed since the last call is
    // read too, and one read earlier is not read again.
    let mut first = true;
    for sender in &confirmed {
        let key = sender_key(msgid, &sender.userid);
        if client.host.kv_get(&key).is_some() {
            continue;
        }
        if budget == 0 {
            return Ok(OutcomeStatus::Pending(RESULTS_RECHECK_MS));
        }
        let rows: Option<Vec<Recipient>> = read_pages(
            client,
            "externalcontact/get_groupmsg_send_result",
            serde_json::json!({ "msgid": msgid, "userid": sender.userid }),
            "send_list",
            &mut budget,
        )?;
        match rows {
            Some(rows) => {
                let rows = rows
                    .into_iter()
                    .map(|row| {
                        let status = row.status;
                        let id = row.id(target).filter(|id| id.len() <= MAX_ID_BYTES);
                        (status, id)
                    })
                    .collect();
                store_sender(client, &key, rows);
            }
            // A sender's pages are read in one call (a cursor is not kept across calls):
            // start over with the whole budget next time, unless it had that already.
            None if first => {
                return Err(PluginError::transient(format!(
                    "get_groupmsg_send_result: sender {} of task {msgid} has more pages than \
                     one check can read",
                    sender.userid
                )));
            }
            None => return Ok(OutcomeStatus::Pending(RESULTS_RECHECK_MS)),
        }
        first = false;
    }
    // Recipient ids grouped by status, not one object per recipient: a 10,000-contact task
    // must stay well inside the host's output cap (1 MiB by default).
    let mut by_status: std::collections::BTreeMap<&'static str, Vec<String>> =
        std::collections::BTreeMap::new();
    let mut unnamed: std::collections::BTreeMap<&'static str, usize> =
        std::collections::BTreeMap::new();
    for sender in &confirmed {
        let key = sender_key(msgid, &sender.userid);
        let Some(rows) = load_sender(client, &key) else {
            // A chunk expired or was lost: read that sender again.
            forget_sender(client, &key);
            return Ok(OutcomeStatus::Pending(RESULTS_RECHECK_MS));
        };
        for (code, id) in rows {
            let status = recipient_status(code);
            // A row without the id the input used cannot be matched to an invocation; it
            // still counts.
            match id {
                Some(id) => by_status.entry(status).or_default().push(id),
                None => *unnamed.entry(status).or_default() += 1,
            }
        }
    }
    for sender in &confirmed {
        forget_sender(client, &sender_key(msgid, &sender.userid));
    }
    let count = |status: &str| {
        by_status.get(status).map_or(0, Vec::len) + unnamed.get(status).copied().unwrap_or(0)
    };
    let output = serde_json::json!({
        "msgid": msgid,
        "sent": count("sent"),
        "not_friend": count("not_friend"),
        "over_receive_limit": count("over_receive_limit"),
        "unsent": count("unsent"),
        "senders_unconfirmed": waiting,
        "recipients": by_status,
    });
    Ok(OutcomeStatus::Done(json::to_json(&output)))
}
