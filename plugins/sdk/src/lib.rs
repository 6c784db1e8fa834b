//! SDK for writing sop platform plugins as WASM components.
