//! Every byte format this crate persists: the snapshot container and its
//! section reader and writers, the text frame around stored values, and
//! the one protocol by which each domain ("part") syncs its section with
//! what other tabs stored and then commits.

pub(crate) mod container;
pub(crate) mod frame;
pub(crate) mod sync;

pub(crate) use container::{corrupt, put_f64, put_str, put_u16, put_u32, put_u64, Reader};
pub use container::{Snapshot, DEFAULT_MAX_BYTES, FORMAT_VERSION};

/// Longest slot name.
const MAX_SLOT: usize = 48;

/// The name of a slot's section: `prefix` then the slot's name, which must
/// be 1 to 48 letters, digits, `-`, `_` or `.` (`INVALID_OPTION`).
pub(crate) fn slot_section(prefix: &str, slot: &str) -> crate::Result<alloc::string::String> {
    let ok = !slot.is_empty()
        && slot.len() <= MAX_SLOT
        && slot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        let mut name = alloc::string::String::from(prefix);
        name.push_str(slot);
        Ok(name)
    } else {
        Err(crate::Error::option(
            "slot",
            text!("should be 1 to {MAX_SLOT} letters, digits, `-`, `_` or `.`, but is `{slot}`"),
        ))
    }
}
