//! Admission: consent → quiet hours → caps.

use sop_clock::TimeDelta;
use sop_dsl::catalog::ActionAudience;
use sop_dsl::model::{CapAction, Category, QuietHours};
use sop_store::{FriendStatus, Group, GroupKey, MemoryStore, Op, OptOut, Store, TouchKey};

use super::*;
use crate::{CapRule, CapWindow, ConsentChange, PolicyError, TenantPolicy, group_touch_key};

/// 10:00 in Shanghai on Monday 2026-03-02.
const MORNING: &str = "2026-03-02T02:00:00Z";

fn gate() -> Arc<Gate> {
    gate_with(PolicyConfig::default(), &shipped_catalog(), MORNING).0
}

fn opted_out(mut c: Contact) -> Contact {
    c.consent.opted_out = Some(OptOut {
        at: t("2026-03-01T00:00:00Z"),
        by: "contact".into(),
        source: "keyword TD".into(),
    });
    c
}

#[test]
fn actions_reaching_no_customer_pass_uncounted() {
    let (gate, store) = (gate(), MemoryStore::new());
    let inv = invocation("r1", "wecom", "mark_tag", ActionAudience::None);
    let c = opted_out(contact("c1", None));
    let a = send(&gate, &store, &inv, &c, t("2026-03-02T15:00:00Z")); // 23:00, quiet
    assert_eq!(
        a,
        Admission::Pass {
            touches: vec![],
            decision: "passed: not customer-facing".into()
        }
    );
}

#[test]
fn a_contact_who_deleted_the_staff_is_never_messaged() {
    let (gate, store) = (gate(), MemoryStore::new());
    let mut c = contact("c1", None);
    c.friend = FriendStatus::DeletedByContact;
    let mut reply = marketing("r1");
    reply.policy.category = Category::Service;
    for inv in [marketing("r1"), reply] {
        let a = send(&gate, &store, &inv, &c, t(MORNING));
        assert!(
            matches!(&a, Admission::Skip { reason } if reason.contains("deleted")),
            "{a:?}"
        );
    }
}

#[test]
fn opt_out_suppresses_marketing_until_opt_in() {
    let (gate, store) = (gate(), MemoryStore::new());
    let c = opted_out(contact("c1", None));
    let a = send(&gate, &store, &marketing("r1"), &c, t(MORNING));
    assert!(
        matches!(&a, Admission::Skip { reason } if reason.contains("opted out") && reason.contains("keyword TD")),
        "{a:?}"
    );
    // A second playbook is suppressed too: consent is the contact's, not the run's.
    assert!(matches!(
        send(&gate, &store, &marketing("r2"), &c, t(MORNING)),
        Admission::Skip { .. }
    ));
    // Service replies still answer the contact (default), and nothing was counted.
    let mut reply = invocation("r3", "douyin", "reply", ActionAudience::Contact);
    reply.policy.category = Category::Service;
    assert!(is_pass(&send(&gate, &store, &reply, &c, t(MORNING))));
    let key = TouchKey::new(c.key.clone(), "acme", "marketing");
    assert!(
        store
            .touches(&key, t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))
            .unwrap()
            .is_empty()
    );
    // Opting in again: marketing flows.
    let mut back = c.clone();
    back.consent.opted_out = None;
    assert!(is_pass(&send(
        &gate,
        &store,
        &marketing("r4"),
        &back,
        t(MORNING)
    )));
}

#[test]
fn an_opt_out_during_a_broadcast_stops_the_rest_of_it() {
    let config = PolicyConfig {
        caps: vec![],
        ..PolicyConfig::default()
    };
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let store = MemoryStore::new();
    let mut contacts: Vec<Contact> = (0..4).map(|i| contact(&format!("c{i}"), None)).collect();
    let broadcast = |run: &str| invocation(run, "douyin", "send_group", ActionAudience::Contact);
    // The first wave goes to everybody.
    for c in &contacts {
        assert!(is_pass(&send(
            &gate,
            &store,
            &broadcast("wave1"),
            c,
            t(MORNING)
        )));
    }
    // c2 answers "TD": the runtime records the opt-out on the contact at once.
    let Some(ConsentChange::OptOut { keyword }) = gate.consent_keyword("td") else {
        panic!("TD is an opt-out keyword")
    };
    contacts[2] = opted_out(contacts[2].clone());
    assert_eq!(keyword, "TD");
    // The second wave, still in progress, skips c2 only, across playbooks.
    for (i, c) in contacts.iter().enumerate() {
        let a = send(
            &gate,
            &store,
            &broadcast("wave2"),
            c,
            t(MORNING) + TimeDelta::minutes(5),
        );
        assert_eq!(is_pass(&a), i != 2, "{a:?}");
    }
}

#[test]
fn service_may_be_suppressed_by_opt_out_by_config() {
    let config = PolicyConfig {
        service_passes_opt_out: false,
        ..PolicyConfig::default()
    };
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let mut reply = marketing("r1");
    reply.policy.category = Category::Service;
    let c = opted_out(contact("c1", None));
    assert!(matches!(
        send(&gate, &MemoryStore::new(), &reply, &c, t(MORNING)),
        Admission::Skip { .. }
    ));
}

#[test]
fn quiet_hours_defer_marketing_to_the_window_end_in_the_contacts_zone() {
    let (gate, store) = (gate(), MemoryStore::new());
    // 23:30 in Shanghai (default zone) → 08:00 next local morning.
    let late = t("2026-03-02T15:30:00Z");
    let a = send(&gate, &store, &marketing("r1"), &contact("c1", None), late);
    assert_eq!(deferred_until(&a), t("2026-03-03T00:00:00Z"));
    assert!(
        a.describe()
            .contains("quiet hours 22:00-08:00 in Asia/Shanghai"),
        "{}",
        a.describe()
    );
    // The same instant is 16:30 in Berlin: no quiet hours there.
    let berlin = contact("c2", Some("Europe/Berlin"));
    assert!(is_pass(&send(
        &gate,
        &store,
        &marketing("r2"),
        &berlin,
        late
    )));
    // An unknown zone falls back to the tenant default.
    let bad = contact("c3", Some("Mars/Olympus"));
    assert!(matches!(
        send(&gate, &store, &marketing("r3"), &bad, late),
        Admission::Defer { .. }
    ));
}

#[test]
fn quiet_hours_across_a_dst_change() {
    let (gate, store) = (gate(), MemoryStore::new());
    let ny = contact("c1", Some("America/New_York"));
    // 23:00 EST on Saturday 2026-03-07; clocks spring forward in the night: 08:00 EDT = 12:00Z.
    let a = send(
        &gate,
        &store,
        &marketing("r1"),
        &ny,
        t("2026-03-08T04:00:00Z"),
    );
    assert_eq!(deferred_until(&a), t("2026-03-08T12:00:00Z"));
    // 07:30 EDT: half an hour left.
    let a = send(
        &gate,
        &store,
        &marketing("r2"),
        &ny,
        t("2026-03-08T11:30:00Z"),
    );
    assert_eq!(deferred_until(&a), t("2026-03-08T12:00:00Z"));
}

#[test]
fn service_time_critical_and_step_overrides_pass_quiet_hours() {
    let (gate, store) = (gate(), MemoryStore::new());
    let late = t("2026-03-02T15:30:00Z");
    let c = contact("c1", None);
    let mut reply = marketing("r1");
    reply.policy.category = Category::Service;
    assert!(is_pass(&send(&gate, &store, &reply, &c, late)));
    let mut welcome = invocation("r2", "wecom", "send_welcome", ActionAudience::Contact);
    welcome.time_critical = true;
    assert!(is_pass(&send(
        &gate,
        &store,
        &welcome,
        &contact("c2", None),
        late
    )));
    assert!(is_pass(&send(
        &gate,
        &store,
        &quiet_off(marketing("r3")),
        &contact("c3", None),
        late
    )));
    // A step's own window replaces the default.
    let mut own = marketing("r4");
    own.policy.quiet_hours = Some("23:45-07:00".parse().unwrap());
    assert!(is_pass(&send(
        &gate,
        &store,
        &own,
        &contact("c4", None),
        late
    )));

    // By config, service replies wait too.
    let config = PolicyConfig {
        service_passes_quiet_hours: false,
        ..PolicyConfig::default()
    };
    let (strict, _) = gate_with(config, &shipped_catalog(), MORNING);
    assert!(matches!(
        send(&strict, &store, &reply, &c, late),
        Admission::Defer { .. }
    ));
}

#[test]
fn tenant_defaults_apply_to_their_contacts() {
    let mut config = PolicyConfig::default();
    config.tenants.insert(
        "acme".into(),
        TenantPolicy {
            time_zone: Some("Europe/Berlin".into()),
            quiet_hours: Some("12:00-13:00".parse().unwrap()),
        },
    );
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let store = MemoryStore::new();
    // 12:30 in Berlin (11:30Z, winter): the tenant's lunch-time window.
    let a = send(
        &gate,
        &store,
        &marketing("r1"),
        &contact("c1", None),
        t("2026-03-02T11:30:00Z"),
    );
    assert_eq!(deferred_until(&a), t("2026-03-02T12:00:00Z"));
    // 23:30 Shanghai is not quiet for this tenant.
    assert!(is_pass(&send(
        &gate,
        &store,
        &marketing("r2"),
        &contact("c2", None),
        t("2026-03-02T15:30:00Z")
    )));
}

#[test]
fn a_cap_is_shared_by_two_playbooks_touching_one_contact() {
    let (gate, store) = (gate(), MemoryStore::new());
    let c = contact("c1", None);
    let a = send(&gate, &store, &marketing("welcome-run"), &c, t(MORNING));
    let Admission::Pass { touches, decision } = &a else {
        panic!("{a:?}")
    };
    assert!(
        decision.contains("marketing_per_day 0/1 per day"),
        "{decision}"
    );
    // The category bucket and the platform's own bucket are both counted.
    let buckets: Vec<&str> = touches
        .iter()
        .map(|op| match op {
            Op::RecordTouch { key, at } => {
                assert_eq!(
                    (&key.contact, key.account.as_str(), *at),
                    (&c.key, "acme", t(MORNING))
                );
                key.category.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(buckets, ["marketing", "wecom.mass_send_per_contact"]);

    // Another playbook, an hour later: the day cap defers it to the next local day, whose
    // start (00:00) is in quiet hours, so it waits until 08:00.
    let b = send(
        &gate,
        &store,
        &quiet_off(marketing("reactivation-run")),
        &c,
        t("2026-03-02T03:00:00Z"),
    );
    assert_eq!(deferred_until(&b), t("2026-03-02T16:00:00Z"));
    let b = send(
        &gate,
        &store,
        &marketing("reactivation-run"),
        &c,
        t("2026-03-02T03:00:00Z"),
    );
    assert_eq!(deferred_until(&b), t("2026-03-03T00:00:00Z"));
    assert!(
        b.describe().contains("marketing_per_day 1/1"),
        "{}",
        b.describe()
    );

    let mut skip = marketing("r3");
    skip.policy.on_cap = CapAction::Skip;
    assert!(matches!(
        send(&gate, &store, &skip, &c, t("2026-03-02T03:00:00Z")),
        Admission::Skip { .. }
    ));
    let mut end = marketing("r4");
    end.policy.on_cap = CapAction::End;
    assert!(matches!(
        send(&gate, &store, &end, &c, t("2026-03-02T03:00:00Z")),
        Admission::EndRun { .. }
    ));
    // Another platform account has its own count.
    let mut other = marketing("r5");
    other.account = "other".into();
    assert!(is_pass(&send(
        &gate,
        &store,
        &other,
        &c,
        t("2026-03-02T03:00:00Z")
    )));
}

#[test]
fn calendar_days_turn_at_midnight_in_the_contacts_zone() {
    let config = PolicyConfig {
        quiet_hours: QuietHours::Off,
        ..PolicyConfig::default()
    };
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let store = MemoryStore::new();
    let inv = |run: &str| invocation(run, "wecom", "send_welcome", ActionAudience::Contact);
    let sh = contact("c1", None);
    let ny = contact("c2", Some("America/New_York"));
    // 23:00 Shanghai = 15:00Z = 10:00 New York.
    for c in [&sh, &ny] {
        assert!(is_pass(&send(
            &gate,
            &store,
            &inv("a"),
            c,
            t("2026-03-02T15:00:00Z")
        )));
    }
    // 23:59 Shanghai: same local day, blocked until local midnight.
    let a = send(&gate, &store, &inv("b"), &sh, t("2026-03-02T15:59:00Z"));
    assert_eq!(deferred_until(&a), t("2026-03-02T16:00:00Z"));
    // 00:01 Shanghai: a new local day.
    assert!(is_pass(&send(
        &gate,
        &store,
        &inv("b"),
        &sh,
        t("2026-03-02T16:01:00Z")
    )));
    // For New York it is 11:01 the same day: still blocked until New York's midnight.
    let a = send(&gate, &store, &inv("b"), &ny, t("2026-03-02T16:01:00Z"));
    assert_eq!(deferred_until(&a), t("2026-03-03T05:00:00Z"));
}

#[test]
fn a_monthly_cap_counts_the_calendar_month() {
    let config = PolicyConfig {
        quiet_hours: QuietHours::Off,
        ..PolicyConfig::default()
    };
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let store = MemoryStore::new();
    let c = contact("c1", None);
    let inv = invocation("r", "wecom", "send_welcome", ActionAudience::Contact);
    let mut day = t(MORNING);
    for _ in 0..8 {
        assert!(is_pass(&send(&gate, &store, &inv, &c, day)));
        day += TimeDelta::days(1);
    }
    let a = send(&gate, &store, &inv, &c, day);
    assert!(
        a.describe().contains("marketing_per_month 8/8"),
        "{}",
        a.describe()
    );
    assert_eq!(deferred_until(&a), t("2026-03-31T16:00:00Z")); // April 1st, Shanghai
}

#[test]
fn service_replies_do_not_count_as_marketing_touches() {
    let (gate, store) = (gate(), MemoryStore::new());
    let c = contact("c1", None);
    let mut reply = invocation("r", "douyin", "reply", ActionAudience::Contact);
    reply.policy.category = Category::Service;
    for i in 0..3 {
        let a = send(
            &gate,
            &store,
            &reply,
            &c,
            t(MORNING) + TimeDelta::minutes(i),
        );
        let Admission::Pass { touches, .. } = &a else {
            panic!("{a:?}")
        };
        assert!(matches!(&touches[..], [Op::RecordTouch { key, .. }] if key.category == "service"));
    }
    assert!(is_pass(&send(
        &gate,
        &store,
        &marketing("m"),
        &c,
        t(MORNING) + TimeDelta::hours(1)
    )));
}

#[test]
fn platform_touch_limits_hold_without_any_configured_cap() {
    let config = PolicyConfig {
        caps: vec![],
        ..PolicyConfig::default()
    };
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let store = MemoryStore::new();
    let c = contact("c1", None);
    let proactive =
        |run: &str| invocation(run, "douyin", "send_proactive", ActionAudience::Contact);
    assert!(is_pass(&send(
        &gate,
        &store,
        &proactive("a"),
        &c,
        t(MORNING)
    )));
    let a = send(
        &gate,
        &store,
        &proactive("b"),
        &c,
        t(MORNING) + TimeDelta::hours(1),
    );
    assert!(
        a.describe().contains("douyin.proactive_per_day 1/1"),
        "{}",
        a.describe()
    );
    // Other actions of the plugin are not limited by it.
    assert!(is_pass(&send(
        &gate,
        &store,
        &invocation("c", "douyin", "reply", ActionAudience::Contact),
        &c,
        t(MORNING)
    )));
}

#[test]
fn groups_are_capped_by_the_manifests_group_limits() {
    let (gate, store) = (gate(), MemoryStore::new());
    let group = Group::new(GroupKey::new("acme", "chat1"), "acme", t(MORNING));
    let inv = invocation("g", "wecom", "mass_send_groups", ActionAudience::Group);
    let admit = |now| {
        let req = GateRequest {
            invocation: &inv,
            tenant: "acme",
            contact: None,
            group: Some(&group),
            now,
        };
        gate.admit(&store, &req).unwrap()
    };
    let a = admit(t(MORNING));
    let Admission::Pass { touches, .. } = &a else {
        panic!("{a:?}")
    };
    store
        .commit(Batch {
            checks: vec![],
            ops: touches.clone(),
        })
        .unwrap();
    let key = TouchKey::new(group_touch_key(&group), "acme", "wecom.mass_send_per_group");
    assert_eq!(
        store
            .touches(&key, t(MORNING), t(MORNING) + TimeDelta::seconds(1))
            .unwrap()
            .len(),
        1
    );
    let b = admit(t(MORNING) + TimeDelta::hours(1));
    assert!(
        b.describe().contains("wecom.mass_send_per_group 1/1"),
        "{}",
        b.describe()
    );
    // Contact caps (marketing per day) do not apply to groups: a second group passes.
    let other = Group::new(GroupKey::new("acme", "chat2"), "acme", t(MORNING));
    let req = GateRequest {
        invocation: &inv,
        tenant: "acme",
        contact: None,
        group: Some(&other),
        now: t(MORNING),
    };
    assert!(is_pass(&gate.admit(&store, &req).unwrap()));
}

#[test]
fn rolling_windows_free_a_slot_when_the_oldest_touch_leaves() {
    let config = PolicyConfig {
        quiet_hours: QuietHours::Off,
        caps: vec![CapRule {
            name: "two_a_week".into(),
            category: Category::Marketing,
            max: 2,
            window: CapWindow::Rolling(sop_dsl::model::Duration::from_seconds(7 * 86_400)),
        }],
        ..PolicyConfig::default()
    };
    let (gate, _) = gate_with(config, &shipped_catalog(), MORNING);
    let store = MemoryStore::new();
    let c = contact("c1", None);
    let inv = invocation("r", "wecom", "send_welcome", ActionAudience::Contact);
    let t0 = t(MORNING);
    assert!(is_pass(&send(&gate, &store, &inv, &c, t0)));
    assert!(is_pass(&send(
        &gate,
        &store,
        &inv,
        &c,
        t0 + TimeDelta::days(1)
    )));
    let a = send(&gate, &store, &inv, &c, t0 + TimeDelta::days(2));
    let until = deferred_until(&a);
    assert_eq!(until, t0 + TimeDelta::days(7) + TimeDelta::milliseconds(1));
    assert!(is_pass(&send(&gate, &store, &inv, &c, until)));
}

#[test]
fn a_retry_is_not_counted_twice() {
    let (gate, store) = (gate(), MemoryStore::new());
    let c = contact("c1", None);
    assert!(is_pass(&send(
        &gate,
        &store,
        &marketing("r"),
        &c,
        t(MORNING)
    )));
    let mut retry = marketing("r");
    retry.attempt = 2;
    let a = send(
        &gate,
        &store,
        &retry,
        &c,
        t(MORNING) + TimeDelta::minutes(1),
    );
    assert!(
        matches!(&a, Admission::Pass { touches, .. } if touches.is_empty()),
        "{a:?}"
    );
}

#[test]
fn decisions_are_counted() {
    let (gate, store) = (gate(), MemoryStore::new());
    let c = contact("c1", None);
    send(&gate, &store, &marketing("a"), &c, t(MORNING));
    send(&gate, &store, &marketing("b"), &c, t(MORNING));
    send(
        &gate,
        &store,
        &marketing("c"),
        &c,
        t("2026-03-02T15:30:00Z"),
    );
    let d = gate.snapshot().decisions;
    assert_eq!(d["passed"], 1);
    assert_eq!(d["deferred_cap"], 1);
    assert_eq!(d["deferred_quiet_hours"], 1);
}

#[test]
fn bad_configuration_is_refused() {
    let clock = || Arc::new(VirtualClock::new(t(MORNING))) as Arc<dyn sop_clock::Clock>;
    let bad_zone = PolicyConfig {
        time_zone: "Asia/Beijing".into(),
        ..PolicyConfig::default()
    };
    let e = Gate::new(bad_zone, &shipped_catalog(), clock()).unwrap_err();
    assert!(matches!(e, PolicyError::TimeZone { .. }), "{e}");
    let rule = CapRule {
        name: "x".into(),
        category: Category::Marketing,
        max: 0,
        window: CapWindow::Day,
    };
    let zero = PolicyConfig {
        caps: vec![rule.clone()],
        ..PolicyConfig::default()
    };
    assert!(matches!(
        Gate::new(zero, &shipped_catalog(), clock()),
        Err(PolicyError::Cap { .. })
    ));
    let twice = CapRule { max: 1, ..rule };
    let dup = PolicyConfig {
        caps: vec![twice.clone(), twice],
        ..PolicyConfig::default()
    };
    assert!(matches!(
        Gate::new(dup, &shipped_catalog(), clock()),
        Err(PolicyError::Cap { .. })
    ));
}
