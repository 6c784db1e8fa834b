//! The webhook ingress with the real WeCom plugin: a valid callback is committed durably
//! before the platform gets 200 and the plugin's exact body; a forged one is refused and
//! changes nothing; URL verification answers the bare plaintext.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sop_store::Store;
use tower::ServiceExt;
use wecom_crypto::Crypto;

use support::{WECOM_AES_KEY as AES_KEY, WECOM_CORP as CORP, WECOM_TOKEN as TOKEN};

fn add_contact_xml() -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>1772416800</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>\
         <UserID><![CDATA[emu_staff_1]]></UserID><ExternalUserID><![CDATA[wmEmu0000000001]]></ExternalUserID>\
         <State><![CDATA[channel_1]]></State><WelcomeCode><![CDATA[WELCOMECODE1]]></WelcomeCode></xml>"
    )
}

fn post(uri: String, body: String) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "text/xml")
        .body(Body::from(body))
        .unwrap()
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_callback_is_committed_before_200_and_a_forged_one_changes_nothing() {
    let (shared, store) = support::shared(support::wecom_plugins().await);
    let app = sop::ingress::router(shared, 1 << 20);
    let crypto = Crypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let (ts, nonce) = ("1772416800", "nonce1");
    let (body, signature) =
        crypto.encrypt_callback(&add_contact_xml(), [7; 16], ts, nonce, "1000002");

    // Forged: signed with another token.
    let forger = Crypto::new("notTheToken", AES_KEY, CORP).unwrap();
    let (forged, forged_sig) =
        forger.encrypt_callback(&add_contact_xml(), [7; 16], ts, nonce, "1000002");
    let uri =
        |sig: &str| format!("/hooks/wecom/acme?msg_signature={sig}&timestamp={ts}&nonce={nonce}");
    let (status, _) = send(&app, post(uri(&forged_sig), forged)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A valid signature over a tampered body is refused as well.
    let tampered = body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA");
    let (status, _) = send(&app, post(uri(&signature), tampered)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        store.events(None, 10).unwrap().is_empty(),
        "a refused callback changed the store"
    );

    // Unknown accounts and plugins are 404, never parsed.
    let (status, _) = send(
        &app,
        post(
            format!("/hooks/wecom/nobody?msg_signature={signature}&timestamp={ts}&nonce={nonce}"),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Valid: committed durably before the answer, which is exactly the plugin's.
    let (status, text) = send(&app, post(uri(&signature), body.clone())).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "success"));
    let events = store.events(None, 10).unwrap();
    assert_eq!(
        events.len(),
        1,
        "the event must be committed when 200 is sent"
    );
    assert_eq!(events[0].1.kind, "wecom.contact_added");
    let dedupe = events[0]
        .1
        .dedupe_id
        .clone()
        .expect("the plugin gives a dedupe id");
    assert!(store.event_seen("wecom:acme", &dedupe).unwrap().is_some());

    // The platform's retry of the same callback is answered the same and not committed twice.
    let (status, text) = send(&app, post(uri(&signature), body)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "success"));
    assert_eq!(store.events(None, 10).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn url_verification_answers_the_bare_plaintext_and_limits_hold() {
    let (shared, store) = support::shared(support::wecom_plugins().await);
    let app = sop::ingress::router(shared, 4096);
    let crypto = Crypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let echostr = crypto.encrypt("echo-1234567890", [3; 16]);
    let sig = crypto.sign("1772416800", "n2", &echostr);
    let enc = |s: &str| {
        s.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    };
    let req = Request::builder()
        .method("GET")
        .uri(format!(
            "/hooks/wecom/acme?msg_signature={sig}&timestamp=1772416800&nonce=n2&echostr={}",
            enc(&echostr)
        ))
        .body(Body::empty())
        .unwrap();
    let (status, text) = send(&app, req).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "echo-1234567890"));
    // Bodies over the limit are refused before the plugin sees them.
    let (status, _) = send(&app, post("/hooks/wecom/acme".into(), "x".repeat(5000))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let req = Request::builder()
        .method("PUT")
        .uri("/hooks/wecom/acme")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert!(store.events(None, 10).unwrap().is_empty());
}
