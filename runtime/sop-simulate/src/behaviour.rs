//! The seeded behaviour model: what the synthetic customers do and when. Everything they do
//! is a [`Happening`] on the agenda, turned into a platform event and ingested at its time.
//!
//! Daily traffic (new contacts, Douyin messages, orders, deletions) is drawn day by day from
//! one sequential generator; group joins from a generator of their own per day (so that they
//! leave the other draws as they were); replies are drawn from a generator seeded by the
//! message's idempotency key, so they do not depend on the order in which concurrent sends
//! finish.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::Timelike;
use serde_json::json;
use sop_clock::{TimeDelta, Timestamp};
use sop_emulator::ids;
use sop_emulator::rng::Rng;
use sop_engine::Event;

use crate::options::Behaviour;
use crate::world::Platform;

/// Small talk for replies that are not keywords.
const SMALL_TALK: [&str; 4] = ["好的，谢谢", "在吗", "还有券吗", "收到"];
/// Unprompted Douyin messages when the playbooks name no keywords.
const DOUYIN_TALK: [&str; 3] = ["价格多少", "什么时候发货", "你好"];
/// Local time of the population's activity (Asia/Shanghai is UTC+8 all year).
const LOCAL_OFFSET_HOURS: i64 = 8;

/// Which platform a customer writes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Wecom,
    Douyin,
}

/// Something a customer does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Happening {
    /// A new customer adds a staff member through a channel QR code.
    NewContact { owner: u32, channel: u16 },
    /// A customer writes.
    Message {
        contact: u32,
        channel: Channel,
        text: String,
    },
    /// A customer pays an order in the shop.
    Order { contact: u32, amount_cents: u64 },
    /// A customer deletes their staff member; `reported`: the platform sends the event.
    DeleteStaff { contact: u32, reported: bool },
    /// A customer joins a customer group.
    JoinGroup { contact: u32, group: u32 },
}

/// What the customers did, by kind (the simulator's input, not the runtime's record).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub new_contacts: u64,
    pub messages: u64,
    pub opt_out_keywords: u64,
    pub orders: u64,
    pub deletions: u64,
    pub group_joins: u64,
}

/// Happenings by time; ties in a stable order.
#[derive(Debug, Default)]
pub(crate) struct Agenda {
    items: BTreeMap<(Timestamp, u64, u64), Happening>,
    seq: u64,
}

impl Agenda {
    pub fn push(&mut self, at: Timestamp, tiebreak: u64, happening: Happening) {
        self.seq += 1;
        self.items.insert((at, tiebreak, self.seq), happening);
    }

    pub fn next_at(&self) -> Option<Timestamp> {
        self.items.keys().next().map(|(at, _, _)| *at)
    }

    /// Everything due at or before `now`, in order.
    pub fn take_due(&mut self, now: Timestamp) -> Vec<(Timestamp, Happening)> {
        let mut due = Vec::new();
        while let Some(entry) = self.items.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let at = entry.key().0;
            due.push((at, entry.remove()));
        }
        due
    }
}

/// The behaviour model with its generators.
#[derive(Debug)]
pub(crate) struct Customers {
    pub behaviour: Behaviour,
    pub seed: u64,
    pub keywords: Vec<String>,
    pub initial: u32,
    daily: Mutex<Rng>,
    pub agenda: Mutex<Agenda>,
    pub traffic: Mutex<Traffic>,
}

impl Customers {
    pub fn new(behaviour: Behaviour, seed: u64, keywords: Vec<String>, initial: u32) -> Customers {
        Customers {
            behaviour,
            seed,
            keywords,
            initial,
            daily: Mutex::new(Rng::new(seed ^ 0x00DA_11E5)),
            agenda: Mutex::new(Agenda::default()),
            traffic: Mutex::new(Traffic::default()),
        }
    }

    /// Draws the unprompted traffic of the day starting at `day_start` over the population;
    /// what falls before `not_before` (a simulation starting mid-day) is dropped.
    pub fn plan_day(&self, day_start: Timestamp, not_before: Timestamp, platform: &Platform) {
        let b = &self.behaviour;
        let mut rng = lock(&self.daily);
        let mut planned = Agenda::default();
        let arrivals = f64::from(self.initial) * b.new_contacts_per_day;
        let mut count = arrivals.floor() as u64;
        if rng.chance(arrivals.fract()) {
            count += 1;
        }
        let world = &platform.world;
        for _ in 0..count {
            let at = daytime(&mut rng, day_start);
            let owner = rng.below(u64::from(world.staff)) as u32;
            let channel = if world.channels == 0 {
                sop_emulator::world::NO_CHANNEL
            } else {
                rng.below(u64::from(world.channels)) as u16
            };
            planned.push(at, rng.next_u64(), Happening::NewContact { owner, channel });
        }
        for (index, contact) in world.contacts.iter().enumerate() {
            if !contact.is_friend() {
                continue;
            }
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if rng.chance(b.douyin_messages_per_day) {
                let at = daytime(&mut rng, day_start);
                let text = self.pick_text(&mut rng, &DOUYIN_TALK);
                planned.push(
                    at,
                    rng.next_u64(),
                    Happening::Message {
                        contact: index,
                        channel: Channel::Douyin,
                        text,
                    },
                );
            }
            if rng.chance(b.orders_per_day) {
                let at = daytime(&mut rng, day_start);
                let amount_cents = 1_000 + rng.below(50_000);
                planned.push(
                    at,
                    rng.next_u64(),
                    Happening::Order {
                        contact: index,
                        amount_cents,
                    },
                );
            }
            if rng.chance(b.deletes_per_day) {
                let at = daytime(&mut rng, day_start);
                let reported = rng.chance(b.deletes_reported);
                planned.push(
                    at,
                    rng.next_u64(),
                    Happening::DeleteStaff {
                        contact: index,
                        reported,
                    },
                );
            }
        }
        drop(rng);
        let groups = u64::try_from(platform.world.groups.len()).unwrap_or(0);
        if groups > 0 && b.group_joins_per_day > 0.0 {
            let day = u64::try_from(day_start.timestamp()).unwrap_or(0);
            let mut joins = Rng::new(self.seed ^ 0x0000_6A01_u64 ^ day.rotate_left(17));
            for (index, contact) in platform.world.contacts.iter().enumerate() {
                if contact.is_friend() && joins.chance(b.group_joins_per_day) {
                    let at = daytime(&mut joins, day_start);
                    let group = joins.below(groups) as u32;
                    let contact = u32::try_from(index).unwrap_or(u32::MAX);
                    planned.push(
                        at,
                        joins.next_u64(),
                        Happening::JoinGroup { contact, group },
                    );
                }
            }
        }
        let mut agenda = lock(&self.agenda);
        for ((at, tiebreak, _), happening) in planned.items {
            if at >= not_before {
                agenda.push(at, tiebreak, happening);
            }
        }
    }

    /// A message reached a customer: maybe they answer, after a while.
    pub fn delivered(&self, contact: u32, channel: Channel, key: &str, now: Timestamp) {
        let b = &self.behaviour;
        let seed = sop_engine::stable_hash(&[&self.seed.to_string(), key, &contact.to_string()]);
        let mut rng = Rng::new(seed);
        if !rng.chance(b.reply_probability) {
            return;
        }
        // Exponential delay with the configured mean, at least a minute.
        let minutes = -b.reply_delay_minutes * (1.0 - rng.unit()).ln();
        let delay = TimeDelta::seconds((minutes * 60.0).clamp(60.0, 30.0 * 86_400.0) as i64);
        let text = if rng.chance(b.opt_out_share) {
            "TD".to_string()
        } else {
            self.pick_text(&mut rng, &SMALL_TALK)
        };
        lock(&self.agenda).push(
            now + delay,
            seed,
            Happening::Message {
                contact,
                channel,
                text,
            },
        );
    }

    fn pick_text(&self, rng: &mut Rng, fallback: &[&str]) -> String {
        if !self.keywords.is_empty() && rng.chance(self.behaviour.keyword_share) {
            self.keywords[rng.below(self.keywords.len() as u64) as usize].clone()
        } else {
            fallback[rng.below(fallback.len() as u64) as usize].to_string()
        }
    }
}

/// A time between 08:00 and 23:00 local on the day starting at `day_start`.
fn daytime(rng: &mut Rng, day_start: Timestamp) -> Timestamp {
    day_start + TimeDelta::seconds((8 * 3_600 + rng.below(15 * 3_600)) as i64)
}

/// The start of the local day containing `at`.
pub(crate) fn local_day_start(at: Timestamp) -> Timestamp {
    let local = at + TimeDelta::hours(LOCAL_OFFSET_HOURS);
    let since_midnight = i64::from(local.num_seconds_from_midnight());
    at - TimeDelta::seconds(since_midnight) - TimeDelta::nanoseconds(i64::from(local.nanosecond()))
}

/// A happening as the platform event the daemon's ingress would hand the runtime:
/// (plugin, event). `None` when it no longer applies (a message from a former contact).
pub(crate) fn to_event(
    happening: &Happening,
    at: Timestamp,
    platform: &mut Platform,
    customers: &Customers,
) -> Option<(&'static str, Event)> {
    let mut traffic = lock(&customers.traffic);
    let at_ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    match happening {
        Happening::NewContact { owner, channel } => {
            let gender = (at_ms % 3) as u8;
            let index = platform.world.add_contact(*owner, *channel, at_ms, gender);
            let code = format!("wc-{index}-{at_ms}");
            platform.welcome_codes.insert(code.clone(), (index, at));
            traffic.new_contacts += 1;
            let state = if *channel == sop_emulator::world::NO_CHANNEL {
                String::new()
            } else {
                ids::channel_state(*channel)
            };
            Some((
                "wecom",
                Event {
                    kind: "wecom.contact_added".into(),
                    dedupe_id: format!("add-{index}"),
                    occurred_at: at,
                    contact: Some(ids::contact_id(index)),
                    staff: Some(ids::staff_id(*owner)),
                    group: None,
                    attributes: json!({"state": state, "welcome_code": code}),
                },
            ))
        }
        Happening::Message {
            contact,
            channel,
            text,
        } => {
            let record = platform.world.contact(*contact)?;
            if !record.is_friend() {
                return None;
            }
            let owner = record.owner;
            traffic.messages += 1;
            if text == "TD" {
                traffic.opt_out_keywords += 1;
            }
            let id = ids::contact_id(*contact);
            let dedupe = format!("msg-{contact}-{at_ms}");
            match channel {
                Channel::Wecom => Some((
                    "wecom",
                    Event {
                        kind: "wecom.message_received".into(),
                        dedupe_id: dedupe.clone(),
                        occurred_at: at,
                        contact: Some(id),
                        staff: Some(ids::staff_id(owner)),
                        group: None,
                        attributes: json!({"text": text, "msg_id": dedupe, "msg_type": "text"}),
                    },
                )),
                Channel::Douyin => {
                    // The user's message opens (or renews) the reply window.
                    platform.douyin.insert(*contact, (at, 0));
                    Some((
                        "douyin",
                        Event {
                            kind: "douyin.message_received".into(),
                            dedupe_id: dedupe,
                            occurred_at: at,
                            contact: Some(id),
                            staff: None,
                            group: None,
                            attributes: json!({
                                "text": text,
                                "conversation_id": format!("conv-{contact}"),
                                "event": "im_receive_msg",
                            }),
                        },
                    ))
                }
            }
        }
        Happening::Order {
            contact,
            amount_cents,
        } => {
            traffic.orders += 1;
            let id = ids::contact_id(*contact);
            Some((
                "shop",
                Event {
                    kind: "shop.order_paid".into(),
                    dedupe_id: format!("order-{contact}-{at_ms}"),
                    occurred_at: at,
                    contact: Some(id.clone()),
                    staff: None,
                    group: None,
                    attributes: json!({
                        "amount_cents": amount_cents,
                        "member_id": id,
                        "order_id": format!("o{contact}-{at_ms}"),
                    }),
                },
            ))
        }
        Happening::JoinGroup { contact, group } => {
            let joined_s = u32::try_from(at.timestamp()).unwrap_or(u32::MAX);
            let record = platform.world.groups.get_mut(*group as usize)?;
            if record.dismissed || record.members.iter().any(|(m, _)| m == contact) {
                return None;
            }
            record.members.push((*contact, joined_s));
            traffic.group_joins += 1;
            let chat_id = ids::chat_id(*group);
            Some((
                "wecom",
                Event {
                    kind: "wecom.group_member_joined".into(),
                    dedupe_id: format!("join-{chat_id}-{contact}-{at_ms}"),
                    occurred_at: at,
                    contact: Some(ids::contact_id(*contact)),
                    staff: None,
                    group: Some(chat_id),
                    // 3: joined through the group's QR code.
                    attributes: json!({"join_scene": 3}),
                },
            ))
        }
        Happening::DeleteStaff { contact, reported } => {
            let record = platform.world.contact_mut(*contact)?;
            if !record.is_friend() {
                return None;
            }
            record.flags &= !sop_emulator::world::FRIEND;
            let owner = record.owner;
            traffic.deletions += 1;
            reported.then(|| {
                (
                    "wecom",
                    Event {
                        kind: "wecom.staff_deleted_by_contact".into(),
                        dedupe_id: format!("del-{contact}"),
                        occurred_at: at,
                        contact: Some(ids::contact_id(*contact)),
                        staff: Some(ids::staff_id(owner)),
                        group: None,
                        attributes: json!({}),
                    },
                )
            })
        }
    }
}

/// Locks, ignoring poisoning (a panicked task's data is still consistent for counting).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_start_at_shanghai_midnight() {
        let at: Timestamp = "2026-01-05T20:30:00Z".parse().unwrap(); // 04:30 on the 6th
        let start = local_day_start(at);
        assert_eq!(start, "2026-01-05T16:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn agenda_hands_out_due_items_in_time_order() {
        let t: Timestamp = "2026-01-05T00:00:00Z".parse().unwrap();
        let mut agenda = Agenda::default();
        let order = |c| Happening::Order {
            contact: c,
            amount_cents: 1,
        };
        agenda.push(t + TimeDelta::minutes(5), 0, order(2));
        agenda.push(t, 9, order(1));
        agenda.push(t + TimeDelta::hours(1), 0, order(3));
        let due = agenda.take_due(t + TimeDelta::minutes(5));
        assert_eq!(
            due.into_iter().map(|(_, h)| h).collect::<Vec<_>>(),
            [order(1), order(2)]
        );
        assert_eq!(agenda.next_at(), Some(t + TimeDelta::hours(1)));
    }
}
