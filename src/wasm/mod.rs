//! The WebAssembly boundary: the only code that knows it runs in wasm.
//!
//! The module imports nothing. The TypeScript control plane (src/ts/) has
//! validated every option before it calls in; it hands over numbers, two
//! shared buffers in linear memory (`io`, f64s, and `bytes`) and handles,
//! and reads results from the same buffers. Nothing here reads JSON or a
//! JS object. Still, nothing trusts what crosses: a bad handle, a length
//! past the buffer or a value out of range is an error code, never a panic.
//!
//! Conventions (mirrored by src/ts/core.ts):
//! - an export returns an `i32`: `>= 0` is success (a count, a handle or a
//!   value), `< 0` is `-(index of the error code in CODES) - 1`; the error's
//!   text is then copied into `bytes` by `err_text`;
//! - handles are `index + 1` into a table per kind (0 is never a handle);
//! - a build with the `full` feature exports everything; the first-decision
//!   module (`first`) leaves out what writes and merges storage and
//!   `explain`, which the page loads after its first decision.
//!
//! A panic is a bug: the panic handler traps (`unreachable`), and the
//! TypeScript side then considers the instance corrupt (`POISONED`).
// The exports are `pub extern "C"` with `#[no_mangle]`: the module's export
// table reaches them, no Rust path does.
#![allow(unreachable_pub)]

mod behavior;
mod experiments;
#[cfg(feature = "full")]
mod report;
#[cfg(not(feature = "full"))]
mod scorer;
mod slot;
#[cfg(feature = "full")]
mod store;

use core::cell::UnsafeCell;

use crate::error::Error;
use crate::prelude::*;

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
mod alloc;

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[global_allocator]
static ALLOCATOR: alloc::Classes = alloc::Classes::new();

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // No message: formatting it would bring the formatter into the .wasm.
    core::arch::wasm32::unreachable()
}

/// A global of this single-threaded instance. The module imports nothing,
/// so no export runs while another is running.
struct Global<T>(UnsafeCell<T>);

// SAFETY: a wasm instance without threads runs one export at a time.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    const fn new(t: T) -> Global<T> {
        Global(UnsafeCell::new(t))
    }

    /// Run `f` on the value. Exports never nest, so no other borrow lives.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single-threaded, not re-entered (see the type's doc).
        f(unsafe { &mut *self.0.get() })
    }
}

/// The f64 buffer calls read their numbers from and write results to.
static IO: Global<Vec<f64>> = Global::new(Vec::new());
/// The byte buffer: strings and stored bytes, in and out.
static BYTES: Global<Vec<u8>> = Global::new(Vec::new());
/// The last error, for `err_text` (builds with `std`: errors without it
/// carry no text).
#[cfg(feature = "std")]
static LAST: Global<Option<Error>> = Global::new(None);

/// Make the f64 buffer hold `n` values (zeroed when grown) and return where
/// it is. Any later call may move it.
#[no_mangle]
pub extern "C" fn io(n: u32) -> *mut f64 {
    IO.with(|v| {
        v.resize(n as usize, 0.0);
        v.as_mut_ptr()
    })
}

/// Make the byte buffer hold `n` bytes and return where it is.
#[no_mangle]
pub extern "C" fn bytes(n: u32) -> *mut u8 {
    BYTES.with(|v| {
        v.resize(n as usize, 0);
        v.as_mut_ptr()
    })
}

/// Where the f64 buffer is now (after a call wrote results into it).
#[no_mangle]
pub extern "C" fn io_at() -> *mut f64 {
    IO.with(|v| v.as_mut_ptr())
}

/// Where the byte buffer is now.
#[no_mangle]
pub extern "C" fn bytes_at() -> *mut u8 {
    BYTES.with(|v| v.as_mut_ptr())
}

/// How many bytes `bytes` holds (after a call wrote text into it).
#[no_mangle]
pub extern "C" fn bytes_len() -> i32 {
    BYTES.with(|v| v.len() as i32)
}

/// Copy the last error's text into `bytes`; its length.
#[cfg(feature = "std")]
#[no_mangle]
pub extern "C" fn err_text() -> i32 {
    let text = LAST.with(|e| e.as_ref().map(|e| String::from(e.detail())));
    put_bytes(text.unwrap_or_default().as_bytes())
}

/// Copy the last error's text into `bytes`: none in a build without `std`
/// (see `error::Text`).
#[cfg(not(feature = "std"))]
#[no_mangle]
pub extern "C" fn err_text() -> i32 {
    set_bytes(Vec::new())
}

/// The result of an export: `ok` as it is, an error as its negative code.
fn done(r: crate::Result<i32>) -> i32 {
    match r {
        Ok(v) => v,
        Err(e) => {
            let code = -(e.code_index() as i32) - 1;
            #[cfg(feature = "std")]
            LAST.with(|l| *l = Some(e));
            code
        }
    }
}

/// An error about what crossed the boundary (a bug on the TypeScript side).
fn bad(what: &'static str) -> Error {
    Error::option("boundary", what)
}

/// Replace the f64 buffer's content with `values`.
fn put_io(values: impl IntoIterator<Item = f64>) {
    IO.with(|v| {
        v.clear();
        v.extend(values);
    })
}

/// Replace the f64 buffer's content with `parts`, one after the other.
fn put_slices(parts: &[&[f64]]) {
    IO.with(|v| {
        v.clear();
        for p in parts {
            v.extend_from_slice(p);
        }
    })
}

/// Replace the byte buffer's content with `b`; its length.
fn put_bytes(b: &[u8]) -> i32 {
    BYTES.with(|v| {
        v.clear();
        v.extend_from_slice(b);
        v.len() as i32
    })
}

/// Replace the byte buffer with `b` (moved, not copied); its length.
fn set_bytes(b: Vec<u8>) -> i32 {
    BYTES.with(|v| *v = b);
    bytes_len()
}

/// The first `n` bytes of the byte buffer (none when `n` is negative),
/// taken out of it, not copied: the buffer is empty afterwards (a call
/// reads its input once; the TypeScript side writes each call's afresh).
fn take_bytes(n: i32) -> crate::Result<Option<Vec<u8>>> {
    if n < 0 {
        return Ok(None);
    }
    let mut v = BYTES.with(core::mem::take);
    if n as usize > v.len() {
        return Err(bad("a byte length past the buffer"));
    }
    v.truncate(n as usize);
    Ok(Some(v))
}

/// Reads numbers from the f64 buffer, checking each against what it may be.
/// A number that is missing or out of range reads as 0 and marks the
/// reader bad (its errors stick): a reader checks `ok()` once at the end,
/// so what it builds meanwhile needs no cleanup on every early exit.
struct Nums<'a> {
    v: &'a [f64],
    at: usize,
    bad: bool,
}

impl Nums<'_> {
    fn f64(&mut self) -> f64 {
        let x = self.v.get(self.at).copied();
        self.at += 1;
        self.bad |= x.is_none();
        x.unwrap_or(0.0)
    }

    /// An integer in `[0, max]`.
    fn int(&mut self, max: u64) -> u64 {
        let x = self.f64();
        if x >= 0.0 && x <= max as f64 && x == crate::prim::math::trunc(x) {
            x as u64
        } else {
            self.bad = true;
            0
        }
    }

    fn usize(&mut self, max: usize) -> usize {
        self.int(max as u64) as usize
    }

    /// `n` hashed features: (namespace index, hash, value) triples.
    fn features(&mut self, n: usize) -> Vec<crate::Hashed> {
        let mut out = Vec::with_capacity(n.min(crate::features::MAX_EXPANDED_FEATURES));
        for _ in 0..n {
            let ns = self.usize(crate::features::MAX_NAMESPACES);
            let h = self.int(u32::MAX as u64) as u32;
            out.push(crate::Hashed::new(ns, h, self.f64()));
        }
        out
    }

    /// An error when anything read was missing or out of range.
    fn ok(&self) -> crate::Result<()> {
        if self.bad {
            Err(bad("a number missing or out of range"))
        } else {
            Ok(())
        }
    }
}

/// Run `f` on the numbers in the f64 buffer (taken out meanwhile; `f`
/// must not write results into it).
fn with_io<R>(f: impl FnOnce(&mut Nums<'_>) -> crate::Result<R>) -> crate::Result<R> {
    let v = IO.with(core::mem::take);
    let r = f(&mut Nums {
        v: &v,
        at: 0,
        bad: false,
    });
    IO.with(|io| *io = v);
    r
}

/// One table of live objects of a kind; handles are `index + 1`.
struct Table<T> {
    items: Vec<Option<T>>,
}

impl<T> Table<T> {
    const fn new() -> Table<T> {
        Table { items: Vec::new() }
    }

    fn add(&mut self, t: T) -> i32 {
        match self.items.iter().position(Option::is_none) {
            Some(i) => {
                self.items[i] = Some(t);
                i as i32 + 1
            }
            None => {
                self.items.push(Some(t));
                self.items.len() as i32
            }
        }
    }

    fn get(&mut self, h: u32) -> crate::Result<&mut T> {
        (h as usize)
            .checked_sub(1)
            .and_then(|i| self.items.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or_else(|| bad("no such handle"))
    }

    fn remove(&mut self, h: u32) -> i32 {
        match (h as usize)
            .checked_sub(1)
            .and_then(|i| self.items.get_mut(i))
        {
            Some(slot @ Some(_)) => {
                *slot = None;
                0
            }
            _ => done(Err(bad("no such handle"))),
        }
    }
}

/// Traps on purpose: only in builds with the `test-panic` feature, for the
/// JS test that a trap poisons the instance.
#[cfg(feature = "test-panic")]
#[no_mangle]
pub extern "C" fn test_panic() -> i32 {
    panic!("deliberate test panic")
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests;
