//! Float functions beyond IEEE arithmetic, from `libm` in every build, so a
//! native test and the .wasm compute the same bits (the standard library
//! would use the platform's libm natively, and is not there in `no_std`).

/// Square root, correctly rounded (as IEEE 754 requires of every square
/// root: the same bits as libm's or the hardware's). Bit by bit on the
/// integer significand (as fdlibm's `e_sqrt`): a few hundred bytes of
/// .wasm fewer than libm's portable version (the wasm instruction needs a
/// nightly feature).
pub(crate) fn sqrt(x: f64) -> f64 {
    if !(x > 0.0 && x < f64::INFINITY) {
        // sqrt(±0) = ±0, sqrt(inf) = inf; negatives and NaN: NaN.
        return if x == 0.0 || x == f64::INFINITY {
            x
        } else {
            f64::NAN
        };
    }
    let bits = x.to_bits();
    let mut m = bits & ((1 << 52) - 1);
    let mut e = (bits >> 52) as i32;
    if e == 0 {
        // Subnormal: its top bit moved to bit 52.
        let shift = m.leading_zeros() as i32 - 11;
        m <<= shift;
        e = 1 - shift;
    } else {
        m |= 1 << 52;
    }
    // x = m 2^(p - 52) with an even p: sqrt(x) = sqrt(m 2^-52) 2^(p/2).
    let mut p = e - 1023;
    if p & 1 != 0 {
        m <<= 1;
        p -= 1;
    }
    // The root's 53 bits and a rounding bit, one at a time from the top
    // (2^53 is the 1 of sqrt(m 2^-52), in [1, 2)); `m` keeps the remainder.
    m <<= 1;
    let (mut q, mut s, mut bit) = (0u64, 0u64, 1u64 << 53);
    while bit != 0 {
        let t = s + bit;
        if t <= m {
            s = t + bit;
            m -= t;
            q += bit;
        }
        m <<= 1;
        bit >>= 1;
    }
    // To nearest: a rounding bit of 1 is never an exact tie (the square of
    // a 54-bit odd number has more bits than x). A carry into the exponent
    // is right as it is.
    q += q & 1;
    f64::from_bits((q >> 1) + (((p / 2 + 1022) as u64) << 52))
}

/// `x` rounded toward zero (exact).
pub(crate) fn trunc(x: f64) -> f64 {
    // From 2^52 on (and infinities, NaN) every number is whole.
    if !(-4_503_599_627_370_496.0 < x && x < 4_503_599_627_370_496.0) {
        return x;
    }
    let t = x as i64 as f64;
    // A zero keeps the sign of `x` (trunc(-0.5) is -0).
    if t == 0.0 {
        x * 0.0
    } else {
        t
    }
}

/// Natural logarithm.
#[inline]
pub(crate) fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// `ln(1 + x)`, accurate near 0 (the behaviour tests' reference values).
#[cfg(test)]
pub(crate) fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// `2^-x` for `x >= 0` (the daily decay of the `:recent` behaviour
/// features; 1 for smaller `x`, NaN for NaN). A few lines instead of libm's
/// table-driven `exp2`, which took 4 KB of the .wasm: the whole part of `x`
/// goes exactly into the exponent, and `2^-f` for the fraction `f` in
/// [0, 1) is the Taylor series of `e^(-f ln 2)`, whose terms beyond the
/// 20th are below 1e-23 (a result within a few ulps of the exact value).
pub(crate) fn exp2_neg(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1100.0 {
        return 0.0;
    }
    let n = floor(x);
    let y = (x - n) * core::f64::consts::LN_2;
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 1..=20 {
        term *= -y / f64::from(k);
        sum += term;
    }
    // 2^-n as two exact powers of two (n up to 1099 reaches the subnormals).
    let half = (n as u64) / 2;
    let pow = |e: u64| f64::from_bits((1023 - e) << 52);
    sum * pow(half) * pow(n as u64 - half)
}

/// `x` rounded to the nearest integer, halves away from zero (exact, as
/// `f64::round`, which `no_std` builds lack).
pub(crate) fn round(x: f64) -> f64 {
    let t = trunc(x);
    // `x - t` is exact below 2^52; from there on `x` is whole.
    if (x - t).abs() >= 0.5 {
        t + if x < 0.0 { -1.0 } else { 1.0 }
    } else {
        t
    }
}

/// Largest integer not above `x` (exact).
pub(crate) fn floor(x: f64) -> f64 {
    let t = trunc(x);
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// `x` modulo `d` (> 0) in `[0, d)`: exact for the whole numbers it is used
/// on (times in ms, day counts), without the generic `fmod`.
pub(crate) fn modulo(x: f64, d: f64) -> f64 {
    let r = x - floor(x / d) * d;
    if r < 0.0 {
        r + d
    } else if r >= d {
        r - d
    } else {
        r
    }
}

/// The exact float methods a `no_std` build lacks. Builds with `std` use the
/// standard library's, which give the same bits: each is exact.
#[cfg(not(feature = "std"))]
pub(crate) trait Float {
    fn sqrt(self) -> f64;
    fn floor(self) -> f64;
    fn fract(self) -> f64;
}

#[cfg(not(feature = "std"))]
impl Float for f64 {
    #[inline]
    fn sqrt(self) -> f64 {
        sqrt(self)
    }
    #[inline]
    fn floor(self) -> f64 {
        floor(self)
    }
    #[inline]
    fn fract(self) -> f64 {
        self - trunc(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same bits as the platform's (correctly rounded) square root,
    /// floor and trunc over random bit patterns of every magnitude, the
    /// subnormals, the whole numbers near 2^52 and the special values.
    #[test]
    fn sqrt_floor_trunc_are_exact() {
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let mut rng = crate::prim::rng::Rng::new(0x5157);
        let mut xs = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::EPSILON,
            f64::from_bits(1),
            f64::from_bits((1 << 52) - 1),
            4_503_599_627_370_496.0,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            9_007_199_254_740_993.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.0,
            0.25,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            2.5,
            -2.5,
        ];
        for _ in 0..400_000 {
            let b = rng.next_u64();
            xs.push(f64::from_bits(b));
            // Small and whole-ish numbers, where floor and trunc differ most.
            xs.push((b >> 11) as f64 / (1u64 << (b % 60)) as f64 - 1e3);
            // Perfect squares and their neighbours.
            let q = (b >> 38) as f64;
            for y in [q * q, q * q + 1.0, q * q - 1.0] {
                xs.push(y);
                xs.push(f64::from_bits(y.to_bits() + 1));
            }
        }
        for x in xs {
            assert!(
                same(sqrt(x), x.sqrt()),
                "sqrt({x:e}) = {:e}, not {:e}",
                sqrt(x),
                x.sqrt()
            );
            assert!(same(floor(x), x.floor()), "floor({x:e})");
            assert!(same(round(x), x.round()), "round({x:e})");
            assert!(same(trunc(x), x.trunc()), "trunc({x:e})");
        }
    }

    /// Within 4 ulps of the platform's `powf` (itself within an ulp of the
    /// exact value) over the whole range, and exact at the whole numbers.
    #[test]
    fn exp2_neg_is_two_to_the_minus_x() {
        let mut x = 0.0;
        while x < 1100.0 {
            let (got, want) = (exp2_neg(x), 2f64.powf(-x));
            let ulp = f64::EPSILON * want.max(f64::MIN_POSITIVE);
            assert!((got - want).abs() <= 4.0 * ulp, "x = {x}: {got} vs {want}");
            x += 0.173;
        }
        for n in 0..1023 {
            assert_eq!(exp2_neg(f64::from(n)), 2f64.powi(-n), "n = {n}");
        }
        // Subnormal results: exactly the powers of two still representable.
        for n in 1023..1075 {
            assert_eq!(
                exp2_neg(f64::from(n)),
                f64::from_bits(1 << (1074 - n)),
                "n = {n}"
            );
        }
        assert_eq!(exp2_neg(-3.0), 1.0);
        assert_eq!(exp2_neg(2000.0), 0.0);
        assert!(exp2_neg(f64::NAN).is_nan());
    }
}
