//! Versioned assignment hashes: a unit key (and a seed) to a position in [0, 1).
//!
//! - `insitu/1`: MurmurHash3 x86-32 (the feature hash) of the unit key's
//!   UTF-8 bytes, seeded per purpose (one seed per variant, one for coverage,
//!   one per namespace, one per holdout), so every draw a unit takes is an
//!   independent uniform.
//! - `growthbook/1` and `growthbook/2`: GrowthBook's published algorithm,
//!   FNV-1a 32-bit over UTF-16 code units (JS `charCodeAt`), so experiments
//!   move between GrowthBook and insitu without reshuffling anyone.
//!   Version 2: `fnv(fnv(seed + unit) as decimal) % 10000 / 10000`.
//!   Version 1: `fnv(unit + seed) % 1000 / 1000`.

use crate::prelude::*;

use crate::prim::hash::{murmur3_32, FNV_OFFSET, FNV_PRIME};

fn fnv_step(h: u32, unit: u32) -> u32 {
    (h ^ unit).wrapping_mul(FNV_PRIME)
}

/// FNV-1a 32-bit over the UTF-16 code units (JS `charCodeAt`) of the UTF-8
/// text `s`, continuing from `h`; decoded here as it is hashed, so names and
/// seeds stay bytes. Bytes that are not UTF-8 (which the TypeScript side
/// never sends) hash to some value, never a panic.
pub(crate) fn fnv_utf16(mut h: u32, s: &[u8]) -> u32 {
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        let mut c = b as u32;
        if b >= 0x80 {
            // A lead byte of 2, 3 or 4: 1, 2 or 3 continuation bytes follow.
            let more = 1 + (b >= 0xE0) as u32 + (b >= 0xF0) as u32;
            c &= 0x3F >> more;
            for _ in 0..more {
                c = c << 6 | (it.next().map_or(0, |&x| x as u32) & 0x3F);
            }
        }
        if c >= 0x1_0000 {
            // Outside the BMP: a surrogate pair.
            c -= 0x1_0000;
            h = fnv_step(h, 0xD800 | (c >> 10));
            c = 0xDC00 | (c & 0x3FF);
        }
        h = fnv_step(h, c);
    }
    h
}

/// FNV-1a 32-bit of the decimal digits of `v` (`v + ""` in JS).
fn fnv_decimal(v: u32) -> u32 {
    let mut digits = [0u8; 10];
    let mut n = v;
    let mut i = digits.len();
    while i > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    fnv_utf16(FNV_OFFSET, digits.get(i..).unwrap_or_default())
}

/// GrowthBook's `hash(seed, value, version)`: the position of `value` in
/// [0, 1), in steps of 1/10000 (version 2) or 1/1000 (version 1). None for
/// other versions, as in GrowthBook.
pub fn growthbook(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        1 | 2 => Some(position(&[seed.as_bytes()], value.as_bytes(), version == 2)),
        _ => None,
    }
}

/// [`growthbook`] version 2 (`v2`) or 1 of `unit` with the seed that is
/// the concatenation of `seed`'s parts.
pub(crate) fn position(seed: &[&[u8]], unit: &[u8], v2: bool) -> f64 {
    let mut h = FNV_OFFSET;
    if !v2 {
        h = fnv_utf16(h, unit);
    }
    for part in seed {
        h = fnv_utf16(h, part);
    }
    if v2 {
        h = fnv_decimal(fnv_utf16(h, unit));
        (h % 10_000) as f64 / 10_000.0
    } else {
        (h % 1000) as f64 / 1000.0
    }
}

/// The seed of one purpose of the `insitu/1` hash: `murmur3(parts joined by
/// NUL)`, here `purpose`, `name` and then, if `more` is not empty, `more`
/// (a variant's id, which is never empty). NUL cannot occur in keys, ids
/// or names (they are validated), so different parts never collide by
/// concatenation.
pub(crate) fn purpose_seed(purpose: &[u8], name: &[u8], more: &[u8]) -> u32 {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(purpose);
    bytes.extend_from_slice(&[0]);
    bytes.extend_from_slice(name);
    if !more.is_empty() {
        bytes.extend_from_slice(&[0]);
        bytes.extend_from_slice(more);
    }
    murmur3_32(&bytes, 0)
}

/// The `insitu/1` position of `unit` for a purpose seed: a uniform in (0, 1),
/// never exactly 0 (its logarithm is taken) and never 1.
pub(crate) fn uniform(seed: u32, unit: &[u8]) -> f64 {
    (murmur3_32(unit, seed) as f64 + 0.5) * (1.0 / 4_294_967_296.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prim::hash::fnv1a32;

    #[test]
    fn utf8_is_hashed_as_its_utf16_code_units() {
        let texts = [
            "",
            "a",
            "foobar",
            "\u{e9}",
            "gr\u{fc}n",
            "\u{7ff}\u{800}\u{ffff}",
            "\u{10000}",
            "\u{1f600}x",
            "\u{10ffff}",
            "mixed \u{e9}\u{4e2d}\u{1f600} text",
        ];
        for t in texts {
            assert_eq!(fnv_utf16(FNV_OFFSET, t.as_bytes()), fnv1a32(t), "{t:?}");
        }
        for c in (0..0x11_0000).step_by(97).filter_map(char::from_u32) {
            let t = c.to_string();
            assert_eq!(fnv_utf16(FNV_OFFSET, t.as_bytes()), fnv1a32(&t), "{c:?}");
        }
        // Bytes that are not UTF-8 hash to something, without a panic.
        fnv_utf16(FNV_OFFSET, &[0xF4, 0xFF]);
        fnv_utf16(FNV_OFFSET, &[0xC3]);
    }

    #[test]
    fn fnv1a32_matches_published_vectors() {
        // The FNV-1a 32-bit test vectors (Fowler, Noll, Vo): ASCII strings,
        // whose UTF-16 code units equal their bytes.
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn fnv_hashes_utf16_code_units_not_bytes() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes: hashing bytes
        // would give a different value. One round of FNV-1a by hand:
        let by_hand = (FNV_OFFSET ^ 0xE9).wrapping_mul(FNV_PRIME);
        assert_eq!(fnv1a32("é"), by_hand);
        // A character outside the BMP is two code units (a surrogate pair).
        let pair = [0xD83D_u32, 0xDE00];
        let by_hand = pair
            .iter()
            .fold(FNV_OFFSET, |h, u| (h ^ u).wrapping_mul(FNV_PRIME));
        assert_eq!(fnv1a32("😀"), by_hand);
    }

    #[test]
    fn version_two_hashes_the_decimal_of_the_first_hash() {
        for (seed, value) in [("", ""), ("exp", "user-1"), ("s", "0"), ("x", "4294967295")] {
            let first = fnv1a32(&format!("{seed}{value}"));
            let want = (fnv1a32(&first.to_string()) % 10_000) as f64 / 10_000.0;
            assert_eq!(growthbook(seed, value, 2), Some(want), "{seed}/{value}");
            let v1 = (fnv1a32(&format!("{value}{seed}")) % 1000) as f64 / 1000.0;
            assert_eq!(growthbook(seed, value, 1), Some(v1));
        }
        assert_eq!(growthbook("a", "b", 3), None);
        assert_eq!(fnv_decimal(0), fnv1a32("0"));
        assert_eq!(fnv_decimal(7), fnv1a32("7"));
        assert_eq!(fnv_decimal(u32::MAX), fnv1a32("4294967295"));
    }

    #[test]
    fn purposes_do_not_collide_by_concatenation() {
        assert_ne!(
            purpose_seed(b"p", b"ab", b"c"),
            purpose_seed(b"p", b"a", b"bc")
        );
        assert_eq!(purpose_seed(b"a", b"b", b""), murmur3_32(b"a\0b", 0));
        assert_eq!(purpose_seed(b"a", b"b", b"c"), murmur3_32(b"a\0b\0c", 0));
        let u = uniform(purpose_seed(b"x", b"y", b""), b"unit");
        assert!(u > 0.0 && u < 1.0);
    }
}
