//! Errors of the host, kept apart from the plugin's own typed errors.

use std::fmt;

/// The outcome of a failed call: either the plugin answered with its own typed error, or the
/// host failed the call (the plugin misbehaved, ran out of budget, or the host could not run it).
#[derive(Debug)]
pub enum CallError<E> {
    /// The plugin's own answer (`plugin-error` or `webhook-error`); the runtime acts on its case.
    Plugin(E),
    /// The plugin failed: it trapped, ran out of budget, or returned something unusable.
    Host(HostError),
}

impl<E: fmt::Debug> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plugin(e) => write!(f, "plugin answered with an error: {e:?}"),
            Self::Host(e) => write!(f, "plugin failed: {e}"),
        }
    }
}

impl<E: fmt::Debug> std::error::Error for CallError<E> {}

impl<E> From<HostError> for CallError<E> {
    fn from(e: HostError) -> Self {
        Self::Host(e)
    }
}

/// Why the host failed a plugin call. The plugin's store is discarded in every case.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The guest trapped (panic, unreachable, bad memory access, stack overflow).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call used up its fuel (CPU budget).
    #[error("plugin exceeded its CPU budget ({fuel} fuel)")]
    OutOfFuel {
        /// The budget it had.
        fuel: u64,
    },
    /// The call tried to grow memory beyond its cap.
    #[error("plugin exceeded its memory cap ({limit_bytes} bytes)")]
    MemoryLimit {
        /// The cap.
        limit_bytes: u64,
    },
    /// The call did not finish within its wall-clock timeout.
    #[error("plugin call timed out after {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The host refused to hand the plugin an input this large.
    #[error("input too large: {size} bytes, limit {limit}")]
    InputTooLarge {
        /// Input size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// The plugin returned more than the output cap.
    #[error("plugin output too large: {size} bytes, limit {limit}")]
    OutputTooLarge {
        /// Output size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// The plugin returned something that breaks the contract (invalid JSON, unknown event kind).
    #[error("plugin returned invalid output: {0}")]
    InvalidOutput(String),
    /// The action is not in the plugin's manifest.
    #[error("plugin {plugin:?} has no action {action:?}")]
    UnknownAction {
        /// Plugin name.
        plugin: String,
        /// Requested action.
        action: String,
    },
    /// A host import failed in a way the guest cannot be told about (kv store down, oversized key,
    /// host called during `describe`).
    #[error("host import failed: {0}")]
    Import(String),
    /// The host could not start the call (instance pool exhausted, instantiation failed).
    #[error("could not instantiate plugin: {0}")]
    Instantiate(String),
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the plugins directory or a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a component of the `sop:plugin` world.
    #[error("{path}: not a valid sop plugin component: {message}")]
    Compile {
        /// The path.
        path: String,
        /// Compiler or linker message.
        message: String,
    },
    /// `describe` failed.
    #[error("{path}: describe failed: {source}")]
    Describe {
        /// The path.
        path: String,
        /// The failure.
        source: HostError,
    },
    /// The manifest breaks the rules; every problem is listed.
    #[error("{path}: invalid manifest:\n  - {}", problems.join("\n  - "))]
    Manifest {
        /// The path.
        path: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// Two plugins claim the same name.
    #[error("{path}: plugin name {name:?} is already loaded")]
    Duplicate {
        /// The path.
        path: String,
        /// The name.
        name: String,
    },
    /// The operator configuration for this plugin is unusable.
    #[error("configuration for plugin {name:?}:\n  - {}", problems.join("\n  - "))]
    Config {
        /// Plugin name.
        name: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}
