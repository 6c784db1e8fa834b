//! The runtime's view of the plugins over the sandboxed plugin host: the catalog the playbooks
//! are checked against, actions and outcome checks with every failure mapped to an engine
//! [`ActionResult`], and webhook parsing for the ingress.
//!
//! Host failures are mapped by *when* they happen: a failure before the guest ran (unknown
//! action, input too large, no free instance) cannot have reached the platform; a failure
//! after the guest started (trap, budget, timeout, bad output) may have, so it is
//! `OutcomeUnknown`, which the engine never retries blindly for messages.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;
use sop_dsl::Catalog;
use sop_dsl::catalog::PluginSpec;
use sop_engine::{ActionResult, OutcomeStatus, PluginError};
use sop_plugin_host::{
    CallError, HostError, InvokeOutcome, Plugin, PluginHost, PluginSettings, WebhookError,
    WebhookOutcome, WebhookRequest,
};

use sop_runtime::{BoxFuture, PluginCall, Plugins};

use crate::config::{Account, Config, account_problems};

/// Loaded plugins, the catalog they describe, and the accounts they serve.
#[derive(Debug)]
pub struct HostPlugins {
    catalog: Catalog,
    plugins: BTreeMap<String, Plugin>,
    accounts: BTreeMap<String, Account>,
    /// One permit per instance of the host's pool: calls beyond it wait here instead of
    /// failing with "no free instance" (a broadcast dispatches hundreds of sends at once,
    /// and a failed instantiation would cost each a back-off of half a minute or more).
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Why the plugins cannot be used as configured.
#[derive(Debug, thiserror::Error)]
#[error("plugins:\n  - {}", .0.join("\n  - "))]
pub struct PluginsError(pub Vec<String>);

/// Why a webhook was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// No such account, or it is served by another plugin.
    #[error("unknown account {account} for plugin {plugin}")]
    UnknownAccount {
        /// The plugin in the URL.
        plugin: String,
        /// The account in the URL.
        account: String,
    },
    /// The plugin refused the request (bad signature, stale, unreadable).
    #[error("refused by the plugin: {0:?}")]
    Refused(WebhookError),
    /// The plugin failed.
    #[error("plugin failed: {0}")]
    Host(HostError),
}

impl HostPlugins {
    /// Loads every component in the configured directory with its settings, adds the extra
    /// manifests, and checks every account against its plugin's `account_schema`. Every problem
    /// is reported at once.
    pub async fn load(host: &PluginHost, config: &Config) -> Result<HostPlugins, PluginsError> {
        let settings: BTreeMap<String, PluginSettings> = config.file.plugin.clone();
        let (loaded, errors) = host.load_dir(&config.file.plugins.dir, &settings).await;
        let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let plugins: BTreeMap<String, Plugin> = loaded
            .into_iter()
            .map(|p| (p.name().to_owned(), p))
            .collect();
        let extra = match &config.file.plugins.manifests {
            Some(dir) => Catalog::load_dir(dir).unwrap_or_else(|e| {
                problems.push(e.to_string());
                Catalog::default()
            }),
            None => Catalog::default(),
        };
        for name in settings.keys() {
            if !plugins.contains_key(name) {
                problems.push(format!(
                    "plugin.{name}: no plugin named {name} in {}",
                    config.file.plugins.dir.display()
                ));
            }
        }
        match Self::from_parts(plugins, extra, config.accounts.clone()) {
            Ok(p) if problems.is_empty() => {
                Ok(p.with_call_slots(config.file.plugins.host.max_concurrent_calls))
            }
            Ok(_) => Err(PluginsError(problems)),
            Err(PluginsError(more)) => {
                problems.extend(more);
                Err(PluginsError(problems))
            }
        }
    }

    /// Assembles loaded plugins, extra manifests (for platforms without a component) and
    /// accounts, checking each account against its plugin's schema.
    pub fn from_parts(
        plugins: BTreeMap<String, Plugin>,
        extra: Catalog,
        accounts: BTreeMap<String, Account>,
    ) -> Result<HostPlugins, PluginsError> {
        let mut problems = Vec::new();
        let mut catalog = Catalog::default();
        for plugin in plugins.values() {
            match serde_json::to_value(plugin.manifest())
                .and_then(serde_json::from_value::<PluginSpec>)
            {
                Ok(spec) => {
                    let _ = catalog.insert(spec);
                }
                Err(e) => problems.push(format!("plugin {}: manifest: {e}", plugin.name())),
            }
        }
        for (name, spec) in extra.plugins {
            if !catalog.plugins.contains_key(&name) {
                let _ = catalog.insert(spec);
            }
        }
        // The checker validates action steps' `account:` against these.
        let mut served: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for account in accounts.values() {
            served
                .entry(account.tenant.clone())
                .or_default()
                .insert(account.id.clone(), account.plugin.clone());
        }
        catalog.accounts = Some(served);
        for account in accounts.values() {
            let key = format!("tenants.{}.accounts.{}", account.tenant, account.id);
            match catalog.plugin(&account.plugin) {
                None => problems.push(format!("{key}: no plugin named {}", account.plugin)),
                Some(spec) => {
                    for p in account_problems(&spec.account_schema, &account.config) {
                        problems.push(format!("{key}: {p}"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(HostPlugins {
                catalog,
                plugins,
                accounts,
                slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                    sop_plugin_host::HostConfig::default().max_concurrent_calls as usize,
                )),
            })
        } else {
            Err(PluginsError(problems))
        }
    }

    /// At most `n` plugin calls at once (the host's `max_concurrent_calls`); more wait.
    pub fn with_call_slots(mut self, n: u32) -> Self {
        self.slots = std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize));
        self
    }

    /// Waits for a free instance of the host's pool. The semaphore is never closed.
    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.slots.acquire().await.ok()
    }

    /// Calls that may start now without waiting (for tests and metrics).
    pub fn free_call_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// The configured accounts by id.
    pub fn accounts(&self) -> &BTreeMap<String, Account> {
        &self.accounts
    }

    /// Names of the plugins loaded as components.
    pub fn loaded(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// Whether a component of this name is loaded.
    pub fn is_loaded(&self, name: &str) -> bool {
        self.plugins.contains_key(name)
    }

    fn host_account(&self, plugin: &str, account: &str) -> Option<sop_plugin_host::Account> {
        self.accounts
            .get(account)
            .filter(|a| a.plugin == plugin)
            .map(|a| sop_plugin_host::Account {
                id: a.id.clone(),
                config: a.config.clone(),
            })
    }

    /// Performs one action; every failure becomes an [`ActionResult::Error`].
    pub async fn call_action(
        &self,
        plugin: &str,
        action: &str,
        account: &str,
        input: &Value,
        key: &str,
    ) -> ActionResult {
        let started = Instant::now();
        let result = self.invoke_inner(plugin, action, account, input, key).await;
        let outcome = match &result {
            ActionResult::Done { .. } => "done",
            ActionResult::Accepted { .. } => "accepted",
            ActionResult::Error { error } => error.kind(),
            ActionResult::Skipped { .. } => "skipped",
            ActionResult::EndRun { .. } => "end_run",
        };
        let labels = [
            ("plugin", plugin.to_owned()),
            ("action", action.to_owned()),
            ("outcome", outcome.to_owned()),
        ];
        metrics::counter!("sop_plugin_calls_total", &labels).increment(1);
        metrics::histogram!(
            "sop_plugin_call_seconds",
            "plugin" => plugin.to_owned(),
            "action" => action.to_owned()
        )
        .record(started.elapsed().as_secs_f64());
        result
    }

    async fn invoke_inner(
        &self,
        plugin: &str,
        action: &str,
        account: &str,
        input: &Value,
        key: &str,
    ) -> ActionResult {
        let permanent = |message: String| ActionResult::Error {
            error: PluginError::Permanent { message },
        };
        let Some(p) = self.plugins.get(plugin) else {
            return permanent(format!("plugin {plugin} is not loaded"));
        };
        let Some(acc) = self.host_account(plugin, account) else {
            return permanent(format!(
                "account {account} is not configured for plugin {plugin}"
            ));
        };
        let invocation = sop_plugin_host::Invocation {
            action: action.to_owned(),
            account: acc,
            input: input.clone(),
            idempotency_key: key.to_owned(),
        };
        let _slot = self.slot().await;
        match p.invoke(&invocation).await {
            Ok(InvokeOutcome::Done(output)) => ActionResult::Done { output },
            Ok(InvokeOutcome::Accepted(pending)) => ActionResult::Accepted {
                handle: pending.handle,
                check_after_ms: pending.check_after_ms,
                output: pending.output,
            },
            Err(CallError::Plugin(e)) => ActionResult::Error {
                error: plugin_error(e),
            },
            Err(CallError::Host(e)) => ActionResult::Error {
                error: host_error(&e),
            },
        }
    }

    /// Asks a plugin about an accepted (or crashed-while-sending) action. `None` when it
    /// cannot tell (plugin not loaded, account gone, plugin or host failure): the runtime
    /// then treats the outcome as unknown.
    pub async fn call_check_outcome(
        &self,
        plugin: &str,
        action: &str,
        account: &str,
        key: &str,
        handle: Option<&str>,
    ) -> Option<OutcomeStatus> {
        let p = self.plugins.get(plugin)?;
        let acc = self.host_account(plugin, account)?;
        let _slot = self.slot().await;
        match p.check_outcome(&acc, action, key, handle).await {
            Ok(sop_plugin_host::OutcomeStatus::Done(output)) => {
                Some(OutcomeStatus::Done { output })
            }
            Ok(sop_plugin_host::OutcomeStatus::Pending(check_after_ms)) => {
                Some(OutcomeStatus::Pending { check_after_ms })
            }
            Ok(sop_plugin_host::OutcomeStatus::Failed(reason)) => {
                Some(OutcomeStatus::Failed { reason })
            }
            Err(e) => {
                tracing::warn!(plugin, action, account, error = %e, "outcome check failed");
                check_retry(&e).map(|check_after_ms| OutcomeStatus::Pending { check_after_ms })
            }
        }
    }

    /// Verifies and translates one webhook for `account` of `plugin`.
    pub async fn parse_webhook(
        &self,
        plugin: &str,
        account: &str,
        request: &WebhookRequest,
    ) -> Result<(String, WebhookOutcome), HookError> {
        let unknown = || HookError::UnknownAccount {
            plugin: plugin.to_owned(),
            account: account.to_owned(),
        };
        let p = self.plugins.get(plugin).ok_or_else(unknown)?;
        let acc = self.host_account(plugin, account).ok_or_else(unknown)?;
        let tenant = self.accounts[account].tenant.clone();
        let _slot = self.slot().await;
        match p.parse_webhook(&acc, request).await {
            Ok(outcome) => Ok((tenant, outcome)),
            Err(CallError::Plugin(e)) => Err(HookError::Refused(e)),
            Err(CallError::Host(e)) => Err(HookError::Host(e)),
        }
    }
}

impl Plugins for HostPlugins {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn invoke<'a>(&'a self, call: &'a PluginCall) -> BoxFuture<'a, ActionResult> {
        Box::pin(self.call_action(
            &call.plugin,
            &call.action,
            &call.account,
            &call.input,
            &call.key,
        ))
    }

    fn check_outcome<'a>(
        &'a self,
        call: &'a PluginCall,
        handle: Option<&'a str>,
    ) -> BoxFuture<'a, Option<OutcomeStatus>> {
        Box::pin(self.call_check_outcome(
            &call.plugin,
            &call.action,
            &call.account,
            &call.key,
            handle,
        ))
    }
}

/// How long after a failed outcome check to ask again, when the failure is one that passes
/// (a timeout under load, a full instance pool, the platform's rate limit or a transient
/// error): soon, not after `runtime.outcome_recheck_seconds` (15 minutes), which is for a
/// plugin that cannot tell. `None` for the rest.
fn check_retry(e: &CallError<sop_plugin_host::PluginError>) -> Option<u64> {
    use sop_plugin_host::PluginError as P;
    match e {
        CallError::Plugin(P::RateLimited { retry_after_ms, .. }) => {
            Some((*retry_after_ms).max(CHECK_RETRY_MS))
        }
        CallError::Plugin(P::Transient(_) | P::AuthExpired(_))
        | CallError::Host(HostError::Timeout { .. } | HostError::Instantiate(_)) => {
            Some(CHECK_RETRY_MS)
        }
        _ => None,
    }
}

/// See [`check_retry`].
const CHECK_RETRY_MS: u64 = 60_000;

/// The plugin's typed error in the engine's words (same cases).
pub fn plugin_error(e: sop_plugin_host::PluginError) -> PluginError {
    use sop_plugin_host::PluginError as H;
    match e {
        H::RateLimited {
            retry_after_ms,
            message,
        } => PluginError::RateLimited {
            retry_after_ms,
            message,
        },
        H::AuthExpired(message) => PluginError::AuthExpired { message },
        H::InvalidInput(message) => PluginError::InvalidInput { message },
        H::Transient(message) => PluginError::Transient { message },
        H::Permanent(message) => PluginError::Permanent { message },
        H::OutcomeUnknown(message) => PluginError::OutcomeUnknown { message },
    }
}

/// A host failure in the engine's words: before the guest ran it cannot have reached the
/// platform (`Transient`, or `InvalidInput`/`Permanent` when retrying cannot help); after,
/// it may have (`OutcomeUnknown`).
pub fn host_error(e: &HostError) -> PluginError {
    let message = e.to_string();
    match e {
        HostError::Instantiate(_) => PluginError::Transient { message },
        HostError::InputTooLarge { .. } => PluginError::InvalidInput { message },
        HostError::UnknownAction { .. } => PluginError::Permanent { message },
        HostError::Trap(_)
        | HostError::OutOfFuel { .. }
        | HostError::MemoryLimit { .. }
        | HostError::Timeout { .. }
        | HostError::OutputTooLarge { .. }
        | HostError::InvalidOutput(_)
        | HostError::Import(_) => PluginError::OutcomeUnknown { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_failures_before_the_guest_ran_never_claim_an_unknown_outcome() {
        let before = [
            HostError::Instantiate("pool".into()),
            HostError::InputTooLarge { size: 2, limit: 1 },
            HostError::UnknownAction {
                plugin: "p".into(),
                action: "a".into(),
            },
        ];
        for e in &before {
            assert_ne!(host_error(e).kind(), "outcome-unknown", "{e}");
        }
        assert_eq!(host_error(&before[0]).kind(), "transient");
        let after = [
            HostError::Trap("x".into()),
            HostError::OutOfFuel { fuel: 1 },
            HostError::MemoryLimit { limit_bytes: 1 },
            HostError::Timeout { timeout_ms: 1 },
            HostError::OutputTooLarge { size: 2, limit: 1 },
            HostError::InvalidOutput("x".into()),
            HostError::Import("kv".into()),
        ];
        for e in &after {
            assert_eq!(host_error(e).kind(), "outcome-unknown", "{e}");
        }
    }

    #[test]
    fn failed_outcome_checks_that_pass_are_asked_again_soon() {
        use sop_plugin_host::PluginError as H;
        let soon = [
            CallError::Host(HostError::Timeout { timeout_ms: 15_000 }),
            CallError::Host(HostError::Instantiate("pool full".into())),
            CallError::Plugin(H::Transient("m".into())),
            CallError::Plugin(H::AuthExpired("m".into())),
        ];
        for e in &soon {
            assert_eq!(check_retry(e), Some(CHECK_RETRY_MS), "{e}");
        }
        let limited = |retry_after_ms| {
            check_retry(&CallError::Plugin(H::RateLimited {
                retry_after_ms,
                message: "m".into(),
            }))
        };
        assert_eq!(limited(5), Some(CHECK_RETRY_MS));
        assert_eq!(limited(300_000), Some(300_000));
        // The plugin cannot tell, or the check itself is broken: the long recheck.
        for e in [
            CallError::Plugin(H::Permanent("m".into())),
            CallError::Host(HostError::Trap("x".into())),
        ] {
            assert_eq!(check_retry(&e), None, "{e}");
        }
    }

    #[test]
    fn plugin_errors_keep_their_case() {
        use sop_plugin_host::PluginError as H;
        let cases = [
            (
                H::RateLimited {
                    retry_after_ms: 5,
                    message: "m".into(),
                },
                "rate-limited",
            ),
            (H::AuthExpired("m".into()), "auth-expired"),
            (H::InvalidInput("m".into()), "invalid-input"),
            (H::Transient("m".into()), "transient"),
            (H::Permanent("m".into()), "permanent"),
            (H::OutcomeUnknown("m".into()), "outcome-unknown"),
        ];
        for (e, kind) in cases {
            let mapped = plugin_error(e);
            assert_eq!((mapped.kind(), mapped.message()), (kind, "m"));
        }
    }

    #[test]
    fn accounts_are_checked_against_their_plugin_schema() {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
        let extra = Catalog::load_dir(&dir).unwrap();
        let account = |id: &str, plugin: &str, config: Value| {
            (
                id.to_owned(),
                Account {
                    tenant: "t".into(),
                    plugin: plugin.into(),
                    id: id.into(),
                    config,
                },
            )
        };
        let accounts = BTreeMap::from([
            account(
                "ok",
                "wecom",
                serde_json::json!({"corp_id": "ww1", "secret": "s", "agent_id": 1}),
            ),
            account("bad", "wecom", serde_json::json!({"corp_id": "ww1"})),
            account("none", "kuaishou", serde_json::json!({})),
        ]);
        let err = HostPlugins::from_parts(BTreeMap::new(), extra, accounts).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("tenants.t.accounts.bad: missing required field secret"),
            "{text}"
        );
        assert!(
            text.contains("tenants.t.accounts.none: no plugin named kuaishou"),
            "{text}"
        );
        assert!(!text.contains("accounts.ok"), "{text}");
    }

    #[tokio::test]
    async fn actions_of_plugins_without_a_component_fail_permanently() {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
        let plugins = HostPlugins::from_parts(
            BTreeMap::new(),
            Catalog::load_dir(&dir).unwrap(),
            BTreeMap::new(),
        )
        .unwrap();
        assert!(plugins.catalog().plugin("shop").is_some());
        let call = PluginCall {
            plugin: "shop".into(),
            action: "credit_points".into(),
            account: "a".into(),
            input: Value::Null,
            key: "r1.credit.0".into(),
        };
        let r = plugins.invoke(&call).await;
        assert!(
            matches!(&r, ActionResult::Error { error: PluginError::Permanent { message } } if message.contains("not loaded")),
            "{r:?}"
        );
        assert!(plugins.check_outcome(&call, None).await.is_none());
    }
}
