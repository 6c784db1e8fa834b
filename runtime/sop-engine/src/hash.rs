//! A stable hash (FNV-1a, then a SplitMix64 finaliser to spread the bits), used wherever the
//! engine needs "random" but must pick the same thing again on replay: A/B arms, retry jitter.
//! It is fixed forever: changing it would move runs in flight to other arms.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hashes the parts with a separator byte that cannot occur in UTF-8, so ("ab","c") != ("a","bc").
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash = FNV_OFFSET;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
    finalise(hash)
}

fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in `0..1` from the hash of the parts.
pub fn unit_fraction(parts: &[&str]) -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (stable_hash(parts) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parts_same_hash_and_boundaries_matter() {
        assert_eq!(
            stable_hash(&["run-1", "split"]),
            stable_hash(&["run-1", "split"])
        );
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
        assert_ne!(stable_hash(&["run-1"]), stable_hash(&["run-2"]));
    }

    #[test]
    fn fractions_stay_in_the_unit_interval() {
        for i in 0..1000 {
            let f = unit_fraction(&[&i.to_string()]);
            assert!((0.0..1.0).contains(&f), "{f}");
        }
    }
}
