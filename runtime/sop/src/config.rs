//! The operator's configuration file (`sop run --config sop.toml`).
//!
//! Parsing is strict: an unknown or mistyped key fails at start with the key and its line.
//! Secrets never appear in the file: accounts name environment variables or files
//! ([`SecretSource`]) and the daemon reads them when it starts or reloads. Relative paths are
//! relative to the configuration file's directory. See `docs/operations.md` for every key and
//! `runtime/sop/sop.example.toml` for a complete example.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use sop_plugin_host::{HostConfig, PluginSettings};

use crate::secret::{Secret, SecretSource};

/// The configuration file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the daemon keeps its state: the store (`store/`) and the lock file (`sop.lock`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directory of playbooks (`*.yaml`, `*.yml`) deployed at start and on reload.
    #[serde(default = "default_playbooks")]
    pub playbooks: PathBuf,
    /// Listen addresses.
    #[serde(default)]
    pub listen: Listen,
    /// The embedded store.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Webhook ingress limits.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// Admin API tokens and limits.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Where plugins are and how the plugin host runs them.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Per-plugin settings by plugin name: limits and network (base-URL re-pointing).
    #[serde(default)]
    pub plugin: BTreeMap<String, PluginSettings>,
    /// Tenants (brands) by id, each with its platform accounts.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
    /// The policy gate: time zone and quiet-hours defaults, consent keywords, frequency caps,
    /// rate-limit pacing and overrides (`sop_policy::PolicyConfig`).
    #[serde(default)]
    pub policy: sop_policy::PolicyConfig,
    /// The scheduler: shards, page sizes (`sop_runtime::RuntimeConfig`).
    #[serde(default)]
    pub runtime: sop_runtime::RuntimeConfig,
}

/// Listen addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Platform webhooks: `/hooks/{plugin}/{account}`. Must be reachable by the platforms.
    pub ingress: SocketAddr,
    /// Admin API, `/metrics`, `/healthz`, `/readyz`. Keep it on a private interface.
    pub admin: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            ingress: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

/// Webhook ingress limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    /// Largest request body accepted; larger requests get 413 before the plugin sees them.
    pub max_body_bytes: usize,
    /// Time to verify, parse and commit one callback. WeCom waits 5 s, so the default answers
    /// (with 503, which makes the platform retry) before the platform gives up.
    pub timeout_ms: u64,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            timeout_ms: 4_500,
        }
    }
}

impl IngressConfig {
    /// [`timeout_ms`](Self::timeout_ms) as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The embedded store (sled, in `data_dir/store`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// sled's page cache, MiB. Together with sled's table of every page it bounds the store's
    /// share of the daemon's memory; reads of pages outside it go to disk.
    pub cache_mib: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { cache_mib: 64 }
    }
}

impl StorageConfig {
    /// The sled options these settings stand for.
    pub fn sled_options(&self) -> sop_store_sled::SledOptions {
        sop_store_sled::SledOptions {
            cache_capacity_bytes: self.cache_mib.saturating_mul(1024 * 1024),
            ..sop_store_sled::SledOptions::default()
        }
    }
}

/// Admin API tokens and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Token for read-only routes. Optional.
    pub read_token: Option<SecretSource>,
    /// Token for every route (it also reads). Without it nothing can be changed over the API.
    pub admin_token: Option<SecretSource>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            read_token: None,
            admin_token: None,
            max_body_bytes: 4 << 20,
        }
    }
}

/// Where plugins are and how the host runs them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory of plugin components (`*.wasm`).
    pub dir: PathBuf,
    /// Optional directory of extra manifests (`*.json`) for platforms without a component yet
    /// (their events can be referenced by playbooks; their actions fail permanently).
    pub manifests: Option<PathBuf>,
    /// Engine-wide plugin host settings.
    pub host: HostConfig,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("plugins"),
            manifests: None,
            host: HostConfig::default(),
        }
    }
}

/// One tenant (brand).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Default IANA time zone of the tenant's contacts, e.g. `Asia/Shanghai`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Platform accounts by id. Ids are unique across tenants: they appear in webhook URLs.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    /// Which account a playbook acts for, by playbook id; playbooks not listed use
    /// `default_account`, or the tenant's only account.
    #[serde(default)]
    pub playbooks: BTreeMap<String, String>,
    /// Account of playbooks not listed in `playbooks`.
    pub default_account: Option<String>,
}

/// One platform account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The plugin that serves it (`wecom`, `douyin`).
    pub plugin: String,
    /// Non-secret fields of the account JSON the plugin expects (its manifest's
    /// `account_schema`), e.g. `corp_id`, `agent_id`.
    #[serde(default)]
    pub settings: toml::Table,
    /// Secret fields of the account JSON, each from an environment variable or a file.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("sop-data")
}

fn default_playbooks() -> PathBuf {
    PathBuf::from("playbooks")
}

fn default_time_zone() -> String {
    "Asia/Shanghai".into()
}

/// Why the configuration cannot be used. The message names the file, the key and, for
/// syntax and unknown keys, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Syntax error, unknown key or wrong type (toml's message carries line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's message.
        message: String,
    },
    /// Keys that parse but make no sense together, each naming its key.
    #[error("{path}: invalid configuration:\n  - {}", problems.join("\n  - "))]
    Invalid {
        /// The file.
        path: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// A platform account ready for the plugin: its id and the account JSON (with secrets).
#[derive(Clone)]
pub struct Account {
    /// The tenant it belongs to.
    pub tenant: String,
    /// The plugin serving it.
    pub plugin: String,
    /// The account id (unique across tenants).
    pub id: String,
    /// The JSON the plugin expects; holds secrets, never log it.
    pub config: Value,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("tenant", &self.tenant)
            .field("plugin", &self.plugin)
            .field("id", &self.id)
            .field("config", &"<redacted>")
            .finish()
    }
}

/// The checked configuration with paths made absolute and secrets read.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// As written (paths resolved).
    pub file: ConfigFile,
    /// Every account by id.
    pub accounts: BTreeMap<String, Account>,
    /// Read-only token, if configured.
    pub read_token: Option<Secret>,
    /// Admin token, if configured.
    pub admin_token: Option<Secret>,
}

impl Config {
    /// Reads, parses, checks the file and reads every secret it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_text(&text, path, base)
    }

    /// Parses and checks `text` as if read from `path`, resolving relative paths against
    /// `base`.
    pub fn from_text(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let mut file = ConfigFile::parse(text).map_err(|message| ConfigError::Parse {
            path: shown.clone(),
            message,
        })?;
        file.resolve_paths(base);
        let invalid = |problems| ConfigError::Invalid {
            path: shown.clone(),
            problems,
        };
        let mut problems = file.problems();
        let mut accounts = BTreeMap::new();
        for (tenant_id, tenant) in &file.tenants {
            for (id, account) in &tenant.accounts {
                let key = format!("tenants.{tenant_id}.accounts.{id}");
                match account.to_json(&key) {
                    Ok(config) => {
                        accounts.insert(
                            id.clone(),
                            Account {
                                tenant: tenant_id.clone(),
                                plugin: account.plugin.clone(),
                                id: id.clone(),
                                config,
                            },
                        );
                    }
                    Err(p) => problems.extend(p),
                }
            }
        }
        let mut token = |key: &str, source: &Option<SecretSource>| {
            source.as_ref().and_then(|s| {
                s.read()
                    .map_err(|e| problems.push(format!("admin.{key}: {e}")))
                    .ok()
            })
        };
        let read_token = token("read_token", &file.admin.read_token);
        let admin_token = token("admin_token", &file.admin.admin_token);
        if let (Some(r), Some(a)) = (&read_token, &admin_token)
            && r == a
        {
            problems.push(
                "admin.read_token and admin.admin_token must differ (else read-only means admin)"
                    .into(),
            );
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(Config {
            path: path.to_owned(),
            file,
            accounts,
            read_token,
            admin_token,
        })
    }

    /// The tenant a playbook belongs to and the account it acts for: the playbook's own
    /// `tenant` (or the only tenant), then the tenant's `playbooks` entry, `default_account`,
    /// or its only account.
    pub fn playbook_account(
        &self,
        playbook: &str,
        tenant: Option<&str>,
    ) -> Result<(String, String), String> {
        let tenant_id = match tenant {
            Some(t) => t.to_owned(),
            None if self.file.tenants.len() == 1 => {
                self.file.tenants.keys().next().cloned().unwrap_or_default()
            }
            None => {
                return Err(format!(
                    "playbook {playbook} names no tenant and {} tenants are configured",
                    self.file.tenants.len()
                ));
            }
        };
        let tenant =
            self.file.tenants.get(&tenant_id).ok_or_else(|| {
                format!("playbook {playbook}: tenant {tenant_id} is not configured")
            })?;
        let account = tenant
            .playbooks
            .get(playbook)
            .or(tenant.default_account.as_ref())
            .cloned()
            .or_else(|| {
                (tenant.accounts.len() == 1)
                    .then(|| tenant.accounts.keys().next().cloned())
                    .flatten()
            })
            .ok_or_else(|| {
                format!(
                    "playbook {playbook}: tenant {tenant_id} has {} accounts; name one in \
                     [tenants.{tenant_id}.playbooks] or default_account",
                    tenant.accounts.len()
                )
            })?;
        Ok((tenant_id, account))
    }
}

impl ConfigFile {
    /// Parses the TOML text; the error is toml's message (key, line and column), with the
    /// value of any credential-like key on the quoted line masked.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|e| mask_credentials(e.to_string().trim_end()))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.data_dir);
        abs(&mut self.playbooks);
        abs(&mut self.plugins.dir);
        if let Some(m) = &mut self.plugins.manifests {
            abs(m);
        }
        let secret = |s: &mut SecretSource| {
            if let SecretSource::File(p) = s {
                abs(p);
            }
        };
        self.admin.read_token.iter_mut().for_each(secret);
        self.admin.admin_token.iter_mut().for_each(secret);
        for tenant in self.tenants.values_mut() {
            for account in tenant.accounts.values_mut() {
                account.secrets.values_mut().for_each(secret);
            }
        }
    }

    /// Semantic problems, each naming its key.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.listen.ingress == self.listen.admin {
            out.push(format!(
                "listen.ingress and listen.admin are both {}",
                self.listen.ingress
            ));
        }
        if !(1..=1 << 20).contains(&self.storage.cache_mib) {
            out.push(format!(
                "storage.cache_mib must be between 1 and 1048576, not {}",
                self.storage.cache_mib
            ));
        }
        if self.ingress.max_body_bytes == 0 {
            out.push("ingress.max_body_bytes must be positive".into());
        }
        if self.ingress.timeout_ms == 0 {
            out.push("ingress.timeout_ms must be positive".into());
        }
        if self.admin.max_body_bytes == 0 {
            out.push("admin.max_body_bytes must be positive".into());
        }
        for (name, settings) in &self.plugin {
            for p in settings
                .limits
                .problems(self.plugins.host.pool_memory_bytes)
            {
                out.push(format!("plugin.{name}.limits: {p}"));
            }
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (tenant_id, tenant) in &self.tenants {
            if !is_id(tenant_id) {
                out.push(format!(
                    "tenants.{tenant_id}: ids use letters, digits, '-', '_' and '.'"
                ));
            }
            if tenant.time_zone.parse::<chrono_tz::Tz>().is_err() {
                out.push(format!(
                    "tenants.{tenant_id}.time_zone: unknown IANA time zone {:?}",
                    tenant.time_zone
                ));
            }
            for (id, account) in &tenant.accounts {
                let key = format!("tenants.{tenant_id}.accounts.{id}");
                if !is_id(id) {
                    out.push(format!(
                        "{key}: account ids appear in webhook URLs: use letters, digits, '-', '_' and '.'"
                    ));
                }
                if let Some(other) = seen.insert(id, tenant_id) {
                    out.push(format!(
                        "{key}: account id {id} is also used by tenant {other}; ids must be unique (webhook URLs name only the account)"
                    ));
                }
                if !is_id(&account.plugin) {
                    out.push(format!("{key}.plugin: not a plugin name"));
                }
            }
            let mut named: Vec<(String, &String)> = tenant
                .playbooks
                .iter()
                .map(|(pb, acc)| (format!("tenants.{tenant_id}.playbooks.{pb}"), acc))
                .collect();
            if let Some(acc) = &tenant.default_account {
                named.push((format!("tenants.{tenant_id}.default_account"), acc));
            }
            for (key, acc) in named {
                if !tenant.accounts.contains_key(acc) {
                    out.push(format!(
                        "{key}: account {acc} is not one of this tenant's accounts"
                    ));
                }
            }
        }
        out
    }
}

impl AccountConfig {
    /// The account JSON: `settings` with `secrets` read in. Secret-looking keys in
    /// `settings` are refused so that credentials never sit in the config text.
    fn to_json(&self, key: &str) -> Result<Value, Vec<String>> {
        let mut problems = Vec::new();
        let mut map = Map::new();
        for (field, value) in &self.settings {
            if value.is_str() && looks_secret(field) {
                problems.push(format!(
                    "{key}.settings.{field} looks like a credential: give it as \
                     secrets.{field} = {{ env = \"VAR\" }} or {{ file = \"/path\" }}"
                ));
                continue;
            }
            match serde_json::to_value(value) {
                Ok(v) => {
                    map.insert(field.clone(), v);
                }
                Err(e) => problems.push(format!("{key}.settings.{field}: {e}")),
            }
        }
        for (field, source) in &self.secrets {
            if map.contains_key(field) {
                problems.push(format!(
                    "{key}.secrets.{field} is also given in settings; give it once"
                ));
                continue;
            }
            match source.read() {
                Ok(secret) => {
                    map.insert(field.clone(), Value::String(secret.expose().to_owned()));
                }
                Err(e) => problems.push(format!("{key}.secrets.{field}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Value::Object(map))
        } else {
            Err(problems)
        }
    }
}

/// Field names that hold credentials in the bundled plugins' account schemas and commonly
/// elsewhere.
/// toml's errors quote the offending line. A credential written inline there is refused
/// anyway, but a syntax error is reported first, so its value is masked (`"***"`) in the
/// message: secrets never appear in errors.
fn mask_credentials(message: &str) -> String {
    message
        .lines()
        .map(mask_line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn mask_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        out.push_str(before);
        out.push('=');
        let after = &after[1..];
        let key = before
            .trim_end()
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '"'))
            .next()
            .unwrap_or("")
            .trim_matches('"');
        let value = after.trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
        match quote {
            Some(q) if looks_secret(key) => {
                out.push_str(&after[..after.len() - value.len()]);
                // Up to the closing quote, or the end of the line if it is not closed.
                let inner = &value[1..];
                let close = inner.find(q).map_or(inner.len(), |i| i + 1);
                out.push(q);
                out.push_str("***");
                rest = &inner[close.min(inner.len())..];
                if close <= inner.len() && inner[..close].ends_with(q) {
                    out.push(q);
                }
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}

fn looks_secret(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "aes_key",
        "auth_code",
        "private_key",
    ]
    .iter()
    .any(|w| f.contains(w))
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Problems of an account JSON against its plugin's `account_schema`: missing required
/// fields, fields the schema does not allow, and wrong JSON types of declared fields.
pub fn account_problems(schema: &Value, account: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(obj) = account.as_object() else {
        return vec!["the account configuration must be an object".into()];
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !obj.contains_key(req) {
            out.push(format!("missing required field {req}"));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (field, value) in obj {
        match props.and_then(|p| p.get(field)) {
            None if closed => out.push(format!("unknown field {field}")),
            None => {}
            Some(spec) if !type_matches(spec.get("type"), value) => out.push(format!(
                "field {field} should be {}",
                spec.get("type").map_or("?".into(), Value::to_string)
            )),
            Some(_) => {}
        }
    }
    out
}

fn type_matches(ty: Option<&Value>, value: &Value) -> bool {
    let one = |t: &str| match t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    };
    match ty {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(one),
        _ => true,
    }
}
