//! A/B split: each run goes down one arm, chosen by a stable hash of the run and step ids, so
//! a replay (or a recovery) always picks the same arm, and arms fill in proportion.

use sop_dsl::model::SplitArm;

use crate::hash::stable_hash;
use crate::ids::RunId;

/// The arm for this run. `None` only for a split without arms (the checker refuses those).
pub fn choose_arm<'p>(run: &RunId, step: &str, arms: &'p [SplitArm]) -> Option<&'p SplitArm> {
    let bucket = stable_hash(&[run.as_str(), step]) % 100;
    let mut upper = 0u64;
    for arm in arms {
        upper += u64::from(arm.percent);
        if bucket < upper {
            return Some(arm);
        }
    }
    // Percentages below 100 (an unchecked playbook): the remainder goes to the last arm.
    arms.last()
}
