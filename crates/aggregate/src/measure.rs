//! The measurement: what one report holds, and how it becomes the vector of
//! bounded integers that a Prio3 `SumVec` sums. The encoding is the core's
//! (`insitu::report`), the one the device encodes with; this module gives
//! it this crate's error codes. See `insitu::report`'s docs for the layout,
//! the bounds and why X'y is split by sign and X'X kept to its diagonal.

pub use insitu::report::{
    Bounds, Decoded, Encoded, Group, Spec, Stats, FORMAT, GROUPS, MAX_BITS, MAX_SCALE, MAX_SLOTS,
    MAX_VARIANTS,
};

use crate::error::Result;

/// [`Code::WrongLength`](crate::Code::WrongLength) unless `name` has
/// `want` entries (`got`).
pub(crate) fn check_len(name: &str, got: usize, want: usize) -> Result<()> {
    Ok(insitu::report::check_len(name, got, want)?)
}

/// Encode one report's statistics ([`insitu::report::encode`]). Errors:
/// [`Code::WrongLength`](crate::Code::WrongLength) if a vector is not sized
/// for `spec`, [`Code::NonFinite`](crate::Code::NonFinite) for NaN or
/// ±infinity (naming the field and index).
///
/// ```
/// use insitu_aggregate::{decode, encode, Bounds, Spec, Stats};
///
/// let bounds = Bounds { decisions: 20, exposures: 20, rewards: 20.0, xy: 40.0, xx: 400.0 };
/// // A refused specification is `INVALID_SPEC` here (`From<insitu::Error>`).
/// let spec = Spec::new(2, 16, 1024, bounds, None)?;
/// let mut stats = Stats::zeros(&spec);
/// stats.decisions = vec![3, 1];
/// stats.exposures = vec![2, 1];
/// stats.rewards = vec![1.5, 0.0];
/// stats.xy[3] = -0.75; // variant 0, slot 3
/// stats.xx[3] = 2.0;
/// let m = encode(&spec, &stats)?;
/// assert!(m.clipped.is_empty());
/// assert!(m.entries.iter().all(|x| *x < 1 << spec.bits()));
///
/// // The sum of two such reports decodes to the sums of their statistics.
/// let sums: Vec<i64> = m.entries.iter().map(|x| 2 * *x as i64).collect();
/// let d = decode(&spec, &sums)?;
/// assert_eq!((d.reports, d.decisions[0], d.rewards[0], d.xy[3]), (2.0, 6.0, 3.0, -1.5));
/// # Ok::<(), insitu_aggregate::Error>(())
/// ```
pub fn encode(spec: &Spec, stats: &Stats) -> Result<Encoded> {
    Ok(insitu::report::encode(spec, stats)?)
}

/// Decode a sum of measurements ([`insitu::report::decode`]); linear, so
/// noisy sums too. [`Code::WrongLength`](crate::Code::WrongLength) if `sums`
/// is not [`Spec::len`] long.
pub fn decode(spec: &Spec, sums: &[i64]) -> Result<Decoded> {
    Ok(insitu::report::decode(spec, sums)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn the_core_errors_get_this_crates_codes() {
        let b = Bounds {
            decisions: 20,
            exposures: 20,
            rewards: 20.0,
            xy: 40.0,
            xx: 400.0,
        };
        let e = Error::from(Spec::new(1, 4, 256, b, None).unwrap_err());
        assert_eq!(e.code(), "INVALID_SPEC");
        assert!(e.message.contains("is 1"), "{}", e.message);
        let s = Spec::new(2, 4, 256, b, None).unwrap();
        let mut st = Stats::zeros(&s);
        st.xy[2] = f64::NAN;
        let e = encode(&s, &st).unwrap_err();
        assert_eq!(e.code(), "NON_FINITE");
        assert!(e.message.contains("xy[2]"), "{}", e.message);
        assert_eq!(decode(&s, &[0; 3]).unwrap_err().code(), "WRONG_LENGTH");
    }
}
