//! A small, bounded JSON reader, for the native build (feature `json`):
//! the Rust API's options, contexts and models as JSON text, for tests,
//! benches and tools. The .wasm never reads JSON: the TypeScript side
//! validates and hands over numbers and bytes. Reading them here instead of
//! through serde rejects unknown keys, names the full path of a bad value in
//! its error, and bounds depth and size so hostile input cannot exhaust
//! memory or the stack.

use std::borrow::Cow;

use crate::error::{Error, Num, Result};

/// Deepest nesting accepted.
pub(crate) const MAX_DEPTH: usize = 32;
/// Longest input accepted, in bytes (a dense 2^18-slot model fits).
pub(crate) const MAX_INPUT_BYTES: usize = 16 << 20;
/// A parsed JSON value. Objects keep their key order; duplicate keys are rejected.
///
/// Strings borrow from the input text unless they contain escapes: a context
/// of 32 features would otherwise cost some 70 allocations per decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// What an error about a value is: maps a path and a reason to the right code.
pub(crate) type ErrKind = fn(String, String) -> Error;

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
}

impl<'a> Json<'a> {
    /// Parse `text`; errors use `kind` with `what` as the field.
    pub(crate) fn parse(text: &'a str, what: &str, kind: ErrKind) -> Result<Json<'a>> {
        if text.len() > MAX_INPUT_BYTES {
            return Err(kind(
                what.into(),
                format!("is {} bytes; the limit is {MAX_INPUT_BYTES}", text.len()),
            ));
        }
        let mut p = Parser {
            text,
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

    /// A copy that owns all its strings, to keep beyond the input text.
    pub(crate) fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Num(x) => Json::Num(x),
            Json::Str(s) => Json::Str(Cow::Owned(s.into_owned())),
            Json::Arr(items) => Json::Arr(items.into_iter().map(Json::into_owned).collect()),
            Json::Obj(fields) => Json::Obj(
                fields
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// Move the value at `key` out of an object, leaving `null` in its place.
    pub(crate) fn take(&mut self, key: &str) -> Option<Json<'a>> {
        match self {
            Json::Obj(fields) => fields
                .iter_mut()
                .find(|(k, _)| k == key)
                .map(|(_, v)| std::mem::replace(v, Json::Null)),
            _ => None,
        }
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

impl<'a> Parser<'a> {
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

    fn value(&mut self, depth: usize) -> PResult<Json<'a>> {
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
                let mut fields: Vec<(Cow<'a, str>, Json<'a>)> = Vec::new();
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

    fn number(&mut self) -> PResult<Json<'a>> {
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
        Ok(Json::Num(decimal_to_f64(&self.s[start..self.pos])))
    }

    fn hex4(&mut self) -> PResult<u32> {
        let h = self.s.get(self.pos..self.pos + 4).ok_or("bad escape")?;
        let h = std::str::from_utf8(h).map_err(|_| "bad escape")?;
        let v = u32::from_str_radix(h, 16).map_err(|_| "bad escape")?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> PResult<Cow<'a, str>> {
        self.pos += 1; // opening quote
        let mut out: Option<String> = None;
        loop {
            let start = self.pos;
            while self.pos < self.s.len() && !matches!(self.s[self.pos], b'"' | b'\\' | 0..=0x1f) {
                self.pos += 1;
            }
            // We only split the &str at ASCII bytes, so this slice is on char boundaries.
            let piece = self.text.get(start..self.pos).ok_or("bad UTF-8")?;
            let at = self.s.get(self.pos).copied();
            if at == Some(b'"') {
                self.pos += 1;
                return Ok(match out {
                    None => Cow::Borrowed(piece),
                    Some(mut o) => {
                        o.push_str(piece);
                        Cow::Owned(o)
                    }
                });
            }
            // An escape (or an error): from here on the string is built.
            let out = out.get_or_insert_with(String::new);
            out.push_str(piece);
            match at {
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
                            // A high surrogate pairs only with an escaped low
                            // one right after it; otherwise the next escape is
                            // left alone and read as itself.
                            let low = (0xd800..0xdc00).contains(&c)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u".as_slice());
                            if low {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                                } else {
                                    self.pos = save;
                                }
                            }
                            // A lone surrogate (JSON.stringify can emit one)
                            // becomes U+FFFD, as TextEncoder makes it.
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

/// Exact powers of ten representable in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Convert a JSON number (already checked against the grammar) to f64.
///
/// We do not use `str::parse::<f64>`: its correctly-rounded algorithm brings a
/// ~10 KB table and ~5 KB of code into the .wasm. Here, a number whose
/// significant digits fit in 2^53 and whose decimal exponent is within ±22 is
/// converted exactly with one rounding (Clinger's fast path): integers up to
/// 2^53, every seed, and most numbers JS prints. Anything else (17
/// significant digits, extreme exponents) is first approximated by f64
/// scaling and then corrected to the nearest double by comparing it exactly,
/// with big integers, against the midpoints to its neighbours. The result is
/// correctly rounded for up to 19 significant digits, which covers every
/// number `JSON.stringify` writes (17 at most); with more digits, within one
/// unit in the last place.
pub(crate) fn decimal_to_f64(text: &[u8]) -> f64 {
    let (neg, rest) = match text.split_first() {
        Some((b'-', r)) => (true, r),
        _ => (false, text),
    };
    let mut mant: u64 = 0;
    let mut exp: i32 = 0;
    let mut i = 0;
    let mut seen_dot = false;
    while i < rest.len() {
        match rest[i] {
            b'.' => seen_dot = true,
            c @ b'0'..=b'9' => {
                let d = u64::from(c - b'0');
                if mant < 1_000_000_000_000_000_000 {
                    mant = mant * 10 + d;
                    if seen_dot {
                        exp -= 1;
                    }
                } else {
                    // Beyond 19 digits: keep the magnitude, drop the digit.
                    let _ = d;
                    if !seen_dot {
                        exp += 1;
                    }
                }
            }
            _ => break,
        }
        i += 1;
    }
    if i < rest.len() {
        // Exponent part: e[+-]digits (the grammar was checked by the caller).
        let mut j = i + 1;
        let eneg = rest.get(j) == Some(&b'-');
        if matches!(rest.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        let mut e: i32 = 0;
        for &c in &rest[j..] {
            e = e.saturating_mul(10).saturating_add(i32::from(c - b'0'));
        }
        exp = exp.saturating_add(if eneg { -e } else { e });
    }
    let mut v = mant as f64;
    if mant != 0 {
        if mant < (1 << 53) && (-22..=22).contains(&exp) {
            v = if exp >= 0 {
                v * POW10[exp as usize]
            } else {
                v / POW10[(-exp) as usize]
            };
        } else {
            let mut e = exp;
            while e > 22 && v.is_finite() {
                v *= 1e22;
                e -= 22;
            }
            while e < -22 && v != 0.0 {
                v /= 1e22;
                e += 22;
            }
            // A loop that stopped early left v at ±inf or 0, where scaling changes nothing.
            if (-22..=22).contains(&e) {
                v = if e >= 0 {
                    v * POW10[e as usize]
                } else {
                    v / POW10[(-e) as usize]
                };
            }
            // With more than 19 digits the dropped ones can only move the
            // exact value up by less than one unit of `mant`: the result is
            // then within one unit in the last place.
            v = nearest_double(mant, exp, v);
        }
    }
    if neg {
        -v
    } else {
        v
    }
}

/// The double nearest to `w * 10^q` (ties to even), for `w > 0`, starting
/// from an approximation `z` a few units in the last place away: step to the
/// neighbour while the exact value lies beyond the midpoint on that side.
fn nearest_double(w: u64, q: i32, z: f64) -> f64 {
    if q > 330 {
        return f64::INFINITY; // w >= 1, so at least 1e330
    }
    if q < -350 {
        return 0.0; // w < 1e19, so below 1e-331, under half the least subnormal
    }
    let mut z = if z.is_infinite() {
        f64::MAX
    } else {
        z.max(0.0)
    };
    for _ in 0..128 {
        let bits = z.to_bits();
        let (exp_bits, frac) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
        let (m, e) = if exp_bits == 0 {
            (frac, -1074)
        } else {
            (frac | (1 << 52), exp_bits - 1075)
        };
        let odd = m & 1 == 1;
        // Upper midpoint (2m + 1) 2^(e-1).
        let up = cmp_scaled(w, q, 2 * m + 1, e - 1);
        if up.is_gt() || (up.is_eq() && odd) {
            z = f64::from_bits(bits + 1);
            if z.is_infinite() {
                return z;
            }
            continue;
        }
        if m == 0 {
            return z;
        }
        // Lower midpoint: half a step down, or a quarter at a power of two
        // (the neighbour below has half the spacing).
        let lo = if frac == 0 && exp_bits > 1 {
            cmp_scaled(w, q, 4 * m - 1, e - 2)
        } else {
            cmp_scaled(w, q, 2 * m - 1, e - 1)
        };
        if lo.is_lt() || (lo.is_eq() && odd) {
            z = f64::from_bits(bits - 1);
            continue;
        }
        return z;
    }
    z
}

/// Compare `w * 10^q` with `k * 2^s` exactly.
fn cmp_scaled(w: u64, q: i32, k: u64, s: i32) -> std::cmp::Ordering {
    // w 5^q 2^q against k 2^s: move the powers of five to the side where
    // they are positive and the powers of two to one side.
    let mut lhs = Big::from(w);
    let mut rhs = Big::from(k);
    if q >= 0 {
        lhs.mul_pow5(q as u32);
    } else {
        rhs.mul_pow5(q.unsigned_abs());
    }
    let t = q - s;
    if t >= 0 {
        lhs.shl(t as u32);
    } else {
        rhs.shl(t.unsigned_abs());
    }
    lhs.cmp(&rhs)
}

/// A small unsigned big integer, little-endian 32-bit limbs, for the exact
/// comparisons of [`nearest_double`] (at most about 1,500 bits).
struct Big(Vec<u32>);

impl Big {
    fn from(x: u64) -> Big {
        Big(vec![x as u32, (x >> 32) as u32])
    }

    fn mul_small(&mut self, f: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(f) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow5(&mut self, mut n: u32) {
        // 5^13 is the largest power of five below 2^32.
        while n >= 13 {
            self.mul_small(1_220_703_125);
            n -= 13;
        }
        if n > 0 {
            self.mul_small(5u32.pow(n));
        }
    }

    fn shl(&mut self, n: u32) {
        let (limbs, bits) = ((n / 32) as usize, n % 32);
        if bits > 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = (*limb << bits) | carry;
                carry = *limb >> (32 - bits);
                *limb = v;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs > 0 {
            self.0.splice(0..0, std::iter::repeat(0).take(limbs));
        }
    }

    fn cmp(&self, other: &Big) -> std::cmp::Ordering {
        let len = |b: &Big| b.0.iter().rposition(|l| *l != 0).map_or(0, |i| i + 1);
        let (a, b) = (len(self), len(other));
        if a != b {
            return a.cmp(&b);
        }
        for i in (0..a).rev() {
            if self.0[i] != other.0[i] {
                return self.0[i].cmp(&other.0[i]);
            }
        }
        std::cmp::Ordering::Equal
    }
}

/// Map every item of an array, stopping at the first error. A plain loop:
/// `collect::<Result<Vec<_>>>()` costs several times the code size in wasm.
pub(crate) fn map_items<T>(
    items: &[Json],
    mut f: impl FnMut(usize, &Json) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(f(i, item)?);
    }
    Ok(out)
}

/// Reads one JSON object as a set of known options, and rejects the rest.
pub(crate) struct Obj<'a> {
    path: String,
    fields: &'a [(Cow<'a, str>, Json<'a>)],
    used: Vec<bool>,
    kind: ErrKind,
}

impl<'a> Obj<'a> {
    /// `value` must be an object; `path` names it in errors (e.g. `policy`).
    pub(crate) fn new(value: &'a Json<'a>, path: &str, kind: ErrKind) -> Result<Obj<'a>> {
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
    pub(crate) fn get(&mut self, key: &str) -> Option<&'a Json<'a>> {
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

    fn wrong(&self, key: &str, want: &str, got: &Json<'_>) -> Error {
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
                format!("should be an integer in [{lo}, {hi}], but is {}", Num(x)),
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
            Some(Json::Str(s)) => Ok(Some(s.as_ref())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    pub(crate) fn arr(&mut self, key: &str) -> Result<Option<&'a [Json<'a>]>> {
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
        map_items(items, |i, v| match v {
            Json::Str(s) => Ok(s.to_string()),
            other => Err(self.err(
                &format!("{key}[{i}]"),
                format!("should be a string, but is {}", other.type_name()),
            )),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Json<'_>> {
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
    fn lone_surrogates_become_replacement_characters_as_in_text_encoder() {
        let cases = [
            (r#""\ud83d\ude00""#, "😀"),
            (r#""\ud800\ud800""#, "\u{fffd}\u{fffd}"),
            (r#""\ud800\u0041""#, "\u{fffd}A"),
            (r#""\ud800x""#, "\u{fffd}x"),
            (r#""\ude00\ud83d\ude00""#, "\u{fffd}😀"),
            (r#""a\ud800""#, "a\u{fffd}"),
        ];
        for (json, want) in cases {
            match p(json).unwrap() {
                Json::Str(s) => assert_eq!(s, want, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
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
    fn numbers_convert_correctly_rounded() {
        let exact = [
            "0",
            "-0",
            "1",
            "-1",
            "0.5",
            "0.1",
            "0.3125",
            "12.5",
            "1e-7",
            "2.5e3",
            "9007199254740991",
            "1234567890123456",
            "0.1234567890123456",
            "1E22",
            "123456789012345e-22",
        ];
        for t in exact {
            assert_eq!(
                decimal_to_f64(t.as_bytes()),
                t.parse::<f64>().unwrap(),
                "{t}"
            );
        }
        // Every double, written as JS writes it (shortest round trip, up to 17
        // significant digits), reads back as exactly that double: random bit
        // patterns over the whole range, subnormals included.
        let mut rng = crate::prim::rng::Rng::new(99);
        for _ in 0..100_000 {
            let x = f64::from_bits(rng.next_u64() & !(1 << 63));
            if !x.is_finite() {
                continue;
            }
            for t in [format!("{x:e}"), format!("{x}"), format!("-{x:e}")] {
                let got = decimal_to_f64(t.as_bytes());
                assert_eq!(got.abs().to_bits(), x.to_bits(), "{t}: {got:e}");
            }
        }
        // And decimal strings that are not shortest forms, ties included,
        // agree with the standard library's correctly rounded parser.
        for t in [
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.797693134862315807e308",
            "4.9e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "9007199254740993",
            "9007199254740995",
            "0.30000000000000004",
            "123456789012345678e-30",
            "5e-324",
            "1e23",
            "8.98846567431158e307",
        ] {
            assert_eq!(
                decimal_to_f64(t.as_bytes()).to_bits(),
                t.parse::<f64>().unwrap().to_bits(),
                "{t}"
            );
        }
        assert_eq!(decimal_to_f64(b"1e400"), f64::INFINITY);
        assert_eq!(decimal_to_f64(b"1e99999999999"), f64::INFINITY);
        assert_eq!(decimal_to_f64(b"-1e-99999999999"), -0.0);
        assert_eq!(decimal_to_f64(b"1e-400"), 0.0);
        assert_eq!(
            decimal_to_f64(b"123456789012345678901234567890"),
            1.2345678901234568e29
        );
        // Found in review: more than 19 digits near the overflow threshold.
        assert_eq!(decimal_to_f64(b"17976931348623158079e289"), f64::MAX);
        let mut rng = crate::prim::rng::Rng::new(7);
        for _ in 0..2_000 {
            let digits: String = (0..25)
                .map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8))
                .collect();
            let t = format!("1{digits}e{}", (rng.next_u64() % 500) as i32 - 300);
            let (got, want) = (decimal_to_f64(t.as_bytes()), t.parse::<f64>().unwrap());
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs();
            assert!(ulps <= 1, "{t}: {got:e} against {want:e}");
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A seeded fuzz loop over JSON-ish byte soup and mutations of valid documents.
        const ALPHABET: &[u8] = b"{}[]\":,-+.eE0123456789 truefalsnul\\u\n\x7f\xc3\xa9";
        let valid = br#"{"a":[1,-2.5e3,true,null,"x\u00e9"],"b":{"c":1e400}}"#;
        let mut rng = crate::prim::rng::Rng::new(2026);
        let mut cases = 0;
        for _ in 0..100_000 {
            let mut bytes: Vec<u8> = if rng.next_u64() % 2 == 0 {
                let n = (rng.next_u64() % 40) as usize;
                (0..n)
                    .map(|_| ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize])
                    .collect()
            } else {
                valid.to_vec()
            };
            for _ in 0..(rng.next_u64() % 4) {
                if bytes.is_empty() {
                    break;
                }
                let i = (rng.next_u64() % bytes.len() as u64) as usize;
                bytes[i] = ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize];
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = p(text);
                cases += 1;
            }
        }
        assert!(cases > 50_000, "only {cases} inputs were valid UTF-8");
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
}
