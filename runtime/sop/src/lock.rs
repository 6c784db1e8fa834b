//! One daemon per data directory: an exclusive lock on `data_dir/sop.lock`, held for the
//! process's life (the OS releases it if the process dies, so no stale lock survives a crash).
//! sled also locks its own files; this lock fails earlier and says why.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates the data directory if needed and takes its lock, or says which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create data_dir {}: {e}", data_dir.display()))?;
        let path = data_dir.join("sop.lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(format!(
                    "another sop daemon uses {} (lock {} held by pid {}); refusing to start",
                    data_dir.display(),
                    path.display(),
                    holder.trim()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        // Record who holds it, for the message above. Best effort: the lock is what counts.
        let _ = file.set_len(0);
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(err.contains("another sop daemon"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_read_only_data_dir_is_a_clear_start_up_error() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        // A file we create is owned by our effective uid; root ignores permissions.
        let probe = dir.path().join("owner");
        std::fs::write(&probe, "").unwrap();
        if std::fs::metadata(&probe).unwrap().uid() == 0 {
            eprintln!(
                "skipped: running as root, which ignores directory permissions; \
                 the injected-fault tests in tests/disk_faults.rs cover the daemon's reaction"
            );
            return;
        }
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
        let err = DataDirLock::acquire(&data).unwrap_err();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            err.contains("sop.lock") && err.contains("ermission denied"),
            "{err}"
        );
    }
}
