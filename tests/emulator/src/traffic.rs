//! The traffic generator: at a chosen rate, customers add staff through channel codes, write
//! to the WeCom kf account and on Douyin, join and leave groups, place orders, delete staff and
//! go silent.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::app::App;
use crate::events::{Event, apply};
use crate::ids;
use crate::world::SILENT;

const TICK: Duration = Duration::from_millis(10);

/// Start the generator; it follows the rate set on the app (0 pauses it) and stops after
/// `traffic.max_events` events if that is set.
pub fn spawn(app: App) -> JoinHandle<()> {
    tokio::spawn(async move {
        let max = app.config().traffic.max_events;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut owed = 0.0_f64;
        let mut emitted = 0u64;
        loop {
            tick.tick().await;
            let rate = app.traffic_rate();
            if rate <= 0.0 {
                owed = 0.0;
                continue;
            }
            owed += rate * TICK.as_secs_f64();
            while owed >= 1.0 {
                owed -= 1.0;
                if let Some(ev) = pick(&app) {
                    // Random picks can collide with the state (already a member, ...); skip those.
                    let _ = apply(&app, ev);
                }
                emitted += 1;
                if max > 0 && emitted >= max {
                    return;
                }
            }
        }
    })
}

/// What customers write to the kf account: the welcome story's menu keywords and small talk.
const REPLIES: [&str; 4] = ["1", "优惠券", "在吗", "还有券吗"];

/// Choose the next event from the seeded generator.
pub fn pick(app: &App) -> Option<Event> {
    let mut st = app.lock();
    let st = &mut *st;
    let n = st.world.contacts.len() as u64;
    let roll = st.rng.below(100);
    if roll < 30 || n == 0 {
        return Some(Event::AddContact {
            staff: None,
            channel: None,
            corp: None,
            callback_url: None,
        });
    }
    // An active customer: a few tries to skip silent ones.
    let mut c = None;
    for _ in 0..8 {
        let i = st.rng.below(n) as u32;
        if st.world.contacts[i as usize].flags & SILENT == 0 {
            c = Some(i);
            break;
        }
    }
    let c = c?;
    let groups = st.world.groups.len() as u64;
    let ev = match roll {
        30..=44 => Event::DouyinMessage {
            open_id: ids::open_id(c),
            text: format!("emu message {}", st.rng.below(1_000_000)),
        },
        45..=59 => {
            // Half the replies are menu keywords or small talk, half free text.
            let i = st.rng.below(REPLIES.len() as u64 * 2) as usize;
            let text = match REPLIES.get(i) {
                Some(t) => (*t).to_owned(),
                None => format!("emu reply {}", st.rng.below(1_000_000)),
            };
            Event::CustomerMessage {
                external_userid: ids::contact_id(c),
                text,
            }
        }
        60..=64 => Event::DouyinEnter {
            open_id: ids::open_id(c),
        },
        65..=69 => Event::DouyinAuthorize {
            open_id: ids::open_id(c),
        },
        70..=79 if groups > 0 => Event::JoinGroup {
            chat_id: ids::chat_id(st.rng.below(groups) as u32),
            external_userid: ids::contact_id(c),
        },
        80..=84 if groups > 0 => {
            let g = st.rng.below(groups) as usize;
            let members = &st.world.groups[g].members;
            if members.is_empty() {
                return None;
            }
            let m = members[st.rng.below(members.len() as u64) as usize].0;
            Event::LeaveGroup {
                chat_id: ids::chat_id(g as u32),
                external_userid: ids::contact_id(m),
            }
        }
        85..=89 => Event::Order {
            external_userid: ids::contact_id(c),
            amount_fen: 100 + st.rng.below(100_000),
        },
        90..=94 => Event::CustomerDeletesStaff {
            external_userid: ids::contact_id(c),
        },
        _ => Event::GoSilent {
            external_userid: ids::contact_id(c),
        },
    };
    Some(ev)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sop_clock::{DateTime, TimeDelta, VirtualClock};

    use super::*;
    use crate::config::Config;

    fn run(seed: u64, events: usize) -> (Vec<String>, usize) {
        let mut cfg = Config {
            seed,
            ..Config::default()
        };
        cfg.world.contacts = 500;
        let clock = VirtualClock::new(DateTime::from_timestamp_millis(1_709_604_000_000).unwrap());
        let app = App::new(cfg, Arc::new(clock.clone()), Some(clock.clone())).unwrap();
        let mut applied = 0;
        for _ in 0..events {
            clock.advance(TimeDelta::milliseconds(100));
            if let Some(ev) = pick(&app)
                && apply(&app, ev).is_ok()
            {
                applied += 1;
            }
        }
        let st = app.lock();
        let payloads = st.callbacks.all().map(|c| c.payload.clone()).collect();
        (payloads, applied)
    }

    #[test]
    fn same_seed_same_traffic() {
        let (a, applied) = run(7, 400);
        let (b, _) = run(7, 400);
        let (c, _) = run(8, 400);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(applied > 300, "most generated events apply: {applied}");
        assert!(a.iter().any(|p| p.contains("add_external_contact")));
        assert!(a.iter().any(|p| p.contains("im_receive_msg")));
        assert!(a.iter().any(|p| p.contains("kf_msg_or_event")));
    }
}
