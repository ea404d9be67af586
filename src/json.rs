//! A small, bounded JSON reader and writer.
//!
//! Options, contexts and models arrive as JSON text (the boundary runs
//! `JSON.stringify` on the caller's object). Reading them here instead of
//! through serde keeps the .wasm small, rejects unknown keys (serde-wasm-bindgen
//! silently skips them), names the full path of a bad value in its error, and
//! bounds depth and size so hostile input cannot exhaust memory or the stack.

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// Deepest nesting accepted.
pub(crate) const MAX_DEPTH: usize = 32;
/// Longest input accepted, in bytes (a dense 2^18-slot model fits).
pub(crate) const MAX_INPUT_BYTES: usize = 16 << 20;

/// A parsed JSON value. Objects keep their key order; duplicate keys are rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

/// What an error about a value is: maps a path and a reason to the right code.
pub(crate) type ErrKind = fn(String, String) -> Error;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Json {
    /// Parse `text`; errors use `kind` with `what` as the field.
    pub(crate) fn parse(text: &str, what: &str, kind: ErrKind) -> Result<Json> {
        if text.len() > MAX_INPUT_BYTES {
            return Err(kind(
                what.into(),
                format!("is {} bytes; the limit is {MAX_INPUT_BYTES}", text.len()),
            ));
        }
        let mut p = Parser {
            s: text.as_bytes(),
            pos: 0,
        };
        let v = p.value(0).and_then(|v| {
            p.ws();
            if p.pos == p.s.len() {
                Ok(v)
            } else {
                Err("unexpected text after the value")
            }
        });
        v.map_err(|msg| {
            kind(
                what.into(),
                format!("is not valid JSON: {msg} at byte {}", p.pos),
            )
        })
    }

    /// A short name of the type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Num(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

type PResult<T> = std::result::Result<T, &'static str>;

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> PResult<Json> {
        if depth > MAX_DEPTH {
            return Err("nesting is too deep");
        }
        self.ws();
        let Some(&c) = self.s.get(self.pos) else {
            return Err("unexpected end");
        };
        match c {
            b'{' => {
                self.pos += 1;
                let mut fields: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.eat(b"}") {
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return Err("expected a key");
                    }
                    let k = self.string()?;
                    if fields.iter().any(|(f, _)| *f == k) {
                        return Err("duplicate key");
                    }
                    self.ws();
                    if !self.eat(b":") {
                        return Err("expected `:`");
                    }
                    let v = self.value(depth + 1)?;
                    fields.push((k, v));
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"}") {
                        return Ok(Json::Obj(fields));
                    }
                    return Err("expected `,` or `}`");
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b"]") {
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"]") {
                        return Ok(Json::Arr(items));
                    }
                    return Err("expected `,` or `]`");
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' if self.eat(b"true") => Ok(Json::Bool(true)),
            b'f' if self.eat(b"false") => Ok(Json::Bool(false)),
            b'n' if self.eat(b"null") => Ok(Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err("unexpected character"),
        }
    }

    fn number(&mut self) -> PResult<Json> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.pos < p.s.len() && p.s[p.pos].is_ascii_digit() {
                p.pos += 1;
            }
            p.pos > s
        };
        self.eat(b"-");
        if !digits(self) {
            return Err("bad number");
        }
        if self.eat(b".") && !digits(self) {
            return Err("bad number");
        }
        if self.eat(b"e") || self.eat(b"E") {
            let _ = self.eat(b"+") || self.eat(b"-");
            if !digits(self) {
                return Err("bad number");
            }
        }
        // The slice is ASCII digits and signs, so it is valid UTF-8.
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| "bad number")?;
        text.parse::<f64>().map(Json::Num).map_err(|_| "bad number")
    }

    fn hex4(&mut self) -> PResult<u32> {
        let h = self.s.get(self.pos..self.pos + 4).ok_or("bad escape")?;
        let h = std::str::from_utf8(h).map_err(|_| "bad escape")?;
        let v = u32::from_str_radix(h, 16).map_err(|_| "bad escape")?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> PResult<String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.pos < self.s.len() && !matches!(self.s[self.pos], b'"' | b'\\' | 0..=0x1f) {
                self.pos += 1;
            }
            // The input is a &str and we only split at ASCII bytes, so this is valid UTF-8.
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| "bad UTF-8")?);
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err("unexpected end");
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xd800..0xdc00).contains(&c) && self.eat(b"\\u") {
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                                }
                            }
                            // A lone surrogate (JSON.stringify can emit one) becomes U+FFFD.
                            out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err("bad escape"),
                    }
                }
                Some(_) => return Err("control character in string"),
                None => return Err("unterminated string"),
            }
        }
    }
}

/// Reads one JSON object as a set of known options, and rejects the rest.
pub(crate) struct Obj<'a> {
    path: String,
    fields: &'a [(String, Json)],
    used: Vec<bool>,
    kind: ErrKind,
}

impl<'a> Obj<'a> {
    /// `value` must be an object; `path` names it in errors (e.g. `policy`).
    pub(crate) fn new(value: &'a Json, path: &str, kind: ErrKind) -> Result<Obj<'a>> {
        match value {
            Json::Obj(fields) => Ok(Obj {
                path: path.to_owned(),
                fields,
                used: vec![false; fields.len()],
                kind,
            }),
            other => Err(kind(
                path.to_owned(),
                format!("should be an object, but is {}", other.type_name()),
            )),
        }
    }

    /// The full path of a key, for errors.
    pub(crate) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn err(&self, key: &str, reason: impl Into<String>) -> Error {
        (self.kind)(self.field(key), reason.into())
    }

    /// The value at `key`; `null` counts as absent.
    pub(crate) fn get(&mut self, key: &str) -> Option<&'a Json> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        match &self.fields[i].1 {
            Json::Null => None,
            v => Some(v),
        }
    }

    /// Whether `key` is present with the value `null` (what `JSON.stringify`
    /// makes of NaN and ±Infinity).
    pub(crate) fn is_null(&self, key: &str) -> bool {
        self.fields
            .iter()
            .any(|(k, v)| k == key && *v == Json::Null)
    }

    fn wrong(&self, key: &str, want: &str, got: &Json) -> Error {
        self.err(key, format!("should be {want}, but is {}", got.type_name()))
    }

    pub(crate) fn num(&mut self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Num(x)) => Ok(Some(*x)),
            Some(v) => Err(self.wrong(key, "a number", v)),
        }
    }

    /// An integer in `[lo, hi]`.
    pub(crate) fn int(&mut self, key: &str, lo: u64, hi: u64) -> Result<Option<u64>> {
        match self.num(key)? {
            None => Ok(None),
            Some(x) if x.fract() == 0.0 && x >= lo as f64 && x <= hi as f64 => Ok(Some(x as u64)),
            Some(x) => Err(self.err(
                key,
                format!("should be an integer in [{lo}, {hi}], but is {x}"),
            )),
        }
    }

    pub(crate) fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "a boolean", v)),
        }
    }

    pub(crate) fn str(&mut self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    pub(crate) fn arr(&mut self, key: &str) -> Result<Option<&'a [Json]>> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Arr(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong(key, "an array", v)),
        }
    }

    /// An array of strings.
    pub(crate) fn strs(&mut self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(items) = self.arr(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Str(s) => Ok(s.clone()),
                other => Err(self.err(
                    &format!("{key}[{i}]"),
                    format!("should be a string, but is {}", other.type_name()),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A nested object reader.
    pub(crate) fn obj(&mut self, key: &str) -> Result<Option<Obj<'a>>> {
        let path = self.field(key);
        match self.get(key) {
            None => Ok(None),
            Some(v) => Obj::new(v, &path, self.kind).map(Some),
        }
    }

    /// Reject keys nobody asked for: unknown options are errors, not ignored.
    pub(crate) fn finish(self) -> Result<()> {
        match self.used.iter().position(|u| !u) {
            None => Ok(()),
            Some(i) => {
                let key = &self.fields[i].0;
                Err((self.kind)(self.field(key), "is not a known option".into()))
            }
        }
    }
}

/// Builds JSON text for results.
#[derive(Default)]
pub(crate) struct Writer {
    out: String,
    first: bool,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer {
            out: String::with_capacity(256),
            first: true,
        }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub(crate) fn begin_obj(&mut self) -> &mut Self {
        self.sep();
        self.out.push('{');
        self.first = true;
        self
    }

    pub(crate) fn end_obj(&mut self) -> &mut Self {
        self.out.push('}');
        self.first = false;
        self
    }

    pub(crate) fn begin_arr(&mut self) -> &mut Self {
        self.sep();
        self.out.push('[');
        self.first = true;
        self
    }

    pub(crate) fn end_arr(&mut self) -> &mut Self {
        self.out.push(']');
        self.first = false;
        self
    }

    /// A key inside an object; the next value call writes its value.
    pub(crate) fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        self.raw_str(k);
        self.out.push(':');
        self.first = true;
        self
    }

    pub(crate) fn num(&mut self, x: f64) -> &mut Self {
        self.sep();
        if x.is_finite() {
            let _ = write!(self.out, "{x}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    pub(crate) fn int(&mut self, x: u64) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{x}");
        self
    }

    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.sep();
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.push_str("null");
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        self.raw_str(s);
        self
    }

    pub(crate) fn nums(&mut self, xs: &[f64]) -> &mut Self {
        self.begin_arr();
        for x in xs {
            self.num(*x);
        }
        self.end_arr()
    }

    fn raw_str(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Json> {
        Json::parse(s, "input", Error::option_owned)
    }

    #[test]
    fn parses_every_kind_of_value() {
        let v = p(
            r#" {"a": [1, -2.5e3, true, false, null], "s": "x\"\\\u00e9\ud83d\ude00\n", "o": {}} "#,
        )
        .unwrap();
        let Json::Obj(f) = &v else { panic!() };
        assert_eq!(
            f[0].1,
            Json::Arr(vec![
                Json::Num(1.0),
                Json::Num(-2500.0),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null
            ])
        );
        assert_eq!(f[1].1, Json::Str("x\"\\é😀\n".into()));
        assert_eq!(f[2].1, Json::Obj(vec![]));
    }

    #[test]
    fn rejects_malformed_input_with_position() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01x",
            "\"abc",
            "{\"a\":1,\"a\":2}",
            "tru",
            "1 2",
            "-",
            "1.",
            "1e",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_OPTION", "{bad}");
            assert!(e.to_string().contains("not valid JSON"), "{e}");
        }
        assert!(p("{\"a\":1,\"a\":2}")
            .unwrap_err()
            .to_string()
            .contains("duplicate key"));
    }

    #[test]
    fn depth_is_bounded_without_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(p(&deep).unwrap_err().to_string().contains("too deep"));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(p(&ok).is_ok());
    }

    #[test]
    fn object_reader_names_paths_and_rejects_unknown_keys() {
        let v = p(r#"{"policy":{"type":"x","epsilon":"high"},"extra":1,"gone":null}"#).unwrap();
        let mut o = Obj::new(&v, "", Error::option_owned).unwrap();
        let mut pol = o.obj("policy").unwrap().unwrap();
        assert_eq!(pol.str("type").unwrap(), Some("x"));
        let e = pol.num("epsilon").unwrap_err();
        assert!(
            e.to_string().contains("policy.epsilon") && e.to_string().contains("a string"),
            "{e}"
        );
        assert_eq!(o.get("gone"), None);
        let e = o.finish().unwrap_err();
        assert!(
            e.to_string().contains("`extra` is not a known option"),
            "{e}"
        );
    }

    #[test]
    fn writer_round_trips_through_the_parser() {
        let mut w = Writer::new();
        w.begin_obj()
            .key("s")
            .str("a\"b\\c\u{1}é")
            .key("n")
            .num(0.1)
            .key("i")
            .int(1 << 53);
        w.key("x")
            .nums(&[1.0, f64::NAN])
            .key("b")
            .bool(true)
            .key("z")
            .null()
            .end_obj();
        let text = w.finish();
        let v = p(&text).unwrap();
        let Json::Obj(f) = v else { panic!("{text}") };
        assert_eq!(f[0].1, Json::Str("a\"b\\c\u{1}é".into()));
        assert_eq!(f[1].1, Json::Num(0.1));
        assert_eq!(f[2].1, Json::Num(9007199254740992.0));
        assert_eq!(f[3].1, Json::Arr(vec![Json::Num(1.0), Json::Null]));
    }
}
