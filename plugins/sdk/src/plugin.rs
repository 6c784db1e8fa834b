//! The [`Plugin`] trait authors implement, and [`export_plugin!`](crate::export_plugin) which
//! turns it into the component's exports.

use crate::{
    Account, Host, Invocation, InvokeOutcome, Manifest, OutcomeStatus, PluginError, WebhookError,
    WebhookOutcome, WebhookRequest,
};

/// A platform plugin. Every function receives the [`Host`] it may call, so the same code runs
/// inside the component ([`crate::WasmHost`]) and in native tests
/// ([`crate::testing::FakeHost`]). Plugins keep no state between calls: each call runs in a
/// fresh instance, and anything worth keeping goes to the key-value store.
pub trait Plugin {
    /// The manifest. Must not call the host.
    fn describe() -> Manifest;

    /// Performs one action.
    fn invoke(host: &dyn Host, call: Invocation) -> Result<InvokeOutcome, PluginError>;

    /// Reports on an asynchronous action, or on an idempotency key whose outcome was lost.
    /// The default answers `permanent`: this plugin cannot tell.
    fn check_outcome(
        host: &dyn Host,
        account: Account,
        action: String,
        idempotency_key: String,
        handle: Option<String>,
    ) -> Result<OutcomeStatus, PluginError> {
        let _ = (host, account, idempotency_key, handle);
        Err(PluginError::permanent(format!(
            "`{action}` has no outcome this plugin can check"
        )))
    }

    /// Verifies and translates a webhook. The default refuses: this plugin takes none.
    fn parse_webhook(
        host: &dyn Host,
        account: Account,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, WebhookError> {
        let _ = (host, account, request);
        Err(WebhookError::verification_failed(
            "this plugin accepts no webhooks",
        ))
    }
}

/// Exports a [`Plugin`] implementation as the component's `sop:plugin/plugin` interface.
/// Outside `wasm32` it expands to nothing, so plugin crates build and test natively.
///
/// ```
/// use sop_plugin_sdk::{Host, Invocation, InvokeOutcome, Manifest, Plugin, PluginError};
///
/// struct Nothing;
///
/// impl Plugin for Nothing {
///     fn describe() -> Manifest {
///         Manifest {
///             name: "nothing".into(),
///             version: "0.1.0".into(),
///             description: "Does nothing".into(),
///             actions: vec![],
///             events: vec![],
///             rate_limits: vec![],
///             touch_limits: vec![],
///             hosts: vec![],
///             account_schema: "{}".into(),
///         }
///     }
///
///     fn invoke(_: &dyn Host, call: Invocation) -> Result<InvokeOutcome, PluginError> {
///         Err(PluginError::invalid_input(format!("unknown action `{}`", call.action)))
///     }
/// }
///
/// sop_plugin_sdk::export_plugin!(Nothing);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SopPluginExports;

            impl $crate::bindings::exports::sop::plugin::plugin::Guest for SopPluginExports {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::Plugin>::describe()
                }

                fn invoke(
                    call: $crate::Invocation,
                ) -> ::core::result::Result<$crate::InvokeOutcome, $crate::PluginError> {
                    <$plugin as $crate::Plugin>::invoke(&$crate::WasmHost, call)
                }

                fn check_outcome(
                    account: $crate::Account,
                    action: ::std::string::String,
                    idempotency_key: ::std::string::String,
                    handle: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<$crate::OutcomeStatus, $crate::PluginError> {
                    <$plugin as $crate::Plugin>::check_outcome(
                        &$crate::WasmHost,
                        account,
                        action,
                        idempotency_key,
                        handle,
                    )
                }

                fn parse_webhook(
                    account: $crate::Account,
                    request: $crate::WebhookRequest,
                ) -> ::core::result::Result<$crate::WebhookOutcome, $crate::WebhookError> {
                    <$plugin as $crate::Plugin>::parse_webhook(&$crate::WasmHost, account, request)
                }
            }

    $crate::__export_platform_impl!(SopPluginExports with_types_in $crate::bindings);
        };
    };
}
