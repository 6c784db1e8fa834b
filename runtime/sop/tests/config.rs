//! The configuration file: the sample is valid, and mistakes fail at start with the key named.

use std::path::{Path, PathBuf};

use sop::config::{Config, ConfigError, account_problems};

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_text(text, Path::new("sop.toml"), Path::new("/etc/sop"))
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn the_sample_config_is_valid_with_its_secrets_set() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "admin-token-value\n").unwrap();
    let sample =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sop.example.toml"))
            .unwrap()
            .replace("/etc/sop/admin.token", &token.display().to_string());
    // SAFETY of the test: these variables are only read by this test binary's config tests.
    for (k, v) in [
        ("SOP_READ_TOKEN", "read-token-value"),
        ("DEMO_WECOM_SECRET", "emu-secret"),
        ("DEMO_WECOM_TOKEN", "emuToken"),
        (
            "DEMO_WECOM_AES_KEY",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        ),
        ("DEMO_DOUYIN_SECRET", "emu-douyin-secret"),
        ("DEMO_DOUYIN_CODE", "any-code"),
    ] {
        unsafe_free_set_env(k, v);
    }
    let config = load(&sample).unwrap();
    assert_eq!(config.file.data_dir, PathBuf::from("/var/lib/sop"));
    let wecom = &config.accounts["demo-wecom"];
    assert_eq!(wecom.plugin, "wecom");
    assert_eq!(wecom.config["secret"], "emu-secret");
    assert_eq!(wecom.config["agent_id"], 1000002);
    assert!(
        !format!("{config:?}").contains("emu-secret"),
        "secrets leak into Debug"
    );
    assert_eq!(
        config.admin_token.as_ref().unwrap().expose(),
        "admin-token-value"
    );
    assert_eq!(
        config
            .playbook_account("douyin-dm", Some("demo-brand"))
            .unwrap(),
        ("demo-brand".into(), "demo-douyin".into())
    );
    assert_eq!(
        config.playbook_account("welcome", None).unwrap(),
        ("demo-brand".into(), "demo-wecom".into())
    );
    // The sample's account JSON is what the bundled plugins' manifests accept.
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    for account in config.accounts.values() {
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(manifests.join(format!("{}.json", account.plugin))).unwrap(),
        )
        .unwrap();
        let problems = account_problems(&manifest["account_schema"], &account.config);
        assert!(problems.is_empty(), "{}: {problems:?}", account.id);
    }
}

/// Environment variables are process-wide; every test here sets distinct names.
fn unsafe_free_set_env(k: &str, v: &str) {
    // Edition 2024 makes set_var unsafe; the test process sets each name once, before use.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(k, v)
    };
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let config = load("").unwrap();
    assert_eq!(config.file.data_dir, PathBuf::from("/etc/sop/sop-data"));
    assert_eq!(config.file.listen.ingress.to_string(), "127.0.0.1:8080");
    assert_eq!(config.file.listen.admin.to_string(), "127.0.0.1:9090");
    assert_eq!(config.file.ingress.timeout_ms, 4_500);
    assert_eq!(
        config.file.storage.sled_options().cache_capacity_bytes,
        64 << 20
    );
    assert!(config.admin_token.is_none() && config.accounts.is_empty());
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let e = err("data_dir = \"x\"\n\n[listen]\ningres = \"0.0.0.0:1\"\n");
    assert!(e.contains("ingres") && e.contains("line 4"), "{e}");
    let e = err("[tenants.t.accounts.a]\nplugin = \"wecom\"\nsetings = {}\n");
    assert!(e.contains("setings") && e.contains("line 3"), "{e}");
    let e = err("[plugin.wecom.limits]\nmemroy_bytes = 1\n");
    assert!(e.contains("memroy_bytes"), "{e}");
}

#[test]
fn wrong_types_and_values_are_named() {
    let e = err("[listen]\nadmin = \"not an address\"\n");
    assert!(e.contains("admin") && e.contains("line 2"), "{e}");
    let e = err("[tenants.t]\ntime_zone = \"Mars/Olympus\"\n");
    assert!(e.contains("tenants.t.time_zone"), "{e}");
    let e = err("[listen]\ningress = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:1\"\n");
    assert!(e.contains("listen.ingress and listen.admin"), "{e}");
    let e = err("[ingress]\ntimeout_ms = 0\n");
    assert!(e.contains("ingress.timeout_ms"), "{e}");
    let e = err("[storage]\ncache_mib = 0\n");
    assert!(e.contains("storage.cache_mib must be between 1"), "{e}");
    let e = err("[storage]\ncache = 8\n");
    assert!(e.contains("cache") && e.contains("line 2"), "{e}");
    let small = load("[storage]\ncache_mib = 8\n").unwrap();
    assert_eq!(
        small.file.storage.sled_options().cache_capacity_bytes,
        8 << 20
    );
    let e = err("[admin]\nread_token = { vault = \"x\" }\n");
    assert!(e.contains("vault"), "{e}");
}

#[test]
fn credentials_in_the_config_text_are_refused() {
    let e = err(
        "[tenants.t.accounts.a]\nplugin = \"wecom\"\nsettings = { corp_id = \"ww1\", secret = \"hunter2\" }\n",
    );
    assert!(
        e.contains("tenants.t.accounts.a.settings.secret looks like a credential"),
        "{e}"
    );
    assert!(
        !e.contains("hunter2"),
        "the error must not repeat the secret: {e}"
    );
}

#[test]
fn missing_secrets_are_named_by_source_not_value() {
    let e = err(
        "[tenants.t.accounts.a]\nplugin = \"wecom\"\nsecrets = { secret = { env = \"SOP_TEST_NOT_SET_1\" } }\n\
         [admin]\nadmin_token = { file = \"/nonexistent/sop/token\" }\n",
    );
    assert!(e.contains("tenants.t.accounts.a.secrets.secret"), "{e}");
    assert!(e.contains("SOP_TEST_NOT_SET_1"), "{e}");
    assert!(
        e.contains("admin.admin_token") && e.contains("/nonexistent/sop/token"),
        "{e}"
    );
}

#[test]
fn account_ids_are_unique_and_references_resolve() {
    let e = err(
        "[tenants.a.accounts.shop]\nplugin = \"wecom\"\n[tenants.b.accounts.shop]\nplugin = \"wecom\"\n",
    );
    assert!(
        e.contains("account id shop is also used by tenant a"),
        "{e}"
    );
    let e =
        err("[tenants.a]\ndefault_account = \"nope\"\n[tenants.a.playbooks]\nwelcome = \"gone\"\n");
    assert!(e.contains("tenants.a.default_account: account nope"), "{e}");
    assert!(
        e.contains("tenants.a.playbooks.welcome: account gone"),
        "{e}"
    );
    let e = err("[tenants.a.accounts.\"has space\"]\nplugin = \"wecom\"\n");
    assert!(e.contains("webhook URLs"), "{e}");
}

#[test]
fn playbook_accounts_need_a_choice_when_ambiguous() {
    let config = load(
        "[tenants.a.accounts.x]\nplugin = \"wecom\"\n[tenants.a.accounts.y]\nplugin = \"douyin\"\n\
         [tenants.b.accounts.z]\nplugin = \"wecom\"\n",
    )
    .unwrap();
    let e = config.playbook_account("welcome", Some("a")).unwrap_err();
    assert!(e.contains("has 2 accounts"), "{e}");
    let e = config.playbook_account("welcome", None).unwrap_err();
    assert!(e.contains("names no tenant"), "{e}");
    assert_eq!(
        config.playbook_account("welcome", Some("b")).unwrap(),
        ("b".into(), "z".into())
    );
    assert!(config.playbook_account("welcome", Some("c")).is_err());
}

#[test]
fn account_json_is_checked_against_the_schema() {
    let schema = serde_json::json!({
        "type": "object", "additionalProperties": false, "required": ["corp_id", "agent_id"],
        "properties": {"corp_id": {"type": "string"}, "agent_id": {"type": "integer"},
                       "token": {"type": ["string", "null"]}}
    });
    let p = account_problems(&schema, &serde_json::json!({"corp_id": 1, "extra": true}));
    assert_eq!(
        p,
        [
            "missing required field agent_id",
            "field corp_id should be \"string\"",
            "unknown field extra"
        ]
    );
    assert!(
        account_problems(&schema, &serde_json::json!({"corp_id": "w", "agent_id": 2})).is_empty()
    );
}

#[test]
fn syntax_errors_do_not_repeat_inline_credentials() {
    for text in [
        "[tenants.t.accounts.a]\nplugin = \"wecom\"\nsettings = { corp_id = \"ww1\", secret = \"hunter2\" \n",
        "[admin]\nadmin_token = \"hunter2\n",
        "[tenants.t.accounts.a]\nsettings = { encoding_aes_key = 'hunter2', agent_id = }\n",
    ] {
        let e = err(text);
        assert!(!e.contains("hunter2"), "the error repeats the secret: {e}");
        assert!(e.contains("line") && e.contains("***"), "{e}");
    }
    // Other values on the quoted line are still shown: they locate the mistake.
    let e = err("[listen]\nadmin = \"not an address\"\n");
    assert!(e.contains("not an address"), "{e}");
}

#[test]
fn a_config_file_that_is_not_utf8_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sop.toml");
    std::fs::write(&path, b"data_dir = \"\xff\xfe\"\n").unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(e.contains("sop.toml") && e.contains("UTF-8"), "{e}");
}

#[test]
fn deeply_nested_values_are_an_error_not_a_crash() {
    for deep in [
        format!("data_dir = {}", "[".repeat(100_000)),
        format!("x = {}", "{ a = ".repeat(100_000)),
    ] {
        // A 2 MiB stack, as a tokio worker's: the parser must not recurse without bound.
        let e = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || err(&deep))
            .unwrap()
            .join()
            .unwrap();
        assert!(e.contains("line 1"), "{e:.300}");
    }
}
