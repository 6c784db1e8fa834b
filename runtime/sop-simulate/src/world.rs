//! The synthetic world: the emulator's deterministic population, loaded into the store as sop
//! knows it (contacts, groups), plus what only the platform knows (who deleted their staff
//! member, receive-limit counters, Douyin reply windows, points balances).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};
use sop_clock::{TimeDelta, Timestamp};
use sop_emulator::config::WorldConfig;
use sop_emulator::ids;
use sop_emulator::rng::Rng;
use sop_emulator::world::World;
use sop_store::{Batch, Contact, ContactKey, FriendStatus, Group, GroupKey, Op, Store};

use crate::options::{Behaviour, SimulateError, SimulateOptions};

/// Zones of the contacts who live abroad (quiet hours follow the recipient).
const ABROAD: [&str; 3] = ["Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo"];
const PRODUCTS: [&str; 5] = ["保湿面霜", "防晒喷雾", "洁面乳", "精华液", "面膜"];
/// Contacts written to the store per commit while loading.
const LOAD_BATCH: usize = 500;

/// The platform's side of the world.
#[derive(Debug)]
pub(crate) struct Platform {
    pub world: World,
    /// Douyin conversations: contact → (last user message, replies used in that window).
    pub douyin: HashMap<u32, (Timestamp, u32)>,
    /// Shop points per contact.
    pub points: HashMap<u32, u64>,
    /// Accepted mass-send tasks by handle: recipients (contact or group indices), group task.
    pub tasks: HashMap<String, (Vec<u32>, bool)>,
    /// Welcome codes handed out with `contact_added`: code → (contact, issued at).
    pub welcome_codes: HashMap<String, (u32, Timestamp)>,
}

impl Platform {
    /// Generates the population for the seed at the start time.
    pub fn generate(options: &SimulateOptions) -> Platform {
        let config = WorldConfig {
            staff: options.staff.max(1),
            contacts: options.contacts,
            groups: options.groups,
            group_size: 50.min(options.contacts.max(1)),
            channels: 5,
            tags: 12,
        };
        let start_ms = u64::try_from(options.start.timestamp_millis()).unwrap_or(0);
        Platform {
            world: World::generate(&config, options.seed, start_ms),
            douyin: HashMap::new(),
            points: HashMap::new(),
            tasks: HashMap::new(),
            welcome_codes: HashMap::new(),
        }
    }
}

/// Writes the population into the store as sop would know it after a while in production:
/// owners, tags, attributes (name, past orders, ids), channel state, time zone, last
/// interaction.
pub(crate) fn load(
    store: &dyn Store,
    platform: &Platform,
    options: &SimulateOptions,
    tenant: &str,
) -> Result<(), SimulateError> {
    let behaviour = &options.behaviour;
    // Attributes come from their own stream so the world generator's sequence stays the
    // emulator's.
    let mut rng = Rng::new(options.seed ^ 0x51_4D_55_4C);
    let now = options.start;
    let mut batch = Batch::new();
    for (index, record) in platform.world.contacts.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let contact = contact_record(
            index,
            record,
            &mut rng,
            behaviour,
            tenant,
            &options.account,
            now,
        );
        batch.push(Op::PutContact(contact));
        if batch.ops.len() >= LOAD_BATCH {
            store.commit(std::mem::take(&mut batch))?;
        }
    }
    for (index, group) in platform.world.groups.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let mut record = Group::new(
            GroupKey::new(tenant, ids::chat_id(index)),
            &options.account,
            now,
        );
        record.name = format!("粉丝福利群 {}", index + 1);
        record.owner = Some(ids::staff_id(group.owner));
        if index % 2 == 0 {
            record.tags.insert("nurture".into());
        }
        record.attributes.insert(
            "materials".into(),
            json!([
                "今日好物推荐：点击小程序查看",
                "会员日福利：满 199 减 30",
                "新品试用招募中"
            ]),
        );
        // Live on Tuesdays and Thursdays (chrono's weekday numbers from Monday = 1).
        record.attributes.insert("live_days".into(), json!([2, 4]));
        record.member_count = u32::try_from(group.members.len()).unwrap_or(u32::MAX);
        record.created_at = from_unix_s(group.created_at_s);
        batch.push(Op::PutGroup(record));
    }
    if !batch.ops.is_empty() {
        store.commit(batch)?;
    }
    store.flush()?;
    Ok(())
}

fn contact_record(
    index: u32,
    record: &sop_emulator::world::Contact,
    rng: &mut Rng,
    behaviour: &Behaviour,
    tenant: &str,
    account: &str,
    now: Timestamp,
) -> Contact {
    let id = ids::contact_id(index);
    let mut contact = Contact::new(ContactKey::new(tenant, &id), from_unix_s(record.added_at_s));
    contact.updated_at = now;
    contact.owner = Some(ids::staff_id(record.owner));
    contact.friend = if record.is_friend() {
        FriendStatus::Friend
    } else {
        FriendStatus::DeletedByContact
    };
    contact
        .platform_ids
        .insert(format!("wecom:{account}"), id.clone());
    contact
        .platform_ids
        .insert(format!("douyin:{account}"), ids::open_id(index));
    contact
        .attributes
        .insert("name".into(), Value::String(ids::contact_name(index)));
    contact
        .attributes
        .insert("wecom_id".into(), Value::String(id.clone()));
    contact
        .attributes
        .insert("douyin_open_id".into(), Value::String(ids::open_id(index)));
    if rng.chance(behaviour.buyers_share) {
        let orders = 1 + rng.below(5);
        contact.attributes.insert("orders".into(), json!(orders));
        let product = PRODUCTS[rng.below(PRODUCTS.len() as u64) as usize];
        contact
            .attributes
            .insert("last_product".into(), Value::String(product.into()));
    }
    let mut tags = BTreeSet::new();
    if record.channel != sop_emulator::world::NO_CHANNEL {
        tags.insert(format!("channel:{}", ids::channel_state(record.channel)));
    }
    if rng.chance(behaviour.live_fan_share) {
        tags.insert("live_fan".into());
    }
    contact.tags = tags;
    if rng.chance(behaviour.abroad_share) {
        let zone = ABROAD[rng.below(ABROAD.len() as u64) as usize];
        contact.time_zone = Some(zone.into());
    }
    // Last interaction somewhere between the friendship's start and now, within the spread.
    let added = from_unix_s(record.added_at_s);
    let spread = i64::from(behaviour.silence_spread_days.max(1)) * 86_400;
    let ago = i64::try_from(rng.below(u64::try_from(spread).unwrap_or(1))).unwrap_or(0);
    let last = (now - TimeDelta::seconds(ago)).max(added);
    contact.last_interaction = Some(last);
    contact
}

/// Unix seconds as a timestamp.
pub(crate) fn from_unix_s(seconds: u32) -> Timestamp {
    chrono::DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or_default()
}

/// Contact index of a platform id (`wmEmu…` or `dyu-…`).
pub(crate) fn contact_index(id: &str) -> Option<u32> {
    ids::parse_contact(id).or_else(|| ids::parse_open_id(id))
}

/// Menu keywords the playbooks react to, taken cheaply from their sources: single-quoted
/// literals on lines that look at the text of a message (`event.attributes.text`).
pub(crate) fn keywords(sources: &[String]) -> Vec<String> {
    let mut found = BTreeMap::new();
    for source in sources {
        for line in source
            .lines()
            .filter(|l| l.contains("event.attributes.text"))
        {
            let mut rest = line;
            while let Some(open) = rest.find('\'') {
                let after = &rest[open + 1..];
                let Some(close) = after.find('\'') else {
                    break;
                };
                let word = &after[..close];
                if !word.trim().is_empty() && word.chars().count() <= 8 {
                    found.insert(word.to_string(), ());
                }
                rest = &after[close + 1..];
            }
        }
    }
    found.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_come_from_text_conditions() {
        let source = "  - id: menu\n    if: \"event.attributes.text | trim in ['1', '优惠券']\"\n    text: 'not this'\n";
        assert_eq!(keywords(&[source.into()]), ["1", "优惠券"]);
        assert!(keywords(&["steps: []".into()]).is_empty());
    }

    #[test]
    fn contact_ids_of_both_platforms_resolve() {
        assert_eq!(contact_index(&ids::contact_id(42)), Some(42));
        assert_eq!(contact_index(&ids::open_id(7)), Some(7));
        assert_eq!(contact_index("someone"), None);
    }
}
