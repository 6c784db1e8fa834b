//! Handing memory the daemon freed back to the operating system.
//!
//! The `sop` binary allocates with jemalloc (`main.rs`), whose background thread returns
//! freed pages to the operating system after its decay time (10 s). Start-up compiles the
//! plugins (cranelift) and deploys the playbooks on several threads: tens of MiB that are
//! free again once the daemon serves. `release_free` returns them at once, after start-up
//! and after each reload: it purges every jemalloc arena, and trims glibc's heap, which C
//! code in the process (the store codec's zstd) still allocates from.

/// Releases both allocators' free pages to the operating system. Returns whether jemalloc
/// accepted the purge (it does not say how much it returned).
pub fn release_free() -> bool {
    trim_glibc();
    purge_jemalloc().is_ok()
}

/// `arena.<MALLCTL_ARENAS_ALL>.purge`: every arena's unused dirty pages go back at once.
const PURGE_ALL: &std::ffi::CStr = c"arena.4096.purge";

/// Purges every jemalloc arena; the error is mallctl's code (ENOENT for an unknown name).
fn purge_jemalloc() -> Result<(), i32> {
    // SAFETY: a mallctl that reads and writes nothing: every pointer is null, lengths 0.
    #[allow(unsafe_code)]
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 { Ok(()) } else { Err(rc) }
}

/// glibc keeps freed memory inside its per-thread arenas resident (it only trims the top of
/// each heap); `malloc_trim(0)` releases the free pages of every arena. A no-op elsewhere.
fn trim_glibc() -> bool {
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
    use std::alloc::{GlobalAlloc, Layout};

    use tikv_jemallocator::Jemalloc;

    /// jemalloc's dirty pages (freed, not yet returned) over all arenas, refreshed.
    #[allow(unsafe_code)]
    fn jemalloc_dirty_pages() -> usize {
        let mut epoch: u64 = 1;
        let mut dirty: usize = 0;
        let mut len = std::mem::size_of::<usize>();
        // SAFETY: `epoch` takes a u64 and `stats.arenas.4096.pdirty` yields a size_t; the
        // pointers and lengths passed match those types.
        unsafe {
            let rc = tikv_jemalloc_sys::mallctl(
                c"epoch".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                (&raw mut epoch).cast(),
                std::mem::size_of::<u64>(),
            );
            assert_eq!(rc, 0, "epoch");
            let rc = tikv_jemalloc_sys::mallctl(
                c"stats.arenas.4096.pdirty".as_ptr(),
                (&raw mut dirty).cast(),
                &raw mut len,
                std::ptr::null_mut(),
                0,
            );
            assert_eq!(rc, 0, "pdirty");
        }
        dirty
    }

    #[test]
    #[allow(unsafe_code)]
    fn freed_jemalloc_pages_are_purged() {
        // The tests' own allocator is the system's: allocate from jemalloc directly. Free
        // 32 MiB of chunks, each followed by one kept, so the free space cannot merge away.
        let big = Layout::from_size_align(16 * 1024, 8).unwrap();
        let small = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: every pointer is freed once, with the layout it was allocated with.
        let kept: Vec<*mut u8> = unsafe {
            let pairs: Vec<(*mut u8, *mut u8)> = (0..2048)
                .map(|_| (Jemalloc.alloc(big), Jemalloc.alloc(small)))
                .collect();
            for (freed, _) in &pairs {
                assert!(!freed.is_null());
                freed.write_bytes(1, big.size());
                Jemalloc.dealloc(*freed, big);
            }
            pairs.into_iter().map(|(_, kept)| kept).collect()
        };
        assert!(jemalloc_dirty_pages() > 0, "nothing freed to purge");
        assert!(super::release_free());
        assert_eq!(jemalloc_dirty_pages(), 0);
        for p in kept {
            // SAFETY: allocated above with `small`, not freed yet.
            unsafe { Jemalloc.dealloc(p, small) };
        }
    }

    #[test]
    fn an_unknown_mallctl_name_is_an_error_not_a_crash() {
        // The purge's name is checked by the test above; this one checks the error path.
        #[allow(unsafe_code)]
        // SAFETY: as in purge_jemalloc.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"arena.4096.no_such_thing".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_ne!(rc, 0);
    }

    #[test]
    fn glibc_free_memory_is_trimmed() {
        // Free 32 MiB of chunks, each followed by one kept: the free space is inside the
        // heap, where free() alone does not give it back. The trim does.
        let (freed, kept): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (0..2048)
            .map(|i| (vec![i as u8; 16 * 1024], vec![i as u8; 64]))
            .unzip();
        drop(freed);
        assert_eq!(
            super::trim_glibc(),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
        drop(kept);
    }
}
