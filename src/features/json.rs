//! Reading contexts and feature options from JSON (feature `json`: tests,
//! benchmarks and tools). The .wasm receives features hashed and checked by
//! the TypeScript side (`src/ts/features.ts`), which follows these rules.

use crate::prelude::*;

use super::{
    hash, push, Defaults, FeatureConfig, Hashed, BITS_RANGE, HASH_VERSION, MAX_STRING_BYTES,
};
use crate::error::{Error, Result};
use crate::json::{Json, Obj};

/// Feature options as the site passes them (`features: {...}`).
#[derive(Debug, Clone, Default)]
pub(crate) struct FeatureOptions {
    /// Hash version; only 1 exists.
    pub(crate) hash_version: Option<u32>,
    /// Hash width: features land in `2^bits` slots.
    pub(crate) bits: Option<u8>,
    /// Namespaces allowed to become features. Everything else is dropped.
    pub(crate) allow: Option<Vec<String>>,
    /// Namespace pairs whose features are crossed.
    pub(crate) interactions: Option<Vec<(String, String)>>,
    /// Scale each folded vector to unit length; the default depends on
    /// where the options are (see [`FeatureOptions::check_with`]).
    pub(crate) normalize: Option<bool>,
    /// Slots per feature, 1 or 2; the default depends on where the options
    /// are, as `normalize`'s.
    pub(crate) slots_per_feature: Option<u8>,
}

impl FeatureOptions {
    /// Validate a slot's feature options into a [`FeatureConfig`], with the
    /// slot defaults ([`super::SLOT_DEFAULTS`]). `path` prefixes field names in errors.
    /// (A slot's options pick their defaults: a catalogue's differ.)
    #[cfg(test)]
    pub(crate) fn check(&self, path: &str) -> Result<FeatureConfig> {
        self.check_with(path, super::SLOT_DEFAULTS)
    }

    /// [`check`](Self::check) with the given defaults (a model's are
    /// [`MODEL_DEFAULTS`](super::MODEL_DEFAULTS)).
    pub(crate) fn check_with(&self, path: &str, defaults: Defaults) -> Result<FeatureConfig> {
        let hash_version = self.hash_version.unwrap_or(HASH_VERSION);
        if hash_version != HASH_VERSION {
            return Err(Error::option(
                format!("{path}hashVersion"),
                format!("should be {HASH_VERSION}, but is {hash_version}"),
            ));
        }
        let bits = self.bits.unwrap_or(defaults.bits);
        if !(BITS_RANGE.0..=BITS_RANGE.1).contains(&bits) {
            return Err(Error::option(
                format!("{path}bits"),
                format!(
                    "should be in [{}, {}], but is {bits}",
                    BITS_RANGE.0, BITS_RANGE.1
                ),
            ));
        }
        let mut allow = self.allow.clone().unwrap_or_default();
        for (i, ns) in allow.iter().enumerate() {
            check_name(ns, || format!("{path}allow[{i}]"))?;
        }
        crate::prim::sort::sort_strings(&mut allow);
        allow.dedup();
        let mut interactions = Vec::new();
        for (i, (a, b)) in self.interactions.iter().flatten().enumerate() {
            let find = |ns: &str| {
                allow.binary_search_by(|x| x.as_str().cmp(ns)).map_err(|_| {
                    Error::option(
                        format!("{path}interactions[{i}]"),
                        format!("names namespace `{ns}`, which is not in `allow`"),
                    )
                })
            };
            let (x, y) = (find(a)?, find(b)?);
            let pair = (x.min(y), x.max(y));
            if !interactions.contains(&pair) {
                interactions.push(pair);
            }
        }
        let ns_seeds = allow.iter().map(|n| hash::namespace_seed(n)).collect();
        let two_slots = match self.slots_per_feature {
            None => defaults.two_slots,
            Some(1) => false,
            Some(2) => true,
            Some(n) => {
                return Err(Error::option(
                    format!("{path}slotsPerFeature"),
                    format!("should be 1 or 2, but is {n}"),
                ))
            }
        };
        let mut fc = FeatureConfig::new(hash_version, bits, ns_seeds, interactions)?
            .normalized(self.normalize.unwrap_or(defaults.normalize))
            .with_two_slots(two_slots);
        fc.allow = allow;
        Ok(fc)
    }
}

impl FeatureOptions {
    /// Read from a JSON object; unknown keys are errors.
    pub(crate) fn read(mut o: Obj<'_>) -> Result<FeatureOptions> {
        let hash_version = o.int("hashVersion", 0, u32::MAX as u64)?.map(|x| x as u32);
        let bits = o.int("bits", 0, 64)?.map(|x| x as u8);
        let allow = o.strs("allow")?;
        let interactions = match o.arr("interactions")? {
            None => None,
            Some(pairs) => Some(crate::json::map_items(pairs, |i, p| {
                let pair = match p {
                    Json::Arr(v) => v.as_slice(),
                    _ => &[],
                };
                match pair {
                    [Json::Str(a), Json::Str(b)] => Ok((a.to_string(), b.to_string())),
                    _ => Err(o.err(
                        &format!("interactions[{i}]"),
                        "should be a pair of namespace names",
                    )),
                }
            })?),
        };
        let normalize = o.bool("normalize")?;
        let slots_per_feature = o.int("slotsPerFeature", 0, 255)?.map(|x| x as u8);
        o.finish()?;
        Ok(FeatureOptions {
            hash_version,
            bits,
            allow,
            interactions,
            normalize,
            slots_per_feature,
        })
    }
}

/// The field path is built only when a check fails: formatting it for every
/// feature was most of the cost of a decision.
fn check_name(s: &str, field: impl Fn() -> String) -> Result<()> {
    if s.is_empty() {
        return Err(Error::context(field(), "must not be empty"));
    }
    check_len(s, field)
}

fn check_len(s: &str, field: impl Fn() -> String) -> Result<()> {
    if s.len() > MAX_STRING_BYTES {
        return Err(Error::StringTooLong {
            field: field(),
            len: crate::error::figure(s.len()),
            max: crate::error::figure(MAX_STRING_BYTES),
        });
    }
    Ok(())
}

/// Where a feature set sits in the caller's options, for error messages. A
/// value rather than a string so the path is built only when an error needs
/// it, not on every decision.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// `context`
    Context,
    /// `actions[i]` in a call, or `action` for a variant's own features.
    Action(Option<usize>),
}

impl Origin {
    /// The path of `rest` inside this origin, e.g. `context.page.price`.
    pub(crate) fn field(self, rest: &str) -> String {
        let root = match self {
            Origin::Context => "context".to_owned(),
            Origin::Action(None) => "action".to_owned(),
            Origin::Action(Some(i)) => format!("actions[{i}]"),
        };
        if rest.is_empty() {
            root
        } else {
            format!("{root}.{rest}")
        }
    }
}

/// The name of a hashed feature, for explanations: `ns.name` for a number
/// or a flag, `ns.name=value` for a categorical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Label<'j> {
    pub(crate) ns: &'j str,
    pub(crate) name: &'j str,
    pub(crate) value: Option<&'j str>,
}

impl FeatureConfig {
    /// Validate and hash the allowlisted part of one context: an object of
    /// namespace objects. `origin` names the argument in errors. Namespaces
    /// not on the allowlist are skipped without being read or validated.
    pub(crate) fn hash_context(
        &self,
        ctx: &Json,
        origin: Origin,
        out: &mut Vec<Hashed>,
    ) -> Result<()> {
        self.walk_context(ctx, origin, &mut |h, _| push(out, h))
    }

    /// [`hash_context`](Self::hash_context) that also hands `each` the
    /// feature's name, for explanations. Features come in context order.
    /// (`dyn`: one copy of the walk serves both, and neither is the hot
    /// path, which the JS half hashes.)
    pub(crate) fn walk_context<'j>(
        &self,
        ctx: &'j Json,
        origin: Origin,
        each: &mut dyn FnMut(Hashed, Label<'j>) -> Result<()>,
    ) -> Result<()> {
        let namespaces = match ctx {
            Json::Null => return Ok(()),
            Json::Obj(n) => n,
            other => {
                return Err(Error::context(
                    origin.field(""),
                    format!(
                        "should be an object of namespaces, but is {}",
                        other.type_name()
                    ),
                ))
            }
        };
        for (ns_name, feats) in namespaces {
            let Ok(ns) = self.allow.binary_search_by(|a| a.as_str().cmp(ns_name)) else {
                continue;
            };
            let seed = self.ns_seeds[ns];
            let Json::Obj(feats) = feats else {
                return Err(Error::context(
                    origin.field(ns_name),
                    format!(
                        "should be an object of features, but is {}",
                        feats.type_name()
                    ),
                ));
            };
            for (name, value) in feats {
                let field = || origin.field(&format!("{ns_name}.{name}"));
                check_name(name, field)?;
                let label = |value| Label {
                    ns: ns_name,
                    name,
                    value,
                };
                let numeric = |x| Hashed {
                    ns,
                    h: hash::numeric(seed, name),
                    x,
                };
                let categorical = |s: &str| {
                    check_len(s, field)?;
                    Ok(Hashed {
                        ns,
                        h: hash::categorical(seed, name, s),
                        x: 1.0,
                    })
                };
                match value {
                    // JSON text can hold numbers beyond f64 (1e400 reads as inf).
                    Json::Num(x) if !x.is_finite() => {
                        return Err(Error::NonFiniteFeature { field: field() })
                    }
                    Json::Num(x) => each(numeric(*x), label(None))?,
                    Json::Bool(b) => each(numeric(f64::from(u8::from(*b))), label(None))?,
                    // JSON.stringify turns NaN and ±Infinity into null.
                    Json::Null => return Err(Error::NonFiniteFeature { field: field() }),
                    Json::Str(s) => each(categorical(s)?, label(Some(s)))?,
                    Json::Arr(items) => {
                        for item in items {
                            let Json::Str(s) = item else {
                                return Err(Error::context(field(), "should list only strings"));
                            };
                            each(categorical(s)?, label(Some(s)))?;
                        }
                    }
                    Json::Obj(_) => {
                        return Err(Error::context(
                            field(),
                            "should be a number, a string or an array of strings",
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// Hash a variant's own features, validating them as a decision would
    /// (including the interactions they expand to).
    pub(crate) fn hash_variant(&self, features: &Json) -> Result<Vec<Hashed>> {
        let mut out = Vec::new();
        self.hash_context(features, Origin::Action(None), &mut out)?;
        self.fold(&out)?;
        Ok(out)
    }

    /// Hash a context and optional action features into one vector.
    #[cfg(test)]
    pub(crate) fn featurize(
        &self,
        shared: &Json,
        action: Option<&Json>,
    ) -> Result<crate::features::SparseVec> {
        let mut feats = Vec::new();
        self.hash_context(shared, Origin::Context, &mut feats)?;
        if let Some(a) = action {
            self.hash_context(a, Origin::Action(None), &mut feats)?;
        }
        self.fold(&feats)
    }
}
