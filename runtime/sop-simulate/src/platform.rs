//! The platforms' answers, modelled from the world instead of calling the wasm plugins: a
//! send to a friend is done (and may get a reply), a send to a customer who deleted their
//! staff member gets the platform's permanent error, WeCom mass sends are accepted and
//! confirmed a minute later within the customer's receive limit, Douyin replies need an open
//! reply window (24 h after the user's message, 5 replies).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use sop_clock::{Clock, TimeDelta, Timestamp, VirtualClock};
use sop_dsl::Catalog;
use sop_emulator::config::{ReceiveLimit, WecomConfig};
// The emulator's own receive-limit rule, so the simulation refuses what the emulator would.
use sop_emulator::ids;
use sop_emulator::wecom::take_quota;
use sop_engine::{ActionResult, OutcomeStatus, PluginError};
use sop_runtime::{BoxFuture, PluginCall, Plugins};

use crate::behaviour::{Channel, Customers, lock};
use crate::world::{Platform, contact_index};

/// When staff confirm a mass-send task after it was created (the runtime checks then).
const CONFIRM_AFTER_MS: u64 = 60_000;
/// Douyin reply window and replies allowed in it (the emulator's defaults).
const REPLY_WINDOW: TimeDelta = TimeDelta::hours(24);
const REPLIES_PER_WINDOW: u32 = 5;
/// WeCom welcome codes live 20 s.
const WELCOME_CODE_LIFE: TimeDelta = TimeDelta::seconds(20);

/// The modelled plugin host.
#[derive(Debug)]
pub(crate) struct SimPlugins {
    catalog: Catalog,
    clock: VirtualClock,
    platform: Arc<std::sync::Mutex<Platform>>,
    customers: Arc<Customers>,
    customer_limit: ReceiveLimit,
    group_limit: ReceiveLimit,
    /// Calls and checks answered: the driver's measure of progress.
    pub answered: AtomicU64,
}

impl SimPlugins {
    pub fn new(
        catalog: Catalog,
        clock: VirtualClock,
        platform: Arc<std::sync::Mutex<Platform>>,
        customers: Arc<Customers>,
    ) -> SimPlugins {
        let wecom = WecomConfig::default();
        SimPlugins {
            catalog,
            clock,
            platform,
            customers,
            customer_limit: wecom.customer_receive_limit,
            group_limit: wecom.group_receive_limit,
            answered: AtomicU64::new(0),
        }
    }

    fn answer(&self, call: &PluginCall) -> ActionResult {
        let now = self.clock.now();
        match (call.plugin.as_str(), call.action.as_str()) {
            ("wecom", "send_welcome") => self.send_welcome(call, now),
            ("wecom", "mass_send_contacts") => self.mass_send(call, "contacts", false),
            ("wecom", "mass_send_groups") => self.mass_send(call, "groups", true),
            ("wecom", "notify_staff") => done(json!({"errcode": 0, "invaliduser": ""})),
            ("wecom", "mark_tag" | "remark") => self.contact_edit(call),
            ("wecom", "get_contact") => self.get_contact(call),
            ("wecom", "list_groups" | "get_group") => done(json!({"errcode": 0})),
            ("douyin", "reply" | "send_proactive") => self.douyin_send(call, now),
            ("douyin", "send_group") => done(json!({"msg_id": format!("dm-{}", call.key)})),
            ("douyin", "list_authorized") => done(json!({"list": []})),
            ("shop", "credit_points") => self.credit_points(call),
            ("shop", "get_balance") => {
                let balance = self.member(call).map_or(0, |i| {
                    lock(&self.platform).points.get(&i).copied().unwrap_or(0)
                });
                done(json!({"balance": balance}))
            }
            (plugin, action) => ActionResult::Error {
                error: PluginError::InvalidInput {
                    message: format!("{plugin}.{action} is not modelled by the simulator"),
                },
            },
        }
    }

    fn send_welcome(&self, call: &PluginCall, now: Timestamp) -> ActionResult {
        let code = text(&call.input, "welcome_code");
        let issued = lock(&self.platform).welcome_codes.remove(code);
        match issued {
            Some((contact, at)) if now - at <= WELCOME_CODE_LIFE => {
                self.customers
                    .delivered(contact, Channel::Wecom, &call.key, now);
                done(json!({"errcode": 0, "errmsg": "ok"}))
            }
            Some(_) => permanent("41051: welcome code expired (20 s)"),
            None => permanent("41051: invalid welcome code"),
        }
    }

    fn mass_send(&self, call: &PluginCall, field: &str, groups: bool) -> ActionResult {
        let targets: Vec<u32> = call
            .input
            .get(field)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|id| {
                        if groups {
                            ids::parse_chat(id)
                        } else {
                            contact_index(id)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        if targets.is_empty() {
            return ActionResult::Error {
                error: PluginError::InvalidInput {
                    message: format!("40058: no valid {field}"),
                },
            };
        }
        let handle = format!("msg{}", sop_engine::stable_hash(&[&call.key]));
        lock(&self.platform)
            .tasks
            .insert(handle.clone(), (targets, groups));
        ActionResult::Accepted {
            handle: handle.clone(),
            check_after_ms: CONFIRM_AFTER_MS,
            output: json!({"msgid": handle}),
        }
    }

    /// The task's send result once staff confirmed it: per recipient sent, not a friend
    /// (status 2) or over the receive limit (status 3).
    fn task_result(&self, call: &PluginCall, handle: &str) -> Option<OutcomeStatus> {
        let now = self.clock.now();
        let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let mut platform = lock(&self.platform);
        let (targets, groups) = platform.tasks.remove(handle)?;
        let (mut sent, mut not_friend, mut over_limit) = (Vec::new(), 0u32, 0u32);
        for target in targets {
            let quota = if groups {
                platform
                    .world
                    .groups
                    .get_mut(target as usize)
                    .filter(|g| !g.dismissed)
                    .map(|g| {
                        take_quota(
                            self.group_limit,
                            &mut g.mass_period,
                            &mut g.mass_count,
                            now_ms,
                        )
                    })
            } else {
                platform
                    .world
                    .contacts
                    .get_mut(target as usize)
                    .filter(|c| c.is_friend())
                    .map(|c| {
                        take_quota(
                            self.customer_limit,
                            &mut c.mass_period,
                            &mut c.mass_count,
                            now_ms,
                        )
                    })
            };
            match quota {
                None => not_friend += 1,
                Some(false) => over_limit += 1,
                Some(true) => sent.push(target),
            }
        }
        drop(platform);
        if !groups {
            for &contact in &sent {
                self.customers
                    .delivered(contact, Channel::Wecom, &call.key, now);
            }
        }
        Some(if sent.is_empty() {
            let reason = if not_friend > 0 {
                "status 2: the customer is no longer a friend of the sender"
            } else {
                "status 3: the customer reached the receive limit"
            };
            OutcomeStatus::Failed {
                reason: reason.into(),
            }
        } else {
            OutcomeStatus::Done {
                output: json!({"sent": sent.len(), "not_friend": not_friend, "over_limit": over_limit}),
            }
        })
    }

    fn contact_edit(&self, call: &PluginCall) -> ActionResult {
        let id = text(&call.input, "external_userid");
        let friend = contact_index(id)
            .and_then(|i| lock(&self.platform).world.contact(i).map(|c| c.is_friend()));
        match friend {
            Some(false) => permanent("84061: not an external contact of the staff member"),
            _ => done(json!({"errcode": 0, "errmsg": "ok"})),
        }
    }

    fn get_contact(&self, call: &PluginCall) -> ActionResult {
        let id = text(&call.input, "external_userid");
        match contact_index(id) {
            Some(i) => done(
                json!({"external_contact": {"external_userid": id, "name": ids::contact_name(i)}}),
            ),
            None => permanent("84061: not an external contact"),
        }
    }

    fn douyin_send(&self, call: &PluginCall, now: Timestamp) -> ActionResult {
        let Some(contact) = contact_index(text(&call.input, "open_id")) else {
            return ActionResult::Error {
                error: PluginError::InvalidInput {
                    message: "2100005: bad open_id".into(),
                },
            };
        };
        let allowed = {
            let mut platform = lock(&self.platform);
            match platform.douyin.get_mut(&contact) {
                Some((opened, used))
                    if now - *opened <= REPLY_WINDOW && *used < REPLIES_PER_WINDOW =>
                {
                    *used += 1;
                    true
                }
                _ => false,
            }
        };
        if !allowed {
            return permanent("28003017: quota used up (reply window closed or exhausted)");
        }
        self.customers
            .delivered(contact, Channel::Douyin, &call.key, now);
        done(json!({"data": {"msg_id": format!("dm-{}", call.key)}}))
    }

    fn credit_points(&self, call: &PluginCall) -> ActionResult {
        let points = match call.input.get("points") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
            _ => 0,
        };
        let Some(member) = self.member(call) else {
            return permanent("member not found");
        };
        let mut platform = lock(&self.platform);
        let balance = platform.points.entry(member).or_default();
        *balance += points;
        done(json!({"balance": *balance, "credited": points}))
    }

    fn member(&self, call: &PluginCall) -> Option<u32> {
        contact_index(text(&call.input, "member_id"))
    }
}

impl Plugins for SimPlugins {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn invoke<'a>(&'a self, call: &'a PluginCall) -> BoxFuture<'a, ActionResult> {
        let result = self.answer(call);
        self.answered.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { result })
    }

    fn check_outcome<'a>(
        &'a self,
        call: &'a PluginCall,
        handle: Option<&'a str>,
    ) -> BoxFuture<'a, Option<OutcomeStatus>> {
        // Without a handle (recovery after a crash) there is nothing to look up: the
        // simulation never crashes, so this only answers "cannot tell".
        let status = handle.and_then(|h| self.task_result(call, h));
        self.answered.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { status })
    }
}

fn text<'a>(input: &'a Value, field: &str) -> &'a str {
    input.get(field).and_then(Value::as_str).unwrap_or("")
}

fn done(output: Value) -> ActionResult {
    ActionResult::Done { output }
}

fn permanent(message: &str) -> ActionResult {
    ActionResult::Error {
        error: PluginError::Permanent {
            message: message.into(),
        },
    }
}
