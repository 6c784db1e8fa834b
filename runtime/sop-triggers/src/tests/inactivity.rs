//! Inactivity scans: threshold, paging, audience filter.

use sop_engine::StartCause;
use sop_store::{MemoryStore, Op};

use super::{at, commit, contact, deployed, playbook};
use crate::{InactivityCursor, inactive_page};

fn winback() -> sop_dsl::Playbook {
    playbook(
        "id: winback\nversion: 1\naudience:\n  tags_none: [unsubscribed]\ntriggers:\n  \
         - inactive_for: 30d\nsteps:\n  - id: pause\n    wait: 1h\n",
    )
}

#[test]
fn threshold_paging_order_and_filter() {
    let store = MemoryStore::new();
    let fired_at = at("2026-03-31T02:00:00Z");
    let threshold = at("2026-03-01T02:00:00Z"); // 30 days before
    let ms = chrono::TimeDelta::milliseconds;
    let days = chrono::TimeDelta::days;
    commit(
        &store,
        vec![
            Op::PutContact(contact("never", &[], None)),
            Op::PutContact(contact("old", &[], Some(threshold - days(60)))),
            Op::PutContact(contact(
                "gone",
                &["unsubscribed"],
                Some(threshold - days(40)),
            )),
            Op::PutContact(contact("month", &[], Some(threshold - days(1)))),
            Op::PutContact(contact("edge", &[], Some(threshold - ms(1)))),
            Op::PutContact(contact("exact", &[], Some(threshold))),
            Op::PutContact(contact("recent", &[], Some(threshold + days(20)))),
        ],
    );
    let p = winback();
    let d = deployed(&p, at("2026-01-01T00:00:00Z"));
    let start = InactivityCursor::start(fired_at, "30d".parse().unwrap());
    assert_eq!(start.before, threshold);

    let mut cursor = Some(start);
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(c) = cursor {
        let (page, next) = inactive_page(&store, &d, &c, 2).unwrap();
        assert!(page.len() <= 2);
        pages += 1;
        // The cursor survives a restart (e.g. stored by the runtime).
        cursor = next.map(|n| {
            let text = serde_json::to_string(&n).unwrap();
            serde_json::from_str::<InactivityCursor>(&text).unwrap()
        });
        seen.extend(page);
    }
    let ids: Vec<_> = seen.iter().map(|e| e.subject.id.as_str()).collect();
    // Never interacted first, then oldest first; `gone` filtered out; `exact` is not before
    // the threshold; `recent` is active.
    assert_eq!(ids, ["never", "old", "month", "edge"]);
    assert_eq!(pages, 3);
    assert_eq!(
        seen[1].cause,
        StartCause::Inactivity {
            last_interaction: Some(threshold - days(60))
        }
    );
    assert!(seen.iter().all(|e| e.fired_at == Some(fired_at)));
    let (_, dedupe) = seen[0].dedupe_key().unwrap();
    assert!(dedupe.starts_with(&fired_at.timestamp_millis().to_string()));
}

#[test]
fn a_later_check_lists_a_still_silent_contact_again_for_the_entry_rules() {
    let store = MemoryStore::new();
    commit(
        &store,
        vec![Op::PutContact(contact(
            "quiet",
            &[],
            Some(at("2026-01-01T00:00:00Z")),
        ))],
    );
    let p = winback();
    let d = deployed(&p, at("2026-01-01T00:00:00Z"));
    for day in ["2026-03-01T02:00:00Z", "2026-03-02T02:00:00Z"] {
        let start = InactivityCursor::start(at(day), "30d".parse().unwrap());
        let (page, next) = inactive_page(&store, &d, &start, 10).unwrap();
        assert_eq!(page.len(), 1, "candidate at {day}");
        assert!(next.is_none());
    }
    // Not yet 30 days silent at the first check.
    let early = InactivityCursor::start(at("2026-01-20T00:00:00Z"), "30d".parse().unwrap());
    assert!(inactive_page(&store, &d, &early, 10).unwrap().0.is_empty());
}
