//! Things that happen in the world (a customer adds a staff member, joins a group, writes on
//! Douyin, ...). Each changes the state and produces the callback or webhook the platform
//! would send. The traffic generator and `POST /_emulator/events` both go through here.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::App;
use crate::delivery::{Outbound, Platform, Route, dispatch_to};
use crate::douyin::webhook;
use crate::ids;
use crate::wecom::{callback, kf};
use crate::world::{FRIEND, NO_CHANNEL, SILENT};

/// An event to apply. Ids are platform ids (`external_userid`, `chat_id`, `open_id`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A new customer adds `staff` (random if absent) through channel `channel`.
    AddContact {
        /// Staff userid.
        #[serde(default)]
        staff: Option<String>,
        /// Channel code index (`State` = `channel_<n>`).
        #[serde(default)]
        channel: Option<u16>,
        /// The corp whose customer this is (`WecomConfig::corp_ids`; default the first):
        /// the callback names it and is encrypted for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        corp: Option<String>,
        /// Send this event's callback here instead of the configured URL (one receiver
        /// per corp in many-account benchmarks).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_url: Option<String>,
    },
    /// The customer deletes the staff member (`del_follow_user`: churn).
    CustomerDeletesStaff {
        /// The customer.
        external_userid: String,
    },
    /// The staff member deletes the customer (`del_external_contact`).
    StaffDeletesCustomer {
        /// The customer.
        external_userid: String,
    },
    /// A customer joins a group.
    JoinGroup {
        /// The group.
        chat_id: String,
        /// The customer.
        external_userid: String,
    },
    /// A customer leaves a group.
    LeaveGroup {
        /// The group.
        chat_id: String,
        /// The customer.
        external_userid: String,
    },
    /// A Douyin user writes to the enterprise account (opens the reply window).
    DouyinMessage {
        /// The user.
        open_id: String,
        /// What they wrote.
        text: String,
    },
    /// A Douyin user opens the conversation page.
    DouyinEnter {
        /// The user.
        open_id: String,
    },
    /// A Douyin user authorises proactive messages.
    DouyinAuthorize {
        /// The user.
        open_id: String,
    },
    /// A customer pays an order in the demo shop, which sends `order.paid` (see `shop`).
    Order {
        /// The customer.
        external_userid: String,
        /// Amount in fen.
        amount_fen: u64,
    },
    /// The staff member edits the customer in their client (`edit_external_contact`).
    StaffEditsContact {
        /// The customer.
        external_userid: String,
    },
    /// A staff member creates a customer group (`change_external_chat` / `create`).
    CreateGroup {
        /// Owner's userid.
        staff: String,
    },
    /// The owner dismisses a group (`change_external_chat` / `dismiss`).
    DismissGroup {
        /// The group.
        chat_id: String,
    },
    /// A customer writes to the corp's 微信客服 account: recorded for `kf/sync_msg` and
    /// announced with a `kf_msg_or_event` callback.
    CustomerMessage {
        /// The customer.
        external_userid: String,
        /// What they wrote.
        text: String,
    },
    /// A customer stops producing traffic.
    GoSilent {
        /// The customer.
        external_userid: String,
    },
}

/// An order placed by a customer.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// Customer.
    pub external_userid: String,
    /// Amount in fen.
    pub amount_fen: u64,
    /// When, Unix ms.
    pub at_ms: u64,
}

fn contact(id: &str, known: usize) -> Result<u32, String> {
    ids::parse_contact(id)
        .filter(|&c| (c as usize) < known)
        .ok_or_else(|| format!("unknown external_userid {id:?}"))
}

fn douyin_user(id: &str, known: usize) -> Result<u32, String> {
    ids::parse_open_id(id)
        .filter(|&c| (c as usize) < known)
        .ok_or_else(|| format!("unknown open_id {id:?}"))
}

/// Apply `ev`, send what the platform would send, and describe the outcome.
pub fn apply(app: &App, ev: Event) -> Result<Value, String> {
    let cfg = app.config();
    let corp = cfg.wecom.corp_id.as_str();
    let dy = &cfg.douyin;
    let now = app.now_ms();
    let now_s = now / 1_000;
    let mut route = Route::default();
    let (summary, out) = {
        let mut st = app.lock();
        let st = &mut *st;
        // Due confirmations happen before this event (a friend deleted later must not
        // retroactively fail an earlier confirmation).
        crate::wecom::mass_send_settle(st, &cfg.wecom, now);
        let known = st.world.contacts.len();
        match ev {
            Event::AddContact {
                staff,
                channel,
                corp: corp_id,
                callback_url,
            } => {
                if let Some(id) = corp_id {
                    route.corp = cfg
                        .wecom
                        .corp_index(&id)
                        .ok_or_else(|| format!("unknown corp {id:?}"))?;
                }
                route.url = callback_url;
                let corp_name = cfg.wecom.corp_id_at(route.corp);
                let s = match staff {
                    Some(s) => ids::parse_staff(&s)
                        .filter(|&i| st.world.has_staff(i))
                        .ok_or_else(|| format!("unknown staff {s:?}"))?,
                    None => st.rng.below(u64::from(st.world.staff)) as u32,
                };
                let channel = match channel {
                    Some(c) if c < st.world.channels => c,
                    Some(c) => return Err(format!("unknown channel {c}")),
                    None if st.world.channels > 0 => {
                        st.rng.below(u64::from(st.world.channels)) as u16
                    }
                    None => NO_CHANNEL,
                };
                let gender = st.rng.below(3) as u8;
                let c = st.world.add_contact(s, channel, now, gender);
                let salt = st.rng.next_u64();
                let code = st
                    .wecom
                    .welcome
                    .issue(c, s, now, cfg.wecom.welcome_code_ttl_ms, salt);
                let state = if channel == NO_CHANNEL {
                    String::new()
                } else {
                    ids::channel_state(channel)
                };
                let (staff_id, contact_id) = (ids::staff_id(s), ids::contact_id(c));
                let xml = callback::add_external_contact(
                    &corp_name,
                    now_s,
                    &staff_id,
                    &contact_id,
                    &state,
                    &code,
                );
                (
                    json!({"userid": staff_id, "external_userid": contact_id, "state": state, "welcome_code": code}),
                    Some(Outbound {
                        platform: Platform::Wecom,
                        event: "add_external_contact".into(),
                        payload: xml,
                    }),
                )
            }
            Event::CustomerDeletesStaff {
                external_userid: id,
            } => deleted(st, corp, now_s, &id, known, "del_follow_user")?,
            Event::StaffDeletesCustomer {
                external_userid: id,
            } => deleted(st, corp, now_s, &id, known, "del_external_contact")?,
            Event::JoinGroup {
                chat_id,
                external_userid,
            } => membership(st, corp, now_s, &chat_id, &external_userid, known, true)?,
            Event::LeaveGroup {
                chat_id,
                external_userid,
            } => membership(st, corp, now_s, &chat_id, &external_userid, known, false)?,
            Event::DouyinMessage { open_id, text } => {
                let u = douyin_user(&open_id, known)?;
                let user = st.douyin.users.entry(u).or_default();
                user.last_msg_ms = Some(now);
                user.replies_in_window = 0;
                let conv = format!("conv-{u:010}");
                let server_id = format!("dyin-{:016x}", st.rng.next_u64());
                let content = webhook::message_content(
                    &conv,
                    &server_id,
                    now,
                    &text,
                    &open_id,
                    &ids::contact_name(u),
                );
                let body = webhook::event(
                    &dy.client_key,
                    "im_receive_msg",
                    &open_id,
                    &dy.enterprise_open_id,
                    &server_id,
                    &content,
                );
                (
                    json!({"open_id": open_id, "conversation_id": conv, "server_message_id": server_id}),
                    Some(Outbound {
                        platform: Platform::Douyin,
                        event: "im_receive_msg".into(),
                        payload: body,
                    }),
                )
            }
            Event::DouyinEnter { open_id } => {
                let u = douyin_user(&open_id, known)?;
                let user = st.douyin.users.entry(u).or_default();
                user.entered_ms = Some(now);
                user.replies_in_window = 0;
                let conv = format!("conv-{u:010}");
                let content = json!({
                    "conversation_short_id": conv,
                    "server_message_id": "",
                    "conversation_type": 1,
                    "scene_type": 1,
                    "create_time": now,
                    "user_infos": [{"open_id": open_id, "nick_name": ids::contact_name(u), "avatar": ""}],
                });
                let body = webhook::event(
                    &dy.client_key,
                    "im_enter_direct_msg",
                    &open_id,
                    &dy.enterprise_open_id,
                    "",
                    &content,
                );
                (
                    json!({"open_id": open_id, "conversation_id": conv}),
                    Some(Outbound {
                        platform: Platform::Douyin,
                        event: "im_enter_direct_msg".into(),
                        payload: body,
                    }),
                )
            }
            Event::DouyinAuthorize { open_id } => {
                let u = douyin_user(&open_id, known)?;
                let user = st.douyin.users.entry(u).or_default();
                user.authorized = true;
                user.authorized_at_s = now_s;
                let content = json!({"open_id": open_id, "authorize_time": now_s});
                let body = webhook::event(
                    &dy.client_key,
                    "im_authorize",
                    &open_id,
                    &dy.enterprise_open_id,
                    "",
                    &content,
                );
                (
                    json!({"open_id": open_id}),
                    Some(Outbound {
                        platform: Platform::Douyin,
                        event: "im_authorize".into(),
                        payload: body,
                    }),
                )
            }
            Event::Order {
                external_userid,
                amount_fen,
            } => {
                contact(&external_userid, known)?;
                // The customer pays in the shop, which announces the order to the daemon.
                let order = crate::shop::OrderRequest {
                    external_userid: Some(external_userid.clone()),
                    open_id: None,
                    amount_cents: amount_fen,
                    order_id: None,
                    secret: None,
                };
                let (mut summary, out) =
                    crate::shop::pay_locked(st, &cfg.shop.shop_id, now, &order)?;
                st.orders.push(Order {
                    external_userid: external_userid.clone(),
                    amount_fen,
                    at_ms: now,
                });
                summary["external_userid"] = external_userid.into();
                summary["amount_fen"] = amount_fen.into();
                (summary, Some(out))
            }
            Event::StaffEditsContact { external_userid } => {
                let c = contact(&external_userid, known)?;
                let x = st
                    .world
                    .contact(c)
                    .filter(|x| x.is_friend())
                    .ok_or_else(|| format!("{external_userid} is not a friend"))?;
                let staff = ids::staff_id(x.owner);
                let xml = callback::edited(corp, now_s, &staff, &external_userid);
                (
                    json!({"userid": staff, "external_userid": external_userid}),
                    Some(Outbound {
                        platform: Platform::Wecom,
                        event: "edit_external_contact".into(),
                        payload: xml,
                    }),
                )
            }
            Event::CreateGroup { staff } => {
                let owner = ids::parse_staff(&staff)
                    .filter(|&s| st.world.has_staff(s))
                    .ok_or_else(|| format!("unknown staff {staff:?}"))?;
                let idx = st.world.groups.len() as u32;
                st.world.groups.push(crate::world::Group {
                    owner,
                    created_at_s: u32::try_from(now_s).unwrap_or(u32::MAX),
                    members: Vec::new(),
                    dismissed: false,
                    mass_period: 0,
                    mass_count: 0,
                });
                let chat_id = ids::chat_id(idx);
                let xml = callback::chat_lifecycle(corp, now_s, &chat_id, "create");
                (
                    json!({"chat_id": chat_id, "owner": staff}),
                    Some(Outbound {
                        platform: Platform::Wecom,
                        event: "create".into(),
                        payload: xml,
                    }),
                )
            }
            Event::DismissGroup { chat_id } => {
                let g = ids::parse_chat(&chat_id)
                    .and_then(|g| st.world.groups.get_mut(g as usize))
                    .filter(|g| !g.dismissed)
                    .ok_or_else(|| format!("unknown chat_id {chat_id:?}"))?;
                g.dismissed = true;
                let xml = callback::chat_lifecycle(corp, now_s, &chat_id, "dismiss");
                (
                    json!({"chat_id": chat_id}),
                    Some(Outbound {
                        platform: Platform::Wecom,
                        event: "dismiss".into(),
                        payload: xml,
                    }),
                )
            }
            Event::CustomerMessage {
                external_userid,
                text,
            } => {
                if text.trim().is_empty() {
                    return Err("text is empty".into());
                }
                let c = contact(&external_userid, known)?;
                let owner = st
                    .world
                    .contact(c)
                    .map(|x| ids::staff_id(x.owner))
                    .ok_or_else(|| format!("unknown external_userid {external_userid:?}"))?;
                let salt = st.rng.bytes16();
                let written =
                    st.wecom
                        .kf
                        .write(&cfg.wecom, now, &external_userid, &owner, &text, salt);
                let xml = kf::callback(corp, now_s, &written.token, &cfg.wecom.open_kfid);
                (
                    json!({"external_userid": external_userid, "servicer_userid": owner,
                           "open_kfid": cfg.wecom.open_kfid, "msgid": written.msgid,
                           "token": written.token}),
                    Some(Outbound {
                        platform: Platform::Wecom,
                        event: "kf_msg_or_event".into(),
                        payload: xml,
                    }),
                )
            }
            Event::GoSilent { external_userid } => {
                let c = contact(&external_userid, known)?;
                if let Some(x) = st.world.contact_mut(c) {
                    x.flags |= SILENT;
                }
                (json!({"external_userid": external_userid}), None)
            }
        }
    };
    let mut summary = summary;
    if let Some(out) = out {
        summary["callback_id"] = dispatch_to(app, out, route).into();
    }
    Ok(summary)
}

type Applied = (Value, Option<Outbound>);

fn deleted(
    st: &mut crate::app::State,
    corp: &str,
    now_s: u64,
    id: &str,
    known: usize,
    change: &str,
) -> Result<Applied, String> {
    let c = contact(id, known)?;
    let x = st
        .world
        .contact_mut(c)
        .ok_or_else(|| format!("unknown external_userid {id:?}"))?;
    if x.flags & FRIEND == 0 {
        return Err(format!("{id} is no longer a friend"));
    }
    x.flags &= !FRIEND;
    let staff = ids::staff_id(x.owner);
    let xml = callback::deleted(corp, now_s, change, &staff, id);
    Ok((
        json!({"userid": staff, "external_userid": id}),
        Some(Outbound {
            platform: Platform::Wecom,
            event: change.into(),
            payload: xml,
        }),
    ))
}

fn membership(
    st: &mut crate::app::State,
    corp: &str,
    now_s: u64,
    chat_id: &str,
    id: &str,
    known: usize,
    join: bool,
) -> Result<Applied, String> {
    let c = contact(id, known)?;
    let g = ids::parse_chat(chat_id)
        .and_then(|g| st.world.groups.get_mut(g as usize))
        .filter(|g| !g.dismissed)
        .ok_or_else(|| format!("unknown chat_id {chat_id:?}"))?;
    let pos = g.members.iter().position(|&(m, _)| m == c);
    match (join, pos) {
        (true, None) => g
            .members
            .push((c, u32::try_from(now_s).unwrap_or(u32::MAX))),
        (false, Some(p)) => {
            g.members.swap_remove(p);
        }
        (true, Some(_)) => return Err(format!("{id} is already in {chat_id}")),
        (false, None) => return Err(format!("{id} is not in {chat_id}")),
    }
    let detail = if join { "add_member" } else { "del_member" };
    // JoinScene 3 = via QR code; QuitScene 0 = left by themselves.
    let scene = if join { 3 } else { 0 };
    let xml = callback::chat_members(corp, now_s, chat_id, detail, scene, &[id.to_owned()]);
    Ok((
        json!({"chat_id": chat_id, "external_userid": id, "update_detail": detail}),
        Some(Outbound {
            platform: Platform::Wecom,
            event: detail.into(),
            payload: xml,
        }),
    ))
}
