//! The .wasm's allocator: power-of-two size classes with a free list each,
//! carved from pages the module grows its memory by. A few hundred bytes of
//! code (a general allocator took 3 KB), and as fast for this crate's
//! pattern: many small short-lived vectors of a few sizes, and a few large
//! learner matrices that live for the page view. Freed blocks are reused by
//! later allocations of their class; memory is never returned (wasm cannot
//! shrink it), so the peak is what a page keeps.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32::memory_grow;
use core::cell::UnsafeCell;

const PAGE: usize = 65536;
/// Classes 8 B (2^3) to 2^31 B.
const CLASSES: usize = 29;

struct Heap {
    /// Free blocks per class, each holding the address of the next.
    free: [usize; CLASSES],
    /// The unused end of the last page grown.
    next: usize,
    end: usize,
}

/// The allocator; `#[global_allocator]` in src/wasm/mod.rs.
pub(super) struct Classes(UnsafeCell<Heap>);

// SAFETY: a wasm instance without threads runs one export at a time.
unsafe impl Sync for Classes {}

impl Classes {
    pub(super) const fn new() -> Classes {
        Classes(UnsafeCell::new(Heap {
            free: [0; CLASSES],
            next: 0,
            end: 0,
        }))
    }
}

/// The class of a layout: the power of two at least its size and alignment.
fn class(l: Layout) -> usize {
    let size = l.size().max(l.align()).max(8);
    (usize::BITS - (size - 1).leading_zeros()) as usize - 3
}

unsafe impl GlobalAlloc for Classes {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let c = class(l);
        if c >= CLASSES {
            return core::ptr::null_mut();
        }
        // SAFETY: single-threaded and never re-entered (see `Sync`).
        let h = unsafe { &mut *self.0.get() };
        let block = h.free[c];
        if block != 0 {
            // SAFETY: a free block holds the next free block's address.
            h.free[c] = unsafe { *(block as *const usize) };
            return block as *mut u8;
        }
        let size = 8usize << c;
        // Blocks of a class are aligned to their size: their size is the
        // alignment any layout of the class asks.
        let start = (h.next + size - 1) & !(size - 1);
        if start + size > h.end || h.end == 0 {
            let pages = size.div_ceil(PAGE) + 1;
            let at = memory_grow(0, pages);
            if at == usize::MAX {
                return core::ptr::null_mut();
            }
            let base = at * PAGE;
            // A new region, unless it continues the last one.
            if base != h.end {
                h.next = base;
            }
            h.end = base + pages * PAGE;
            return unsafe { self.alloc(l) };
        }
        h.next = start + size;
        start as *mut u8
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let c = class(l);
        // SAFETY: single-threaded and never re-entered (see `Sync`).
        let h = unsafe { &mut *self.0.get() };
        // SAFETY: the block is at least 8 bytes and ours again.
        unsafe { *(p as *mut usize) = h.free[c] };
        h.free[c] = p as usize;
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        // SAFETY: `size` with the old alignment is a valid layout (the
        // trait's contract), and a block of the same class is big enough.
        let new = unsafe { Layout::from_size_align_unchecked(size, l.align()) };
        if class(new) == class(l) {
            return p;
        }
        let q = unsafe { self.alloc(new) };
        if !q.is_null() {
            unsafe {
                core::ptr::copy_nonoverlapping(p, q, l.size().min(size));
                self.dealloc(p, l);
            }
        }
        q
    }
}
