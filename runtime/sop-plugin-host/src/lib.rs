//! Sandboxed wasmtime host for sop platform plugins.
