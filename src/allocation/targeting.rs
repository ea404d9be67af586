//! Targeting: conditions on local attributes and behaviour features.
//!
//! Attributes are a JSON object from the page (the page store adds the
//! `behavior` namespace). A condition names an attribute by a dotted path,
//! e.g. `behavior.sessions`. Comparisons are strict: the string `"3"` does
//! not equal the number 3, and a range matches numbers only. A missing
//! attribute (or `null`) fails every test except `exists: false`.

use crate::prelude::*;

use crate::json::Json;

/// A value a condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string.
    Str(String),
    /// A finite number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

/// What a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The attribute equals the value (same type).
    Equals(Scalar),
    /// The attribute equals one of the values.
    In(Vec<Scalar>),
    /// The attribute is a number in `[min, max)`; a missing bound is open.
    Range {
        /// Least value admitted, inclusive.
        min: Option<f64>,
        /// Bound above, exclusive.
        max: Option<f64>,
    },
    /// The attribute is present (not null) or, with `false`, absent.
    Exists(bool),
}

/// One targeting condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The attribute's dotted path, as configured.
    pub attribute: String,
    pub(crate) path: Vec<String>,
    /// The test.
    pub test: Test,
}

impl Scalar {
    fn matches(&self, v: &Json<'_>) -> bool {
        match (self, v) {
            (Scalar::Str(a), Json::Str(b)) => a == b.as_ref(),
            (Scalar::Num(a), Json::Num(b)) => a == b,
            (Scalar::Bool(a), Json::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Condition {
    /// Whether the condition holds for `attributes` (an object, or none).
    pub(crate) fn holds(&self, attributes: Option<&Json<'_>>) -> bool {
        let mut v = attributes;
        for part in &self.path {
            v = match v {
                Some(Json::Obj(fields)) => fields.iter().find(|(k, _)| k == part).map(|(_, x)| x),
                _ => None,
            };
        }
        let v = match v {
            Some(Json::Null) | None => None,
            Some(x) => Some(x),
        };
        match (&self.test, v) {
            (Test::Exists(want), v) => v.is_some() == *want,
            (_, None) => false,
            (Test::Equals(s), Some(v)) => s.matches(v),
            (Test::In(list), Some(v)) => list.iter().any(|s| s.matches(v)),
            (Test::Range { min, max }, Some(Json::Num(x))) => {
                min.map_or(true, |m| *x >= m) && max.map_or(true, |m| *x < m)
            }
            (Test::Range { .. }, Some(_)) => false,
        }
    }
}
