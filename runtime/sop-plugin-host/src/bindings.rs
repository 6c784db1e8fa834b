//! Host-side bindings generated from `plugins/wit/plugin.wit`.
//!
//! Imports are async (HTTP waits on the network) and trappable (a host-side failure such as a
//! broken key-value store or an oversized key fails the call instead of lying to the guest).
//! Exports are async so that fuel-based yields let a tokio timeout cancel a spinning guest.

wasmtime::component::bindgen!({
    world: "platform",
    path: "../../plugins/wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use sop::plugin::types as wit;
