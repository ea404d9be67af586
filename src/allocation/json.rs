//! Reading experiment configurations from JSON (feature `json`: tests,
//! benchmarks and tools). The .wasm receives them checked by the
//! TypeScript side (`src/ts/validate/experiments.ts`), which follows these
//! rules and messages.

use crate::prelude::*;

use alloc::borrow::Cow;

use super::config::{
    is_name, Allocation, Experiments, HashVersion, DEFAULT_SAMPLES, DEFAULT_WINDOW_MS,
    MAX_CONDITIONS, MAX_EXPERIMENTS, MAX_NAME, MAX_SAMPLES, MAX_TEXT, MAX_VARIANTS,
    WEIGHT_SUM_TOLERANCE,
};
use super::state::Assignment;
use super::targeting::{Condition, Scalar, Test};
use crate::error::{Error, Num, Result};
use crate::json::{map_items, Json, Obj};

const ERR: crate::json::ErrKind = Error::experiment_owned;

impl Experiments {
    /// Parse and check a JSON array of experiment configurations.
    ///
    /// Errors are `INVALID_EXPERIMENT`, naming the field, e.g.
    /// `experiments[1].weights` for weights that do not sum to 1.
    pub fn parse(text: &str) -> Result<Experiments> {
        Experiments::from_json(&Json::parse(text, "experiments", ERR)?)
    }

    /// [`parse`](Self::parse) of a value already read.
    pub(crate) fn from_json(json: &Json<'_>) -> Result<Experiments> {
        let Json::Arr(items) = json else {
            return Err(Error::experiment_owned(
                "experiments".into(),
                format!("should be an array, but is {}", json.type_name()),
            ));
        };
        if items.len() > MAX_EXPERIMENTS {
            return Err(Error::experiment_owned(
                "experiments".into(),
                format!("has {} items; the limit is {MAX_EXPERIMENTS}", items.len()),
            ));
        }
        let mut set = Experiments::default();
        for (i, v) in items.iter().enumerate() {
            read_experiment(v, &format!("experiments[{i}]"), &mut set)?;
        }
        let (list, names) = (&set.list, &set.names);
        for (i, e) in list.iter().enumerate() {
            for (j, other) in list[..i].iter().enumerate() {
                if other.key == e.key {
                    return Err(Error::experiment_owned(
                        format!("experiments[{i}].key"),
                        format!(
                            "`{}` is also the key of experiments[{j}]",
                            names.text(e.key)
                        ),
                    ));
                }
                if let (Some(a), Some(b)) = (e.namespace(), other.namespace()) {
                    if a.name == b.name && a.start < b.end && b.start < a.end {
                        return Err(Error::experiment_owned(
                            format!("experiments[{i}].namespace.range"),
                            format!(
                                "[{}, {}) overlaps [{}, {}) of experiments[{j}] (`{}`) in namespace `{}`",
                                Num(a.start),
                                Num(a.end),
                                Num(b.start),
                                Num(b.end),
                                names.text(other.key),
                                names.text(a.name)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(set)
    }
}

/// The name at `key`, which is required.
fn required_name(o: &mut Obj<'_>, key: &str) -> Result<String> {
    match o.str(key)? {
        Some(v) => name(o, key, v),
        None => Err(o.err(key, "is required")),
    }
}

fn name(o: &Obj<'_>, key: &str, v: &str) -> Result<String> {
    if is_name(v.as_bytes()) {
        Ok(v.into())
    } else {
        Err(o.err(
            key,
            format!(
                "should be 1 to {MAX_NAME} letters, digits, `_`, `-`, `.`, `:` or `/`, but is `{}`",
                clip(v)
            ),
        ))
    }
}

/// A value for a message: itself when short, else its length (slicing a
/// `str` at a character boundary would pull panic code into the .wasm).
fn clip(v: &str) -> Cow<'_, str> {
    if v.len() <= 64 {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(format!("a string of {} bytes", v.len()))
    }
}

fn fraction(o: &mut Obj<'_>, key: &str, lo: f64, hi: f64, hi_open: bool) -> Result<Option<f64>> {
    let bad = |x: f64| x < lo || x > hi || (hi_open && x == hi);
    match o.num(key)? {
        Some(x) if bad(x) => {
            let close = if hi_open { ")" } else { "]" };
            Err(o.err(
                key,
                format!(
                    "should be in [{}, {}{close}, but is {}",
                    Num(lo),
                    Num(hi),
                    Num(x)
                ),
            ))
        }
        Some(x) => Ok(Some(x)),
        None if o.is_null(key) => Err(o.err(
            key,
            "should be a finite number, but is null (NaN or Infinity?)",
        )),
        None => Ok(None),
    }
}

/// Read the experiment `v` at `path` into `set`.
fn read_experiment(v: &Json<'_>, path: &str, set: &mut Experiments) -> Result<()> {
    let mut o = Obj::new(v, path, ERR)?;
    let key = required_name(&mut o, "key")?;
    let Some(items) = o.arr("variants")? else {
        return Err(o.err("variants", "is required: a list of 2 or more variant ids"));
    };
    if items.len() < 2 || items.len() > MAX_VARIANTS {
        return Err(o.err(
            "variants",
            format!(
                "should list 2 to {MAX_VARIANTS} variant ids, but lists {}",
                items.len()
            ),
        ));
    }
    let mut variants: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("variants[{i}]");
        let Json::Str(id) = item else {
            return Err(o.err(
                &field,
                format!("should be a string, but is {}", item.type_name()),
            ));
        };
        let id = name(&o, &field, id)?;
        if let Some(j) = variants.iter().position(|v| *v == id) {
            return Err(o.err(&field, format!("`{id}` repeats variants[{j}]")));
        }
        variants.push(id);
    }
    let k = variants.len();

    let weights = match o.arr("weights")? {
        None => vec![1.0 / k as f64; k],
        Some(ws) => read_weights(&o, ws, k)?,
    };
    let coverage = fraction(&mut o, "coverage", 0.0, 1.0, false)?.unwrap_or(1.0);
    let fallback = match o.str("fallback")? {
        Some(id) => match variants.iter().position(|v| v == id) {
            Some(i) => i,
            None => {
                return Err(o.err(
                    "fallback",
                    format!("`{}` is not one of the variants", clip(id)),
                ))
            }
        },
        None => 0,
    };
    let hash = match o.str("hash")? {
        None | Some("insitu/1") => HashVersion::Insitu1,
        Some("growthbook/1") => HashVersion::GrowthBook1,
        Some("growthbook/2") => HashVersion::GrowthBook2,
        Some(other) => {
            return Err(o.err(
                "hash",
                format!(
                    "should be \"insitu/1\", \"growthbook/1\" or \"growthbook/2\", but is `{}`",
                    clip(other)
                ),
            ))
        }
    };
    let seed = match o.str("seed")? {
        Some(s) if s.is_empty() || s.len() > MAX_TEXT || s.contains('\0') => {
            return Err(o.err(
                "seed",
                format!("should be 1 to {MAX_TEXT} bytes without NUL"),
            ))
        }
        Some(s) => s.to_owned(),
        None => key.clone(),
    };
    let holdout = match o.obj("holdout")? {
        None => None,
        Some(mut h) => {
            let hkey = required_name(&mut h, "key")?;
            let Some(fraction) = fraction(&mut h, "fraction", 0.0, 1.0, true)? else {
                return Err(h.err("fraction", "is required"));
            };
            h.finish()?;
            Some((hkey, fraction))
        }
    };
    let namespace = match o.obj("namespace")? {
        None => None,
        Some(mut n) => {
            let nname = required_name(&mut n, "name")?;
            let (start, end) = read_range(&mut n)?;
            n.finish()?;
            Some((nname, start, end))
        }
    };
    let targeting = match o.arr("targeting")? {
        None => Vec::new(),
        Some(cs) if cs.len() > MAX_CONDITIONS => {
            return Err(o.err(
                "targeting",
                format!("has {} conditions; the limit is {MAX_CONDITIONS}", cs.len()),
            ))
        }
        Some(cs) => map_items(cs, |i, c| {
            read_condition(c, &o.field(&format!("targeting[{i}]")))
        })?,
    };
    let allocation = match o.obj("allocation")? {
        None => (Allocation::Weights, vec![(0.0, 0.0); k]),
        Some(a) => read_allocation(a, &variants, o.get("weights").is_some())?,
    };
    o.finish()?;
    let ids = variants.iter().map(|v| v.as_bytes());
    let mut e = set.start(key.as_bytes(), ids);
    let names = &mut set.names;
    e.set_seed(names, seed.as_bytes());
    for ((v, w), p) in e.variants.iter_mut().zip(weights).zip(allocation.1) {
        v.weight = w;
        v.prior = p;
    }
    if let Some((hkey, fraction)) = holdout {
        e.set_holdout(hkey.as_bytes(), fraction);
    }
    if let Some((name, start, end)) = namespace {
        e.set_namespace(names, name.as_bytes(), start, end);
    }
    e.coverage = coverage;
    e.targeted = !targeting.is_empty();
    e.targeting = targeting;
    e.fallback = fallback;
    e.hash = hash;
    e.allocation = allocation.0;
    set.list.push(e);
    Ok(())
}

fn read_weights(o: &Obj<'_>, ws: &[Json<'_>], k: usize) -> Result<Vec<f64>> {
    if ws.len() != k {
        return Err(o.err(
            "weights",
            format!("has {} weights for {k} variants", ws.len()),
        ));
    }
    let weights = map_items(ws, |i, w| match w {
        Json::Num(x) if *x >= 0.0 => Ok(*x),
        Json::Num(x) => Err(o.err(
            &format!("weights[{i}]"),
            format!("should be at least 0, but is {}", Num(*x)),
        )),
        Json::Null => Err(o.err(
            &format!("weights[{i}]"),
            "should be a finite number, but is null (NaN or Infinity?)",
        )),
        other => Err(o.err(
            &format!("weights[{i}]"),
            format!("should be a number, but is {}", other.type_name()),
        )),
    })?;
    let sum: f64 = weights.iter().sum();
    if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
        return Err(o.err(
            "weights",
            format!("should sum to 1, but sum to {}", Num(sum)),
        ));
    }
    Ok(weights)
}

/// `range: [start, end]` with `0 <= start < end <= 1`.
fn read_range(n: &mut Obj<'_>) -> Result<(f64, f64)> {
    let r = match n.arr("range")? {
        Some([Json::Num(a), Json::Num(b)]) => (*a, *b),
        Some(_) => return Err(n.err("range", "should be [start, end], two numbers")),
        None => return Err(n.err("range", "is required: [start, end] within [0, 1]")),
    };
    if !(0.0 <= r.0 && r.0 < r.1 && r.1 <= 1.0) {
        return Err(n.err(
            "range",
            format!(
                "should satisfy 0 <= start < end <= 1, but is [{}, {}]",
                Num(r.0),
                Num(r.1)
            ),
        ));
    }
    Ok(r)
}

fn read_scalar(v: &Json<'_>, path: &str) -> Result<Scalar> {
    match v {
        Json::Str(s) if s.len() <= MAX_TEXT => Ok(Scalar::Str(s.to_string())),
        Json::Str(s) => Err(Error::experiment_owned(
            path.into(),
            format!("is {} bytes; the limit is {MAX_TEXT}", s.len()),
        )),
        Json::Num(x) => Ok(Scalar::Num(*x)),
        Json::Bool(b) => Ok(Scalar::Bool(*b)),
        other => Err(Error::experiment_owned(
            path.into(),
            format!(
                "should be a string, number or boolean, but is {}",
                other.type_name()
            ),
        )),
    }
}

fn read_condition(v: &Json<'_>, path: &str) -> Result<Condition> {
    let mut o = Obj::new(v, path, ERR)?;
    let attribute = required_name(&mut o, "attribute")?;
    let mut tests = Vec::new();
    if let Some(x) = o.get("equals") {
        tests.push(Test::Equals(read_scalar(x, &o.field("equals"))?));
    }
    if let Some(items) = o.arr("in")? {
        if items.is_empty() || items.len() > MAX_CONDITIONS {
            return Err(o.err(
                "in",
                format!(
                    "should list 1 to {MAX_CONDITIONS} values, but lists {}",
                    items.len()
                ),
            ));
        }
        let values = map_items(items, |i, x| read_scalar(x, &o.field(&format!("in[{i}]"))))?;
        tests.push(Test::In(values));
    }
    if let Some(r) = o.arr("range")? {
        let bound = |i: usize| match r.get(i) {
            Some(Json::Num(x)) => Ok(Some(*x)),
            Some(Json::Null) => Ok(None),
            _ => Err(o.err(
                "range",
                "should be [min, max]: numbers, or null for no bound",
            )),
        };
        if r.len() != 2 {
            return Err(o.err(
                "range",
                "should be [min, max]: numbers, or null for no bound",
            ));
        }
        let (min, max) = (bound(0)?, bound(1)?);
        if let (Some(a), Some(b)) = (min, max) {
            if a >= b {
                return Err(o.err(
                    "range",
                    format!("should have min < max, but is [{}, {}]", Num(a), Num(b)),
                ));
            }
        }
        if min.is_none() && max.is_none() {
            return Err(o.err("range", "should bound at least one side"));
        }
        tests.push(Test::Range { min, max });
    }
    if let Some(b) = o.bool("exists")? {
        tests.push(Test::Exists(b));
    }
    o.finish()?;
    match tests.len() {
        1 => Ok(Condition {
            path: attribute.split('.').map(str::to_owned).collect(),
            attribute,
            test: tests.pop().unwrap_or(Test::Exists(true)),
        }),
        n => Err(Error::experiment_owned(
            path.into(),
            format!("should have exactly one of equals, in, range or exists, but has {n}"),
        )),
    }
}

/// The allocation, and the bandit prior per variant (zeros for weights).
fn read_allocation(
    mut a: Obj<'_>,
    variants: &[String],
    has_weights: bool,
) -> Result<(Allocation, Vec<(f64, f64)>)> {
    let mut prior = vec![(0.0, 0.0); variants.len()];
    match a.str("type")? {
        Some("weights") => {
            a.finish()?;
            Ok((Allocation::Weights, prior))
        }
        Some("thompson") => {
            if has_weights {
                return Err(a.err(
                    "type",
                    "is thompson, which allocates by reward: remove `weights`",
                ));
            }
            let k = variants.len() as f64;
            let min_probability = fraction(&mut a, "minProbability", 0.0, 1.0 / k, false)?
                .unwrap_or((0.05f64).min(1.0 / k));
            let samples = a
                .int("samples", 1, MAX_SAMPLES)?
                .map_or(DEFAULT_SAMPLES, |s| s as u32);
            let window_ms = match a.num("rewardWindowMs")? {
                Some(w) if (1.0..=365.0 * DEFAULT_WINDOW_MS).contains(&w) => w,
                Some(w) => {
                    return Err(a.err(
                        "rewardWindowMs",
                        format!(
                            "should be in [1, 31536000000] (one year), but is {}",
                            Num(w)
                        ),
                    ))
                }
                None => DEFAULT_WINDOW_MS,
            };
            if let Some(mut p) = a.obj("prior")? {
                for (i, v) in variants.iter().enumerate() {
                    let Some(pair) = p.arr(v)? else { continue };
                    match pair {
                        [Json::Num(s), Json::Num(f)] if *s >= 0.0 && *f >= 0.0 && s + f <= 1e9 => {
                            prior[i] = (*s, *f)
                        }
                        _ => {
                            return Err(p.err(
                                v,
                                "should be [successes, failures]: two numbers of at least 0, summing to at most 1e9",
                            ))
                        }
                    }
                }
                p.finish()?;
            }
            a.finish()?;
            Ok((
                Allocation::Thompson {
                    min_probability,
                    samples,
                    window_ms,
                },
                prior,
            ))
        }
        Some(other) => Err(a.err(
            "type",
            format!(
                "should be \"weights\" or \"thompson\", but is `{}`",
                clip(other)
            ),
        )),
        None => Err(a.err("type", "is required: \"weights\" or \"thompson\"")),
    }
}

impl super::Allocator {
    /// Assign the unit to a variant of experiment `index` (see
    /// [`Experiments::index`]), log a first exposure, and, for a bandit,
    /// start a trial when none is running. `attributes` is a JSON object of
    /// the attributes targeting reads (`INVALID_CONTEXT` if it is not JSON).
    pub fn assign_attributes(
        &mut self,
        index: usize,
        attributes: Option<&str>,
        now_ms: f64,
    ) -> Result<Assignment> {
        let json = match attributes {
            Some(text) => Some(Json::parse(text, "attributes", Error::context_owned)?),
            None => None,
        };
        let e = self.experiments().list().get(index);
        let targeted = e.map_or(true, |e| e.targeting.iter().all(|c| c.holds(json.as_ref())));
        self.assign(index, targeted, now_ms)
    }
}
