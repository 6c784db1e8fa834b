//! Typed store failures. Backends map their own errors here; nothing panics on I/O.

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The disk is full; the commit did not happen.
    #[error("store is out of disk space: {0}")]
    DiskFull(String),
    /// The store's directory or files cannot be written (read-only mount, permissions).
    #[error("store is read-only or not permitted: {0}")]
    ReadOnly(String),
    /// Any other I/O failure; the commit did not happen.
    #[error("store I/O error: {0}")]
    Io(String),
    /// A stored value or key cannot be decoded (damaged data, or a bug).
    #[error("corrupt {table} record: {reason}")]
    Corrupt { table: &'static str, reason: String },
    /// Written by a newer binary than this one; upgrading sop is required.
    #[error("{table} record has format version {found}, this binary reads up to {supported}")]
    UnsupportedVersion {
        table: &'static str,
        found: u8,
        supported: u8,
    },
    /// A batch's check failed, so nothing in it was applied.
    #[error("commit refused, nothing applied: {0}")]
    Conflict(String),
    /// The input cannot be stored (e.g. a JSON value that does not serialise).
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether this says the disk cannot take writes (full, read-only, any I/O failure), as
    /// opposed to a refusal or a bad record, which say nothing about the disk.
    pub fn is_write_fault(&self) -> bool {
        matches!(self, Self::DiskFull(_) | Self::ReadOnly(_) | Self::Io(_))
    }

    /// Maps an `std::io::Error` to the matching variant.
    pub fn from_io(err: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let text = err.to_string();
        match err.kind() {
            K::StorageFull | K::QuotaExceeded => Self::DiskFull(text),
            K::ReadOnlyFilesystem | K::PermissionDenied => Self::ReadOnly(text),
            _ => Self::Io(text),
        }
    }
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn io_errors_map_to_typed_variants() {
        let full = StoreError::from_io(&Error::new(ErrorKind::StorageFull, "no space"));
        assert!(matches!(full, StoreError::DiskFull(_)));
        let ro = StoreError::from_io(&Error::new(ErrorKind::ReadOnlyFilesystem, "ro"));
        assert!(matches!(ro, StoreError::ReadOnly(_)));
        let denied = StoreError::from_io(&Error::new(ErrorKind::PermissionDenied, "no"));
        assert!(matches!(denied, StoreError::ReadOnly(_)));
        let other = StoreError::from_io(&Error::other("boom"));
        assert!(matches!(other, StoreError::Io(ref m) if m == "boom"));
        assert!(full.is_write_fault() && ro.is_write_fault() && other.is_write_fault());
        assert!(!StoreError::Conflict("taken".into()).is_write_fault());
    }
}
