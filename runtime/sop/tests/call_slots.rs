//! More plugin calls at once than the host has instances: they wait for a free instance
//! instead of failing. (Found by the crash loop in `tests/reliability`: a broadcast
//! dispatches hundreds of sends at once, and each "no free instance" failure cost a send a
//! back-off of half a minute or more, and the ingress answered the platform 500.)

mod support;

use std::sync::Arc;

use sop::plugins::HostPlugins;
use sop_plugin_host::{HostConfig, WebhookRequest};
use wecom_crypto::Crypto;

use support::{WECOM_AES_KEY as AES_KEY, WECOM_CORP as CORP, WECOM_TOKEN as TOKEN};
const POOL: u32 = 2;

async fn plugins() -> Arc<HostPlugins> {
    let config = HostConfig {
        max_concurrent_calls: POOL,
        ..HostConfig::default()
    };
    Arc::new(
        support::wecom_host_plugins(config)
            .await
            .with_call_slots(POOL),
    )
}

fn callback(i: usize) -> WebhookRequest {
    let xml = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>1772416800</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>\
         <UserID><![CDATA[emu_staff_1]]></UserID><ExternalUserID><![CDATA[wmEmu{i:010}]]></ExternalUserID>\
         <State><![CDATA[channel_1]]></State><WelcomeCode><![CDATA[CODE{i}]]></WelcomeCode></xml>"
    );
    let crypto = Crypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let (ts, nonce) = ("1772416800", format!("nonce{i}"));
    let (body, signature) = crypto.encrypt_callback(&xml, [7; 16], ts, &nonce, "1000002");
    WebhookRequest {
        method: "POST".into(),
        query: vec![
            ("msg_signature".into(), signature),
            ("timestamp".into(), ts.into()),
            ("nonce".into(), nonce),
        ],
        headers: vec![("content-type".into(), "text/xml".into())],
        body: body.into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_instance_pool_wait_for_a_free_instance_instead_of_failing() {
    let plugins = plugins().await;
    let calls: Vec<_> = (0..8 * POOL as usize)
        .map(|i| {
            let plugins = plugins.clone();
            tokio::spawn(async move { plugins.parse_webhook("wecom", "acme", &callback(i)).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let result = call.await.unwrap();
        assert!(result.is_ok(), "call {i} failed: {:?}", result.err());
    }
    assert_eq!(plugins.free_call_slots(), POOL as usize);
}
