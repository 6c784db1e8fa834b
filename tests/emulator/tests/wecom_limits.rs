//! Per-corp per-API frequency limit: the call after the documented 10,000 a minute gets 45009,
//! and the next minute is fresh. Bursts force 45009 on demand.

mod common;

use common::Emu;
use serde_json::json;
use sop_emulator::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_45009_after_10000_calls_a_minute() {
    let emu = Emu::start(Config::default()).await;
    assert_eq!(emu.running.app.config().wecom.api_limit_per_min, 10_000);
    let token = emu.wecom_token().await;
    // Start of a fresh minute so all calls land in one window.
    let now = emu.running.app.now_ms();
    emu.clock.set(now - now % 60_000 + 60_000);
    let path = format!(
        "/cgi-bin/externalcontact/get?access_token={token}&external_userid=wmEmu0000000007"
    );
    let http = std::sync::Arc::new(common::Http::new(emu.http.base.clone()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (http, path) = (http.clone(), path.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                for _ in 0..1_250 {
                    if http.get(&path).await["errcode"] == 0 {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for w in workers {
        ok += w.await.unwrap();
    }
    assert_eq!(ok, 10_000, "every call up to the limit succeeds");
    let v = emu.http.get(&path).await;
    assert_eq!(v["errcode"], 45009, "{v}");
    // Another API has its own budget.
    let other = format!("/cgi-bin/externalcontact/list?access_token={token}&userid=emu_staff_1");
    assert_eq!(emu.http.get(&other).await["errcode"], 0);
    emu.clock.advance(60_000);
    assert_eq!(emu.http.get(&path).await["errcode"], 0);
    let counters = emu.http.get("/_emulator/counters").await;
    assert_eq!(
        counters["endpoints"]["externalcontact/get"]["rate_limited"],
        1
    );
}

#[tokio::test]
async fn injected_burst_rejects_the_next_calls() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let v = emu
        .http
        .post(
            "/_emulator/rate_limit/burst",
            &json!({"api": "externalcontact/list", "calls": 2}),
        )
        .await;
    assert_eq!(v["burst"]["calls"], 2);
    let list = format!("/cgi-bin/externalcontact/list?access_token={token}&userid=emu_staff_1");
    assert_eq!(emu.http.get(&list).await["errcode"], 45009);
    assert_eq!(emu.http.get(&list).await["errcode"], 45009);
    assert_eq!(emu.http.get(&list).await["errcode"], 0);

    emu.http
        .post(
            "/_emulator/rate_limit/burst",
            &json!({"duration_ms": 1_000}),
        )
        .await;
    assert_eq!(emu.http.get(&list).await["errcode"], 45009);
    emu.clock.advance(1_000);
    assert_eq!(emu.http.get(&list).await["errcode"], 0);
}

/// With `corps: 3`, each corp (`ww0emulator000001`, `…_2`, `…_3`) gets its own tokens and its
/// own per-API budget: one corp at its limit does not limit another, and the counters show
/// each corp's calls and 45009 answers.
#[tokio::test]
async fn several_corps_have_their_own_tokens_and_limits() {
    let mut cfg = Config::default();
    cfg.wecom.corps = 3;
    cfg.wecom.api_limit_per_min = 2;
    let emu = Emu::start(cfg).await;
    let now = emu.running.app.now_ms();
    emu.clock.set(now - now % 60_000 + 60_000);
    let world = emu.http.get("/_emulator/world").await;
    assert_eq!(
        world["corp_ids"],
        json!([
            "ww0emulator000001",
            "ww0emulator000001_2",
            "ww0emulator000001_3"
        ])
    );
    let token = |corp: &'static str| {
        let http = &emu.http;
        async move {
            let v = http
                .get(&format!(
                    "/cgi-bin/gettoken?corpid={corp}&corpsecret=emu-secret"
                ))
                .await;
            assert_eq!(v["errcode"], 0, "{corp}: {v}");
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let (t1, t3) = (
        token("ww0emulator000001").await,
        token("ww0emulator000001_3").await,
    );
    assert_ne!(t1, t3);
    for corp in [
        "ww0emulator000001_4",
        "ww0emulator000001_1",
        "ww0emulator000001_03",
    ] {
        let v = emu
            .http
            .get(&format!(
                "/cgi-bin/gettoken?corpid={corp}&corpsecret=emu-secret"
            ))
            .await;
        assert_eq!(v["errcode"], 40013, "{corp} is not served: {v}");
    }
    let get = |t: &str| {
        format!("/cgi-bin/externalcontact/get?access_token={t}&external_userid=wmEmu0000000007")
    };
    for _ in 0..2 {
        assert_eq!(emu.http.get(&get(&t1)).await["errcode"], 0);
    }
    assert_eq!(emu.http.get(&get(&t1)).await["errcode"], 45009);
    // The third corp's budget is untouched by the first's.
    for _ in 0..2 {
        assert_eq!(emu.http.get(&get(&t3)).await["errcode"], 0);
    }
    assert_eq!(emu.http.get(&get(&t3)).await["errcode"], 45009);
    let c = emu.http.get("/_emulator/counters").await;
    let corps = &c["wecom_corps"];
    assert_eq!(
        corps["ww0emulator000001"],
        json!({"calls": 3, "rate_limited": 1})
    );
    assert_eq!(
        corps["ww0emulator000001_2"],
        json!({"calls": 0, "rate_limited": 0})
    );
    assert_eq!(
        corps["ww0emulator000001_3"],
        json!({"calls": 3, "rate_limited": 1})
    );
    assert_eq!(c["endpoints"]["externalcontact/get"]["rate_limited"], 2);
}
