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

use crate::prim::hash::{fnv_utf16, murmur3_32, FNV_OFFSET, FNV_PRIME};
use alloc::vec::Vec;

/// FNV-1a 32-bit of the decimal digits of `v` (`v + ""` in JS).
fn fnv_decimal(v: u32) -> u32 {
    let mut digits = [0u8; 10];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[i..]
        .iter()
        .fold(FNV_OFFSET, |h, d| (h ^ *d as u32).wrapping_mul(FNV_PRIME))
}

/// GrowthBook's `hash(seed, value, version)`: the position of `value` in
/// [0, 1), in steps of 1/10000 (version 2) or 1/1000 (version 1). None for
/// other versions, as in GrowthBook.
pub fn growthbook(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        2 => {
            let inner = fnv_utf16(fnv_utf16(FNV_OFFSET, seed), value);
            Some((fnv_decimal(inner) % 10_000) as f64 / 10_000.0)
        }
        1 => Some((fnv_utf16(fnv_utf16(FNV_OFFSET, value), seed) % 1000) as f64 / 1000.0),
        _ => None,
    }
}

/// The seed of one purpose of the `insitu/1` hash: `murmur3(parts joined by
/// NUL)`. NUL cannot occur in keys, ids or names (they are validated), so
/// different parts never collide by concatenation.
pub(crate) fn purpose_seed(parts: &[&str]) -> u32 {
    let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(p.as_bytes());
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
        assert_eq!(fnv_decimal(u32::MAX), fnv1a32("4294967295"));
    }

    #[test]
    fn purposes_do_not_collide_by_concatenation() {
        assert_ne!(purpose_seed(&["ab", "c"]), purpose_seed(&["a", "bc"]));
        let u = uniform(purpose_seed(&["x"]), b"unit");
        assert!(u > 0.0 && u < 1.0);
    }
}
