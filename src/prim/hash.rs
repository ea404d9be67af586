//! The hashes every versioned format relies on. Each is fixed forever: a
//! change would silently move every stored slot, assignment or checksum,
//! so a new scheme gets a new version number and these stay.

/// MurmurHash3 x86 32-bit (the feature hash of hash version 1, and the
/// `insitu/1` assignment hash).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    fmix32(h)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

pub(crate) const FNV_OFFSET: u32 = 0x811c_9dc5;
pub(crate) const FNV_PRIME: u32 = 0x0100_0193;

/// FNV-1a 32-bit over UTF-16 code units, continuing from `h`.
pub(crate) fn fnv_utf16(mut h: u32, s: &str) -> u32 {
    for unit in s.encode_utf16() {
        h ^= unit as u32;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a 32-bit of a string as JS sees it (UTF-16 code units), as in
/// GrowthBook's `hashFnv32a`.
pub fn fnv1a32(s: &str) -> u32 {
    fnv_utf16(FNV_OFFSET, s)
}

/// FNV-1a 64 over bytes: the model version's content hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv64(pub(crate) u64);

impl Fnv64 {
    pub(crate) fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.0 = (self.0 ^ *x as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn u32(&mut self, x: u32) {
        self.bytes(&x.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, x: f64) {
        // JSON has no -0: the model was read as JSON, where -0 is 0.
        self.bytes(&(if x == 0.0 { 0.0f64 } else { x }).to_le_bytes());
    }

    /// A string: its UTF-8 length (u32), then its bytes.
    pub(crate) fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib and PNG); see
/// `insitu_kernels::crc32_feed`.
pub fn crc32(bytes: &[u8]) -> u32 {
    !insitu_kernels::crc32_feed(!0, bytes, &insitu_kernels::crc32_table())
}

/// CRC-32 of a text's UTF-16 code units, each low byte first (what a JS
/// string is), from its UTF-8 bytes; see `insitu_kernels::crc32_feed_utf16`.
pub(crate) fn crc32_utf16(utf8: &[u8]) -> u32 {
    !insitu_kernels::crc32_feed_utf16(!0, utf8, &insitu_kernels::crc32_table())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_published_vectors() {
        // Reference vectors of MurmurHash3_x86_32 from SMHasher.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514E_28B7);
        assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81F1_6F39);
        assert_eq!(murmur3_32(&[0, 0, 0, 0], 0), 0x2362_F9DE);
        assert_eq!(murmur3_32(b"aaaa", 0x9747_b28c), 0x5A97_808A);
        assert_eq!(murmur3_32(b"abc", 0), 0xB3DD_93FA);
        assert_eq!(murmur3_32(b"Hello, world!", 0x9747_b28c), 0x2488_4CBA);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
            0x2FA8_26CD
        );
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn fnv64_matches_the_published_vectors() {
        let h = |s: &[u8]| {
            let mut f = Fnv64::new();
            f.bytes(s);
            f.0
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
