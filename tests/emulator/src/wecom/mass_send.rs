//! Mass-send tasks (`add_msg_template`): nothing reaches a customer until the staff member
//! confirms in their client, which the emulator does after `confirm_after_ms` (or never, or
//! on request). Delivery then applies friendships and the receive limits.
//!
//! One task carries up to 10,000 customers (`external_userid`) or 2,000 groups
//! (`chat_id_list`), as documented; more answers 40058. The counters count both the tasks
//! (`mass_tasks`) and what they carry (`mass_recipients`, then `mass_sent` /
//! `mass_not_sent` at confirmation, one delivery per recipient sent).

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Query, WxError, call, parse_body};
use crate::app::{App, State};
use crate::calendar::{day_of, month_of};
use crate::config::{ReceiveLimit, WecomConfig};
use crate::ids;
use crate::ledger::NewDelivery;

/// Most customers in one `single` task (documented: 最多可一次指定1万个客户).
const MAX_CONTACTS: usize = 10_000;
/// Most groups in one `group` task (documented: 最多可一次指定2000个客户群).
const MAX_GROUPS: usize = 2_000;
/// Pages of `get_groupmsg_task` / `get_groupmsg_send_result`: `limit` at most 1,000; 500
/// when absent, zero or above the maximum (documented: 超过最大值时取默认值).
const PAGE_MAX: usize = 1_000;
const PAGE_DEFAULT: usize = 500;

/// Per-recipient outcome, with the platform's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// 0: not sent (sender has not confirmed).
    Unsent = 0,
    /// 1: sent.
    Sent = 1,
    /// 2: failed, the customer is not a friend (or no longer in the group).
    NotFriend = 2,
    /// 3: failed, the customer already received their quota of mass messages.
    OverLimit = 3,
}

#[derive(Debug, Clone, Serialize)]
struct Recipient {
    target: u32,
    sender: u32,
    status: TaskStatus,
    send_time_s: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Sender {
    staff: u32,
    confirmed_ms: Option<u64>,
}

/// One mass-send task.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    msgid: String,
    group: bool,
    created_ms: u64,
    content: Value,
    senders: Vec<Sender>,
    recipients: Vec<Recipient>,
}

/// All tasks, in creation order.
#[derive(Debug, Default)]
pub struct Tasks {
    tasks: Vec<Task>,
    by_id: HashMap<String, usize>,
    /// Index of the first task that may still have unconfirmed senders.
    first_open: usize,
}

impl Tasks {
    /// All tasks, for inspection.
    pub fn all(&self) -> &[Task] {
        &self.tasks
    }

    fn get(&self, msgid: &str) -> Option<&Task> {
        self.by_id.get(msgid).map(|&i| &self.tasks[i])
    }
}

/// Confirm every sender whose automatic confirmation time has come.
pub fn settle(st: &mut State, cfg: &WecomConfig, now_ms: u64) {
    let Some(delay) = cfg.confirm_after_ms else {
        return;
    };
    let mut i = st.wecom.tasks.first_open;
    while i < st.wecom.tasks.tasks.len() {
        let at = st.wecom.tasks.tasks[i].created_ms.saturating_add(delay);
        if at > now_ms {
            break;
        }
        let staff: Vec<u32> = st.wecom.tasks.tasks[i]
            .senders
            .iter()
            .filter(|s| s.confirmed_ms.is_none())
            .map(|s| s.staff)
            .collect();
        for s in staff {
            confirm_sender(st, cfg, i, s, at);
        }
        i += 1;
    }
    st.wecom.tasks.first_open = i;
}

/// Confirm a task now for one sender (or all), as if the staff member pressed "send".
pub fn confirm(
    st: &mut State,
    cfg: &WecomConfig,
    msgid: &str,
    sender: Option<u32>,
    now_ms: u64,
) -> Option<usize> {
    let &i = st.wecom.tasks.by_id.get(msgid)?;
    let staff: Vec<u32> = st.wecom.tasks.tasks[i]
        .senders
        .iter()
        .filter(|s| s.confirmed_ms.is_none() && sender.is_none_or(|x| x == s.staff))
        .map(|s| s.staff)
        .collect();
    for &s in &staff {
        confirm_sender(st, cfg, i, s, now_ms);
    }
    Some(staff.len())
}

fn confirm_sender(st: &mut State, cfg: &WecomConfig, task: usize, staff: u32, at_ms: u64) {
    let State {
        wecom,
        world,
        ledger,
        counters,
        ..
    } = st;
    let t = &mut wecom.tasks.tasks[task];
    for s in t.senders.iter_mut().filter(|s| s.staff == staff) {
        s.confirmed_ms = Some(at_ms);
    }
    let at_s = u32::try_from(at_ms / 1_000).unwrap_or(u32::MAX);
    for r in t.recipients.iter_mut().filter(|r| r.sender == staff) {
        let (reachable, allowed, to) = if t.group {
            match world.groups.get_mut(r.target as usize) {
                Some(g) if !g.dismissed && g.owner == staff => (
                    true,
                    take_quota(
                        cfg.group_receive_limit,
                        &mut g.mass_period,
                        &mut g.mass_count,
                        at_ms,
                    ),
                    ids::chat_id(r.target),
                ),
                _ => (false, false, String::new()),
            }
        } else {
            match world.contacts.get_mut(r.target as usize) {
                Some(c) if c.is_friend() && c.owner == staff => (
                    true,
                    take_quota(
                        cfg.customer_receive_limit,
                        &mut c.mass_period,
                        &mut c.mass_count,
                        at_ms,
                    ),
                    ids::contact_id(r.target),
                ),
                _ => (false, false, String::new()),
            }
        };
        r.status = match (reachable, allowed) {
            (false, _) => TaskStatus::NotFriend,
            (true, false) => TaskStatus::OverLimit,
            (true, true) => TaskStatus::Sent,
        };
        if r.status != TaskStatus::Sent {
            counters.mass_not_sent += 1;
        } else {
            counters.mass_sent += 1;
            r.send_time_s = at_s;
            ledger.record(NewDelivery {
                at_ms,
                platform: "wecom",
                channel: if t.group {
                    "group_mass_send"
                } else {
                    "mass_send"
                },
                call: "externalcontact/add_msg_template",
                task: Some(t.msgid.clone()),
                from: ids::staff_id(staff),
                to,
                content: t.content.clone(),
            });
        }
    }
}

/// Count one mass message against a receive limit; `false` if the quota is used up.
pub fn take_quota(rule: ReceiveLimit, period: &mut u32, count: &mut u16, at_ms: u64) -> bool {
    let (p, cap) = match rule {
        ReceiveLimit::Unlimited => return true,
        ReceiveLimit::DaysInMonth => {
            let (m, days) = month_of(at_ms);
            (m, days as u16)
        }
        ReceiveLimit::PerMonth(n) => (month_of(at_ms).0, n),
        ReceiveLimit::PerDay(n) => (day_of(at_ms), n),
    };
    if *period != p {
        *period = p;
        *count = 0;
    }
    if *count >= cap {
        return false;
    }
    *count += 1;
    true
}

#[derive(Deserialize)]
struct AddTemplate {
    #[serde(default)]
    chat_type: Option<String>,
    #[serde(default)]
    external_userid: Vec<String>,
    #[serde(default)]
    chat_id_list: Vec<String>,
    #[serde(default)]
    sender: Option<String>,
    text: Option<Value>,
    #[serde(default)]
    attachments: Vec<Value>,
}

pub(super) async fn add_msg_template(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(
        &app,
        "externalcontact/add_msg_template",
        &q,
        |st, cfg, now| {
            settle(st, &cfg.wecom, now);
            let req: AddTemplate = parse_body(&body)?;
            let group = match req.chat_type.as_deref().unwrap_or("single") {
                "single" => false,
                "group" => true,
                _ => return Err(WxError::INVALID_PARAMETER),
            };
            if req.attachments.len() > 9
                || (req.text.is_none() && req.attachments.is_empty())
                || req.external_userid.len() > MAX_CONTACTS
                || req.chat_id_list.len() > MAX_GROUPS
            {
                return Err(WxError::INVALID_PARAMETER);
            }
            let sender = match req.sender.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    ids::parse_staff(s)
                        .filter(|&i| st.world.has_staff(i))
                        .ok_or(WxError::INVALID_USERID)?,
                ),
                None => None,
            };
            let mut fail_list = Vec::new();
            let mut recipients = Vec::new();
            // Each target once, in the order given (a repeated id is neither sent twice nor
            // a failure).
            let mut seen = HashSet::new();
            if group {
                let sender = sender.ok_or(WxError::INVALID_PARAMETER)?;
                let owned = |g: u32| {
                    st.world
                        .groups
                        .get(g as usize)
                        .is_some_and(|x| x.owner == sender && !x.dismissed)
                };
                if req.chat_id_list.is_empty() {
                    recipients.extend((0..st.world.groups.len() as u32).filter(|&g| owned(g)));
                }
                for id in &req.chat_id_list {
                    match ids::parse_chat(id).filter(|&g| owned(g)) {
                        Some(g) if seen.insert(g) => recipients.push(g),
                        Some(_) => {}
                        None => fail_list.push(id.clone()),
                    }
                }
            } else {
                if req.external_userid.is_empty() {
                    let s = sender.ok_or(WxError::INVALID_PARAMETER)?;
                    recipients.extend(
                        st.world
                            .contacts
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| c.owner == s && c.is_friend())
                            .map(|(i, _)| i as u32),
                    );
                }
                for id in &req.external_userid {
                    let ok = ids::parse_contact(id).filter(|&c| {
                        st.world
                            .contact(c)
                            .is_some_and(|x| x.is_friend() && sender.is_none_or(|s| s == x.owner))
                    });
                    match ok {
                        Some(c) if seen.insert(c) => recipients.push(c),
                        Some(_) => {}
                        None => fail_list.push(id.clone()),
                    }
                }
            }
            if recipients.is_empty() {
                return Err(WxError::NO_SENDABLE);
            }
            let owner_of = |target: u32| -> u32 {
                if group {
                    st.world.groups[target as usize].owner
                } else {
                    st.world.contacts[target as usize].owner
                }
            };
            let recipients: Vec<Recipient> = recipients
                .into_iter()
                .map(|target| Recipient {
                    target,
                    sender: owner_of(target),
                    status: TaskStatus::Unsent,
                    send_time_s: 0,
                })
                .collect();
            let mut senders: Vec<Sender> = Vec::new();
            for r in &recipients {
                if !senders.iter().any(|s| s.staff == r.sender) {
                    senders.push(Sender {
                        staff: r.sender,
                        confirmed_ms: None,
                    });
                }
            }
            st.counters.mass_tasks += 1;
            st.counters.mass_recipients += recipients.len() as u64;
            st.counters.mass_fail_list += fail_list.len() as u64;
            let tasks = &mut st.wecom.tasks;
            let msgid = format!("msgEmu{:010}", tasks.tasks.len() + 1);
            tasks.by_id.insert(msgid.clone(), tasks.tasks.len());
            tasks.tasks.push(Task {
                msgid: msgid.clone(),
                group,
                created_ms: now,
                content: json!({"text": req.text, "attachments": req.attachments}),
                senders,
                recipients,
            });
            Ok(json!({"fail_list": fail_list, "msgid": msgid}))
        },
    )
}

#[derive(Deserialize)]
struct TaskQuery {
    #[serde(default)]
    msgid: String,
    #[serde(default)]
    userid: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

impl TaskQuery {
    /// The task asked about: 41046 without a `msgid`, 41047 for an unknown one.
    fn task<'a>(&self, tasks: &'a Tasks) -> Result<&'a Task, WxError> {
        if self.msgid.is_empty() {
            return Err(WxError::MISSING_MSGID);
        }
        tasks.get(&self.msgid).ok_or(WxError::INVALID_MSGID)
    }
}

/// Rows `start..end` of `len` for a `cursor` (an offset) and `limit`, and the next cursor
/// (empty after the last page).
fn page(cursor: Option<&str>, limit: Option<usize>, len: usize) -> (usize, usize, String) {
    let start = cursor.and_then(|c| c.parse().ok()).unwrap_or(0).min(len);
    let limit = limit
        .filter(|&l| (1..=PAGE_MAX).contains(&l))
        .unwrap_or(PAGE_DEFAULT);
    let end = (start + limit).min(len);
    let next = if end < len {
        end.to_string()
    } else {
        String::new()
    };
    (start, end, next)
}

pub(super) async fn get_groupmsg_task(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(
        &app,
        "externalcontact/get_groupmsg_task",
        &q,
        |st, cfg, now| {
            settle(st, &cfg.wecom, now);
            let req: TaskQuery = parse_body(&body)?;
            let t = req.task(&st.wecom.tasks)?;
            let (start, end, next) = page(req.cursor.as_deref(), req.limit, t.senders.len());
            let list: Vec<Value> = t.senders[start..end]
            .iter()
            .map(|s| match s.confirmed_ms {
                Some(at) => json!({"userid": ids::staff_id(s.staff), "status": 2, "send_time": at / 1_000}),
                None => json!({"userid": ids::staff_id(s.staff), "status": 0}),
            })
            .collect();
            Ok(json!({"task_list": list, "next_cursor": next}))
        },
    )
}

pub(super) async fn get_groupmsg_send_result(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(
        &app,
        "externalcontact/get_groupmsg_send_result",
        &q,
        |st, cfg, now| {
            settle(st, &cfg.wecom, now);
            let req: TaskQuery = parse_body(&body)?;
            let t = req.task(&st.wecom.tasks)?;
            let staff = req
                .userid
                .as_deref()
                .and_then(ids::parse_staff)
                .ok_or(WxError::INVALID_USERID)?;
            // Every recipient of the task this sender is to send to, in the task's order.
            let mine: Vec<&Recipient> = t.recipients.iter().filter(|r| r.sender == staff).collect();
            let (start, end, next) = page(req.cursor.as_deref(), req.limit, mine.len());
            let list: Vec<Value> = mine[start..end]
                .iter()
                .map(|r| {
                    let mut v = json!({"userid": ids::staff_id(staff), "status": r.status as u8});
                    if t.group {
                        v["chat_id"] = ids::chat_id(r.target).into();
                    } else {
                        v["external_userid"] = ids::contact_id(r.target).into();
                    }
                    if r.status == TaskStatus::Sent {
                        v["send_time"] = r.send_time_s.into();
                    }
                    v
                })
                .collect();
            Ok(json!({"send_list": list, "next_cursor": next}))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_2024: u64 = 1_704_067_200_000 + 3_600_000; // 2024-01-01 09:00 UTC+8
    const FEB_2024: u64 = 1_706_745_600_000 + 3_600_000;

    #[test]
    fn days_in_month_rule() {
        let (mut p, mut c) = (0, 0);
        for _ in 0..31 {
            assert!(take_quota(
                ReceiveLimit::DaysInMonth,
                &mut p,
                &mut c,
                JAN_2024
            ));
        }
        assert!(!take_quota(
            ReceiveLimit::DaysInMonth,
            &mut p,
            &mut c,
            JAN_2024
        ));
        for _ in 0..29 {
            assert!(take_quota(
                ReceiveLimit::DaysInMonth,
                &mut p,
                &mut c,
                FEB_2024
            ));
        }
        assert!(!take_quota(
            ReceiveLimit::DaysInMonth,
            &mut p,
            &mut c,
            FEB_2024
        ));
    }

    #[test]
    fn per_day_and_per_month_rules() {
        let (mut p, mut c) = (0, 0);
        assert!(take_quota(
            ReceiveLimit::PerDay(1),
            &mut p,
            &mut c,
            JAN_2024
        ));
        assert!(!take_quota(
            ReceiveLimit::PerDay(1),
            &mut p,
            &mut c,
            JAN_2024 + 3_600_000
        ));
        assert!(take_quota(
            ReceiveLimit::PerDay(1),
            &mut p,
            &mut c,
            JAN_2024 + 86_400_000
        ));
        let (mut p, mut c) = (0, 0);
        for _ in 0..4 {
            assert!(take_quota(
                ReceiveLimit::PerMonth(4),
                &mut p,
                &mut c,
                JAN_2024
            ));
        }
        assert!(!take_quota(
            ReceiveLimit::PerMonth(4),
            &mut p,
            &mut c,
            JAN_2024
        ));
        assert!(take_quota(
            ReceiveLimit::Unlimited,
            &mut p,
            &mut c,
            JAN_2024
        ));
    }

    #[test]
    fn pages() {
        assert_eq!(page(None, None, 3), (0, 3, String::new()));
        assert_eq!(page(None, Some(2), 3), (0, 2, "2".into()));
        assert_eq!(page(Some("2"), Some(2), 3), (2, 3, String::new()));
        assert_eq!(page(Some("junk"), None, 3), (0, 3, String::new()));
        assert_eq!(page(Some("99"), None, 3), (3, 3, String::new()));
    }

    #[test]
    fn page_size_is_at_most_1000_and_500_by_default() {
        assert_eq!(page(None, Some(1_000), 10_000), (0, 1_000, "1000".into()));
        assert_eq!(
            page(Some("9000"), Some(1_000), 10_000),
            (9_000, 10_000, String::new())
        );
        assert_eq!(page(None, None, 10_000), (0, 500, "500".into()));
        assert_eq!(page(None, Some(0), 10_000), (0, 500, "500".into()));
        assert_eq!(page(None, Some(5_000), 10_000), (0, 500, "500".into()));
    }
}
