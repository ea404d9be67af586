//! Integers written as text without the formatter (which a build without
//! `std` leaves out of the .wasm).

use alloc::string::String;

/// Append `v` in decimal.
pub(crate) fn push_decimal(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        out.push(char::from(*b));
    }
}

/// Append the low `width` hex digits of `v`, lowercase, zero-padded.
pub(crate) fn push_hex(out: &mut String, v: u64, width: u32) {
    for k in (0..width).rev() {
        let d = ((v >> (4 * k)) & 15) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_hex_match_the_formatter() {
        for v in [0u64, 1, 9, 10, 99, 100, 12_345, u32::MAX as u64, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
            let mut h = String::new();
            push_hex(&mut h, v, 16);
            assert_eq!(h, format!("{v:016x}"));
        }
    }
}
