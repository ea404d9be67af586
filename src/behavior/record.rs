//! One event as the section stores it (layout 1, see the module docs): the
//! store keeps each retained event in this form, so writing the section is
//! concatenating them, and it reads names as bytes, only compared.

use crate::prelude::*;

use super::{event_err, BehaviorConfig, Event, MAX_NAME, MAX_TAGS, MAX_TYPE};
use crate::error::{Error, Result};
use crate::store::{corrupt, put_f64, put_u16, Reader};

/// An event's parts, borrowed: from a stored record, from the boundary's
/// event layout, or from an [`Event`]. Equal as [`Event`]s are equal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EventRef<'a> {
    pub(crate) at: f64,
    pub(crate) kind: &'a [u8],
    pub(crate) item: Option<&'a [u8]>,
    pub(crate) category: Option<&'a [u8]>,
    /// The first [`MAX_TAGS`] tags; the rest are empty.
    pub(crate) tags: [&'a [u8]; MAX_TAGS],
    /// How many tags the event has: more than [`MAX_TAGS`] in one that
    /// [`check`](EventRef::check) refuses.
    pub(crate) ntags: usize,
    pub(crate) value: Option<f64>,
}

/// The records of `log` (records the store wrote, one after another),
/// oldest first: each its parts and its bytes.
pub(super) fn records(log: &[u8]) -> Records<'_> {
    Records {
        log,
        r: Reader::new(log, "behavior events"),
    }
}

/// See [`records`].
pub(super) struct Records<'a> {
    log: &'a [u8],
    r: Reader<'a>,
}

impl<'a> Iterator for Records<'a> {
    type Item = (EventRef<'a>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.r.pos();
        if start >= self.log.len() {
            return None;
        }
        let ev = EventRef::read(&mut self.r).ok()?;
        Some((ev, self.log.get(start..self.r.pos())?))
    }
}

/// A name's bytes after its u16 length.
fn put_name(w: &mut Vec<u8>, name: &[u8]) {
    // Checked names are at most MAX_NAME bytes.
    put_u16(w, name.len() as u16);
    w.extend_from_slice(name);
}

/// A name of 1 to `max` bytes of UTF-8.
fn name_ok(name: &[u8], max: usize) -> bool {
    (1..=max).contains(&name.len()) && core::str::from_utf8(name).is_ok()
}

impl<'a> EventRef<'a> {
    /// Read the record at `r`, checking only its structure: a record that
    /// ends early or has unknown flags is corrupt; what its parts hold is for
    /// [`check`](EventRef::check).
    pub(super) fn read(r: &mut Reader<'a>) -> Result<EventRef<'a>> {
        let at = f64::from_bits(r.u64()?);
        let kind = r.bytes16()?;
        let flags = r.u8()?;
        if flags > 7 {
            return Err(corrupt(text!("unknown event flags {flags:#x}")));
        }
        let item = if flags & 1 != 0 {
            Some(r.bytes16()?)
        } else {
            None
        };
        let category = if flags & 2 != 0 {
            Some(r.bytes16()?)
        } else {
            None
        };
        let ntags = r.u8()? as usize;
        let mut tags: [&[u8]; MAX_TAGS] = [&[]; MAX_TAGS];
        for i in 0..ntags {
            let t = r.bytes16()?;
            if let Some(slot) = tags.get_mut(i) {
                *slot = t;
            }
        }
        let value = if flags & 4 != 0 {
            Some(f64::from_bits(r.u64()?))
        } else {
            None
        };
        Ok(EventRef {
            at,
            kind,
            item,
            category,
            tags,
            ntags,
            value,
        })
    }

    /// The tags.
    pub(super) fn tags(&self) -> &[&'a [u8]] {
        &self.tags[..self.ntags.min(MAX_TAGS)]
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
        let tags = self.tags();
        for (i, t) in tags.iter().enumerate() {
            name("tags", t)?;
            if tags.iter().take(i).any(|x| x == t) {
                return Err(bad("tags", text!("repeat a tag")));
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
        let tags = self.tags();
        w.push(tags.len() as u8);
        for t in tags {
            put_name(w, t);
        }
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
            tags: self.tags().iter().map(|t| s(t)).collect(),
            value: self.value,
        }
    }
}

impl Event {
    /// Its parts.
    pub(super) fn parts(&self) -> EventRef<'_> {
        let mut tags: [&[u8]; MAX_TAGS] = [&[]; MAX_TAGS];
        for (slot, t) in tags.iter_mut().zip(&self.tags) {
            *slot = t.as_bytes();
        }
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
