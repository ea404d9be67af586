//! One event as the section stores it (layout 1, see the module docs): the
//! store keeps each retained event in this form, so writing the section is
//! concatenating them, and it reads names as bytes, only compared.

use crate::prelude::*;

use super::{event_err, BehaviorConfig, Event, MAX_NAME, MAX_TAGS, MAX_TYPE};
use crate::error::{Error, Result};
use crate::store::{corrupt, put_f64, put_u16};

/// An event's parts, borrowed: from a stored record, from the boundary's
/// event layout, or from an [`Event`]. Equal as [`Event`]s are equal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EventRef<'a> {
    pub(crate) at: f64,
    pub(crate) kind: &'a [u8],
    pub(crate) item: Option<&'a [u8]>,
    pub(crate) category: Option<&'a [u8]>,
    /// The tags as the record holds them: each a u16 length and its bytes.
    pub(crate) tags: &'a [u8],
    /// How many: more than [`MAX_TAGS`] in one that
    /// [`check`](EventRef::check) refuses.
    pub(crate) ntags: usize,
    pub(crate) value: Option<f64>,
}

/// The first `n` bytes of `b`, moving `b` past them.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (x, rest) = b.split_at_checked(n)?;
    *b = rest;
    Some(x)
}

/// The first `N` bytes of `b`, moving `b` past them.
fn array<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let (x, rest) = b.split_first_chunk::<N>()?;
    *b = rest;
    Some(*x)
}

/// The name at the start of `b`: a u16 length, then its bytes.
fn name<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u16::from_le_bytes(array(b)?);
    take(b, n.into())
}

/// The bytes from `start` up to `rest`, what is left of it.
pub(super) fn until<'a>(start: &'a [u8], rest: &[u8]) -> &'a [u8] {
    start.get(..start.len() - rest.len()).unwrap_or_default()
}

/// The names in `b`, one after another (an event's tags).
pub(super) fn names(mut b: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    core::iter::from_fn(move || name(&mut b))
}

/// Append a name: its u16 length, then its bytes (at most `u16::MAX` of
/// them; a checked name has at most [`MAX_NAME`]).
pub(super) fn put_name(w: &mut Vec<u8>, name: &[u8]) {
    let name = name.get(..u16::MAX.into()).unwrap_or(name);
    put_u16(w, name.len() as u16);
    w.extend_from_slice(name);
}

/// A name of 1 to `max` bytes of UTF-8.
fn name_ok(name: &[u8], max: usize) -> bool {
    (1..=max).contains(&name.len()) && crate::prim::utf8::is_utf8(name)
}

/// The records of `log` (records the store wrote, one after another),
/// oldest first: each its parts and its bytes.
pub(super) fn records(mut log: &[u8]) -> impl Iterator<Item = (EventRef<'_>, &[u8])> {
    core::iter::from_fn(move || {
        let start = log;
        let ev = EventRef::read(&mut log)?;
        Some((ev, until(start, log)))
    })
}

impl<'a> EventRef<'a> {
    /// Read the record at the start of `b`, moving `b` past it; `None` if
    /// it ends early or has unknown flags. What its parts hold is for [`check`](EventRef::check).
    pub(super) fn read(b: &mut &'a [u8]) -> Option<EventRef<'a>> {
        let at = f64::from_le_bytes(array(b)?);
        let kind = name(b)?;
        let [flags] = array(b)?;
        if flags > 7 {
            return None;
        }
        let item = if flags & 1 != 0 { Some(name(b)?) } else { None };
        let category = if flags & 2 != 0 { Some(name(b)?) } else { None };
        let [ntags] = array(b)?;
        let start = *b;
        for _ in 0..ntags {
            name(b)?;
        }
        let tags = until(start, b);
        let value = if flags & 4 != 0 {
            Some(f64::from_le_bytes(array(b)?))
        } else {
            None
        };
        Some(EventRef {
            at,
            kind,
            item,
            category,
            tags,
            ntags: ntags.into(),
            value,
        })
    }

    /// Check the parts: of a stored event (`stored`: a bad part is corrupt
    /// data, an unknown type no error) or of one being tracked (a bad part
    /// is an `INVALID_EVENT`, an unknown type an `UNKNOWN_EVENT_TYPE`).
    /// Returns whether `cfg` knows the type.
    pub(super) fn check(&self, cfg: &BehaviorConfig, stored: bool) -> Result<bool> {
        let bad = |field: &str, why: crate::error::Text| -> Error {
            if stored {
                corrupt(text!("an event's {field} {why}"))
            } else {
                event_err(field.into(), why)
            }
        };
        let known = cfg.known_type(self.kind);
        if stored {
            if !self.at.is_finite() {
                return Err(bad("time", text!("is not a finite number")));
            }
            if !name_ok(self.kind, MAX_TYPE) {
                return Err(bad(
                    "type",
                    text!(
                        "should be 1 to {MAX_TYPE} bytes, but is {} bytes",
                        self.kind.len()
                    ),
                ));
            }
        } else if !known {
            return Err(Error::UnknownEventType {
                kind: text!(
                    "{}",
                    String::from_utf8_lossy(self.kind)
                        .chars()
                        .take(MAX_NAME)
                        .collect::<String>()
                ),
            });
        }
        let name = |field: &str, n: &[u8]| -> Result<()> {
            if name_ok(n, MAX_NAME) {
                Ok(())
            } else {
                Err(bad(
                    field,
                    text!("should be 1 to {MAX_NAME} bytes, but is {} bytes", n.len()),
                ))
            }
        };
        if let Some(n) = self.item {
            name("item", n)?;
        }
        if let Some(n) = self.category {
            name("category", n)?;
        }
        if self.ntags > MAX_TAGS {
            return Err(bad("tags", text!("should hold at most {MAX_TAGS} tags")));
        }
        let mut seen: [&[u8]; MAX_TAGS] = [&[]; MAX_TAGS];
        for (i, t) in names(self.tags).enumerate() {
            name("tags", t)?;
            if seen.contains(&t) {
                return Err(bad("tags", text!("repeat a tag")));
            }
            if let Some(slot) = seen.get_mut(i) {
                *slot = t;
            }
        }
        if self.value.is_some_and(|v| !v.is_finite()) {
            return Err(bad("value", text!("should be a finite number")));
        }
        Ok(known)
    }

    /// Append the record.
    pub(super) fn write(&self, w: &mut Vec<u8>) {
        put_f64(w, self.at);
        put_name(w, self.kind);
        w.push(
            u8::from(self.item.is_some())
                | u8::from(self.category.is_some()) << 1
                | u8::from(self.value.is_some()) << 2,
        );
        for name in self.item.iter().chain(&self.category) {
            put_name(w, name);
        }
        // Checked: at most MAX_TAGS.
        w.push(self.ntags as u8);
        w.extend_from_slice(self.tags);
        if let Some(v) = self.value {
            put_f64(w, v);
        }
    }

    /// As an [`Event`].
    pub(super) fn to_event(self) -> Event {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Event {
            at: self.at,
            kind: s(self.kind),
            item: self.item.map(s),
            category: self.category.map(s),
            tags: names(self.tags).map(s).collect(),
            value: self.value,
        }
    }
}

impl Event {
    /// Its tags as a record holds them.
    pub(super) fn tag_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        for t in &self.tags {
            put_name(&mut w, t.as_bytes());
        }
        w
    }

    /// Its parts, with `tags` from [`tag_bytes`](Event::tag_bytes).
    pub(super) fn parts<'a>(&'a self, tags: &'a [u8]) -> EventRef<'a> {
        EventRef {
            at: self.at,
            kind: self.kind.as_bytes(),
            item: self.item.as_deref().map(str::as_bytes),
            category: self.category.as_deref().map(str::as_bytes),
            tags,
            ntags: self.tags.len(),
            value: self.value,
        }
    }
}
