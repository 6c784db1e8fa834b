//! Generated bindings for the `sop:plugin/platform` world.
#![allow(unsafe_code, missing_debug_implementations, clippy::all)]

wit_bindgen::generate!({
    path: "../wit",
    world: "platform",
    pub_export_macro: true,
    export_macro_name: "__export_platform",
    default_bindings_module: "::sop_plugin_sdk::bindings",
    additional_derives: [PartialEq, Eq],
});
