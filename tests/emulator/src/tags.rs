//! The corp's customer tag library (企业客户标签): tag groups holding named tags, as managed by
//! `externalcontact/get_corp_tag_list`, `add_corp_tag` and `del_corp_tag`, and used by
//! `mark_tag`. The seeded world starts with `emu_tag_{t}` in groups `emu_group_{t / 4}`;
//! tags and groups created later continue the same indices, so ids stay `etEmu…`.
//!
//! Deleted tags and groups keep their index (WeCom still reports them as `deleted` when asked
//! by id) but can no longer be put on a contact.

/// WeCom's cap on a tag's and a group's name, in characters.
pub const MAX_NAME_CHARS: usize = 30;

/// A tag group.
#[derive(Debug, Clone)]
pub struct TagGroup {
    /// Its name, unique among live groups.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at_s: u32,
    /// Deleted by an operator (or because its last tag was deleted).
    pub deleted: bool,
}

/// A tag.
#[derive(Debug, Clone)]
pub struct CorpTag {
    /// Index of its group.
    pub group: u32,
    /// Its name, unique among the live tags of its group.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at_s: u32,
    /// Deleted: `mark_tag` answers 40068 for it.
    pub deleted: bool,
}

/// Every tag group and tag of the corp, by index.
#[derive(Debug, Clone, Default)]
pub struct TagLibrary {
    /// Groups by index.
    pub groups: Vec<TagGroup>,
    /// Tags by index.
    pub tags: Vec<CorpTag>,
}

impl TagLibrary {
    /// The seeded library: `count` tags, four to a group.
    pub fn seeded(count: u32, now_s: u32) -> Self {
        let mut lib = Self::default();
        for t in 0..count {
            let g = lib.group_named_or_new(&format!("emu_group_{}", t / 4), now_s);
            lib.add_tag(g, &format!("emu_tag_{t}"), now_s);
        }
        lib
    }

    /// The live tag at `t`, if any.
    pub fn live_tag(&self, t: u32) -> Option<&CorpTag> {
        self.tags.get(t as usize).filter(|tag| !tag.deleted)
    }

    /// The group at `g` (live or deleted), if any.
    pub fn group(&self, g: u32) -> Option<&TagGroup> {
        self.groups.get(g as usize)
    }

    /// Number of live tags.
    pub fn live_count(&self) -> usize {
        self.tags.iter().filter(|t| !t.deleted).count()
    }

    /// The live group called `name`.
    pub fn live_group_named(&self, name: &str) -> Option<u32> {
        self.groups
            .iter()
            .position(|g| !g.deleted && g.name == name)
            .map(|g| g as u32)
    }

    /// The live group called `name`, created if there is none.
    pub fn group_named_or_new(&mut self, name: &str, now_s: u32) -> u32 {
        self.live_group_named(name).unwrap_or_else(|| {
            self.groups.push(TagGroup {
                name: name.to_owned(),
                created_at_s: now_s,
                deleted: false,
            });
            (self.groups.len() - 1) as u32
        })
    }

    /// The live tag called `name` in group `g`.
    pub fn live_tag_named(&self, g: u32, name: &str) -> Option<u32> {
        self.tags
            .iter()
            .position(|t| !t.deleted && t.group == g && t.name == name)
            .map(|t| t as u32)
    }

    /// Adds tag `name` to group `g` (the caller checked the name is free); its index.
    pub fn add_tag(&mut self, g: u32, name: &str, now_s: u32) -> u32 {
        self.tags.push(CorpTag {
            group: g,
            name: name.to_owned(),
            created_at_s: now_s,
            deleted: false,
        });
        (self.tags.len() - 1) as u32
    }

    /// Live tags of group `g`.
    pub fn live_tags_of(&self, g: u32) -> impl Iterator<Item = (u32, &CorpTag)> {
        self.tags
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.group == g && !t.deleted)
            .map(|(i, t)| (i as u32, t))
    }

    /// Deletes tag `t`; a group left without live tags is deleted with it (WeCom keeps no
    /// empty groups).
    pub fn delete_tag(&mut self, t: u32) {
        let Some(tag) = self.tags.get_mut(t as usize) else {
            return;
        };
        tag.deleted = true;
        let g = tag.group;
        if self.live_tags_of(g).next().is_none()
            && let Some(group) = self.groups.get_mut(g as usize)
        {
            group.deleted = true;
        }
    }

    /// Deletes group `g` and every tag in it.
    pub fn delete_group(&mut self, g: u32) {
        if let Some(group) = self.groups.get_mut(g as usize) {
            group.deleted = true;
        }
        for tag in self.tags.iter_mut().filter(|t| t.group == g) {
            tag.deleted = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_tags_come_four_to_a_group() {
        let lib = TagLibrary::seeded(9, 100);
        assert_eq!(lib.groups.len(), 3);
        assert_eq!(lib.live_count(), 9);
        assert_eq!(lib.live_tag(5).unwrap().name, "emu_tag_5");
        assert_eq!(lib.live_tag(5).unwrap().group, 1);
        assert_eq!(lib.live_group_named("emu_group_2"), Some(2));
    }

    #[test]
    fn deleting_the_last_tag_deletes_the_group() {
        let mut lib = TagLibrary::seeded(0, 0);
        let g = lib.group_named_or_new("sop", 0);
        let a = lib.add_tag(g, "a", 0);
        let b = lib.add_tag(g, "b", 0);
        lib.delete_tag(a);
        assert!(lib.live_tag(a).is_none());
        assert!(!lib.groups[g as usize].deleted);
        lib.delete_tag(b);
        assert!(lib.groups[g as usize].deleted);
        assert_eq!(lib.live_group_named("sop"), None);
        let again = lib.group_named_or_new("sop", 1);
        assert_ne!(again, g, "a new group, with a new id");
        assert_eq!(lib.live_tag_named(again, "a"), None);
    }
}
