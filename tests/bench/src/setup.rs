//! What the daemon runs in each scenario: the demo setup, or many WeCom accounts (one
//! emulated corp each) with a broadcast playbook per account.

use std::path::Path;

use anyhow::{Context as _, Result};
use sop_harness::{Profile, WorldSpec, workspace_root};

/// The demo (the bundled playbooks, one WeCom and one Douyin account), release build, quiet
/// logs: per-event info lines would cost the daemon more than they tell here. The bench's
/// `--daemon-env` is added to the daemon's environment and `--store-cache-mib` to its config.
pub fn demo_spec(a: &crate::Args) -> WorldSpec {
    tuned(WorldSpec::demo(), a)
}

/// `spec` as every scenario runs it: release build, quiet logs, the bench's daemon flags.
fn tuned(mut spec: WorldSpec, a: &crate::Args) -> WorldSpec {
    spec.profile = Profile::Release;
    for (k, v) in &mut spec.daemon_env {
        if k == "RUST_LOG" {
            *v = "warn".into();
        }
    }
    spec.daemon_env.extend(a.daemon_env.iter().cloned());
    if let Some(mib) = a.store_cache_mib {
        spec.config_template = with_store_cache(&spec.config_template, mib);
    }
    spec
}

/// `config` with its `[storage]` section's `cache_mib` set (the templates have none).
fn with_store_cache(config: &str, mib: u64) -> String {
    format!("{config}\n[storage]\ncache_mib = {mib}\n")
}

/// Calls a second the daemon makes through one WeCom account at most: the manifest's
/// `api_per_corp_hour` (150,000) less the pacing's 2 % headroom, paced evenly. It binds
/// before `api_per_corp_minute` (10,000, 163/s) does.
pub const WECOM_PACED_CALLS_PER_S: f64 = 150_000.0 * 0.98 / 3600.0;

/// The emulator's id of corp `index` (0-based), as `sop-emulator --corps` numbers them.
pub fn corp_id(index: u32) -> String {
    const FIRST: &str = "ww0emulator000001";
    if index == 0 {
        FIRST.into()
    } else {
        format!("{FIRST}_{}", index + 1)
    }
}

/// The daemon's id of account `index`. The first is `demo-wecom`: the harness points the
/// emulator's callbacks at that account's webhook.
pub fn account_id(index: u32) -> String {
    if index == 0 {
        "demo-wecom".into()
    } else {
        format!("acct-{:03}", index + 1)
    }
}

/// The broadcast playbook acting for account `index`.
pub fn broadcast_id(index: u32) -> String {
    format!("bcast-{:03}", index + 1)
}

/// The welcome playbook of account `index`.
pub fn welcome_id(index: u32) -> String {
    format!("welcome-{:03}", index + 1)
}

/// The tenant of account `index`: one account per tenant, because an event enrolls into
/// every playbook of its tenant, whichever account it came through.
pub fn tenant_id(index: u32) -> String {
    format!("brand-{:03}", index + 1)
}

/// A daemon config template (harness placeholders kept) with `accounts` tenants of one
/// WeCom account each, on the emulator's corps, and every account's `api_per_corp_minute`
/// and `outcome_query_per_corp_minute` tightened to `limit_per_min` (0 keeps the manifest's 10,000).
pub fn accounts_config(accounts: u32, limit_per_min: u32) -> String {
    let mut out = String::from(
        "data_dir = \"@WORK@/data\"\nplaybooks = \"@PLAYBOOKS@\"\n\n\
         [listen]\ningress = \"127.0.0.1:@INGRESS@\"\nadmin = \"127.0.0.1:@ADMIN@\"\n\n\
         [admin]\nadmin_token = { file = \"@WORK@/admin.token\" }\n\n\
         [plugins]\ndir = \"@WORK@/plugins\"\nmanifests = \"@ROOT@/playbooks/plugins\"\n\n\
         [plugin.wecom.network]\nrepoint = { \"qyapi.weixin.qq.com\" = \"http://127.0.0.1:@EMU@\" }\n\
         allow_private = [\"127.0.0.1/32\"]\n\n\
         [plugin.douyin.network]\nrepoint = { \"open.douyin.com\" = \"http://127.0.0.1:@EMU@\" }\n\
         allow_private = [\"127.0.0.1/32\"]\n",
    );
    for i in 0..accounts {
        out.push_str(&format!(
            "\n[tenants.{tenant}]\ntime_zone = \"Asia/Shanghai\"\n\n\
             [tenants.{tenant}.accounts.{account}]\nplugin = \"wecom\"\n\
             settings = {{ corp_id = \"{corp}\", agent_id = 1000002 }}\n\
             secrets = {{ secret = {{ env = \"DEMO_WECOM_SECRET\" }}, token = {{ env = \"DEMO_WECOM_TOKEN\" }}, \
             encoding_aes_key = {{ env = \"DEMO_WECOM_AES_KEY\" }} }}\n",
            tenant = tenant_id(i),
            account = account_id(i),
            corp = corp_id(i)
        ));
    }
    out.push_str("\n[policy]\nquiet_hours = \"off\"\n");
    if limit_per_min > 0 {
        // The emulator limits every API of a corp alike: the sends' and the outcome
        // checks' queries (paced on their own manifest limit).
        for limit in ["api_per_corp_minute", "outcome_query_per_corp_minute"] {
            out.push_str(&format!(
                "\n[[policy.rate_limits]]\nplugin = \"wecom\"\nlimit = \"{limit}\"\n\
                 max = {limit_per_min}\nper_seconds = 60\n"
            ));
        }
    }
    out
}

/// What a generated broadcast says to each contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texts {
    /// One text for everyone: the runtime merges the sends into tasks of many contacts.
    Shared,
    /// A text naming the contact (standing for a greeting by name, which the bench's contacts
    /// lack): one task per contact, so the accounts' pacing binds.
    PerContact,
}

/// The broadcast playbook for account `index`: started by the admin API for a list of
/// contacts, one marketing `mass_send_contacts` invocation per contact (one task each, unless
/// the runtime merges them into tasks of many contacts).
pub fn broadcast_playbook(index: u32, texts: Texts) -> String {
    let greeting = match texts {
        Texts::Shared => "",
        Texts::PerContact => "{{ contact.id }}，",
    };
    format!(
        "id: {id}\nversion: 1\nname: bench broadcast {n}\ntenant: {tenant}\n\
         triggers:\n  - manual: true\n\
         entry:\n  repeat: once\n\
         policy:\n  category: marketing\n  quiet_hours: \"off\"\n\
         steps:\n  - id: send\n    action: wecom.mass_send_contacts\n    params:\n\
         \x20     contacts: [\"{{{{ contact.id }}}}\"]\n\
         \x20     text: \"{greeting}双十二预售开启，老客专享 8 折，回复 TD 退订\"\n",
        id = broadcast_id(index),
        n = index + 1,
        tenant = tenant_id(index),
    )
}

/// The bundled welcome playbook (`welcome_yaml`) for account `index`: its id and tenant.
pub fn welcome_playbook(welcome_yaml: &str, index: u32) -> Result<String> {
    let (id, tenant) = ("id: welcome\n", "tenant: demo-brand\n");
    anyhow::ensure!(
        welcome_yaml.contains(id) && welcome_yaml.contains(tenant),
        "playbooks/welcome.yaml no longer has {id:?} and {tenant:?}"
    );
    Ok(welcome_yaml
        .replacen(id, &format!("id: {}\n", welcome_id(index)), 1)
        .replacen(tenant, &format!("tenant: {}\n", tenant_id(index)), 1))
}

/// Writes the playbooks of [`accounts_config`] into `dir`: per account, the bundled welcome
/// playbook and/or a broadcast.
pub fn write_playbooks(
    dir: &Path,
    accounts: u32,
    welcome: bool,
    broadcast: Option<Texts>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = workspace_root().join("playbooks/welcome.yaml");
    let yaml = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    for i in 0..accounts {
        let mut files = Vec::new();
        if welcome {
            files.push((welcome_id(i), welcome_playbook(&yaml, i)?));
        }
        if let Some(texts) = broadcast {
            files.push((broadcast_id(i), broadcast_playbook(i, texts)));
        }
        for (id, text) in files {
            let path = dir.join(format!("{id}.yaml"));
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// A scratch directory removed on drop (the generated playbooks of one run).
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new empty directory under the system's temp dir.
    pub fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "sop-bench-playbooks-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A world of `accounts` tenants (see [`accounts_config`]) with their playbooks, and an
/// emulator serving as many corps with `contacts` people and `limit_per_min` per API (0 =
/// none). Keep the returned dir as long as the world.
pub fn accounts_spec(
    a: &crate::Args,
    accounts: u32,
    limit_per_min: u32,
    contacts: u32,
    welcome: bool,
    broadcast: Option<Texts>,
) -> Result<(WorldSpec, TempDir)> {
    let playbooks = TempDir::new()?;
    write_playbooks(playbooks.path(), accounts, welcome, broadcast)?;
    let mut spec = WorldSpec::demo();
    spec.config_template = accounts_config(accounts, limit_per_min);
    let mut spec = tuned(spec, a);
    spec.playbooks = playbooks.path().to_owned();
    spec.emulator_args = [
        "--seed",
        "7",
        "--rate",
        "0",
        "--contacts",
        &contacts.max(2_000).to_string(),
        "--corps",
        &accounts.to_string(),
        "--api-limit-per-min",
        &limit_per_min.to_string(),
        // Latencies are read from every callback's time: a 10-minute soak raises more than
        // the default 100,000 the emulator keeps.
        "--keep-records",
        "1000000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Ok((spec, playbooks))
}

/// The emulator's id of contact `index` (`wmEmu` and ten digits).
pub fn contact_id(index: u32) -> String {
    format!("wmEmu{index:010}")
}

/// Contacts `0..total` split over `parts` as evenly as possible: part `i`'s index range.
pub fn share(total: u32, parts: u32, i: u32) -> std::ops::Range<u32> {
    let (base, extra) = (total / parts, total % parts);
    let start = i * base + i.min(extra);
    start..start + base + u32::from(i < extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_account_and_its_playbook() {
        let text = accounts_config(3, 100)
            .replace("@WORK@", "/w")
            .replace("@PLAYBOOKS@", "/p")
            .replace("@ROOT@", "/r")
            .replace("@EMU@", "1")
            .replace("@INGRESS@", "2")
            .replace("@ADMIN@", "3");
        let v: toml::Value = toml::from_str(&text).unwrap();
        let tenants = v["tenants"].as_table().unwrap();
        assert_eq!(tenants.len(), 3);
        assert_eq!(
            tenants["brand-003"]["accounts"]["acct-003"]["settings"]["corp_id"].as_str(),
            Some("ww0emulator000001_3")
        );
        assert_eq!(
            tenants["brand-001"]["accounts"]["demo-wecom"]["settings"]["corp_id"].as_str(),
            Some("ww0emulator000001")
        );
        assert_eq!(v["policy"]["rate_limits"][0]["max"].as_integer(), Some(100));
        let unlimited: toml::Value =
            toml::from_str(&accounts_config(1, 0).replace('@', "x")).unwrap();
        assert!(unlimited["policy"].get("rate_limits").is_none());
    }

    #[test]
    fn generated_playbooks_pass_the_checker() {
        let root = workspace_root();
        let catalog = sop_dsl::Catalog::load_dir(&root.join("playbooks/plugins")).unwrap();
        let loaded = sop_dsl::load(&broadcast_playbook(41, Texts::PerContact), Some(&catalog));
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        assert_eq!(loaded.playbook.id, "bcast-042");
        assert_eq!(loaded.playbook.tenant.as_deref(), Some("brand-042"));
        let yaml = std::fs::read_to_string(root.join("playbooks/welcome.yaml")).unwrap();
        let loaded = sop_dsl::load(&welcome_playbook(&yaml, 6).unwrap(), Some(&catalog));
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        assert_eq!(loaded.playbook.id, "welcome-007");
        assert_eq!(loaded.playbook.tenant.as_deref(), Some("brand-007"));
        assert!(welcome_playbook("id: other\n", 0).is_err());
    }

    #[test]
    fn playbooks_are_written_per_account() {
        let dir = TempDir::new().unwrap();
        write_playbooks(dir.path(), 2, true, None).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["welcome-001.yaml", "welcome-002.yaml"]);
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "removed on drop");
    }

    #[test]
    fn contacts_are_shared_evenly() {
        let parts: Vec<_> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(parts, vec![0..4, 4..7, 7..10]);
        assert_eq!(share(100_000, 100, 99), 99_000..100_000);
        assert_eq!(contact_id(42), "wmEmu0000000042");
        assert_eq!(account_id(0), "demo-wecom");
        assert_eq!(account_id(9), "acct-010");
        assert_eq!(corp_id(9), "ww0emulator000001_10");
    }
}
