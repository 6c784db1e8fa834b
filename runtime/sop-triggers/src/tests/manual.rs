//! Manual starts by ids or by audience.

use sop_engine::{StartCause, SubjectKind};
use sop_store::{MemoryStore, Op};

use super::{at, commit, contact, deployed, playbook};
use crate::{MAX_MANUAL_IDS, ManualAudience, ManualPager, TriggerError};

fn campaign() -> sop_dsl::Playbook {
    playbook(
        "id: campaign\nversion: 1\naudience:\n  tags_any: [vip]\ntriggers:\n  - manual: true\n\
         steps:\n  - id: pause\n    wait: 1h\n",
    )
}

fn store() -> MemoryStore {
    let store = MemoryStore::new();
    commit(
        &store,
        vec![
            Op::PutContact(contact("a", &["vip"], None)),
            Op::PutContact(contact("b", &[], None)),
            Op::PutContact(contact("c", &["vip"], None)),
        ],
    );
    store
}

#[test]
fn by_ids_dedupes_and_reports_unknown_ids() {
    let (p, store) = (campaign(), store());
    let d = deployed(&p, at("2026-03-01T00:00:00Z"));
    let ids = ["c", "b", "zz", "c", "a"].map(String::from).to_vec();
    let mut pager = ManualPager::new(&store, d, ManualAudience::Ids(ids), "ops@acme").unwrap();
    let first = pager.next_page(2).unwrap();
    let second = pager.next_page(2).unwrap();
    assert!(pager.is_exhausted());
    assert_eq!(pager.next_page(2).unwrap(), Default::default());
    let enrolled: Vec<_> = first
        .enrollments
        .iter()
        .chain(&second.enrollments)
        .map(|e| e.subject.id.as_str())
        .collect();
    // Explicit ids skip the audience filter here (`b`): the entry decision applies it.
    assert_eq!(enrolled, ["a", "b", "c"]);
    assert_eq!(
        second.rejected,
        [("zz".to_owned(), "no such contact".to_owned())]
    );
    let e = &first.enrollments[0];
    assert_eq!(
        e.cause,
        StartCause::Manual {
            by: "ops@acme".into()
        }
    );
    assert_eq!(e.subject.kind, SubjectKind::Contact);
    assert_eq!((e.fired_at, e.dedupe_key()), (None, None));
}

#[test]
fn by_audience_applies_the_filter() {
    let (p, store) = (campaign(), store());
    let d = deployed(&p, at("2026-03-01T00:00:00Z"));
    let mut pager = ManualPager::new(&store, d, ManualAudience::Audience, "api").unwrap();
    let page = pager.next_page(10).unwrap();
    let ids: Vec<_> = page
        .enrollments
        .iter()
        .map(|e| e.subject.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert!(pager.is_exhausted());
}

#[test]
fn bad_requests_are_errors() {
    let store = store();
    let scheduled = playbook(
        "id: daily\nversion: 1\naudience:\n  tags_any: [vip]\ntriggers:\n  - cron: \"0 9 * * *\"\n\
         steps:\n  - id: pause\n    wait: 1h\n",
    );
    let d = deployed(&scheduled, at("2026-03-01T00:00:00Z"));
    let err = ManualPager::new(&store, d, ManualAudience::Audience, "ops").unwrap_err();
    assert!(matches!(err, TriggerError::NoManualTrigger { .. }), "{err}");

    let p = campaign();
    let d = deployed(&p, at("2026-03-01T00:00:00Z"));
    let many = (0..=MAX_MANUAL_IDS).map(|i| i.to_string()).collect();
    let err = ManualPager::new(&store, d, ManualAudience::Ids(many), "ops").unwrap_err();
    assert!(matches!(err, TriggerError::TooManyIds { .. }), "{err}");
    let err =
        ManualPager::new(&store, d, ManualAudience::Ids(vec![String::new()]), "ops").unwrap_err();
    assert!(matches!(err, TriggerError::EmptyId), "{err}");
}
