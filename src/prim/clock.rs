//! Time is injected: every call that needs it takes `now` in ms since the
//! epoch from the caller (the JS side's clock), and this checks it.

use crate::error::{Error, Result};

/// One minute in ms.
pub(crate) const MINUTE_MS: f64 = 60_000.0;
/// One day in ms.
pub(crate) const DAY_MS: f64 = 86_400_000.0;

/// Refuse a clock reading that is not a finite number.
pub(crate) fn check_now(now: f64) -> Result<()> {
    if now.is_finite() {
        Ok(())
    } else {
        Err(Error::option(
            "now",
            text!(
                "should be a finite time in ms, but is {}",
                crate::error::Num(now)
            ),
        ))
    }
}
