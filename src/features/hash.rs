//! Versioned feature hashing.
//!
//! Hash version 1 is MurmurHash3 (x86, 32-bit), the hash Vowpal Wabbit uses,
//! with a per-namespace seed so equal names in different namespaces land in
//! different slots. Anything persisted records the version it was hashed with;
//! a new scheme gets a new number and the old one stays available.

/// The current (and so far only) feature hash version.
pub const HASH_VERSION: u32 = 1;

use crate::prim::hash::murmur3_32;

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

/// The slot of the constant (bias) feature every example carries:
/// `murmur3_32("insitu:constant", 0)`, computed once (see the test).
pub fn constant() -> u32 {
    0xa7dd_8352
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_is_its_hash() {
        assert_eq!(constant(), murmur3_32(b"insitu:constant", 0));
    }

    #[test]
    fn namespaces_separate_equal_names() {
        let a = numeric(namespace_seed("page"), "price");
        let b = numeric(namespace_seed("user"), "price");
        assert_ne!(a, b);
        assert_ne!(categorical(1, "k", "v"), categorical(1, "k", "w"));
    }
}
