//! Plugin-level tests against the fake host: tokens, payloads, error mapping, mass-send
//! outcomes, and callbacks with the official WXBizMsgCrypt test vector.

use serde_json::{Value, json};
use sop_plugin_sdk::testing::{FakeHost, json_response, url_query};
use sop_plugin_sdk::{
    Account, FetchError, Invocation, InvokeOutcome, OutcomeStatus, Plugin, PluginError,
    WebhookError, WebhookRequest,
};

use crate::WeCom;
use crate::actions::mass_send::{CONFIRM_WINDOW_MS, FIRST_CHECK_MS, RECHECK_MS};

const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "wx5823bf96d3bd56c7";
pub(crate) const GETTOKEN: &str = "/cgi-bin/gettoken";
const WELCOME: &str = "/cgi-bin/externalcontact/send_welcome_msg";

pub(crate) fn account() -> Account {
    Account {
        id: "brand-a".to_owned(),
        config: json!({
            "corp_id": CORP, "secret": "s3cret", "agent_id": 1_000_002,
            "token": TOKEN, "encoding_aes_key": AES_KEY,
        })
        .to_string(),
    }
}

fn call(action: &str, input: Value) -> Invocation {
    Invocation {
        action: action.to_owned(),
        account: account(),
        input: input.to_string(),
        idempotency_key: format!("run-1/{action}/0"),
    }
}

pub(crate) fn token_ok(host: &FakeHost, token: &str) {
    host.respond(
        "GET",
        GETTOKEN,
        json_response(
            200,
            &json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}),
        ),
    );
}

pub(crate) fn ok(extra: Value) -> Result<sop_plugin_sdk::HttpResponse, FetchError> {
    let mut body = json!({"errcode": 0, "errmsg": "ok"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    json_response(200, &body)
}

pub(crate) fn errcode(code: i64) -> Result<sop_plugin_sdk::HttpResponse, FetchError> {
    json_response(200, &json!({"errcode": code, "errmsg": "refused"}))
}

pub(crate) fn body_of(request: &sop_plugin_sdk::HttpRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn welcome_input() -> Value {
    json!({"welcome_code": "WC1", "text": "欢迎!", "attachments": [
        {"msgtype": "link", "link": {"title": "券", "url": "https://shop.example/c"}}
    ]})
}

#[test]
fn welcome_payload_shape_and_token_in_query() {
    let host = FakeHost::new(0);
    token_ok(&host, "T1");
    host.respond("POST", WELCOME, ok(json!({})));
    let out = WeCom::invoke(&host, call("send_welcome", welcome_input())).unwrap();
    assert_eq!(out, InvokeOutcome::Done("{}".to_owned()));

    let gettoken = &host.requests_to(GETTOKEN)[0];
    assert_eq!(url_query(&gettoken.url, "corpid").as_deref(), Some(CORP));
    assert_eq!(
        url_query(&gettoken.url, "corpsecret").as_deref(),
        Some("s3cret")
    );
    let sent = &host.requests_to(WELCOME)[0];
    assert_eq!(url_query(&sent.url, "access_token").as_deref(), Some("T1"));
    assert_eq!(
        body_of(sent),
        json!({
            "welcome_code": "WC1",
            "text": {"content": "欢迎!"},
            "attachments": [{"msgtype": "link", "link": {"title": "券", "url": "https://shop.example/c"}}],
        })
    );
}

#[test]
fn welcome_input_is_checked_before_any_call() {
    let host = FakeHost::new(0);
    let ten: Vec<Value> = (0..10)
        .map(|_| json!({"msgtype": "image", "image": {"media_id": "m"}}))
        .collect();
    let cases = [
        json!({"welcome_code": "WC1"}),
        json!({"welcome_code": "WC1", "text": "hi", "attachments": ten}),
        json!({"welcome_code": "WC1", "attachments": [{"msgtype": "sticker"}]}),
        json!({"text": "hi"}),
        json!({"welcome_code": "WC1", "txt": "typo"}),
    ];
    for input in cases {
        let err = WeCom::invoke(&host, call("send_welcome", input.clone())).unwrap_err();
        assert_eq!(err.kind(), "invalid-input", "{input}");
    }
    assert!(host.requests().is_empty());
}

#[test]
fn token_is_cached_until_shortly_before_expiry() {
    let host = FakeHost::new(1_000_000);
    token_ok(&host, "T1");
    token_ok(&host, "T2");
    for _ in 0..3 {
        host.respond("POST", WELCOME, ok(json!({})));
    }
    WeCom::invoke(&host, call("send_welcome", welcome_input())).unwrap();
    // 7200 s minus the 300 s margin: one millisecond before, the cached token is used.
    host.advance_ms(6_900_000 - 1);
    WeCom::invoke(&host, call("send_welcome", welcome_input())).unwrap();
    assert_eq!(host.requests_to(GETTOKEN).len(), 1);
    host.advance_ms(1);
    WeCom::invoke(&host, call("send_welcome", welcome_input())).unwrap();
    assert_eq!(host.requests_to(GETTOKEN).len(), 2);
    let last = host.requests_to(WELCOME).pop().unwrap();
    assert_eq!(url_query(&last.url, "access_token").as_deref(), Some("T2"));
}

#[test]
fn token_refused_is_refreshed_and_retried_once() {
    for code in [40014, 42001] {
        let host = FakeHost::new(0);
        token_ok(&host, "OLD");
        token_ok(&host, "NEW");
        host.respond("POST", WELCOME, errcode(code));
        host.respond("POST", WELCOME, ok(json!({})));
        WeCom::invoke(&host, call("send_welcome", welcome_input())).unwrap();
        let sends = host.requests_to(WELCOME);
        assert_eq!(sends.len(), 2, "{code}");
        assert_eq!(
            url_query(&sends[1].url, "access_token").as_deref(),
            Some("NEW")
        );
        assert_eq!(host.unused_answers(), 0);
    }
}

#[test]
fn token_refused_twice_is_auth_expired() {
    let host = FakeHost::new(0);
    token_ok(&host, "A");
    token_ok(&host, "B");
    host.respond("POST", WELCOME, errcode(42001));
    host.respond("POST", WELCOME, errcode(40014));
    let err = WeCom::invoke(&host, call("send_welcome", welcome_input())).unwrap_err();
    assert_eq!(err.kind(), "auth-expired");
    assert_eq!(host.requests_to(WELCOME).len(), 2);
}

#[test]
fn platform_errors_and_transport_failures_map_by_delivery() {
    let cases: Vec<(&str, Result<sop_plugin_sdk::HttpResponse, FetchError>, &str)> = vec![
        ("send_welcome", errcode(41050), "permanent"),
        ("send_welcome", errcode(41051), "permanent"),
        ("send_welcome", errcode(45009), "rate-limited"),
        ("send_welcome", Err(FetchError::Timeout), "outcome-unknown"),
        (
            "send_welcome",
            json_response(502, &json!({})),
            "outcome-unknown",
        ),
        ("mark_tag", Err(FetchError::Timeout), "transient"),
        ("mark_tag", errcode(84061), "permanent"),
        ("mark_tag", errcode(45033), "rate-limited"),
    ];
    for (action, answer, kind) in cases {
        let host = FakeHost::new(0);
        token_ok(&host, "T");
        let (path, input) = if action == "send_welcome" {
            (WELCOME, welcome_input())
        } else {
            (
                "/cgi-bin/externalcontact/mark_tag",
                json!({"userid": "li", "external_userid": "wmA", "add_tag": ["t1"]}),
            )
        };
        host.respond("POST", path, answer);
        let err = WeCom::invoke(&host, call(action, input)).unwrap_err();
        assert_eq!(err.kind(), kind, "{action} {err:?}");
    }
}

#[test]
fn notify_staff_sends_an_app_message() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond(
        "POST",
        "/cgi-bin/message/send",
        ok(json!({"invaliduser": "", "msgid": "m1"})),
    );
    let input = json!({"touser": "li|wang", "text": "客户 wmA 需要人工", "duplicate_check_interval_s": 600});
    let out = WeCom::invoke(&host, call("notify_staff", input)).unwrap();
    assert_eq!(
        out,
        InvokeOutcome::Done(r#"{"invaliduser":"","msgid":"m1"}"#.to_owned())
    );
    let body = body_of(&host.requests()[1]);
    assert_eq!(body["touser"], "li|wang");
    assert_eq!(body["agentid"], 1_000_002);
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["text"]["content"], "客户 wmA 需要人工");
    assert_eq!(body["enable_duplicate_check"], 1);
}

#[test]
fn reads_and_idempotent_writes_reach_their_apis() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond(
        "GET",
        "/cgi-bin/externalcontact/get",
        ok(json!({"external_contact": {"name": "Li"}})),
    );
    host.respond(
        "POST",
        "/cgi-bin/externalcontact/groupchat/list",
        ok(json!({"group_chat_list": [], "next_cursor": ""})),
    );
    host.respond(
        "POST",
        "/cgi-bin/externalcontact/groupchat/get",
        ok(json!({"group_chat": {"chat_id": "wrC"}})),
    );
    host.respond("POST", "/cgi-bin/externalcontact/remark", ok(json!({})));
    let out = WeCom::invoke(
        &host,
        call("get_contact", json!({"external_userid": "wmA"})),
    )
    .unwrap();
    assert_eq!(
        out,
        InvokeOutcome::Done(r#"{"external_contact":{"name":"Li"}}"#.to_owned())
    );
    WeCom::invoke(
        &host,
        call("list_groups", json!({"owner_userids": ["li"], "limit": 50})),
    )
    .unwrap();
    WeCom::invoke(
        &host,
        call("get_group", json!({"chat_id": "wrC", "need_name": true})),
    )
    .unwrap();
    WeCom::invoke(
        &host,
        call(
            "remark",
            json!({"userid": "li", "external_userid": "wmA", "remark": "VIP"}),
        ),
    )
    .unwrap();
    let requests = host.requests();
    assert_eq!(
        url_query(&requests[1].url, "external_userid").as_deref(),
        Some("wmA")
    );
    assert_eq!(
        body_of(&requests[2]),
        json!({"owner_filter": {"userid_list": ["li"]}, "limit": 50})
    );
    assert_eq!(
        body_of(&requests[3]),
        json!({"chat_id": "wrC", "need_name": 1})
    );
    assert_eq!(
        body_of(&requests[4]),
        json!({"userid": "li", "external_userid": "wmA", "remark": "VIP"})
    );
    let long = json!({"userid": "li", "external_userid": "wmA", "remark": "一二三四五六七八九十一二三四五六七八九十一"});
    assert_eq!(
        WeCom::invoke(&host, call("remark", long))
            .unwrap_err()
            .kind(),
        "invalid-input"
    );
}

const TEMPLATE: &str = "/cgi-bin/externalcontact/add_msg_template";
pub(crate) const TASK: &str = "/cgi-bin/externalcontact/get_groupmsg_task";
pub(crate) const RESULT: &str = "/cgi-bin/externalcontact/get_groupmsg_send_result";

pub(crate) fn accepted_mass_send(host: &FakeHost) -> String {
    token_ok(host, "T");
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": ["wmGone"], "msgid": "msgGZ"})),
    );
    let input = json!({"sender": "li", "contacts": ["wmA", "wmB", "wmGone"], "text": "直播 19:00"});
    let InvokeOutcome::Accepted(pending) =
        WeCom::invoke(host, call("mass_send_contacts", input)).unwrap()
    else {
        panic!("a mass send is accepted, not done");
    };
    assert_eq!(pending.check_after_ms, FIRST_CHECK_MS);
    // WeCom's `fail_list` becomes the batch contract's `recipients.rejected`.
    assert_eq!(
        pending.output,
        r#"{"msgid":"msgGZ","recipients":{"rejected":["wmGone"]}}"#
    );
    let body = body_of(&host.requests_to(TEMPLATE)[0]);
    assert_eq!(body["chat_type"], "single");
    assert_eq!(body["sender"], "li");
    assert_eq!(body["external_userid"], json!(["wmA", "wmB", "wmGone"]));
    assert_eq!(body["text"]["content"], "直播 19:00");
    pending.handle
}

pub(crate) fn check(host: &FakeHost, handle: Option<String>) -> Result<OutcomeStatus, PluginError> {
    WeCom::check_outcome(
        host,
        account(),
        "mass_send_contacts".to_owned(),
        "run-1/mass_send_contacts/0".to_owned(),
        handle,
    )
}

#[test]
fn mass_send_is_pending_until_confirmed_then_reports_each_recipient() {
    let host = FakeHost::new(0);
    let handle = accepted_mass_send(&host);
    assert_eq!(handle, "msgGZ");

    host.respond(
        "POST",
        TASK,
        ok(json!({"next_cursor": "", "task_list": [{"userid": "li", "status": 0}]})),
    );
    assert_eq!(
        check(&host, Some(handle.clone())).unwrap(),
        OutcomeStatus::Pending(RECHECK_MS)
    );

    host.respond("POST", TASK, ok(json!({"next_cursor": "", "task_list": [{"userid": "li", "status": 2, "send_time": 5}]})));
    host.respond(
        "POST",
        RESULT,
        ok(json!({"next_cursor": "p2", "send_list": [
        {"external_userid": "wmA", "userid": "li", "status": 1, "send_time": 5}]})),
    );
    host.respond(
        "POST",
        RESULT,
        ok(json!({"next_cursor": "", "send_list": [
        {"external_userid": "wmB", "userid": "li", "status": 3}]})),
    );
    let OutcomeStatus::Done(output) = check(&host, Some(handle)).unwrap() else {
        panic!("confirmed task is done");
    };
    let output: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(output["sent"], 1);
    assert_eq!(output["over_receive_limit"], 1);
    assert_eq!(output["recipients"]["sent"], json!(["wmA"]));
    assert_eq!(output["recipients"]["over_receive_limit"], json!(["wmB"]));
    let pages = host.requests_to(RESULT);
    assert_eq!(
        body_of(&pages[0]),
        json!({"msgid": "msgGZ", "userid": "li", "limit": 1000})
    );
    assert_eq!(body_of(&pages[1])["cursor"], "p2");
}

#[test]
fn mass_send_outcome_after_a_crash_is_found_by_idempotency_key() {
    let host = FakeHost::new(0);
    accepted_mass_send(&host);
    host.respond(
        "POST",
        TASK,
        ok(json!({"task_list": [{"userid": "li", "status": 0}]})),
    );
    assert_eq!(
        check(&host, None).unwrap(),
        OutcomeStatus::Pending(RECHECK_MS)
    );
    assert_eq!(body_of(&host.requests_to(TASK)[0])["msgid"], "msgGZ");

    let unknown = WeCom::check_outcome(
        &host,
        account(),
        "mass_send_contacts".to_owned(),
        "never-sent".to_owned(),
        None,
    );
    assert_eq!(unknown.unwrap_err().kind(), "permanent");
}

#[test]
fn unconfirmed_mass_send_fails_after_the_window() {
    let host = FakeHost::new(0);
    let handle = accepted_mass_send(&host);
    host.advance_ms(CONFIRM_WINDOW_MS);
    token_ok(&host, "T3");
    host.respond(
        "POST",
        TASK,
        ok(json!({"task_list": [{"userid": "li", "status": 0}]})),
    );
    assert!(matches!(
        check(&host, Some(handle)).unwrap(),
        OutcomeStatus::Failed(_)
    ));
}

#[test]
fn mass_send_check_interval_follows_the_account_setting() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": [], "msgid": "msgF"})),
    );
    let mut fast = account();
    let mut config: Value = serde_json::from_str(&fast.config).unwrap();
    config["mass_send_check_ms"] = json!(2_000);
    fast.config = config.to_string();
    let invocation = Invocation {
        account: fast.clone(),
        ..call(
            "mass_send_contacts",
            json!({"contacts": ["wmA"], "text": "t"}),
        )
    };
    let InvokeOutcome::Accepted(pending) = WeCom::invoke(&host, invocation).unwrap() else {
        panic!("a mass send is accepted");
    };
    assert_eq!(pending.check_after_ms, 2_000);
    host.respond(
        "POST",
        TASK,
        ok(json!({"task_list": [{"userid": "li", "status": 0}]})),
    );
    let status = WeCom::check_outcome(
        &host,
        fast.clone(),
        "mass_send_contacts".to_owned(),
        "run-1/mass_send_contacts/0".to_owned(),
        Some(pending.handle),
    );
    assert_eq!(status.unwrap(), OutcomeStatus::Pending(2_000));

    // Below a second is raised to a second: the runtime must not poll in a loop.
    config["mass_send_check_ms"] = json!(10);
    fast.config = config.to_string();
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": [], "msgid": "msgH"})),
    );
    let invocation = Invocation {
        account: fast,
        ..call(
            "mass_send_contacts",
            json!({"contacts": ["wmA"], "text": "t"}),
        )
    };
    let InvokeOutcome::Accepted(pending) = WeCom::invoke(&host, invocation).unwrap() else {
        panic!("a mass send is accepted");
    };
    assert_eq!(pending.check_after_ms, 1_000);
}

#[test]
fn mass_send_without_failures_reports_no_recipients() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    // WeCom answers an empty `fail_list`, or none at all.
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": [], "msgid": "msgA"})),
    );
    host.respond("POST", TEMPLATE, ok(json!({"msgid": "msgB"})));
    for msgid in ["msgA", "msgB"] {
        let InvokeOutcome::Accepted(pending) = WeCom::invoke(
            &host,
            call(
                "mass_send_contacts",
                json!({"contacts": ["wmA", "wmB"], "text": "t"}),
            ),
        )
        .unwrap() else {
            panic!("a mass send is accepted");
        };
        let output: Value = serde_json::from_str(&pending.output).unwrap();
        assert_eq!(output, json!({ "msgid": msgid }));
    }
}

#[test]
fn a_merged_contact_send_lists_every_contact_in_order_and_rejects_per_contact() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": ["wm2", "wm4"], "msgid": "msgM"})),
    );
    let contacts: Vec<String> = (0..5).map(|i| format!("wm{i}")).collect();
    let InvokeOutcome::Accepted(pending) = WeCom::invoke(
        &host,
        call(
            "mass_send_contacts",
            json!({"contacts": contacts, "text": "新品"}),
        ),
    )
    .unwrap() else {
        panic!("a mass send is accepted");
    };
    let body = body_of(&host.requests_to(TEMPLATE)[0]);
    assert_eq!(body["external_userid"], json!(contacts));
    let output: Value = serde_json::from_str(&pending.output).unwrap();
    assert_eq!(
        output,
        json!({"msgid": "msgM", "recipients": {"rejected": ["wm2", "wm4"]}})
    );
}

#[test]
fn mass_send_limits_follow_the_declared_batch_sizes() {
    let host = FakeHost::new(0);
    let contacts: Vec<String> = (0..10_001).map(|i| format!("wm{i}")).collect();
    let err = WeCom::invoke(
        &host,
        call(
            "mass_send_contacts",
            json!({"contacts": contacts, "text": "t"}),
        ),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PluginError::invalid_input("`contacts` must hold 1 to 10000 contacts, got 10001")
    );
    let groups: Vec<String> = (0..2_001).map(|i| format!("wr{i}")).collect();
    let err = WeCom::invoke(
        &host,
        call(
            "mass_send_groups",
            json!({"sender": "li", "groups": groups, "text": "t"}),
        ),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PluginError::invalid_input("`groups` holds at most 2000 groups, got 2001")
    );
    assert!(host.requests().is_empty());
}

#[test]
fn group_send_outcome_reports_groups_by_chat_id() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": [], "msgid": "msgGR"})),
    );
    let InvokeOutcome::Accepted(pending) = WeCom::invoke(
        &host,
        call(
            "mass_send_groups",
            json!({"sender": "li", "groups": ["wrA", "wrB", "wrC"], "text": "早安"}),
        ),
    )
    .unwrap() else {
        panic!("a group send is accepted");
    };
    assert_eq!(pending.output, r#"{"msgid":"msgGR"}"#);
    host.respond(
        "POST",
        TASK,
        ok(json!({"task_list": [{"userid": "li", "status": 2}]})),
    );
    // Group rows carry `chat_id`; an empty `external_userid` must not stand in for it.
    host.respond(
        "POST",
        RESULT,
        ok(json!({"send_list": [
            {"chat_id": "wrA", "external_userid": "", "userid": "li", "status": 1},
            {"chat_id": "wrB", "userid": "li", "status": 0},
            {"chat_id": "wrC", "userid": "li", "status": 3},
            {"userid": "li", "status": 1}]})),
    );
    let status = WeCom::check_outcome(
        &host,
        account(),
        "mass_send_groups".to_owned(),
        "run-1/mass_send_groups/0".to_owned(),
        Some(pending.handle),
    )
    .unwrap();
    let OutcomeStatus::Done(output) = status else {
        panic!("a confirmed task is done, got {status:?}");
    };
    let output: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(
        output["recipients"],
        json!({"sent": ["wrA"], "unsent": ["wrB"], "over_receive_limit": ["wrC"]})
    );
    // The row without an id still counts.
    assert_eq!(output["sent"], 2);
    assert_eq!(output["unsent"], 1);
}

#[test]
fn mass_send_to_groups_needs_a_sender() {
    let host = FakeHost::new(0);
    token_ok(&host, "T");
    host.respond(
        "POST",
        TEMPLATE,
        ok(json!({"fail_list": [], "msgid": "msgG"})),
    );
    let out = WeCom::invoke(
        &host,
        call(
            "mass_send_groups",
            json!({"sender": "li", "groups": ["wrC"], "text": "早安", "attachments": [{"miniprogram": {"title": "券", "appid": "wx1", "page": "p", "pic_media_id": "m"}}]}),
        ),
    )
    .unwrap();
    assert!(matches!(out, InvokeOutcome::Accepted(ref p) if p.handle == "msgG"));
    let body = body_of(&host.requests_to(TEMPLATE)[0]);
    assert_eq!(body["chat_type"], "group");
    assert_eq!(body["chat_id_list"], json!(["wrC"]));
    assert_eq!(body["attachments"][0]["msgtype"], "miniprogram");
    assert_eq!(body["attachments"][0]["miniprogram"]["appid"], "wx1");
    let err = WeCom::invoke(
        &host,
        call("mass_send_groups", json!({"groups": ["wrC"], "text": "x"})),
    )
    .unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
}

pub(crate) fn webhook(method: &str, query: &[(&str, &str)], body: &str) -> WebhookRequest {
    WebhookRequest {
        method: method.to_owned(),
        query: query
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

const ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";

#[test]
fn url_verification_with_the_official_test_vector() {
    let request = webhook(
        "GET",
        &[
            ("msg_signature", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"),
            ("timestamp", "1409659589"),
            ("nonce", "263014780"),
            ("echostr", ECHOSTR),
        ],
        "",
    );
    let host = FakeHost::new(1_409_659_589_000);
    let outcome = WeCom::parse_webhook(&host, account(), request).unwrap();
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.response.body, b"1616140317555161061");
    assert!(outcome.events.is_empty());
}

#[test]
fn forged_signatures_are_refused() {
    let forged = webhook(
        "GET",
        &[
            ("msg_signature", "0000ff5e21c57e6ad56bac8758b79b1d9ac89fd3"),
            ("timestamp", "1409659589"),
            ("nonce", "263014780"),
            ("echostr", ECHOSTR),
        ],
        "",
    );
    let err = WeCom::parse_webhook(&FakeHost::new(0), account(), forged).unwrap_err();
    assert!(
        matches!(err, WebhookError::VerificationFailed(_)),
        "{err:?}"
    );
    let unsigned = webhook("POST", &[("timestamp", "1"), ("nonce", "2")], "<xml/>");
    let err = WeCom::parse_webhook(&FakeHost::new(0), account(), unsigned).unwrap_err();
    assert!(
        matches!(err, WebhookError::VerificationFailed(_)),
        "{err:?}"
    );
}

/// When [`signed_callback`] signs (its `timestamp`), in Unix milliseconds.
pub(crate) const SIGNED_AT_MS: i64 = 1_700_000_000_000;

pub(crate) fn signed_callback(inner: &str) -> WebhookRequest {
    let crypto = wecom_crypto::Crypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let (body, signature) = crypto.encrypt_callback(inner, [7; 16], "1700000000", "n1", "1000002");
    webhook(
        "POST",
        &[
            ("msg_signature", &signature),
            ("timestamp", "1700000000"),
            ("nonce", "n1"),
        ],
        &body,
    )
}

#[test]
fn signed_callback_round_trip_yields_events_and_success() {
    let inner = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
        <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>\
        <ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[li]]></UserID>\
        <ExternalUserID><![CDATA[wmA]]></ExternalUserID><State><![CDATA[live_qr]]></State><WelcomeCode><![CDATA[WC9]]></WelcomeCode></xml>";
    let host = FakeHost::new(SIGNED_AT_MS + 5_000);
    let outcome = WeCom::parse_webhook(&host, account(), signed_callback(inner)).unwrap();
    assert_eq!(outcome.response.body, b"success");
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].kind, "contact_added");
    assert_eq!(outcome.events[0].occurred_at_ms, 1_700_000_000_000);

    let mut tampered = signed_callback(inner);
    tampered.query[1].1 = "1700000001".to_owned();
    let err = WeCom::parse_webhook(&host, account(), tampered).unwrap_err();
    assert!(matches!(err, WebhookError::VerificationFailed(_)));
}

#[test]
fn a_callback_signed_too_long_ago_or_in_the_future_is_refused_as_a_replay() {
    let inner = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>\
        <Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_follow_user]]></ChangeType>\
        <UserID><![CDATA[li]]></UserID><ExternalUserID><![CDATA[wmA]]></ExternalUserID></xml>";
    let hour = 3_600_000;
    // WeCom's retries come within seconds; an hour is the default window, either way.
    for (now, fresh) in [
        (SIGNED_AT_MS + hour, true),
        (SIGNED_AT_MS - hour, true),
        (SIGNED_AT_MS + hour + 1_000, false),
        (SIGNED_AT_MS - hour - 1_000, false),
    ] {
        let outcome = WeCom::parse_webhook(&FakeHost::new(now), account(), signed_callback(inner));
        match (fresh, outcome) {
            (true, Ok(_)) => {}
            (false, Err(WebhookError::VerificationFailed(why))) => {
                assert!(why.contains("stale callback"), "{why}");
                assert!(why.contains("callback_max_age_seconds"), "{why}");
            }
            (fresh, other) => panic!("now {now}: fresh {fresh} but {other:?}"),
        }
    }
    // The window is the account's to set; 0 turns the check off.
    for (max_age, now, fresh) in [
        (60, SIGNED_AT_MS + 61_000, false),
        (60, SIGNED_AT_MS + 59_000, true),
        (0, SIGNED_AT_MS + 100 * 24 * hour, true),
    ] {
        let mut account = account();
        let mut config: Value = serde_json::from_str(&account.config).unwrap();
        config["callback_max_age_seconds"] = json!(max_age);
        account.config = config.to_string();
        let outcome = WeCom::parse_webhook(&FakeHost::new(now), account, signed_callback(inner));
        assert_eq!(
            outcome.is_ok(),
            fresh,
            "max age {max_age}, now {now}: {outcome:?}"
        );
    }
}

#[test]
fn callbacks_for_another_corp_are_refused() {
    let other = wecom_crypto::Crypto::new(TOKEN, AES_KEY, "wwOTHER").unwrap();
    let (body, signature) = other.encrypt_callback("<xml/>", [1; 16], "1", "n", "1");
    let request = webhook(
        "POST",
        &[
            ("msg_signature", &signature),
            ("timestamp", "1"),
            ("nonce", "n"),
        ],
        &body,
    );
    let err = WeCom::parse_webhook(&FakeHost::new(0), account(), request).unwrap_err();
    assert!(
        matches!(err, WebhookError::VerificationFailed(_)),
        "{err:?}"
    );
}

#[test]
fn manifest_declares_every_action_with_a_schema() {
    let manifest = WeCom::describe();
    let names: Vec<&str> = manifest.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "send_welcome",
            "mass_send_contacts",
            "mass_send_groups",
            "notify_staff",
            "get_contact",
            "mark_tag",
            "remark",
            "list_groups",
            "get_group"
        ]
    );
    for action in &manifest.actions {
        let schema: Value = serde_json::from_str(&action.input_schema).unwrap();
        assert_eq!(schema["type"], "object", "{}", action.name);
        for limit in &action.rate_limits {
            assert!(
                manifest.rate_limits.iter().any(|l| &l.name == limit),
                "{limit}"
            );
        }
    }
    let welcome = &manifest.actions[0];
    assert!(welcome.time_critical);
    assert_eq!(welcome.delivery, sop_plugin_sdk::Delivery::AtMostOnce);
    assert!(manifest.actions[1].asynchronous);
    let batch = |name: &str| {
        let action = manifest.actions.iter().find(|a| a.name == name).unwrap();
        action.batch.clone().map(|b| (b.field, b.max))
    };
    assert_eq!(
        batch("mass_send_contacts"),
        Some(("contacts".to_owned(), 10_000))
    );
    assert_eq!(
        batch("mass_send_groups"),
        Some(("groups".to_owned(), 2_000))
    );
    for action in &manifest.actions[3..] {
        assert_eq!(action.batch, None, "{}", action.name);
    }
    assert_eq!(manifest.actions[0].batch, None);
    assert_eq!(manifest.hosts, ["qyapi.weixin.qq.com"]);
    let account: Value = serde_json::from_str(&manifest.account_schema).unwrap();
    assert_eq!(
        account["required"],
        json!(["corp_id", "secret", "agent_id"])
    );
}

#[test]
fn account_configuration_errors_are_permanent_and_never_echo_secrets() {
    let mut bad = call("send_welcome", welcome_input());
    bad.account.config = r#"{"corp_id":"ww1","secret":"hunter2"}"#.to_owned();
    let err = WeCom::invoke(&FakeHost::new(0), bad).unwrap_err();
    assert_eq!(err.kind(), "permanent");
    assert!(!format!("{err:?}").contains("hunter2"));
}
