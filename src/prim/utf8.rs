//! A UTF-8 check: what `core::str::from_utf8` accepts, in a fraction of its
//! .wasm (no fast path for long ASCII runs: the strings checked here are
//! names and short stored values).

/// Whether `b` is UTF-8: no stray continuation byte, no overlong form, no
/// surrogate, nothing past U+10FFFF.
#[inline(never)]
pub(crate) fn is_utf8(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        if c < 0x80 {
            continue;
        }
        // Continuation bytes, the smallest code point of the length, and
        // the lead byte's bits.
        let (n, min) = match c {
            0xc2..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf4 => (3, 0x1_0000),
            _ => return false,
        };
        let mut cp = u32::from(c) & (0x3f >> n);
        for _ in 0..n {
            match b.get(i) {
                Some(&d) if d & 0xc0 == 0x80 => cp = cp << 6 | u32::from(d & 0x3f),
                _ => return false,
            }
            i += 1;
        }
        if cp < min || cp > 0x10_ffff || (0xd800..0xe000).contains(&cp) {
            return false;
        }
    }
    true
}

/// `b` as a `str` if it is UTF-8.
pub(crate) fn str(b: &[u8]) -> Option<&str> {
    if is_utf8(b) {
        // SAFETY: checked just above.
        Some(unsafe { core::str::from_utf8_unchecked(b) })
    } else {
        None
    }
}

/// `b` as a `String` if it is UTF-8 (the boundary's strings).
#[cfg_attr(not(feature = "full"), allow(dead_code))]
pub(crate) fn string(b: alloc::vec::Vec<u8>) -> Option<alloc::string::String> {
    if is_utf8(&b) {
        // SAFETY: checked just above.
        Some(unsafe { alloc::string::String::from_utf8_unchecked(b) })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_core_accepts() {
        // Every sequence of up to 3 bytes, and 4-byte ones from every lead
        // byte with a spread of continuations.
        let mut b = [0u8; 4];
        for x in 0..1u32 << 24 {
            b[..3].copy_from_slice(&x.to_le_bytes()[..3]);
            for n in [1, 2, 3] {
                let s = &b[..n];
                if n < 3 && x >> (8 * n) != 0 {
                    continue;
                }
                assert_eq!(is_utf8(s), core::str::from_utf8(s).is_ok(), "{s:02x?}");
            }
        }
        for lead in 0xe0..=0xffu8 {
            for x in 0..1u32 << 16 {
                let t = x.to_le_bytes();
                let s = [lead, t[0], t[1], (x as u8).wrapping_mul(37)];
                assert_eq!(is_utf8(&s), core::str::from_utf8(&s).is_ok(), "{s:02x?}");
                let s = [b'a', lead, t[0], t[1], 0x80 | (x >> 10) as u8 & 0x3f];
                assert_eq!(is_utf8(&s), core::str::from_utf8(&s).is_ok(), "{s:02x?}");
            }
        }
        assert!(is_utf8("ab\u{e9}\u{20ac}\u{10348}\u{10ffff}".as_bytes()));
        assert_eq!(string(b"x\xff".to_vec()), None);
    }
}
