//! Audiences: contacts in bounded pages with tag and condition filters; customer groups.

use sop_engine::{StartCause, SubjectKind};
use sop_store::{Group, GroupKey, MemoryStore, Op};

use super::{at, commit, contact, deployed, playbook};
use crate::{AudiencePager, Enrollment, TriggerError};

fn cause() -> StartCause {
    StartCause::Schedule {
        fired_at: at("2026-03-02T01:00:00Z"),
    }
}

/// Drains a pager, checking every page is at most `limit`.
fn drain(pager: &mut AudiencePager<'_>, limit: usize) -> (Vec<Enrollment>, usize) {
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let page = pager.next_page(limit).unwrap();
        assert!(page.len() <= limit, "page of {} > {limit}", page.len());
        if page.is_empty() {
            assert!(pager.is_exhausted());
            return (all, pages);
        }
        pages += 1;
        all.extend(page);
    }
}

#[test]
fn ten_thousand_contacts_with_a_tag_filter_in_bounded_pages() {
    let p = playbook(
        "id: vip-news\nversion: 3\naudience:\n  tags_any: [vip]\n  tags_none: [blocked]\n\
         triggers:\n  - cron: \"0 9 * * *\"\nsteps:\n  - id: pause\n    wait: 1h\n",
    );
    let store = MemoryStore::new();
    let mut ops = Vec::new();
    for i in 0..10_000 {
        let tags: &[&str] = match i % 8 {
            0 | 4 => &["vip"],
            2 => &["vip", "blocked"],
            _ => &["regular"],
        };
        ops.push(Op::PutContact(contact(&format!("c{i:05}"), tags, None)));
        if ops.len() == 1_000 {
            commit(&store, std::mem::take(&mut ops));
        }
    }
    let d = deployed(&p, at("2026-03-01T00:00:00Z"));
    let mut pager =
        AudiencePager::new(&store, d, cause(), Some(at("2026-03-02T01:00:00Z"))).unwrap();

    // The first page reads only as far as it needs: the 500th match is c01996.
    let first = pager.next_page(500).unwrap();
    assert_eq!(first.len(), 500);
    assert_eq!(pager.scanned(), 1_997);
    assert_eq!(pager.cursor(), Some("c01996"));

    let (rest, pages) = drain(&mut pager, 500);
    assert_eq!(pages, 4);
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(all.len(), 2_500, "every 4th contact is vip and not blocked");
    assert_eq!(pager.scanned(), 10_000);
    let ids: Vec<&str> = all.iter().map(|e| e.subject.id.as_str()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, no repeats"
    );
    assert!(
        ids.iter()
            .all(|id| id[1..].parse::<u32>().unwrap() % 4 == 0)
    );
    let e = &all[0];
    assert_eq!(
        (e.playbook.as_str(), e.version, e.tenant.as_str()),
        ("vip-news", 3, "acme")
    );
    assert_eq!(e.subject.kind, SubjectKind::Contact);
    assert_eq!(e.subject.account, "wecom:acme");
    assert_eq!(e.cause, cause());
    assert_eq!(
        e.store_subject(),
        sop_store::Subject::Contact(sop_store::ContactKey::new("acme", "c00000"))
    );
    let (source, id) = e.dedupe_key().unwrap();
    assert_eq!(source, "trigger:vip-news");
    assert_eq!(
        id,
        format!(
            "{}/contact/acme/c00000",
            at("2026-03-02T01:00:00Z").timestamp_millis()
        )
    );

    // Resuming from a cursor continues where an earlier pager stopped.
    let mut resumed = AudiencePager::new(&store, d, cause(), None)
        .unwrap()
        .resume_after("c09980");
    let tail: Vec<_> = resumed
        .next_page(100)
        .unwrap()
        .into_iter()
        .map(|e| e.subject.id)
        .collect();
    assert_eq!(tail, ["c09984", "c09988", "c09992", "c09996"]);
}

#[test]
fn conditions_see_attributes_as_the_engine_does_and_errors_leave_the_contact_out() {
    let p = playbook(
        "id: buyers\nversion: 1\naudience:\n  where: \"contact.attributes.orders | default(0) > 0 \
         and contact.city == 'sh'\"\ntriggers:\n  - manual: true\nsteps:\n  - id: pause\n    wait: 1h\n",
    );
    let store = MemoryStore::new();
    let mut ops = Vec::new();
    for (id, orders, city) in [
        ("a", Some(2), "sh"),
        ("b", Some(0), "sh"),
        ("c", None, "sh"),
        ("d", Some(5), "bj"),
        ("e", Some(1), "sh"),
    ] {
        let mut c = contact(id, &[], None);
        if let Some(n) = orders {
            c.attributes.insert("orders".into(), n.into());
        }
        c.attributes.insert("city".into(), city.into());
        // Opted-out contacts are listed: the policy gate decides what they may receive.
        if id == "e" {
            c.consent.opted_out = Some(sop_store::OptOut {
                at: at("2026-01-02T00:00:00Z"),
                by: "contact".into(),
                source: "TD".into(),
            });
        }
        ops.push(Op::PutContact(c));
    }
    commit(&store, ops);
    let d = deployed(&p, at("2026-03-01T00:00:00Z"));
    let mut pager = AudiencePager::new(&store, d, cause(), None).unwrap();
    let (all, _) = drain(&mut pager, 2);
    let ids: Vec<_> = all.iter().map(|e| e.subject.id.as_str()).collect();
    assert_eq!(ids, ["a", "e"]);
    assert_eq!(pager.condition_errors(), 0);

    // A condition that fails at evaluation (calling a string) leaves that subject out.
    let bad = playbook(
        "id: odd\nversion: 1\naudience:\n  where: \"contact.city()\"\ntriggers:\n  - manual: true\n\
         steps:\n  - id: pause\n    wait: 1h\n",
    );
    let d = deployed(&bad, at("2026-03-01T00:00:00Z"));
    let mut pager = AudiencePager::new(&store, d, cause(), None).unwrap();
    let (all, _) = drain(&mut pager, 10);
    assert!(all.is_empty());
    assert_eq!(pager.condition_errors(), 5);
}

#[test]
fn a_condition_that_does_not_compile_is_an_error_not_a_panic() {
    let mut p = playbook(
        "id: x\nversion: 1\naudience:\n  tags_any: [vip]\ntriggers:\n  - manual: true\n\
         steps:\n  - id: pause\n    wait: 1h\n",
    );
    p.audience.as_mut().unwrap().condition =
        Some(sop_dsl::model::Expression("contact.tags ((".into()));
    let store = MemoryStore::new();
    let err = AudiencePager::new(
        &store,
        deployed(&p, at("2026-03-01T00:00:00Z")),
        cause(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, TriggerError::BadCondition { .. }), "{err}");
}

#[test]
fn group_audiences_page_groups_of_the_playbook_account() {
    let p = playbook(
        "id: group-nurture\nversion: 1\naudience:\n  target: groups\n  tags_any: [nurture]\n  \
         where: \"group.member_count >= 10\"\ntriggers:\n  - cron: \"0 9 * * 1-5\"\n\
         steps:\n  - id: pause\n    wait: 1h\n",
    );
    let store = MemoryStore::new();
    let mut ops = Vec::new();
    for i in 0..30u32 {
        let account = if i % 10 == 7 {
            "wecom:other"
        } else {
            "wecom:acme"
        };
        let mut g = Group::new(
            GroupKey::new("acme", format!("g{i:02}")),
            account,
            at("2026-01-01T00:00:00Z"),
        );
        g.name = format!("group {i}");
        g.member_count = i;
        if i % 2 == 1 {
            g.tags.insert("nurture".into());
        }
        ops.push(Op::PutGroup(g));
    }
    // Contacts are not a group audience.
    ops.push(Op::PutContact(contact("c1", &["nurture"], None)));
    commit(&store, ops);
    let d = deployed(&p, at("2026-03-01T00:00:00Z"));
    let mut pager = AudiencePager::new(&store, d, cause(), None).unwrap();
    let (all, _) = drain(&mut pager, 3);
    let ids: Vec<_> = all.iter().map(|e| e.subject.id.as_str()).collect();
    // Odd (tagged), at least 10 members, not on the other account (17, 27).
    assert_eq!(
        ids,
        ["g11", "g13", "g15", "g19", "g21", "g23", "g25", "g29"]
    );
    assert!(all.iter().all(|e| e.subject.kind == SubjectKind::Group));
    assert_eq!(
        all[0].store_subject(),
        sop_store::Subject::Group {
            tenant: "acme".into(),
            id: "g11".into()
        }
    );
    assert_eq!(pager.scanned(), 30);
}
