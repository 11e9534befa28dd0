//! What every fuzz target links: an allocator that aborts the process (a
//! finding for the fuzzer) on any single allocation above [`LIMIT`], so an
//! allocation sized by a length read from the input is caught even when the
//! machine could satisfy it.

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest allocation a target may make. Inputs are at most a few KiB;
/// nothing the library does for them needs more than a small multiple.
pub const LIMIT: usize = 8 << 20;

struct Capped;

// SAFETY: every call is forwarded to the system allocator unchanged; the
// only addition is an abort before an oversized request reaches it.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn check(size: usize) {
    if size > LIMIT {
        // No message: printing could allocate. libFuzzer reports the abort
        // as a deadly signal and saves the input.
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;
