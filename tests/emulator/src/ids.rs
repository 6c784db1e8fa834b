//! Platform-looking identifiers derived from compact indices, so the world stores numbers
//! and still answers with ids shaped like the real ones.

/// Staff `userid`.
pub fn staff_id(i: u32) -> String {
    format!("emu_staff_{i}")
}

/// Index of a staff `userid`.
pub fn parse_staff(id: &str) -> Option<u32> {
    id.strip_prefix("emu_staff_")?.parse().ok()
}

/// External contact `external_userid`.
pub fn contact_id(i: u32) -> String {
    format!("wmEmu{i:010}")
}

/// Index of an `external_userid`.
pub fn parse_contact(id: &str) -> Option<u32> {
    parse_fixed(id.strip_prefix("wmEmu")?, 10)
}

/// Customer group `chat_id`.
pub fn chat_id(i: u32) -> String {
    format!("wrEmu{i:08}")
}

/// Index of a `chat_id`.
pub fn parse_chat(id: &str) -> Option<u32> {
    parse_fixed(id.strip_prefix("wrEmu")?, 8)
}

/// Corp tag id.
pub fn tag_id(i: u32) -> String {
    format!("etEmu{i:06}")
}

/// Index of a corp tag id.
pub fn parse_tag(id: &str) -> Option<u32> {
    parse_fixed(id.strip_prefix("etEmu")?, 6)
}

/// Corp tag group id (a distinct prefix, so a group id never parses as a tag id).
pub fn tag_group_id(i: u32) -> String {
    format!("etEmuG{i:06}")
}

/// Index of a corp tag group id.
pub fn parse_tag_group(id: &str) -> Option<u32> {
    parse_fixed(id.strip_prefix("etEmuG")?, 6)
}

/// Douyin user `open_id` of contact `i`.
pub fn open_id(i: u32) -> String {
    format!("dyu-{i:010}")
}

/// Contact index of a Douyin `open_id`.
pub fn parse_open_id(id: &str) -> Option<u32> {
    parse_fixed(id.strip_prefix("dyu-")?, 10)
}

/// Channel code (`State`) of channel `i`.
pub fn channel_state(i: u16) -> String {
    format!("channel_{i}")
}

fn parse_fixed(digits: &str, width: usize) -> Option<u32> {
    if digits.len() != width || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: [&str; 16] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
];

/// A deterministic display name for contact `i`.
pub fn contact_name(i: u32) -> String {
    let h = mix(u64::from(i));
    format!(
        "{}{}{}",
        SURNAMES[(h & 15) as usize],
        GIVEN[((h >> 4) & 15) as usize],
        GIVEN[((h >> 8) & 15) as usize]
    )
}

/// A deterministic `unionid` for contact `i`.
pub fn union_id(i: u32) -> String {
    format!("oEmu{:016x}", mix(u64::from(i) ^ 0x5555))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for i in [0, 1, 42, 999_999, u32::MAX] {
            assert_eq!(parse_contact(&contact_id(i)), Some(i));
            assert_eq!(parse_staff(&staff_id(i)), Some(i));
            assert_eq!(parse_open_id(&open_id(i)), Some(i));
        }
        assert_eq!(parse_chat(&chat_id(7)), Some(7));
        assert_eq!(parse_tag(&tag_id(3)), Some(3));
        assert_eq!(parse_tag_group(&tag_group_id(3)), Some(3));
        assert_eq!(parse_tag(&tag_group_id(3)), None);
        assert_eq!(parse_tag_group(&tag_id(3)), None);
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        assert_eq!(parse_contact("wmEmu12"), None);
        assert_eq!(parse_contact("wmEmu00000000-1"), None);
        assert_eq!(parse_contact("wm_other"), None);
        assert_eq!(parse_staff("emu_staff_x"), None);
    }

    #[test]
    fn names_are_deterministic() {
        assert_eq!(contact_name(5), contact_name(5));
        assert_eq!(contact_name(5).chars().count(), 3);
    }
}
