//! `mark_tag` with tag names: lookup, creation, the id cache and its repair after 40068.

use serde_json::{Value, json};
use sop_plugin_sdk::testing::FakeHost;
use sop_plugin_sdk::{Account, Invocation, InvokeOutcome, Plugin};

use crate::WeCom;
use crate::tests::{account, body_of, errcode, ok, token_ok};

const LIST: &str = "/cgi-bin/externalcontact/get_corp_tag_list";
const ADD: &str = "/cgi-bin/externalcontact/add_corp_tag";
const MARK: &str = "/cgi-bin/externalcontact/mark_tag";

fn mark(input: Value) -> Invocation {
    mark_for(account(), input)
}

fn mark_for(account: Account, input: Value) -> Invocation {
    Invocation {
        action: "mark_tag".to_owned(),
        account,
        input: input.to_string(),
        idempotency_key: "run-1/tag/0".to_owned(),
    }
}

fn names(add: &[&str]) -> Value {
    json!({"userid": "li", "external_userid": "wmA", "add_tag_names": add})
}

/// A library with group `sop` holding `tags` (name, id), next to another group.
fn library(tags: &[(&str, &str)]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(name, id)| json!({"id": id, "name": name, "create_time": 1, "order": 0}))
        .collect();
    json!({"tag_group": [
        {"group_id": "etG0", "group_name": "other", "create_time": 1, "order": 0,
         "tag": [{"id": "etOther", "name": "vip", "create_time": 1, "order": 0}]},
        {"group_id": "etG1", "group_name": "sop", "create_time": 1, "order": 0, "tag": tags},
    ]})
}

fn added(tags: &[(&str, &str)]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(name, id)| json!({"id": id, "name": name, "create_time": 2, "order": 0}))
        .collect();
    json!({"tag_group": {"group_id": "etG1", "group_name": "sop", "create_time": 1, "order": 0, "tag": tags}})
}

fn done(out: InvokeOutcome) -> Value {
    match out {
        InvokeOutcome::Done(json) => serde_json::from_str(&json).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_found_in_the_group_are_marked_by_id_and_cached() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[("vip", "etSopVip")])));
    host.respond("POST", MARK, ok(json!({})));
    let out = done(WeCom::invoke(&host, mark(names(&["vip"]))).unwrap());
    assert_eq!(
        out,
        json!({"tag_ids": {"vip": "etSopVip"}}),
        "the `sop` group's vip"
    );
    assert_eq!(
        body_of(&host.requests_to(MARK)[0]),
        json!({"userid": "li", "external_userid": "wmA", "add_tag": ["etSopVip"]})
    );
    assert!(host.requests_to(ADD).is_empty(), "nothing to create");

    // The second time, straight from the cache.
    host.respond("POST", MARK, ok(json!({})));
    WeCom::invoke(&host, mark(names(&["vip"]))).unwrap();
    assert_eq!(host.requests_to(LIST).len(), 1);
    assert_eq!(host.requests_to(MARK).len(), 2);
    assert_eq!(host.unused_answers(), 0);
}

#[test]
fn missing_names_are_created_in_the_configured_group() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    let mut config: Value = serde_json::from_str(&account().config).unwrap();
    config["tag_group"] = json!("渠道");
    let account = Account {
        id: "brand-a".to_owned(),
        config: config.to_string(),
    };
    // The library has no `渠道` group yet.
    host.respond("POST", LIST, ok(library(&[])));
    let mut created = added(&[("channel:c2", "etNew1")]);
    created["tag_group"]["group_name"] = json!("渠道");
    host.respond("POST", ADD, ok(created));
    host.respond("POST", MARK, ok(json!({})));
    let input = json!({"userid": "li", "external_userid": "wmA",
        "add_tag": ["etGiven"], "add_tag_names": ["channel:c2", "channel:c2"]});
    WeCom::invoke(&host, mark_for(account, input)).unwrap();
    assert_eq!(
        body_of(&host.requests_to(ADD)[0]),
        json!({"group_name": "渠道", "tag": [{"name": "channel:c2"}]})
    );
    assert_eq!(
        body_of(&host.requests_to(MARK)[0])["add_tag"],
        json!(["etGiven", "etNew1"]),
        "ids kept, names added once"
    );
}

#[test]
fn a_deleted_tag_is_resolved_again_and_the_mark_retried_once() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[("vip", "etOld")])));
    host.respond("POST", MARK, ok(json!({})));
    WeCom::invoke(&host, mark(names(&["vip"]))).unwrap();

    // An operator deleted `vip`: the cached id is refused, the name is looked up (gone),
    // created again, and the mark goes through with the new id.
    host.respond("POST", MARK, errcode(40068));
    host.respond("POST", LIST, ok(library(&[])));
    host.respond("POST", ADD, ok(added(&[("vip", "etNew")])));
    host.respond("POST", MARK, ok(json!({})));
    let out = done(WeCom::invoke(&host, mark(names(&["vip"]))).unwrap());
    assert_eq!(out["tag_ids"]["vip"], "etNew");
    let marks = host.requests_to(MARK);
    assert_eq!(body_of(&marks[1])["add_tag"], json!(["etOld"]));
    assert_eq!(body_of(&marks[2])["add_tag"], json!(["etNew"]));
    assert_eq!(host.unused_answers(), 0);

    // And the new id is what is cached now.
    host.respond("POST", MARK, ok(json!({})));
    WeCom::invoke(&host, mark(names(&["vip"]))).unwrap();
    assert_eq!(
        body_of(&host.requests_to(MARK)[3])["add_tag"],
        json!(["etNew"])
    );
}

#[test]
fn a_refused_fresh_id_is_not_retried() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[("vip", "etV")])));
    host.respond("POST", MARK, errcode(40068));
    let err = WeCom::invoke(&host, mark(names(&["vip"]))).unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert!(err.to_string().contains("40068"), "{err}");
    assert_eq!(
        host.requests_to(MARK).len(),
        1,
        "the id was fresh: no second try"
    );
}

#[test]
fn a_name_created_meanwhile_by_another_run_is_looked_up_again() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[])));
    host.respond("POST", ADD, errcode(40071));
    host.respond("POST", LIST, ok(library(&[("vip", "etRace")])));
    host.respond("POST", MARK, ok(json!({})));
    let out = done(WeCom::invoke(&host, mark(names(&["vip"]))).unwrap());
    assert_eq!(out["tag_ids"]["vip"], "etRace");

    // Refused and still missing: WeCom's refusal is the answer.
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[])));
    host.respond("POST", ADD, errcode(40058));
    host.respond("POST", LIST, ok(library(&[])));
    let err = WeCom::invoke(&host, mark(names(&["vip"]))).unwrap_err();
    assert!(
        err.to_string().contains("add_corp_tag: errcode 40058"),
        "{err}"
    );
    assert!(host.requests_to(MARK).is_empty());
}

#[test]
fn names_to_remove_are_never_created() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[("vip", "etV")])));
    let input = json!({"userid": "li", "external_userid": "wmA", "remove_tag_names": ["gone"]});
    let out = done(WeCom::invoke(&host, mark(input)).unwrap());
    assert_eq!(out, json!({"tag_ids": {}}));
    assert!(host.requests_to(ADD).is_empty());
    assert!(host.requests_to(MARK).is_empty(), "nothing to remove");

    host.respond("POST", LIST, ok(library(&[("vip", "etV")])));
    host.respond("POST", MARK, ok(json!({})));
    let input =
        json!({"userid": "li", "external_userid": "wmA", "remove_tag_names": ["vip", "gone"]});
    WeCom::invoke(&host, mark(input)).unwrap();
    assert_eq!(
        body_of(&host.requests_to(MARK)[0]),
        json!({"userid": "li", "external_userid": "wmA", "remove_tag": ["etV"]})
    );
}

#[test]
fn bad_names_are_refused_before_any_call() {
    let host = FakeHost::new(0);
    for input in [
        names(&[""]),
        names(&[&"长".repeat(31)]),
        json!({"userid": "li", "external_userid": "wmA"}),
        json!({"userid": "li", "external_userid": "wmA", "remove_tag_names": ["  "]}),
    ] {
        let err = WeCom::invoke(&host, mark(input.clone())).unwrap_err();
        assert_eq!(err.kind(), "invalid-input", "{input}");
    }
    assert!(host.requests().is_empty());
    // Thirty characters are fine.
    token_ok(&host, "T");
    host.respond("POST", LIST, ok(library(&[(&"长".repeat(30), "etL")])));
    host.respond("POST", MARK, ok(json!({})));
    WeCom::invoke(&host, mark(names(&[&"长".repeat(30)]))).unwrap();
}
