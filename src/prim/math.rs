//! Float functions beyond IEEE arithmetic, from `libm` in every build, so a
//! native test and the .wasm compute the same bits (the standard library
//! would use the platform's libm natively, and is not there in `no_std`).

/// Square root (correctly rounded everywhere).
#[inline]
pub(crate) fn sqrt(x: f64) -> f64 {
    libm::sqrt(x)
}

/// Natural logarithm.
#[inline]
pub(crate) fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// `ln(1 + x)`, accurate near 0.
#[inline]
pub(crate) fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// `e^x`.
#[inline]
pub(crate) fn exp(x: f64) -> f64 {
    libm::exp(x)
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
    if !(x > 0.0) {
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

/// Largest integer not above `x`.
#[inline]
pub(crate) fn floor(x: f64) -> f64 {
    libm::floor(x)
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
        libm::sqrt(self)
    }
    #[inline]
    fn floor(self) -> f64 {
        libm::floor(self)
    }
    #[inline]
    fn fract(self) -> f64 {
        self - libm::trunc(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(exp2_neg(f64::from(n)), f64::from_bits(1 << (1074 - n)), "n = {n}");
        }
        assert_eq!(exp2_neg(-3.0), 1.0);
        assert_eq!(exp2_neg(2000.0), 0.0);
        assert!(exp2_neg(f64::NAN).is_nan());
    }
}
