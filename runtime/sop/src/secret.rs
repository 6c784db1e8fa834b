//! Secrets in the operator's configuration: always read from an environment variable or a
//! file at start (and on reload), never written in the config text, never logged.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from. Written in TOML as `{ env = "VAR" }` or `{ file = "/path" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable of the daemon's process.
    Env(String),
    /// A file (trailing newlines are trimmed), e.g. a systemd credential or a mounted secret.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret now. The error names the source, never the value.
    pub fn read(&self) -> Result<Secret, String> {
        let value = match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|e| format!("environment variable {var}: {e}"))?
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("secret file {}: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        if value.is_empty() {
            return Err(format!("{self} is empty"));
        }
        Ok(Secret(value))
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "environment variable {var}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A secret value. Its `Debug` and `Display` are redacted so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (tests, and values read from sources).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; only for handing it to whoever needs it (a plugin, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_are_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let secret = SecretSource::File(path).read().unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert!(!format!("{secret:?}").contains("s3cret"));
    }

    #[test]
    fn missing_and_empty_sources_are_named() {
        let err = SecretSource::Env("SOP_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert!(err.contains("SOP_TEST_SURELY_UNSET_VAR"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path).read().unwrap_err();
        assert!(err.contains("is empty"), "{err}");
    }
}
