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

/// `2^x`.
#[inline]
pub(crate) fn exp2(x: f64) -> f64 {
    libm::exp2(x)
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
