//! Why a policy could not be built.

/// A configuration or manifest problem found by [`Gate::new`](crate::Gate::new). The gate
/// refuses to start rather than guess: a wrong limit could get an account banned.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown time zone `{zone}` ({what}); use an IANA name like `Asia/Shanghai`")]
    TimeZone { what: String, zone: String },
    #[error("cap `{name}`: {problem}")]
    Cap { name: String, problem: String },
    #[error("plugin `{plugin}` manifest: {problem}")]
    Manifest { plugin: String, problem: String },
    #[error("rate limit override for plugin `{plugin}`: {problem}")]
    RateOverride { plugin: String, problem: String },
    #[error("touch limit override for plugin `{plugin}`: {problem}")]
    TouchOverride { plugin: String, problem: String },
    #[error("consent keywords: {0}")]
    Consent(String),
}
