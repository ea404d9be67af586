//! The one error type of the core. Every variant has a stable `code()` that
//! the JS boundary copies onto the thrown `Error` as its `code` property.

use core::fmt;

use crate::prelude::*;

#[cfg(not(feature = "std"))]
use crate::prim::math::Float;

/// The text of an error message. Builds with `std` (native: tests, tools)
/// format it; builds without (the .wasm, which carries no formatter) keep
/// the format string itself, placeholders and all, and the TypeScript side
/// words the message from the code and what it passed in.
#[cfg(feature = "std")]
macro_rules! text {
    ($($t:tt)*) => {
        alloc::format!($($t)*)
    };
}

/// The text of an error message (see the `std` version): nothing, in a
/// build without `std`.
#[cfg(not(feature = "std"))]
macro_rules! text {
    ($fmt:literal $(, $($rest:tt)*)?) => {
        $crate::error::NoText
    };
}

/// The text an error carries: formatted in builds with `std`; nothing in
/// the .wasm, whose errors cross as codes (the TypeScript side words the
/// message from the code and what it passed in). Every error stays as
/// small as its code there, and no error builds a string.
#[cfg(feature = "std")]
pub(crate) type Text = String;

/// The text an error carries (see the `std` version).
#[cfg(not(feature = "std"))]
pub(crate) type Text = NoText;

/// No text: what a `no_std` build keeps of an error message.
#[cfg(not(feature = "std"))]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoText;

#[cfg(not(feature = "std"))]
impl From<&str> for NoText {
    fn from(_: &str) -> NoText {
        NoText
    }
}

#[cfg(not(feature = "std"))]
impl From<String> for NoText {
    fn from(_: String) -> NoText {
        NoText
    }
}

#[cfg(not(feature = "std"))]
impl FromIterator<char> for NoText {
    fn from_iter<I: IntoIterator<Item = char>>(_: I) -> NoText {
        NoText
    }
}

#[cfg(not(feature = "std"))]
impl fmt::Display for NoText {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

#[cfg(not(feature = "std"))]
impl core::ops::Deref for NoText {
    type Target = str;
    fn deref(&self) -> &str {
        ""
    }
}

/// A number an error reports (a length, a limit, a version): kept in
/// builds with `std`; nothing in the .wasm (see [`Text`]).
#[cfg(feature = "std")]
pub(crate) type Figure<T> = T;

/// A number an error reports (see the `std` version): nothing in the .wasm.
#[cfg(not(feature = "std"))]
pub(crate) type Figure<T> = NoFigure<T>;

/// `x` as an error keeps it: itself with `std` (a function rather than
/// `.into()`, which is the identity in this build and not in the other).
#[cfg(feature = "std")]
#[inline(always)]
pub(crate) fn figure<T>(x: T) -> Figure<T> {
    x
}

/// `x` as an error keeps it: nothing without `std`.
#[cfg(not(feature = "std"))]
#[inline(always)]
pub(crate) fn figure<T>(x: T) -> Figure<T> {
    NoFigure::from(x)
}

/// No number: what a `no_std` build keeps of a figure in an error.
#[cfg(not(feature = "std"))]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoFigure<T>(core::marker::PhantomData<T>);

#[cfg(not(feature = "std"))]
impl<T> From<T> for NoFigure<T> {
    fn from(_: T) -> NoFigure<T> {
        NoFigure(core::marker::PhantomData)
    }
}

#[cfg(not(feature = "std"))]
impl<T> fmt::Display for NoFigure<T> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// Every error code of insitu, in the order of `schema/errors.json`, which
/// the TypeScript side and the README are tested against too. The last four
/// are the control plane's own (storage, a trapped instance, no wasm).
pub const CODES: [&str; 27] = [
    "INVALID_OPTION",
    "INVALID_MODEL",
    "INVALID_CONTEXT",
    "NON_FINITE_FEATURE",
    "STRING_TOO_LONG",
    "TOO_MANY_FEATURES",
    "INVALID_REWARD",
    "UNKNOWN_DECISION",
    "DECISION_EXPIRED",
    "DUPLICATE_REWARD",
    "NOT_ACTIVATED",
    "UNKNOWN_VARIANT",
    "NUMERICAL_ERROR",
    "SNAPSHOT_FOREIGN",
    "SNAPSHOT_CORRUPT",
    "SNAPSHOT_VERSION",
    "SNAPSHOT_TOO_LARGE",
    "INVALID_EVENT",
    "UNKNOWN_EVENT_TYPE",
    "INVALID_EXPERIMENT",
    "UNKNOWN_EXPERIMENT",
    "REPORT_REFUSED",
    "NO_DATA",
    "STORAGE_QUOTA",
    "STORAGE_UNAVAILABLE",
    "POISONED",
    "WASM_UNAVAILABLE",
];

/// Everything that can go wrong in insitu, with a stable machine-readable code.
///
/// Messages name the offending value; codes never change once released.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A configuration option is missing, of the wrong type or out of range.
    InvalidOption {
        /// Path of the option, e.g. `policy.epsilon`.
        field: Text,
        /// What is wrong with it, naming the value.
        reason: Text,
    },
    /// A context or action feature set is malformed.
    InvalidContext {
        /// Path of the offending feature, e.g. `page.price`.
        field: Text,
        /// What is wrong with it.
        reason: Text,
    },
    /// A numeric feature is NaN or infinite.
    NonFiniteFeature {
        /// Path of the offending feature.
        field: Text,
    },
    /// A string (name, namespace or categorical value) is longer than allowed.
    StringTooLong {
        /// Path of the offending string.
        field: Text,
        /// Its length in bytes.
        len: Figure<usize>,
        /// The limit in bytes.
        max: Figure<usize>,
    },
    /// A context expands to more features than allowed.
    TooManyFeatures {
        /// How many features it produced before being stopped.
        count: Figure<usize>,
        /// The limit.
        max: Figure<usize>,
    },
    /// The shipped prior model failed validation.
    InvalidModel {
        /// Path of the offending model field, e.g. `variants[1].weights`.
        field: Text,
        /// What is wrong with it.
        reason: Text,
    },
    /// A reward is not a finite number in [0, 1].
    InvalidReward {
        /// The rejected value.
        value: Figure<f64>,
    },
    /// No pending decision has this id (never issued, or evicted).
    UnknownDecision {
        /// The id that was given.
        id: Text,
    },
    /// The decision existed but its reward window has passed.
    DecisionExpired {
        /// The id that was given.
        id: Text,
    },
    /// The decision was already rewarded once.
    DuplicateReward {
        /// The id that was given.
        id: Text,
    },
    /// The decision was made with deferred activation and not activated yet.
    NotActivated {
        /// The id that was given.
        id: Text,
    },
    /// A variant index or id does not exist.
    UnknownVariant {
        /// The index or id that was given.
        variant: Text,
    },
    /// A numerical update was rejected because it would corrupt the learner.
    NumericalError {
        /// What went wrong.
        reason: Text,
    },
    /// Stored data is not an insitu snapshot at all (another library's value
    /// under our key, or text that is not ours).
    SnapshotForeign {
        /// What was found instead.
        reason: Text,
    },
    /// A snapshot is ours but damaged: truncated, failing its checksum, or
    /// holding values no engine could have written.
    SnapshotCorrupt {
        /// What is wrong, naming the part.
        reason: Text,
    },
    /// A snapshot written by a newer insitu, in a format this one cannot read.
    SnapshotVersion {
        /// The format version found.
        found: Figure<u32>,
        /// The newest version this build reads.
        supported: Figure<u32>,
    },
    /// A tracked behaviour event is malformed (a missing or mistyped field,
    /// an over-long string, too many tags, an unknown key).
    InvalidEvent {
        /// The offending field, e.g. `tags[2]`.
        field: Text,
        /// What is wrong with it.
        reason: Text,
    },
    /// A tracked event's type is neither built in nor declared by the site.
    UnknownEventType {
        /// The type that was given.
        kind: Text,
    },
    /// An experiment configuration is invalid (a bad weight, an unknown
    /// field, a duplicate key, overlapping namespace ranges, ...).
    InvalidExperiment {
        /// Path of the offending field, e.g. `experiments[1].weights[0]`.
        field: Text,
        /// What is wrong with it, naming the value.
        reason: Text,
    },
    /// No experiment with this key was configured.
    UnknownExperiment {
        /// The key that was given.
        key: Text,
    },
    /// A snapshot would exceed the size cap (or a stored one does).
    SnapshotTooLarge {
        /// Its size in bytes.
        bytes: Figure<usize>,
        /// The cap in bytes.
        max: Figure<usize>,
    },
    /// A report was not made: its specification is invalid, a statistic
    /// cannot be encoded, or the period was reported already.
    ReportRefused {
        /// Why, as data (the aggregator maps it to its own codes).
        kind: Refusal,
        /// What was wrong, naming the value.
        reason: Text,
    },
    /// `evaluate` found nothing to estimate from: no settled decision was
    /// logged with its probability yet.
    NoData {
        /// What is missing.
        reason: Text,
    },
}

/// Why a report was refused ([`Error::ReportRefused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The report specification (sizes, scale, bounds, budget) is invalid.
    Spec,
    /// A vector of statistics or sums has the wrong number of entries.
    WrongLength,
    /// A statistic is NaN or ±infinity: refused, never clipped.
    NonFinite,
    /// This task's period was reported already (the ledger says so).
    Duplicate,
}

impl Error {
    /// The stable machine-readable code, e.g. `"INVALID_OPTION"`.
    pub fn code(&self) -> &'static str {
        CODES[self.code_index()]
    }

    /// The code's position in [`CODES`] (how the .wasm reports it).
    pub fn code_index(&self) -> usize {
        match self {
            Error::InvalidOption { .. } => 0,
            Error::InvalidModel { .. } => 1,
            Error::InvalidContext { .. } => 2,
            Error::NonFiniteFeature { .. } => 3,
            Error::StringTooLong { .. } => 4,
            Error::TooManyFeatures { .. } => 5,
            Error::InvalidReward { .. } => 6,
            Error::UnknownDecision { .. } => 7,
            Error::DecisionExpired { .. } => 8,
            Error::DuplicateReward { .. } => 9,
            Error::NotActivated { .. } => 10,
            Error::UnknownVariant { .. } => 11,
            Error::NumericalError { .. } => 12,
            Error::SnapshotForeign { .. } => 13,
            Error::SnapshotCorrupt { .. } => 14,
            Error::SnapshotVersion { .. } => 15,
            Error::SnapshotTooLarge { .. } => 16,
            Error::InvalidEvent { .. } => 17,
            Error::UnknownEventType { .. } => 18,
            Error::InvalidExperiment { .. } => 19,
            Error::UnknownExperiment { .. } => 20,
            Error::ReportRefused { .. } => 21,
            Error::NoData { .. } => 22,
        }
    }

    /// The message's text: what `Display` writes after the code's own words
    /// (in builds without `std`, the pattern; see `text!`).
    pub fn detail(&self) -> &str {
        match self {
            Error::InvalidOption { reason, .. }
            | Error::InvalidContext { reason, .. }
            | Error::InvalidModel { reason, .. }
            | Error::NumericalError { reason }
            | Error::SnapshotForeign { reason }
            | Error::SnapshotCorrupt { reason }
            | Error::InvalidEvent { reason, .. }
            | Error::InvalidExperiment { reason, .. }
            | Error::ReportRefused { reason, .. }
            | Error::NoData { reason } => reason,
            Error::NonFiniteFeature { field } | Error::StringTooLong { field, .. } => field,
            Error::UnknownDecision { id }
            | Error::DecisionExpired { id }
            | Error::DuplicateReward { id }
            | Error::NotActivated { id } => id,
            Error::UnknownVariant { variant } => variant,
            Error::UnknownEventType { kind } => kind,
            Error::UnknownExperiment { key } => key,
            Error::InvalidReward { .. }
            | Error::TooManyFeatures { .. }
            | Error::SnapshotVersion { .. }
            | Error::SnapshotTooLarge { .. } => "",
        }
    }

    pub(crate) fn option(field: impl Into<Text>, reason: impl Into<Text>) -> Self {
        Error::InvalidOption {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn option_owned(field: Text, reason: Text) -> Self {
        Error::InvalidOption { field, reason }
    }

    pub(crate) fn context(field: impl Into<Text>, reason: impl Into<Text>) -> Self {
        Error::InvalidContext {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn experiment_owned(field: Text, reason: Text) -> Self {
        Error::InvalidExperiment { field, reason }
    }

    pub(crate) fn context_owned(field: Text, reason: Text) -> Self {
        Error::InvalidContext { field, reason }
    }

    pub(crate) fn model(field: impl Into<Text>, reason: impl Into<Text>) -> Self {
        Error::InvalidModel {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidOption { field, reason } => write!(f, "option `{field}` {reason}"),
            Error::InvalidContext { field, reason } => write!(f, "feature `{field}` {reason}"),
            Error::NonFiniteFeature { field } => {
                write!(
                    f,
                    "feature `{field}` must be a finite number, not NaN or Infinity"
                )
            }
            Error::StringTooLong { field, len, max } => {
                write!(f, "`{field}` is {len} bytes long; the limit is {max}")
            }
            Error::TooManyFeatures { count, max } => {
                write!(
                    f,
                    "context has more than {max} features (stopped at {count})"
                )
            }
            Error::InvalidModel { field, reason } => write!(f, "model field `{field}` {reason}"),
            Error::InvalidReward { value } => {
                write!(
                    f,
                    "reward must be a finite number in [0, 1], but is {}",
                    shown(value)
                )
            }
            Error::UnknownDecision { id } => write!(f, "no pending decision has id `{id}`"),
            Error::DecisionExpired { id } => {
                write!(f, "decision `{id}` has expired; its reward window is over")
            }
            Error::DuplicateReward { id } => write!(f, "decision `{id}` was already rewarded"),
            Error::NotActivated { id } => {
                write!(f, "decision `{id}` was deferred and has not been activated")
            }
            Error::UnknownVariant { variant } => write!(f, "no variant `{variant}`"),
            Error::NumericalError { reason } => write!(f, "numerical error: {reason}"),
            Error::SnapshotForeign { reason } => {
                write!(f, "stored data is not an insitu snapshot: {reason}")
            }
            Error::SnapshotCorrupt { reason } => write!(f, "snapshot is corrupt: {reason}"),
            Error::SnapshotVersion { found, supported } => write!(
                f,
                "snapshot format {found} is newer than this build reads (up to {supported})"
            ),
            Error::InvalidEvent { field, reason } => write!(f, "event field `{field}` {reason}"),
            Error::UnknownEventType { kind } => write!(
                f,
                "event type `{kind}` is not view, click, convert or a type declared in `types`"
            ),
            Error::InvalidExperiment { field, reason } => {
                write!(f, "experiment field `{field}` {reason}")
            }
            Error::UnknownExperiment { key } => {
                write!(f, "no experiment `{key}` is configured")
            }
            Error::SnapshotTooLarge { bytes, max } => {
                write!(f, "snapshot is {bytes} bytes; the cap is {max}")
            }
            Error::ReportRefused { reason, .. } => write!(f, "report refused: {reason}"),
            Error::NoData { reason } => write!(f, "nothing to evaluate: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

/// Formats a number for a message without the float formatter, which would
/// add about 20 KB to the .wasm. Integers print exactly; other values with
/// up to 6 significant decimals, in exponent form when very large or small.
pub(crate) struct Num(pub(crate) f64);

/// A reported value as messages show it.
#[cfg(feature = "std")]
fn shown(v: &f64) -> Num {
    Num(*v)
}

/// A reported value as messages show it (nothing, without `std`).
#[cfg(not(feature = "std"))]
fn shown(v: &Figure<f64>) -> Figure<f64> {
    *v
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x < 0.0 {
            f.write_str("-")?;
        }
        let mut a = x.abs();
        if a.is_infinite() {
            return f.write_str("Infinity");
        }
        if a.fract() == 0.0 && a < 1e15 {
            return write!(f, "{}", a as u64);
        }
        let mut exp = 0i32;
        if a != 0.0 && !(1e-4..1e15).contains(&a) {
            while a >= 10.0 {
                a /= 10.0;
                exp += 1;
            }
            while a < 1.0 {
                a *= 10.0;
                exp -= 1;
            }
        }
        // Six significant digits: scale so the integer part holds them.
        let mut digits = 0;
        let mut m = a;
        while m < 1e5 && digits < 20 {
            m *= 10.0;
            digits += 1;
        }
        let scaled = (m + 0.5) as u64;
        let p = 10u64.pow(digits);
        let (int, mut frac) = (scaled / p, scaled % p);
        write!(f, "{int}")?;
        let mut width = digits;
        while width > 0 && frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        if width > 0 {
            write!(f, ".{frac:0width$}", width = width as usize)?;
        }
        if exp != 0 {
            write!(f, "e{exp}")?;
        }
        Ok(())
    }
}

/// Shorthand for results in this crate.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_messages_are_readable() {
        let cases = [
            (1.5, "1.5"),
            (2.0, "2"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.333333"),
            (123456.789, "123457"),
            (1e20, "1e20"),
            (1.5e-7, "1.5e-7"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (9007199254740991.0, "9.0072e15"),
        ];
        for (x, want) in cases {
            assert_eq!(Num(x).to_string(), want, "{x}");
        }
    }

    #[test]
    fn codes_are_distinct_and_messages_name_values() {
        let all = [
            Error::option("policy.epsilon", "should be in [0, 1], but is 2"),
            Error::context("page.title", "x"),
            Error::NonFiniteFeature {
                field: "page.price".into(),
            },
            Error::StringTooLong {
                field: "page.q".into(),
                len: 999,
                max: 256,
            },
            Error::TooManyFeatures {
                count: 257,
                max: 256,
            },
            Error::model("bits", "x"),
            Error::InvalidReward { value: 1.5 },
            Error::UnknownDecision { id: "d1".into() },
            Error::DecisionExpired { id: "d1".into() },
            Error::DuplicateReward { id: "d1".into() },
            Error::NotActivated { id: "d1".into() },
            Error::UnknownVariant {
                variant: "z".into(),
            },
            Error::NumericalError { reason: "x".into() },
            Error::InvalidEvent {
                field: "tags[2]".into(),
                reason: "x".into(),
            },
            Error::UnknownEventType {
                kind: "hover".into(),
            },
            Error::experiment_owned("experiments[0].weights".into(), "x".into()),
            Error::UnknownExperiment { key: "hero".into() },
        ];
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(all[6].to_string().contains("1.5"));
        assert!(all[3].to_string().contains("999"));
        assert!(all[0].to_string().contains("policy.epsilon"));
        assert!(all[13].to_string().contains("tags[2]"));
        assert!(all[14].to_string().contains("hover"));
    }
}
