//! The one error type of the aggregator. Every error has a stable
//! [`Code`]; the CLI prints it, the summary counts refused lines by it, and
//! the device side reuses the encoding's codes (`NON_FINITE`, `INVALID_SPEC`).

use std::fmt;

/// What went wrong, as a stable code (see [`Code::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// A report specification (bounds, sizes, budget) is invalid.
    InvalidSpec,
    /// A statistic is NaN or ±infinity: refused, never clipped.
    NonFinite,
    /// A line is longer than the limit; it was skipped to its end.
    LineTooLong,
    /// A line is not UTF-8.
    InvalidUtf8,
    /// A line is not JSON (a syntax error, or truncated).
    MalformedJson,
    /// A line is JSON but a field is missing, unknown or of the wrong type.
    InvalidField,
    /// A line's `v` is not a version this build reads.
    UnsupportedVersion,
    /// A line's task, period or key is not the one being aggregated.
    TaskMismatch,
    /// A line's segment is not in the specification's allowlist.
    UnknownSegment,
    /// A measurement has the wrong number of entries.
    WrongLength,
    /// A measurement entry or group is over its bound.
    OutOfRange,
    /// A base64 field or a Prio3 share does not decode.
    BadEncoding,
    /// The Prio3 proof of a report failed verification.
    VerifyFailed,
    /// Reading input or writing output failed.
    Io,
    /// A sums file is not one this build wrote, or does not match its spec.
    InvalidSums,
    /// A base model is invalid, or does not fit the sums.
    InvalidModel,
    /// A command-line argument is unknown, missing or out of range.
    InvalidArgument,
}

/// Every code, in declaration order (for docs and tests).
pub const CODES: [Code; 17] = [
    Code::InvalidSpec,
    Code::NonFinite,
    Code::LineTooLong,
    Code::InvalidUtf8,
    Code::MalformedJson,
    Code::InvalidField,
    Code::UnsupportedVersion,
    Code::TaskMismatch,
    Code::UnknownSegment,
    Code::WrongLength,
    Code::OutOfRange,
    Code::BadEncoding,
    Code::VerifyFailed,
    Code::Io,
    Code::InvalidSums,
    Code::InvalidModel,
    Code::InvalidArgument,
];

impl Code {
    /// The stable code string, e.g. `"LINE_TOO_LONG"`.
    pub fn code(self) -> &'static str {
        match self {
            Code::InvalidSpec => "INVALID_SPEC",
            Code::NonFinite => "NON_FINITE",
            Code::LineTooLong => "LINE_TOO_LONG",
            Code::InvalidUtf8 => "INVALID_UTF8",
            Code::MalformedJson => "MALFORMED_JSON",
            Code::InvalidField => "INVALID_FIELD",
            Code::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Code::TaskMismatch => "TASK_MISMATCH",
            Code::UnknownSegment => "UNKNOWN_SEGMENT",
            Code::WrongLength => "WRONG_LENGTH",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::BadEncoding => "BAD_ENCODING",
            Code::VerifyFailed => "VERIFY_FAILED",
            Code::Io => "IO",
            Code::InvalidSums => "INVALID_SUMS",
            Code::InvalidModel => "INVALID_MODEL",
            Code::InvalidArgument => "INVALID_ARGUMENT",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error: its code and a message that names the offending value.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// The stable code.
    pub code: Code,
    /// What was wrong, naming the field and value.
    pub message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The stable code string.
    pub fn code(&self) -> &'static str {
        self.code.code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

impl std::error::Error for Error {}

/// The core's report errors in this crate's codes: a refused
/// specification is `INVALID_SPEC`, a wrong length `WRONG_LENGTH`, a
/// non-finite statistic `NON_FINITE`; anything else the core says about a
/// report is a specification it cannot use.
impl From<insitu::Error> for Error {
    fn from(e: insitu::Error) -> Error {
        use insitu::report::Refusal;
        let code = match &e {
            insitu::Error::ReportRefused {
                kind: Refusal::WrongLength,
                ..
            } => Code::WrongLength,
            insitu::Error::ReportRefused {
                kind: Refusal::NonFinite,
                ..
            } => Code::NonFinite,
            _ => Code::InvalidSpec,
        };
        Error::new(code, e.detail())
    }
}

/// The aggregator's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_upper_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CODES {
            let s = c.code();
            assert!(
                s.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
