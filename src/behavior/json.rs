//! Reading behaviour options and events from JSON (feature `json`: tests,
//! benchmarks and tools). The .wasm receives them checked by the TypeScript
//! side (`src/ts/validate/behavior.ts`).

use crate::prelude::*;

use super::{
    event_err, Behavior, BehaviorConfig, Event, BUILTIN_TYPES, MAX_NAME, MAX_TAGS, MAX_TYPE,
    MAX_TYPES,
};
use crate::error::{Error, Num, Result};
use crate::json::{Json, Obj};

impl BehaviorConfig {
    /// Parse options from JSON text (`{}` for the defaults).
    pub fn parse(text: &str) -> Result<BehaviorConfig> {
        let json = Json::parse(text, "behavior options", Error::option_owned)?;
        BehaviorConfig::from_json(&json, "")
    }

    /// Read options; `path` prefixes field names in errors. Unknown keys
    /// are errors.
    pub(crate) fn from_json(json: &Json<'_>, path: &str) -> Result<BehaviorConfig> {
        let mut o = Obj::new(json, path, Error::option_owned)?;
        let d = BehaviorConfig::default();
        let max_age_days = match o.num("maxAgeDays")? {
            None => d.max_age_days,
            Some(x) if x > 0.0 && x <= 400.0 => x,
            Some(x) => {
                return Err(o.err(
                    "maxAgeDays",
                    format!("should be in (0, 400], but is {}", Num(x)),
                ))
            }
        };
        let max_events = o
            .int("maxEvents", 1, 5000)?
            .map_or(d.max_events, |x| x as usize);
        let max_bytes = o
            .int("maxBytes", 256, 256 << 10)?
            .map_or(d.max_bytes, |x| x as usize);
        let session_gap_minutes = match o.num("sessionGapMinutes")? {
            None => d.session_gap_minutes,
            Some(x) if (1.0..=1440.0).contains(&x) => x,
            Some(x) => {
                return Err(o.err(
                    "sessionGapMinutes",
                    format!("should be in [1, 1440], but is {}", Num(x)),
                ))
            }
        };
        let mut types = o.strs("types")?.unwrap_or_default();
        if types.len() > MAX_TYPES {
            return Err(o.err(
                "types",
                format!(
                    "should hold at most {MAX_TYPES} types, but holds {}",
                    types.len()
                ),
            ));
        }
        for (i, t) in types.iter().enumerate() {
            let ok = !t.is_empty()
                && t.len() <= MAX_TYPE
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
            if !ok || BUILTIN_TYPES.contains(&t.as_str()) {
                return Err(o.err(
                    &format!("types[{i}]"),
                    format!(
                        "should be 1 to {MAX_TYPE} letters, digits, `_` or `-`, and not a \
                         built-in type, but is `{t}`"
                    ),
                ));
            }
        }
        crate::prim::sort::sort_strings(&mut types);
        types.dedup();
        o.finish()?;
        Ok(BehaviorConfig {
            max_age_days,
            max_events,
            max_bytes,
            session_gap_minutes,
            types,
        })
    }
}

impl Behavior {
    /// Record an event given as JSON text, at `now_ms`.
    pub fn track(&mut self, event: &str, now_ms: f64) -> Result<()> {
        let json = Json::parse(event, "event", event_err)?;
        self.track_json(&json, now_ms)
    }

    /// Record an event read from JSON. Errors (`INVALID_EVENT`,
    /// `UNKNOWN_EVENT_TYPE`, or `INVALID_OPTION` for `now`) store nothing.
    fn track_json(&mut self, event: &Json<'_>, now_ms: f64) -> Result<()> {
        crate::prim::clock::check_now(now_ms)?;
        let ev = self.read_event(event, now_ms)?;
        self.track_event(ev, now_ms)
    }

    fn read_event(&self, event: &Json<'_>, at: f64) -> Result<Event> {
        let mut o = Obj::new(event, "", event_err)?;
        let kind = o
            .str("type")?
            .ok_or_else(|| event_err("type".into(), "is required".into()))?;
        if !self.cfg.known_type(kind.as_bytes()) {
            return Err(Error::UnknownEventType {
                kind: kind.chars().take(MAX_NAME).collect(),
            });
        }
        let item = o
            .str("item")?
            .map(|s| name(s, "item").map(|()| s.to_owned()))
            .transpose()?;
        let category = o
            .str("category")?
            .map(|s| name(s, "category").map(|()| s.to_owned()))
            .transpose()?;
        let mut tags: Vec<String> = Vec::new();
        for (i, t) in o.arr("tags")?.unwrap_or_default().iter().enumerate() {
            let field = format!("tags[{i}]");
            let Json::Str(t) = t else {
                return Err(event_err(
                    field,
                    format!("should be a string, but is {}", t.type_name()),
                ));
            };
            name(t, &field)?;
            if !tags.iter().any(|x| x == t.as_ref()) {
                tags.push(t.to_string());
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(event_err(
                "tags".into(),
                format!(
                    "should hold at most {MAX_TAGS} tags, but holds {}",
                    tags.len()
                ),
            ));
        }
        // JSON.stringify turns NaN and ±Infinity into null.
        if o.is_null("value") {
            return Err(event_err(
                "value".into(),
                "should be a finite number".into(),
            ));
        }
        let value = o.num("value")?;
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(event_err(
                "value".into(),
                "should be a finite number".into(),
            ));
        }
        o.finish()?;
        Ok(Event {
            at,
            kind: kind.to_owned(),
            item,
            category,
            tags,
            value,
        })
    }
}

/// A 1 to [`MAX_NAME`] byte name.
fn name(s: &str, field: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_NAME {
        return Err(event_err(
            field.into(),
            format!("should be 1 to {MAX_NAME} bytes, but is {} bytes", s.len()),
        ));
    }
    Ok(())
}
