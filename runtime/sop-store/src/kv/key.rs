//! Order-preserving key encoding: byte order of encoded keys equals the order of the
//! components, so range scans ("due before T", "runs of playbook P in state S") are
//! contiguous key ranges.
//!
//! - strings: bytes with `00` escaped as `00 ff`, terminated by `00 01` (so a string sorts
//!   before its extensions and a complete component is a true prefix);
//! - unsigned integers: big-endian; signed (instants in ms): big-endian with the sign bit
//!   flipped.

use sop_clock::Timestamp;

use crate::contact::ContactKey;
use crate::run::Subject;

#[derive(Debug, Clone)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    pub(crate) fn table(table: u8) -> Self {
        Key(vec![table])
    }

    pub(crate) fn str(mut self, s: &str) -> Self {
        for &b in s.as_bytes() {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xff);
            }
        }
        self.0.extend_from_slice(&[0, 1]);
        self
    }

    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i64(self, v: i64) -> Self {
        self.u64((v as u64) ^ (1 << 63))
    }

    pub(crate) fn at(self, t: Timestamp) -> Self {
        self.i64(t.timestamp_millis())
    }

    /// `None` sorts before every instant.
    pub(crate) fn opt_at(self, t: Option<Timestamp>) -> Self {
        self.i64(t.map_or(i64::MIN, |t| t.timestamp_millis()))
    }

    pub(crate) fn contact(self, c: &ContactKey) -> Self {
        self.str(&c.tenant).str(&c.id)
    }

    pub(crate) fn subject(self, s: &Subject) -> Self {
        match s {
            Subject::Contact(c) => self.u8(0).contact(c),
            Subject::Group { tenant, id } => self.u8(1).str(tenant).str(id),
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The first key after every key that starts with this one.
    pub(crate) fn prefix_end(&self) -> Vec<u8> {
        prefix_end(&self.0)
    }
}

/// The smallest byte string greater than every string starting with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: no upper bound within byte strings of this length; tables never are.
    vec![0xff; prefix.len() + 1]
}

/// The smallest key strictly after `key`.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn string_pairs_keep_their_order(a in any::<(String, String)>(), b in any::<(String, String)>()) {
            let ka = Key::table(1).str(&a.0).str(&a.1).into_bytes();
            let kb = Key::table(1).str(&b.0).str(&b.1).into_bytes();
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
        }

        #[test]
        fn strings_with_nul_keep_their_order(a in "[\\x00a]{0,6}", b in "[\\x00a]{0,6}", x in any::<u8>(), y in any::<u8>()) {
            let ka = Key::table(1).str(&a).u8(x).into_bytes();
            let kb = Key::table(1).str(&b).u8(y).into_bytes();
            prop_assert_eq!((&a, x).cmp(&(&b, y)), ka.cmp(&kb));
        }

        #[test]
        fn signed_integers_keep_their_order(a in any::<i64>(), b in any::<i64>()) {
            let ka = Key::table(1).i64(a).into_bytes();
            let kb = Key::table(1).i64(b).into_bytes();
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
        }

        #[test]
        fn prefix_end_bounds_every_extension(p in proptest::collection::vec(any::<u8>(), 1..6), rest in proptest::collection::vec(any::<u8>(), 0..6)) {
            let mut k = p.clone();
            k.extend_from_slice(&rest);
            prop_assert!(k < prefix_end(&p));
        }
    }

    #[test]
    fn absent_instant_sorts_first() {
        let none = Key::table(1).opt_at(None).into_bytes();
        let early = Key::table(1)
            .opt_at(Timestamp::from_timestamp_millis(-1_000_000_000_000))
            .into_bytes();
        assert!(none < early);
    }
}
