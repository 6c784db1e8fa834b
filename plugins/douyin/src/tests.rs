//! Plugin-level tests against the fake host: tokens, message payloads, error mapping and
//! webhooks (signature, challenge, events).

use serde_json::{Value, json};
use sop_plugin_sdk::testing::{FakeHost, json_response, url_query};
use sop_plugin_sdk::{
    Account, FetchError, HttpResponse, Invocation, InvokeOutcome, Plugin, WebhookError,
    WebhookRequest,
};

use crate::Douyin;
use crate::signature::sign;

const SECRET: &str = "dy-secret";
const SEND: &str = "/im/send/msg/";
const ACCESS: &str = "/oauth/access_token/";
const REFRESH: &str = "/oauth/refresh_token/";

pub(crate) fn account() -> Account {
    Account {
        id: "shop".to_owned(),
        config: json!({
            "client_key": "ck1", "client_secret": SECRET, "open_id": "ent-1", "auth_code": "code-1",
        })
        .to_string(),
    }
}

fn call(action: &str, input: Value) -> Invocation {
    Invocation {
        action: action.to_owned(),
        account: account(),
        input: input.to_string(),
        idempotency_key: "run-9/reply/0".to_owned(),
    }
}

fn answer(data: Value) -> Result<HttpResponse, FetchError> {
    let mut data = data;
    data["error_code"] = 0.into();
    data["description"] = "".into();
    json_response(
        200,
        &json!({"data": data, "extra": {"error_code": 0, "description": ""}}),
    )
}

fn error(code: i64) -> Result<HttpResponse, FetchError> {
    json_response(
        200,
        &json!({"data": {"error_code": code, "description": "refused"}, "extra": {"error_code": code}}),
    )
}

fn grant(host: &FakeHost, path: &str, token: &str, refresh: &str) {
    host.respond(
        "POST",
        path,
        answer(
            json!({"access_token": token, "expires_in": 1_296_000, "refresh_token": refresh,
                      "refresh_expires_in": 2_592_000, "open_id": "ent-1"}),
        ),
    );
}

fn reply_input() -> Value {
    json!({"open_id": "fan-1", "conversation_id": "conv-1", "msg_id": "srv-7", "text": "您好，优惠券已发送"})
}

fn body_of(request: &sop_plugin_sdk::HttpRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn header<'a>(request: &'a sop_plugin_sdk::HttpRequest, name: &str) -> Option<&'a str> {
    sop_plugin_sdk::http::header(&request.headers, name)
}

#[test]
fn reply_exchanges_the_code_once_and_sends_with_the_user_token() {
    let host = FakeHost::new(0);
    grant(&host, ACCESS, "act.1", "rft.1");
    host.respond("POST", SEND, answer(json!({"msg_id": "dysent-1"})));
    host.respond("POST", SEND, answer(json!({"msg_id": "dysent-2"})));
    let out = Douyin::invoke(&host, call("reply", reply_input())).unwrap();
    assert_eq!(
        out,
        InvokeOutcome::Done(r#"{"msg_id":"dysent-1"}"#.to_owned())
    );
    Douyin::invoke(&host, call("reply", reply_input())).unwrap();

    let exchange = &host.requests_to(ACCESS);
    assert_eq!(exchange.len(), 1, "the token is cached");
    let form = String::from_utf8(exchange[0].body.clone()).unwrap();
    assert!(
        form.contains("grant_type=authorization_code") && form.contains("code=code-1"),
        "{form}"
    );

    let sent = &host.requests_to(SEND)[0];
    assert_eq!(header(sent, "access-token"), Some("act.1"));
    assert_eq!(url_query(&sent.url, "open_id").as_deref(), Some("ent-1"));
    assert_eq!(
        body_of(sent),
        json!({"msg_id": "srv-7", "conversation_id": "conv-1", "to_user_id": "fan-1",
               "content": {"msg_type": 1, "text": {"text": "您好，优惠券已发送"}}, "scene": "im_reply_msg"})
    );
}

#[test]
fn expired_token_is_renewed_with_the_stored_refresh_token() {
    let host = FakeHost::new(0);
    grant(&host, ACCESS, "act.1", "rft.1");
    grant(&host, REFRESH, "act.2", "rft.2");
    host.respond("POST", SEND, error(2_190_008));
    host.respond("POST", SEND, answer(json!({"msg_id": "dysent-1"})));
    Douyin::invoke(&host, call("reply", reply_input())).unwrap();
    let renew = String::from_utf8(host.requests_to(REFRESH)[0].body.clone()).unwrap();
    assert!(renew.contains("refresh_token=rft.1"), "{renew}");
    let sends = host.requests_to(SEND);
    assert_eq!(header(&sends[1], "access-token"), Some("act.2"));
}

#[test]
fn token_refused_twice_is_auth_expired() {
    let host = FakeHost::new(0);
    grant(&host, ACCESS, "act.1", "rft.1");
    grant(&host, REFRESH, "act.2", "rft.2");
    host.respond("POST", SEND, error(2_190_002));
    host.respond("POST", SEND, error(2_190_002));
    let err = Douyin::invoke(&host, call("reply", reply_input())).unwrap_err();
    assert_eq!(err.kind(), "auth-expired");
}

#[test]
fn no_way_to_a_token_is_auth_expired() {
    let mut bare = call("reply", reply_input());
    bare.account.config =
        json!({"client_key": "ck1", "client_secret": SECRET, "open_id": "ent-1"}).to_string();
    let err = Douyin::invoke(&FakeHost::new(0), bare).unwrap_err();
    assert_eq!(err.kind(), "auth-expired");
}

#[test]
fn platform_errors_and_timeouts_map_by_delivery() {
    let cases = [
        ("reply", error(28_003_017), "permanent"),
        ("reply", error(28_003_018), "rate-limited"),
        ("reply", error(28_003_070), "permanent"),
        ("reply", Err(FetchError::Timeout), "outcome-unknown"),
        ("list_authorized", Err(FetchError::Timeout), "transient"),
    ];
    for (action, reply, kind) in cases {
        let host = FakeHost::new(0);
        grant(&host, ACCESS, "act.1", "rft.1");
        let (path, input) = if action == "reply" {
            (SEND, reply_input())
        } else {
            ("/im/authorize/user_list/", json!({}))
        };
        host.respond("POST", path, reply);
        let err = Douyin::invoke(&host, call(action, input)).unwrap_err();
        assert_eq!(err.kind(), kind, "{action}");
    }
}

#[test]
fn proactive_group_and_listing_payloads() {
    let host = FakeHost::new(0);
    grant(&host, ACCESS, "act.1", "rft.1");
    host.respond("POST", SEND, answer(json!({"msg_id": "dysent-3"})));
    host.respond(
        "POST",
        "/im/send/msg/group/",
        answer(json!({"msg_id": "grp-1"})),
    );
    host.respond(
        "POST",
        "/im/authorize/user_list/",
        answer(json!({"user_list": [{"open_id": "fan-1", "authorize_time": 5}], "cursor": 1, "has_more": false})),
    );
    let card = json!({"msg_type": 8, "card": {"card_id": "c1"}});
    Douyin::invoke(
        &host,
        call(
            "send_proactive",
            json!({"open_id": "fan-1", "content": card}),
        ),
    )
    .unwrap();
    Douyin::invoke(
        &host,
        call(
            "send_group",
            json!({"group_id": "grp-1", "text": "今晚8点直播"}),
        ),
    )
    .unwrap();
    let out = Douyin::invoke(&host, call("list_authorized", json!({"count": 50}))).unwrap();
    let InvokeOutcome::Done(listing) = out else {
        panic!("listing is synchronous")
    };
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["user_list"][0]["open_id"], "fan-1");

    let requests = host.requests();
    let proactive = body_of(&requests[1]);
    assert_eq!(proactive["scene"], "im.direct_message.bind");
    assert_eq!(proactive["content"], card);
    assert_eq!(body_of(&requests[2])["group_id"], "grp-1");
    assert_eq!(body_of(&requests[3]), json!({"cursor": 0, "count": 50}));
}

#[test]
fn message_inputs_are_checked() {
    let host = FakeHost::new(0);
    let cases = [
        json!({"open_id": "fan-1", "conversation_id": "c"}),
        json!({"open_id": "fan-1", "conversation_id": "c", "text": "a", "content": {"x": 1}}),
        json!({"open_id": "fan-1", "conversation_id": "c", "content": "not an object"}),
        json!({"conversation_id": "c", "text": "a"}),
    ];
    for input in cases {
        let err = Douyin::invoke(&host, call("reply", input.clone())).unwrap_err();
        assert_eq!(err.kind(), "invalid-input", "{input}");
    }
    assert!(host.requests().is_empty());
}

pub(crate) fn webhook(body: &str, signature: Option<&str>, msg_id: Option<&str>) -> WebhookRequest {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(signature) = signature {
        headers.push(("X-Douyin-Signature".to_owned(), signature.to_owned()));
    }
    if let Some(msg_id) = msg_id {
        headers.push(("Msg-Id".to_owned(), msg_id.to_owned()));
    }
    WebhookRequest {
        method: "POST".to_owned(),
        query: vec![],
        headers,
        body: body.as_bytes().to_vec(),
    }
}

pub(crate) fn signed(body: &str, msg_id: Option<&str>) -> WebhookRequest {
    webhook(body, Some(&sign(SECRET, body.as_bytes())), msg_id)
}

#[test]
fn challenge_is_answered_signed_or_not() {
    let body = r#"{"event":"verify_webhook","client_key":"ck1","content":{"challenge":12345}}"#;
    for request in [signed(body, None), webhook(body, None, None)] {
        let outcome = Douyin::parse_webhook(&FakeHost::new(0), account(), request).unwrap();
        assert_eq!(outcome.response.body, br#"{"challenge":12345}"#);
        assert_eq!(outcome.response.content_type, "application/json");
        assert!(outcome.events.is_empty());
    }
    let forged = webhook(body, Some("deadbeef"), None);
    let err = Douyin::parse_webhook(&FakeHost::new(0), account(), forged).unwrap_err();
    assert!(matches!(err, WebhookError::VerificationFailed(_)));
}

pub(crate) fn message_body(event: &str) -> String {
    let content = json!({
        "conversation_short_id": "conv-1", "server_message_id": "srv-7", "conversation_type": 1,
        "message_type": "text", "text": "优惠券", "create_time": 1_700_000_000_123_i64,
        "user_infos": [{"open_id": "fan-1", "nick_name": "小王", "avatar": ""}],
    });
    json!({"event": event, "client_key": "ck1", "from_user_id": "fan-1", "to_user_id": "ent-1",
           "log_id": "log-1", "content": content.to_string()})
    .to_string()
}

#[test]
fn message_events_are_normalized_with_msg_id_as_dedupe_id() {
    let body = message_body("im_receive_msg");
    let outcome =
        Douyin::parse_webhook(&FakeHost::new(0), account(), signed(&body, Some("dymsg-1")))
            .unwrap();
    assert_eq!(outcome.response.status, 200);
    let event = &outcome.events[0];
    assert_eq!(event.kind, "message_received");
    assert_eq!(event.dedupe_id, "dymsg-1");
    assert_eq!(event.contact.as_deref(), Some("fan-1"));
    assert_eq!(event.staff.as_deref(), Some("ent-1"));
    assert_eq!(event.occurred_at_ms, 1_700_000_000_123);
    let attributes: Value = serde_json::from_str(&event.attributes).unwrap();
    assert_eq!(attributes["text"], "优惠券");
    assert_eq!(attributes["conversation_id"], "conv-1");

    let kinds = [
        ("im_enter_direct_msg", Some("entered_conversation")),
        ("im_authorize", Some("authorized")),
        ("group_fans_event", Some("group_member_joined")),
        ("im_group_receive_msg", Some("message_received")),
        ("im_send_msg", None),
    ];
    for (name, kind) in kinds {
        let body = message_body(name);
        let outcome =
            Douyin::parse_webhook(&FakeHost::new(0), account(), signed(&body, None)).unwrap();
        assert_eq!(
            outcome.events.first().map(|e| e.kind.as_str()),
            kind,
            "{name}"
        );
    }
}

#[test]
fn without_msg_id_the_dedupe_id_is_a_stable_digest() {
    let body = message_body("im_receive_msg");
    let a = Douyin::parse_webhook(&FakeHost::new(0), account(), signed(&body, None)).unwrap();
    let b = Douyin::parse_webhook(&FakeHost::new(5), account(), signed(&body, None)).unwrap();
    assert_eq!(a.events[0].dedupe_id, b.events[0].dedupe_id);
    assert_eq!(a.events[0].dedupe_id.len(), 40);
}

#[test]
fn unsigned_forged_or_foreign_events_are_refused() {
    let body = message_body("im_receive_msg");
    let requests = [
        webhook(&body, None, Some("m")),
        webhook(
            &body,
            Some(&sign("other-secret", body.as_bytes())),
            Some("m"),
        ),
        signed(&body.replace("ck1", "ck2"), Some("m")),
    ];
    for request in requests {
        let err = Douyin::parse_webhook(&FakeHost::new(0), account(), request).unwrap_err();
        assert!(
            matches!(err, WebhookError::VerificationFailed(_)),
            "{err:?}"
        );
    }
    let err =
        Douyin::parse_webhook(&FakeHost::new(0), account(), signed("not json", None)).unwrap_err();
    assert!(matches!(err, WebhookError::Malformed(_)));
}

#[test]
fn manifest_is_complete() {
    let manifest = Douyin::describe();
    let names: Vec<&str> = manifest.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["reply", "send_proactive", "send_group", "list_authorized"]
    );
    for action in &manifest.actions {
        let schema: Value = serde_json::from_str(&action.input_schema).unwrap();
        assert_eq!(schema["type"], "object");
        for limit in &action.rate_limits {
            assert!(manifest.rate_limits.iter().any(|l| &l.name == limit));
        }
    }
    assert!(manifest.actions[0].time_critical);
    assert_eq!(manifest.hosts, ["open.douyin.com"]);
    let kinds: Vec<&str> = manifest.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message_received",
            "entered_conversation",
            "authorized",
            "group_member_joined"
        ]
    );
}
