//! The population: staff, external contacts, customer groups and tags, generated from a seed.
//!
//! Contacts are compact (ids are derived from their index, rarely used fields live behind a
//! `Box`) so a million of them fit in a few tens of megabytes.

use crate::config::WorldConfig;
use crate::rng::Rng;
use crate::tags::TagLibrary;

/// Contact flag: the customer is a friend of their owner.
pub const FRIEND: u8 = 1;
/// Contact flag: the customer no longer produces traffic.
pub const SILENT: u8 = 2;
/// No channel code.
pub const NO_CHANNEL: u16 = u16::MAX;

/// One external contact and their relationship with one staff member.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Staff index of the owner (the `follow_user`).
    pub owner: u32,
    /// When the friendship started, Unix seconds.
    pub added_at_s: u32,
    /// Channel the contact came through, or [`NO_CHANNEL`].
    pub channel: u16,
    /// [`FRIEND`], [`SILENT`].
    pub flags: u8,
    /// 0 unknown, 1 male, 2 female.
    pub gender: u8,
    /// Mass-send accounting: the limit period of `mass_count`.
    pub mass_period: u32,
    /// Mass messages received in `mass_period`.
    pub mass_count: u16,
    /// Remark, tags and the like; most contacts have none.
    pub extra: Option<Box<ContactExtra>>,
}

impl Contact {
    /// Whether the owner can still message this contact.
    pub fn is_friend(&self) -> bool {
        self.flags & FRIEND != 0
    }
}

/// Fields set by `remark` and `mark_tag`.
#[derive(Debug, Clone, Default)]
pub struct ContactExtra {
    /// Staff remark (≤ 20 chars).
    pub remark: String,
    /// Staff description (≤ 150 chars).
    pub description: String,
    /// Remark company.
    pub remark_company: String,
    /// Remark phone numbers.
    pub remark_mobiles: Vec<String>,
    /// Corp tag indices.
    pub tags: Vec<u32>,
}

/// A customer group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Staff index of the owner.
    pub owner: u32,
    /// Creation time, Unix seconds.
    pub created_at_s: u32,
    /// Members: (contact index, join time in Unix seconds).
    pub members: Vec<(u32, u32)>,
    /// Dismissed groups keep their id but take no messages.
    pub dismissed: bool,
    /// Mass-send accounting period.
    pub mass_period: u32,
    /// Mass messages received in `mass_period`.
    pub mass_count: u16,
}

/// The whole population.
#[derive(Debug, Clone)]
pub struct World {
    /// Number of staff members.
    pub staff: u32,
    /// Contacts by index.
    pub contacts: Vec<Contact>,
    /// Groups by index.
    pub groups: Vec<Group>,
    /// The corp's tag library.
    pub tags: TagLibrary,
    /// Number of channel codes.
    pub channels: u16,
}

impl World {
    /// Build the population for `seed` at `now_ms`.
    pub fn generate(cfg: &WorldConfig, seed: u64, now_ms: u64) -> Self {
        let mut rng = Rng::new(seed);
        let now_s = u32::try_from(now_ms / 1_000).unwrap_or(u32::MAX);
        let staff = cfg.staff.max(1);
        let channels = u16::try_from(cfg.channels.min(u32::from(u16::MAX - 1))).unwrap_or(0);
        let half_year = 180 * 86_400;
        let contacts = (0..cfg.contacts)
            .map(|_| Contact {
                owner: rng.below(u64::from(staff)) as u32,
                added_at_s: now_s.saturating_sub(rng.below(half_year) as u32),
                channel: if channels == 0 {
                    NO_CHANNEL
                } else {
                    rng.below(u64::from(channels)) as u16
                },
                flags: FRIEND,
                gender: rng.below(3) as u8,
                mass_period: 0,
                mass_count: 0,
                extra: None,
            })
            .collect::<Vec<_>>();
        let groups = (0..cfg.groups)
            .map(|_| {
                let created_at_s = now_s.saturating_sub(rng.below(half_year) as u32);
                let mut members: Vec<(u32, u32)> = Vec::new();
                if !contacts.is_empty() {
                    let want = cfg.group_size.min(cfg.contacts) as usize;
                    let mut tries = 0;
                    while members.len() < want && tries < want * 4 {
                        tries += 1;
                        let c = rng.below(contacts.len() as u64) as u32;
                        if !members.iter().any(|&(m, _)| m == c) {
                            members.push((c, created_at_s));
                        }
                    }
                }
                Group {
                    owner: rng.below(u64::from(staff)) as u32,
                    created_at_s,
                    members,
                    dismissed: false,
                    mass_period: 0,
                    mass_count: 0,
                }
            })
            .collect();
        Self {
            staff,
            contacts,
            groups,
            tags: TagLibrary::seeded(cfg.tags, now_s),
            channels,
        }
    }

    /// Add a new contact (a friend of `owner`) and return its index.
    pub fn add_contact(&mut self, owner: u32, channel: u16, now_ms: u64, gender: u8) -> u32 {
        let idx = self.contacts.len() as u32;
        self.contacts.push(Contact {
            owner,
            added_at_s: u32::try_from(now_ms / 1_000).unwrap_or(u32::MAX),
            channel,
            flags: FRIEND,
            gender,
            mass_period: 0,
            mass_count: 0,
            extra: None,
        });
        idx
    }

    /// The contact at `idx`, if any.
    pub fn contact(&self, idx: u32) -> Option<&Contact> {
        self.contacts.get(idx as usize)
    }

    /// Mutable contact at `idx`, if any.
    pub fn contact_mut(&mut self, idx: u32) -> Option<&mut Contact> {
        self.contacts.get_mut(idx as usize)
    }

    /// Whether `staff` is a known staff index.
    pub fn has_staff(&self, staff: u32) -> bool {
        staff < self.staff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(contacts: u32) -> WorldConfig {
        WorldConfig {
            contacts,
            ..WorldConfig::default()
        }
    }

    #[test]
    fn same_seed_same_world() {
        let a = World::generate(&cfg(500), 9, 1_700_000_000_000);
        let b = World::generate(&cfg(500), 9, 1_700_000_000_000);
        let c = World::generate(&cfg(500), 10, 1_700_000_000_000);
        let owners = |w: &World| w.contacts.iter().map(|c| c.owner).collect::<Vec<_>>();
        assert_eq!(owners(&a), owners(&b));
        assert_ne!(owners(&a), owners(&c));
        assert_eq!(a.groups[0].members, b.groups[0].members);
    }

    #[test]
    fn groups_have_distinct_members() {
        let w = World::generate(&cfg(300), 1, 1_700_000_000_000);
        for g in &w.groups {
            let mut ids: Vec<u32> = g.members.iter().map(|m| m.0).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), g.members.len());
            assert_eq!(g.members.len(), 50);
        }
    }

    #[test]
    fn a_million_contacts_stay_compact() {
        assert!(std::mem::size_of::<Contact>() <= 32);
        let w = World::generate(&cfg(1_000_000), 3, 1_700_000_000_000);
        assert_eq!(w.contacts.len(), 1_000_000);
    }

    #[test]
    fn empty_world_is_fine() {
        let w = World::generate(&cfg(0), 1, 0);
        assert!(w.contacts.is_empty());
        assert!(w.groups.iter().all(|g| g.members.is_empty()));
    }
}
