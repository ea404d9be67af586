//! The inner loops of a decision and an update: sparse dot products, the
//! quadratic form `x' M x`, the rank-1 covariance update, and the dense
//! accumulation that folds hashed features into sorted slots.
//!
//! They live in their own crate only so that the release profile can build
//! them with `opt-level = 3` (the root `Cargo.toml` says so) while the rest of
//! the .wasm is optimised for size: at `opt-level = "z"` these loops kept a
//! function call per element access and were most of a decision's time.
//! Plain Rust over slices; every index comes from a slot below `d`, and none
//! of these functions panics on any input: an out-of-range entry reads as
//! zero, except in [`quad_form`], whose one `unsafe` block reads without
//! bounds checks only after checking once per call the preconditions that
//! make every read in bounds (and returns NaN when they fail).
#![no_std]
#![warn(missing_docs)]

/// `sum(val[k] * dense[idx[k]])`.
#[inline]
pub fn sparse_dot(idx: &[u32], val: &[f64], dense: &[f64]) -> f64 {
    let mut acc = 0.0;
    for (&i, &v) in idx.iter().zip(val) {
        acc += dense.get(i as usize).copied().unwrap_or(0.0) * v;
    }
    acc
}

/// Offset of row `i` in a packed upper triangle of a `d x d` symmetric
/// matrix: row `i` holds entries `(i, i..d)`, so `d - i` of them.
#[inline]
pub fn packed_row(i: usize, d: usize) -> usize {
    i * (2 * d + 1 - i) / 2
}

/// Number of entries in a packed upper triangle, `d (d + 1) / 2`.
pub fn packed_len(d: usize) -> usize {
    d * (d + 1) / 2
}

/// Largest dimension the packed kernels accept; beyond it they do nothing
/// (and `quad_form` is NaN), so index arithmetic can never overflow, even on
/// 32-bit targets.
/// The engine keeps full covariances only up to 128 slots.
pub const MAX_PACKED_DIM: usize = 4096;

/// `x' M x` for a symmetric `M` stored as a packed upper triangle and sparse
/// `x` with strictly increasing `idx`, all below `d` (NaN otherwise).
///
/// Each row's sum runs in four independent partial sums: with one running
/// sum every step waited for the previous addition. Packed storage halves
/// the memory a decision reads, which is what bounds this loop once K
/// covariances no longer fit in the L1 cache.
pub fn quad_form(m: &[f64], d: usize, idx: &[u32], val: &[f64]) -> f64 {
    let n = idx.len().min(val.len());
    let (idx, val) = (&idx[..n], &val[..n]);
    // The loop below reads the matrix without bounds checks (they were a
    // third of its instructions). That is sound when the slots are strictly
    // increasing and below d and the matrix has its packed size, which is
    // checked here once per call; anything else is NaN, which the engine
    // refuses as a numerical error (its own vectors always qualify).
    let valid = d <= MAX_PACKED_DIM
        && m.len() >= packed_len(d)
        && idx.windows(2).all(|w| w[0] < w[1])
        && idx.last().map_or(true, |&l| (l as usize) < d);
    if !valid {
        return f64::NAN;
    }
    let mut acc = 0.0;
    for p in 0..n {
        let i = idx[p] as usize;
        let start = packed_row(i, d);
        // row[k] is M(i, i + k); the later slots j > i are at j - i.
        let row = &m[start..start + d - i];
        // SAFETY: every later slot j satisfies i < j < d (strictly increasing,
        // below d, checked above), so 0 < j - i < d - i = row.len(). `row`
        // itself is a checked slice, and d <= MAX_PACKED_DIM keeps the index
        // arithmetic far from overflow.
        let at = |j: u32| unsafe { *row.get_unchecked(j as usize - i) };
        let (rest_i, rest_v) = (&idx[p + 1..], &val[p + 1..]);
        let mut part = [0.0f64; 4];
        let mut ci = rest_i.chunks_exact(4);
        let mut cv = rest_v.chunks_exact(4);
        for (js, xs) in (&mut ci).zip(&mut cv) {
            for k in 0..4 {
                part[k] += at(js[k]) * xs[k];
            }
        }
        for (&j, &xj) in ci.remainder().iter().zip(cv.remainder()) {
            part[0] += at(j) * xj;
        }
        let xi = val[p];
        let inner = 0.5 * row[0] * xi + ((part[0] + part[1]) + (part[2] + part[3]));
        acc += xi * inner;
    }
    2.0 * acc
}

/// `s = M x` (dense, `s.len() == d`) for a packed symmetric `M`: column `j`
/// is `M(0..j, j)`, one entry from each earlier row, then row `j` itself.
pub fn mat_vec(m: &[f64], d: usize, idx: &[u32], val: &[f64], s: &mut [f64]) {
    s.fill(0.0);
    if d > MAX_PACKED_DIM {
        return;
    }
    for (&j, &xj) in idx.iter().zip(val) {
        let j = j as usize;
        if j >= d {
            continue;
        }
        // M(k, j) for k < j sits at packed_row(k) + (j - k).
        let mut at = j;
        for (k, sk) in s.iter_mut().enumerate().take(j) {
            *sk += m.get(at).copied().unwrap_or(0.0) * xj;
            at += d - k - 1;
        }
        let start = packed_row(j, d);
        if let (Some(row), Some(tail)) = (m.get(start..start + d - j), s.get_mut(j..)) {
            for (sk, mjk) in tail.iter_mut().zip(row) {
                *sk += mjk * xj;
            }
        }
    }
}

/// `M -= s s' / q` (given `inv_q = 1 / q`) on a packed symmetric `M`, then
/// every diagonal entry at least `min_diag`. One copy of each entry means the
/// matrix is symmetric by construction, and the work is half a full update.
pub fn rank1_downdate(m: &mut [f64], d: usize, s: &[f64], inv_q: f64, min_diag: f64) {
    if d > MAX_PACKED_DIM {
        return;
    }
    for i in 0..d.min(s.len()) {
        let start = packed_row(i, d);
        let Some(row) = m.get_mut(start..start + d - i) else {
            continue;
        };
        let si = s[i];
        if si != 0.0 {
            for (mij, &sj) in row.iter_mut().zip(&s[i..]) {
                *mij -= (si * sj) * inv_q;
            }
        }
        if row[0] < min_diag {
            row[0] = min_diag;
        }
    }
}

/// Sum `(slot, value)` pairs into the dense `acc` (all zero on entry, as is
/// `seen`), appending each slot's first appearance to `slots`.
pub fn accumulate(
    pairs: &[(u32, f64)],
    acc: &mut [f64],
    seen: &mut [bool],
    slots: &mut impl Extend<u32>,
) {
    for &(i, v) in pairs {
        let k = i as usize;
        if let (Some(a), Some(s)) = (acc.get_mut(k), seen.get_mut(k)) {
            if !*s {
                *s = true;
                slots.extend(core::iter::once(i));
            }
            *a += v;
        }
    }
}

/// Put `slots` (distinct, each marked in `seen`) in increasing order. For a
/// table no wider than 8 slots per entry, reading the marks in order is
/// cheaper than sorting; wider tables sort.
pub fn order_slots(slots: &mut [u32], seen: &[bool]) {
    if seen.len() <= 8 * slots.len() {
        let marked = seen.iter().enumerate().filter(|(_, s)| **s);
        for (slot, (i, _)) in slots.iter_mut().zip(marked) {
            *slot = i as u32;
        }
    } else {
        sort_slots(slots);
    }
}

/// Move the sums of `slots` out of `acc` into `out` (in `slots` order),
/// leaving `acc` and `seen` all zero again.
pub fn drain(slots: &[u32], acc: &mut [f64], seen: &mut [bool], out: &mut impl Extend<f64>) {
    for &i in slots {
        let k = i as usize;
        if let (Some(a), Some(s)) = (acc.get_mut(k), seen.get_mut(k)) {
            out.extend(core::iter::once(*a));
            *a = 0.0;
            *s = false;
        }
    }
}

/// Sort slot indices: Shell sort with Ciura's gaps. A vector holds at most
/// a few thousand slots, and a library sort costs kilobytes of .wasm.
pub fn sort_slots(v: &mut [u32]) {
    for gap in [701, 301, 132, 57, 23, 10, 4, 1] {
        gap_pass(v, gap);
    }
}

/// One insertion-sort pass over the elements `gap` apart. Not inlined: the
/// loop over the gaps is unrolled, and it would copy this loop per gap.
#[inline(never)]
fn gap_pass(v: &mut [u32], gap: usize) {
    for i in gap..v.len() {
        let item = v[i];
        let mut j = i;
        while j >= gap && v[j - gap] > item {
            v[j] = v[j - gap];
            j -= gap;
        }
        v[j] = item;
    }
}

/// The CRC-32 (IEEE 802.3, reflected, as in zlib and PNG) byte table.
pub type CrcTable = [u32; 256];

/// Make the byte table. Made at run time, on the stack, for each checksum:
/// about 2,000 steps, against 1 KB of incompressible data in the .wasm; a
/// byte table is about 4 times the speed of a nibble table, which matters
/// on a page's first load (every stored value is checksummed before it is
/// read).
pub fn crc32_table() -> CrcTable {
    let mut t = [0u32; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *e = c;
    }
    t
}

#[inline(always)]
fn crc_byte(c: u32, b: u8, t: &CrcTable) -> u32 {
    t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
}

/// Feed `bytes` into the running (pre-inverted) CRC-32 register `c`, one
/// byte at a time. [`crc32_feed_sliced`] gives the same result faster.
pub fn crc32_feed(mut c: u32, bytes: &[u8], t: &CrcTable) -> u32 {
    for &b in bytes {
        c = crc_byte(c, b, t);
    }
    c
}

/// Feed the UTF-16 code units of the UTF-8 text `utf8` into the register
/// `c`, each as its low byte then its high byte (what a JS string is),
/// without building them: an ASCII character is its byte and a zero, a
/// character past U+FFFF a surrogate pair. Bytes that are not UTF-8 give
/// some register, never a panic (callers check the text first).
#[inline(never)]
pub fn crc32_feed_utf16(mut c: u32, utf8: &[u8], t: &CrcTable) -> u32 {
    // The code point being read, and how many continuation bytes it lacks.
    let (mut cp, mut lacks) = (0u32, 0u32);
    for &b in utf8 {
        if b & 0xc0 == 0x80 && lacks > 0 {
            cp = cp << 6 | u32::from(b & 0x3f);
            lacks -= 1;
        } else {
            // A lead byte's count of high ones is its sequence's length
            // (0 for ASCII).
            let n = (!b).leading_zeros();
            cp = u32::from(b) & (0x7f >> n);
            lacks = n.saturating_sub(1);
        }
        if lacks == 0 {
            let mut unit = cp;
            if cp >= 0x1_0000 {
                let v = cp - 0x1_0000;
                c = crc_unit(c, 0xd800 | (v >> 10 & 0x3ff), t);
                unit = 0xdc00 | (v & 0x3ff);
            }
            c = crc_unit(c, unit, t);
        }
    }
    c
}

/// Feed a UTF-16 code unit, low byte first.
#[inline(always)]
fn crc_unit(c: u32, unit: u32, t: &CrcTable) -> u32 {
    crc_byte(crc_byte(c, unit as u8, t), (unit >> 8) as u8, t)
}

/// Tables for [`crc32_feed_sliced`]: `t[k][i]` is the CRC-32 register
/// contribution of byte `i` followed by `k` zero bytes (`t[0]` is the byte
/// table).
pub type CrcTables = [[u32; 256]; 8];

/// Fill the slicing tables (8 KB, made at run time: shipped in the .wasm
/// they would add about 7 KB gzipped).
pub fn crc32_tables(t: &mut CrcTables) {
    let byte = crc32_table();
    t[0] = byte;
    for k in 1..8 {
        let prev = t[k - 1];
        for (out, p) in t[k].iter_mut().zip(prev) {
            *out = (p >> 8) ^ byte[(p & 0xff) as usize];
        }
    }
}

/// [`crc32_feed`] eight input bytes per step (slicing-by-8): the same
/// register, in about a third of the steps (not in the .wasm: 1.5 KB more
/// for a page's first load that no longer checksums a whole snapshot).
pub fn crc32_feed_sliced(mut c: u32, bytes: &[u8], t: &CrcTables) -> u32 {
    let mut chunks = bytes.chunks_exact(8);
    for b in &mut chunks {
        let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][(lo >> 8 & 0xff) as usize]
            ^ t[5][(lo >> 16 & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][(hi >> 8 & 0xff) as usize]
            ^ t[1][(hi >> 16 & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    crc32_feed(c, chunks.remainder(), &t[0])
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A symmetric d x d matrix with varied entries, full and packed.
    fn matrix(d: usize) -> (Vec<f64>, Vec<f64>) {
        let mut m = std::vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                m[i * d + j] =
                    ((i * 7 + j * 7 + i * j) % 11) as f64 - 5.0 + if i == j { 40.0 } else { 0.0 };
            }
        }
        let mut packed = Vec::new();
        for i in 0..d {
            packed.extend_from_slice(&m[i * d + i..(i + 1) * d]);
        }
        assert_eq!(packed.len(), packed_len(d));
        (m, packed)
    }

    fn sparse(d: usize, n: usize) -> (Vec<u32>, Vec<f64>) {
        let mut idx: Vec<u32> = (0..n as u32).map(|k| (k * 5) % d as u32).collect();
        sort_slots(&mut idx);
        idx.dedup();
        let val = idx.iter().map(|&i| 0.5 + i as f64 / 3.0).collect();
        (idx, val)
    }

    #[test]
    fn slots_are_ordered_by_scan_or_by_sort() {
        for (d, picks) in [
            (64, &[40u32, 3, 63, 0, 17][..]),
            (4096, &[4000, 7, 12, 3999][..]),
        ] {
            let mut seen = std::vec![false; d];
            let mut slots = Vec::new();
            accumulate(
                &picks.iter().map(|&i| (i, 1.0)).collect::<Vec<_>>(),
                &mut std::vec![0.0; d],
                &mut seen,
                &mut slots,
            );
            order_slots(&mut slots, &seen);
            let mut want = picks.to_vec();
            want.sort();
            assert_eq!(slots, want, "d={d}");
        }
    }

    #[test]
    fn inputs_that_break_the_preconditions_give_nan() {
        let (_, m) = matrix(4);
        for (idx, val) in [
            (&[2u32, 1][..], &[1.0, 1.0][..]),
            (&[1, 1], &[1.0, 1.0]),
            (&[9], &[1.0]),
        ] {
            assert!(quad_form(&m, 4, idx, val).is_nan(), "{idx:?}");
        }
        assert!(quad_form(&m[..3], 4, &[0], &[1.0]).is_nan());
        assert!(quad_form(&[2.0], usize::MAX, &[0], &[1.0]).is_nan());
        assert_eq!(quad_form(&m, 4, &[], &[]), 0.0);
    }

    #[test]
    fn packed_rows_tile_the_triangle() {
        for d in [1, 2, 7, 64] {
            for i in 0..d {
                assert_eq!(packed_row(i + 1, d) - packed_row(i, d), d - i);
            }
            assert_eq!(packed_row(d, d), packed_len(d));
        }
    }

    #[test]
    fn quad_form_and_mat_vec_match_the_dense_definitions() {
        let d = 16;
        let (full, m) = matrix(d);
        for n in 0..=d {
            let (idx, val) = sparse(d, n);
            let mut want_s = std::vec![0.0; d];
            for (b, &j) in idx.iter().enumerate() {
                for k in 0..d {
                    want_s[k] += full[k * d + j as usize] * val[b];
                }
            }
            let want: f64 = idx
                .iter()
                .zip(&val)
                .map(|(&i, &v)| v * want_s[i as usize])
                .sum();
            let got = quad_form(&m, d, &idx, &val);
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "n={n}: {got} vs {want}"
            );
            let mut s = std::vec![0.0; d];
            mat_vec(&m, d, &idx, &val, &mut s);
            for k in 0..d {
                assert!(
                    (s[k] - want_s[k]).abs() <= 1e-9 * want_s[k].abs().max(1.0),
                    "n={n} s[{k}]"
                );
            }
        }
    }

    #[test]
    fn downdate_matches_the_dense_update_and_keeps_the_floor() {
        let d = 5;
        let (mut full, mut m) = matrix(d);
        let s = [1.0, -2.0, 0.0, 3.5, 0.25];
        rank1_downdate(&mut m, d, &s, 1.0 / 0.7, 1e-12);
        for i in 0..d {
            for j in 0..d {
                full[i * d + j] -= s[i] * s[j] / 0.7;
            }
        }
        for i in 0..d {
            for j in i..d {
                let got = m[packed_row(i, d) + j - i];
                assert!((got - full[i * d + j]).abs() < 1e-12, "({i},{j})");
            }
        }
        let mut tiny = std::vec![1e-13, 0.0, 1.0];
        rank1_downdate(&mut tiny, 2, &[1.0, 0.0], 1.0, 1e-12);
        assert_eq!(tiny[0], 1e-12);
    }

    #[test]
    fn out_of_range_slots_read_as_zero_and_never_panic() {
        let (_, m) = matrix(4);
        assert_eq!(sparse_dot(&[0, 9], &[1.0, 1.0], &[2.0, 3.0]), 2.0);
        // Found in review: a short output, and a dimension whose packed size overflows.
        let mut short = [0.0; 2];
        mat_vec(&[1.0; 10], 4, &[3], &[1.0], &mut short);
        assert_eq!(short, [1.0, 1.0]);
        rank1_downdate(&mut [1.0], usize::MAX, &[1.0], 1.0, 0.0);
        let mut s = [0.0; 4];
        mat_vec(&m, 4, &[0, 7], &[1.0, 1.0], &mut s);
        assert_eq!(s, [m[0], m[1], m[2], m[3]]);
        let (mut acc, mut seen, mut slots) = ([0.0; 4], [false; 4], Vec::new());
        accumulate(
            &[(1, 2.0), (9, 1.0), (1, 0.5)],
            &mut acc,
            &mut seen,
            &mut slots,
        );
        assert_eq!(slots, [1]);
        let mut out = Vec::new();
        drain(&slots, &mut acc, &mut seen, &mut out);
        assert_eq!((out, acc, seen), (std::vec![2.5], [0.0; 4], [false; 4]));
    }

    #[test]
    fn sliced_crc_matches_the_bytewise_register_for_every_length_and_register() {
        let mut t = [[0u32; 256]; 8];
        crc32_tables(&mut t);
        // The standard check value.
        assert_eq!(!crc32_feed_sliced(!0, b"123456789", &t), 0xcbf4_3926);
        assert_eq!(!crc32_feed(!0, b"123456789", &t[0]), 0xcbf4_3926);
        // Every length up to 260 (each remainder of 8) from several
        // registers; 167 is odd, so the bytes take all 256 values.
        let data: Vec<u8> = (0..260u32).map(|i| (i * 167 + 13) as u8).collect();
        for len in 0..data.len() {
            for c in [!0u32, 0, 0x1234_5678] {
                let bytes = &data[data.len() - len..];
                assert_eq!(
                    crc32_feed_sliced(c, bytes, &t),
                    crc32_feed(c, bytes, &t[0]),
                    "len {len}, register {c:#x}"
                );
            }
        }
    }

    #[test]
    fn utf16_crc_feeds_the_code_units_of_utf8_text() {
        let t = crc32_table();
        for s in [
            "",
            "123456789",
            "ab\u{e9}\u{20ac};\u{10348}\u{ffff}\u{10000}\u{10ffff}x",
            "\u{7f}\u{80}\u{7ff}\u{800}",
        ] {
            let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert_eq!(
                crc32_feed_utf16(!0, s.as_bytes(), &t),
                crc32_feed(!0, &units, &t),
                "{s:?}"
            );
        }
        // Bytes that are not UTF-8: some register, no panic.
        crc32_feed_utf16(!0, &[0xff, 0x80, 0xf0, 0xc3], &t);
    }
}
