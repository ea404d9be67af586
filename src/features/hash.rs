//! Versioned feature hashing.
//!
//! Hash version 1 is MurmurHash3 (x86, 32-bit), the hash Vowpal Wabbit uses,
//! with a per-namespace seed so equal names in different namespaces land in
//! different slots. Anything persisted records the version it was hashed with;
//! a new scheme gets a new number and the old one stays available.

/// The current (and so far only) feature hash version.
pub const HASH_VERSION: u32 = 1;

/// MurmurHash3 x86 32-bit.
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

/// Seed for a namespace: its name hashed with seed 0.
pub fn namespace_seed(namespace: &str) -> u32 {
    murmur3_32(namespace.as_bytes(), 0)
}

/// Hash of a numeric feature `name` in a namespace.
pub fn numeric(ns_seed: u32, name: &str) -> u32 {
    murmur3_32(name.as_bytes(), ns_seed)
}

/// Hash of a categorical feature `name=value` in a namespace.
pub fn categorical(ns_seed: u32, name: &str, value: &str) -> u32 {
    murmur3_32(value.as_bytes(), murmur3_32(name.as_bytes(), ns_seed))
}

/// Hash of the product feature of two hashed features (VW's quadratic rule).
pub fn interaction(a: u32, b: u32) -> u32 {
    a.wrapping_mul(0x0100_0193) ^ b
}

/// The slot of the constant (bias) feature every example carries.
pub fn constant() -> u32 {
    murmur3_32(b"insitu:constant", 0)
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
    fn namespaces_separate_equal_names() {
        let a = numeric(namespace_seed("page"), "price");
        let b = numeric(namespace_seed("user"), "price");
        assert_ne!(a, b);
        assert_ne!(categorical(1, "k", "v"), categorical(1, "k", "w"));
    }
}
