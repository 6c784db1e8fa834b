//! Handing memory the daemon freed back to the operating system.
//!
//! Start-up compiles the plugins (cranelift) and deploys the playbooks on several threads;
//! that allocates tens of MiB that are free again once the daemon serves. glibc keeps freed
//! memory inside its per-thread arenas resident (it only trims the top of each heap), so
//! an idle daemon would carry that scratch for its whole life. `malloc_trim(0)` releases the
//! free pages of every arena; it is called once the daemon is ready and after each reload.

/// Releases the allocator's free pages to the operating system (glibc only; elsewhere a
/// no-op). Returns whether any memory was released.
pub fn release_free() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers; it locks each arena itself and only
        // returns pages of chunks that are already free.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released != 0
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_memory_is_released() {
        // Free 32 MiB of chunks, each followed by one kept: the free space is inside the
        // heap, where free() alone does not give it back. The trim does.
        let (freed, kept): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (0..2048)
            .map(|i| (vec![i as u8; 16 * 1024], vec![i as u8; 64]))
            .unzip();
        drop(freed);
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(super::release_free());
        } else {
            assert!(!super::release_free());
        }
        drop(kept);
    }
}
