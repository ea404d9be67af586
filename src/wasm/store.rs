//! Storage formats at the boundary: the text frame around each stored
//! value, and a snapshot decoded once per page load for every part.

use super::{bad, done, put_io, set_bytes, take_bytes, Global, Table};
use crate::store::frame;
use crate::Snapshot;

static SNAPSHOTS: Global<Table<Snapshot>> = Global::new(Table::new());

/// Run `f` on the decoded snapshot `h`.
pub(super) fn with_snapshot<R>(
    h: u32,
    f: impl FnOnce(&Snapshot) -> crate::Result<R>,
) -> crate::Result<R> {
    // Taken out of the table while `f` runs (it may restore into a part of
    // another table); put back afterwards.
    let snap = SNAPSHOTS.with(|t| t.get(h).map(core::mem::take))?;
    let r = f(&snap);
    SNAPSHOTS.with(|t| t.get(h).map(|s| *s = snap))?;
    r
}

/// Open the stored value in `bytes` (UTF-8, `len` long): `io` gets its
/// saved time and generation; with `payload` 1 its payload text, with 2
/// its payload decoded from base64, replaces `bytes` (the length is
/// returned; 0 with `payload` 0). Base64 is decoded in place.
#[no_mangle]
pub extern "C" fn frame_open(len: i32, payload: u32) -> i32 {
    done((|| {
        let mut raw = take_bytes(len)?.ok_or_else(|| bad("a stored value"))?;
        if !crate::prim::utf8::is_utf8(&raw) {
            return Err(bad("a string that is not UTF-8"));
        }
        let f = frame::open_bytes(&raw)?;
        put_io([f.saved_at, f.generation as f64]);
        let at = f.payload;
        let n = match payload {
            0 => 0,
            1 => {
                // A copy: moving the text down in place would bring a
                // bounds panic.
                raw = raw.get(at..).unwrap_or_default().to_vec();
                raw.len()
            }
            _ => frame::base64_in_place(&mut raw, at)?,
        };
        raw.truncate(n);
        Ok(set_bytes(raw))
    })())
}

/// Decode the snapshot in `bytes` (`len` long, at most `max`); its handle.
#[no_mangle]
pub extern "C" fn snap_decode(len: i32, max: u32) -> i32 {
    done((|| {
        let b = take_bytes(len)?.ok_or_else(|| bad("stored bytes"))?;
        let s = Snapshot::decode(&b, max as usize)?;
        Ok(SNAPSHOTS.with(|t| t.add(s)))
    })())
}

/// Free a decoded snapshot.
#[no_mangle]
pub extern "C" fn snap_drop(h: u32) -> i32 {
    SNAPSHOTS.with(|t| t.remove(h))
}
