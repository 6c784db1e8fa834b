//! Secrets never leave the daemon: with known values for every credential (the admin and
//! read tokens, a WeCom app secret, callback token and AES key), drive the daemon's pieces
//! through good and bad requests and configurations, and look for the values in everything it
//! says: every log line (all levels, plugin logs included), the `/metrics` text, every admin
//! API answer and every configuration error.
//!
//! One test per binary: it installs the process-wide log subscriber and metrics recorder.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sop::admin::ROUTES;
use sop::config::Config;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Appends to [`LOG`].
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn request(method: &str, uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_logs_errors_metrics_or_the_admin_api() {
    // Everything at every level, except the compiler's own chatter while plugins load.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,cranelift=off,regalloc2=off,wasmtime=info,wasmtime_cranelift=off",
        ))
        .with_ansi(false)
        .with_writer(|| Capture)
        .init();
    let metrics = sop::observability::install_metrics().unwrap();
    let secrets = [
        support::ADMIN,
        support::READ,
        support::WECOM_SECRET,
        support::WECOM_TOKEN,
        support::WECOM_AES_KEY,
    ];
    let mut said: Vec<(String, String)> = Vec::new();

    // Webhooks: valid, a retry, forged, tampered, malformed, verification, unknown account.
    let (shared, _) = support::shared(support::wecom_plugins().await);
    shared.set_ready(true);
    let ingress = sop::ingress::router(shared.clone(), 1 << 16);
    let xml = support::add_contact_xml("wmSecretTest");
    let forger =
        wecom_crypto::Crypto::new("notTheToken", support::WECOM_AES_KEY, support::WECOM_CORP)
            .unwrap();
    let (forged, forged_sig) = forger.encrypt_callback(&xml, [1; 16], "1772416800", "n", "1000002");
    let mut requests = vec![
        support::signed_wecom_callback(&xml, "n1"),
        support::signed_wecom_callback(&xml, "n1"),
        Request::builder()
            .method("POST")
            .uri(format!(
                "/hooks/wecom/acme?msg_signature={forged_sig}&timestamp=1772416800&nonce=n"
            ))
            .body(Body::from(forged))
            .unwrap(),
        request(
            "POST",
            "/hooks/wecom/acme?msg_signature=x&timestamp=1&nonce=n",
            None,
            "<xml><Encrypt>AAAA</Encrypt></xml>",
        ),
        request("POST", "/hooks/wecom/acme", None, "\u{0}\u{ff}garbage"),
        request(
            "GET",
            "/hooks/wecom/acme?msg_signature=x&timestamp=1&nonce=n&echostr=abc",
            None,
            "",
        ),
        request(
            "POST",
            "/hooks/wecom/nobody?msg_signature=x",
            None,
            "<xml/>",
        ),
        request("POST", "/hooks/wecom/acme?%%%", None, ""),
    ];
    let mut tampered = support::signed_wecom_callback(&xml, "n9");
    *tampered.body_mut() = Body::from("<xml><Encrypt><![CDATA[AAAAbroken]]></Encrypt></xml>");
    requests.push(tampered);
    let mut statuses = Vec::new();
    for req in requests {
        let what = format!("webhook {} {}", req.method(), req.uri());
        let (status, text) = support::send(&ingress, req).await;
        statuses.push(status);
        said.push((what, text));
    }
    assert_eq!(statuses[0], StatusCode::OK, "the valid callback: {said:?}");
    assert!(
        statuses[2..].iter().all(|s| s.is_client_error()),
        "{statuses:?}"
    );

    // The admin API: every route with each token and none, with a body it accepts.
    let admin = sop::admin::router(shared.clone(), 1 << 20);
    for (method, path, _) in ROUTES {
        let path = path
            .replace("{id}", "x1")
            .replace("{version}", "1")
            .replace("{tenant}", "demo-brand");
        for token in [
            None,
            Some(support::READ),
            Some(support::ADMIN),
            Some("wrong"),
        ] {
            let body = if path.ends_with("/start") {
                r#"{"contacts": ["c1"]}"#
            } else {
                "{}"
            };
            let (status, text) = support::send(&admin, request(method, &path, token, body)).await;
            said.push((format!("admin {method} {path} {status}"), text));
        }
    }

    // Configuration: loaded with the secrets from files and the environment, and refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.token"), support::ADMIN).unwrap();
    std::fs::write(dir.path().join("aes.key"), support::WECOM_AES_KEY).unwrap();
    // Edition 2024 makes set_var unsafe; this test binary reads the name only here, after.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SOP_SECRETS_TEST_APP_SECRET", support::WECOM_SECRET)
    };
    let good = format!(
        "data_dir = \"{dir}\"\n[admin]\nadmin_token = {{ file = \"{dir}/admin.token\" }}\n\
         [tenants.t.accounts.a]\nplugin = \"wecom\"\nsettings = {{ corp_id = \"ww1\", agent_id = 1 }}\n\
         secrets = {{ secret = {{ env = \"SOP_SECRETS_TEST_APP_SECRET\" }}, \
         encoding_aes_key = {{ file = \"{dir}/aes.key\" }} }}\n",
        dir = dir.path().display()
    );
    let config = Config::from_text(&good, Path::new("sop.toml"), dir.path())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.accounts["a"].config["secret"], support::WECOM_SECRET);
    said.push(("config Debug".into(), format!("{config:?}")));
    let bad = [
        // A secret given twice, inline and by reference.
        good.replace(
            "agent_id = 1 }",
            &format!("agent_id = 1, token = \"{}\" }}", support::WECOM_TOKEN),
        ),
        // A setting of the wrong type beside good secrets.
        good.replace("agent_id = 1", "agent_id = \"one\""),
        // An unknown key beside good secrets.
        good.replace("[admin]\n", "[admin]\nsurprise = 1\n"),
        // The admin token as the read token too.
        good.replace(
            "[admin]\n",
            &format!(
                "[admin]\nread_token = {{ file = \"{}/admin.token\" }}\n",
                dir.path().display()
            ),
        ),
    ];
    for text in bad {
        if let Err(e) = Config::from_text(&text, Path::new("sop.toml"), dir.path()) {
            said.push(("config error".into(), e.to_string()));
        }
    }

    let logs = String::from_utf8(LOG.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook refused"),
        "the log capture works and saw the refusals:\n{logs}"
    );
    said.push(("logs".into(), logs));
    said.push(("metrics".into(), metrics.render()));
    assert!(
        said.last()
            .unwrap()
            .1
            .contains("sop_ingress_requests_total")
    );
    for (what, text) in &said {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what} shows the secret {secret:?}:\n{text}"
            );
        }
    }
}
