//! The allocator's one tuning: freed memory stays with the process.
//!
//! By default mimalloc hands freed pages back to the OS about a second after they empty. A
//! training step frees and re-allocates hundreds of megabytes of activations and gradients, so
//! each step faulted the same memory in again and the kernel zeroed it page by page (13% of a
//! CPU training step's samples in `perf`, mostly `clear_page_erms`). Keeping the pages removes
//! that work; peak RSS is unchanged, since the pages are reused rather than added to.

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (mimalloc.h), which the -sys crate
/// does not name: milliseconds before freed memory is purged, -1 for never.
const PURGE_DELAY: mi_option_t = 15;

/// Turns purging off unless the user chose a delay with `MIMALLOC_PURGE_DELAY`.
pub(crate) fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store that mimalloc allows at any time.
        unsafe { mi_option_set(PURGE_DELAY, -1) };
    }
}

#[cfg(test)]
mod tests {
    use super::PURGE_DELAY;
    use libmimalloc_sys::mi_option_get;

    #[test]
    fn the_constant_names_the_purge_delay_and_start_up_turns_it_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reading an option is a plain load. 1000 ms is purge_delay's default in
            // options.c; no other option has it.
            assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, 1000);
            super::keep_freed_pages();
            assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, -1);
        }
    }
}
