//! The `sop` daemon as a library, so that its pieces are tested without a process:
//! configuration ([`config`]), secrets ([`secret`]), the plugin adapter, the webhook ingress,
//! the admin API, observability and the lifecycle. The binary (`src/main.rs`) wires them.

pub mod admin;
pub mod auth;
pub mod config;
pub mod daemon;
pub mod ingress;
pub mod lock;
pub mod memory;
pub mod observability;
pub mod plugin_kv;
pub mod plugins;
pub mod secret;
pub mod state;
pub mod storage;
