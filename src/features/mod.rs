//! From page signals to a hashed sparse feature vector.
//!
//! A context is namespaced: `{ page: { section: "sports", price: 12.5 } }`.
//! Only allowlisted namespaces survive; the rest are dropped before anything is
//! hashed or validated. Each surviving feature is hashed (see [`hash`]) into one
//! of `2^bits` slots, configured namespace pairs are crossed (VW's quadratic
//! interactions, which is how variant features meet context features), and a
//! constant bias slot is added.

pub mod hash;

use crate::error::{Error, Result};
use crate::json::{Json, Obj};
pub use hash::HASH_VERSION;

/// Longest namespace, feature name or categorical value, in bytes.
pub(crate) const MAX_STRING_BYTES: usize = 256;
/// Most raw features (list items count one each) in one shared context plus one action.
pub(crate) const MAX_FEATURES: usize = 256;
/// Most features after interactions are expanded.
pub(crate) const MAX_EXPANDED_FEATURES: usize = 4096;
/// Smallest and largest hash width.
pub(crate) const BITS_RANGE: (u8, u8) = (4, 18);

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
        o.finish()?;
        Ok(FeatureOptions {
            hash_version,
            bits,
            allow,
            interactions,
        })
    }
}

/// Validated feature configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeatureConfig {
    pub(crate) hash_version: u32,
    pub(crate) bits: u8,
    /// Sorted, deduplicated.
    pub(crate) allow: Vec<String>,
    /// Indices into `allow`, `a <= b`.
    pub(crate) interactions: Vec<(usize, usize)>,
    ns_seeds: Vec<u32>,
}

/// Default hash width: 64 slots. Colliding features share one weight, and
/// with 32 slots even five features collide about a quarter of the time
/// (one such collision kept a test problem from being learnable at all);
/// 64 slots still keep a full covariance per variant cheap (32 KB, an
/// O(4096) update).
pub(crate) const DEFAULT_BITS: u8 = 6;

impl FeatureOptions {
    /// Validate into a [`FeatureConfig`]. `path` prefixes field names in errors.
    pub(crate) fn check(&self, path: &str) -> Result<FeatureConfig> {
        let hash_version = self.hash_version.unwrap_or(HASH_VERSION);
        if hash_version != HASH_VERSION {
            return Err(Error::option(
                format!("{path}hashVersion"),
                format!("should be {HASH_VERSION}, but is {hash_version}"),
            ));
        }
        let bits = self.bits.unwrap_or(DEFAULT_BITS);
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
        sort_strings(&mut allow);
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
        Ok(FeatureConfig {
            hash_version,
            bits,
            allow,
            interactions,
            ns_seeds,
        })
    }
}

/// Insertion sort: allowlists are a handful of names, and a library sort
/// brings kilobytes of code into the .wasm.
pub(crate) fn sort_strings(v: &mut [String]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
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
            len: s.len(),
            max: MAX_STRING_BYTES,
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

/// A feature vector: sorted unique slot indices with their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SparseVec {
    /// Slot indices, strictly increasing.
    pub(crate) idx: Vec<u32>,
    /// Values, same length as `idx`.
    pub(crate) val: Vec<f64>,
}

impl SparseVec {
    /// Make this a copy of `other`, reusing this vector's buffers.
    pub(crate) fn copy_from(&mut self, other: &SparseVec) {
        self.idx.clear();
        self.idx.extend_from_slice(&other.idx);
        self.val.clear();
        self.val.extend_from_slice(&other.val);
    }

    /// Dot product with a dense vector.
    pub(crate) fn dot(&self, dense: &[f64]) -> f64 {
        insitu_kernels::sparse_dot(&self.idx, &self.val, dense)
    }

    /// Refill from (slot, value) pairs, every slot below `dim`: sorted by
    /// slot, duplicates summed in input order. Sums go through a dense
    /// accumulator, so only the distinct slots are sorted (sorting the pairs
    /// was most of a decision's cost); buffers are reused, so a warm decision
    /// allocates nothing.
    fn fill_from(&mut self, pairs: &[(u32, f64)], dense: &mut Dense, dim: usize) {
        if dense.acc.len() < dim {
            dense.acc.resize(dim, 0.0);
            dense.seen.resize(dim, false);
        }
        self.idx.clear();
        self.val.clear();
        insitu_kernels::accumulate(pairs, &mut dense.acc, &mut dense.seen, &mut self.idx);
        insitu_kernels::order_slots(&mut self.idx, &dense.seen[..dim]);
        insitu_kernels::drain(&self.idx, &mut dense.acc, &mut dense.seen, &mut self.val);
    }
}

/// Scratch for [`FeatureConfig::fold_into`]: the pairs of one vector and a
/// dense accumulator over the slots, all zero between calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dense {
    pairs: Vec<(u32, f64)>,
    acc: Vec<f64>,
    seen: Vec<bool>,
}

/// A feature hashed but not yet folded into a slot: namespace index, hash, value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hashed {
    ns: usize,
    h: u32,
    x: f64,
}

impl Hashed {
    /// A feature of namespace `ns` (an index into the sorted allowlist) whose
    /// name (and value, for a categorical) hashed to `h`, with value `x`.
    pub fn new(ns: usize, h: u32, x: f64) -> Hashed {
        Hashed { ns, h, x }
    }

    /// The namespace index.
    pub fn ns(&self) -> usize {
        self.ns
    }

    /// The feature's value.
    pub fn value(&self) -> f64 {
        self.x
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

/// One term of an expanded feature vector ([`FeatureConfig::expand_each`]):
/// indices are into the features it was expanded from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Term {
    /// The bias slot.
    Constant,
    /// A feature on its own.
    Feature(usize),
    /// The product of two features (a configured interaction).
    Cross(usize, usize),
}

impl FeatureConfig {
    /// Hash seed of each allowlisted namespace, in `allow` order.
    pub(crate) fn ns_seeds(&self) -> &[u32] {
        &self.ns_seeds
    }

    /// Number of slots, `2^bits`.
    pub(crate) fn dim(&self) -> usize {
        1 << self.bits
    }

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

    /// Fold hashed features (shared plus one action's) into a sparse vector,
    /// adding interactions and the constant.
    pub(crate) fn fold(&self, feats: &[Hashed]) -> Result<SparseVec> {
        let mut out = SparseVec::default();
        self.fold_into(feats, &mut Dense::default(), &mut out)?;
        Ok(out)
    }

    /// [`fold`](Self::fold) into caller-owned buffers.
    pub(crate) fn fold_into(
        &self,
        feats: &[Hashed],
        dense: &mut Dense,
        out: &mut SparseVec,
    ) -> Result<()> {
        let mut pairs = std::mem::take(&mut dense.pairs);
        let result = self.expand(feats, &mut pairs);
        if result.is_ok() {
            out.fill_from(&pairs, dense, self.dim());
        }
        dense.pairs = pairs;
        result
    }

    /// The (slot, value) pairs of `feats`: the constant, each feature, and
    /// each configured interaction product.
    fn expand(&self, feats: &[Hashed], pairs: &mut Vec<(u32, f64)>) -> Result<()> {
        pairs.clear();
        self.expand_each(feats, |slot, x, _| pairs.push((slot, x)))
    }

    /// Hand `each` every term of `feats` with its slot and value, in
    /// [`expand`](Self::expand)'s order: the constant, each feature, then
    /// each interaction product.
    pub(crate) fn expand_each(
        &self,
        feats: &[Hashed],
        mut each: impl FnMut(u32, f64, Term),
    ) -> Result<()> {
        let mask = (self.dim() - 1) as u32;
        each(hash::constant() & mask, 1.0, Term::Constant);
        for (i, f) in feats.iter().enumerate() {
            each(f.h & mask, f.x, Term::Feature(i));
        }
        let mut count = 1 + feats.len();
        for &(a, b) in &self.interactions {
            for (i, fa) in feats.iter().enumerate().filter(|(_, f)| f.ns == a) {
                // Within one namespace, each unordered pair once.
                let start = if a == b { i + 1 } else { 0 };
                for (j, fb) in feats
                    .iter()
                    .enumerate()
                    .skip(start)
                    .filter(|(_, f)| f.ns == b)
                {
                    if count >= MAX_EXPANDED_FEATURES {
                        return Err(Error::TooManyFeatures {
                            count,
                            max: MAX_EXPANDED_FEATURES,
                        });
                    }
                    let x = fa.x * fb.x;
                    if !x.is_finite() {
                        return Err(Error::NonFiniteFeature {
                            field: "interaction product".into(),
                        });
                    }
                    each(hash::interaction(fa.h, fb.h) & mask, x, Term::Cross(i, j));
                    count += 1;
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
    pub(crate) fn featurize(&self, shared: &Json, action: Option<&Json>) -> Result<SparseVec> {
        let mut feats = Vec::new();
        self.hash_context(shared, Origin::Context, &mut feats)?;
        if let Some(a) = action {
            self.hash_context(a, Origin::Action(None), &mut feats)?;
        }
        self.fold(&feats)
    }
}

/// Push one feature, refusing more than [`MAX_FEATURES`].
pub(crate) fn push(out: &mut Vec<Hashed>, h: Hashed) -> Result<()> {
    check_count(out.len() + 1)?;
    out.push(h);
    Ok(())
}

/// Refuse `count` raw features (a context plus one action's) over [`MAX_FEATURES`].
pub(crate) fn check_count(count: usize) -> Result<()> {
    if count > MAX_FEATURES {
        return Err(Error::TooManyFeatures {
            count,
            max: MAX_FEATURES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allow: &[&str], inter: &[(&str, &str)], bits: u8) -> FeatureConfig {
        FeatureOptions {
            hash_version: None,
            bits: Some(bits),
            allow: Some(allow.iter().map(|s| s.to_string()).collect()),
            interactions: Some(
                inter
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
        }
        .check("features.")
        .unwrap()
    }

    fn ctx(json: &str) -> Json<'_> {
        Json::parse(json, "context", Error::option_owned).unwrap()
    }

    #[test]
    fn non_allowlisted_namespaces_are_dropped_unread() {
        let c = cfg(&["page"], &[], 10);
        let a = c.featurize(&ctx(r#"{"page":{"s":"x"}}"#), None).unwrap();
        // `pii` would fail validation (null, an object) if it were read at all.
        let b = c
            .featurize(
                &ctx(r#"{"page":{"s":"x"},"pii":{"email":"a@b.c","bad":null,"o":{}}}"#),
                None,
            )
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.idx.len(), 2); // the feature and the constant
    }

    #[test]
    fn values_numbers_strings_booleans_and_lists() {
        let c = cfg(&["p"], &[], 18);
        let v = c
            .featurize(
                &ctx(r#"{"p":{"n":2.5,"s":"a","l":["x","y"],"b":true}}"#),
                None,
            )
            .unwrap();
        assert_eq!(v.idx.len(), 6);
        assert!(v.val.contains(&2.5));
        assert!(v.idx.iter().all(|&i| i < 1 << 18));
        assert!(v.idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn collisions_sum_in_small_tables() {
        let c = cfg(&["p"], &[], 4);
        let json: String = (0..40)
            .map(|i| format!("\"f{i}\":1"))
            .collect::<Vec<_>>()
            .join(",");
        let v = c
            .featurize(&ctx(&format!("{{\"p\":{{{json}}}}}")), None)
            .unwrap();
        assert!(v.idx.len() <= 16);
        assert!((v.val.iter().sum::<f64>() - 41.0).abs() < 1e-12);
    }

    #[test]
    fn interactions_cross_context_and_action() {
        let c = cfg(&["a", "u"], &[("u", "a")], 18);
        let shared = ctx(r#"{"u":{"seg":"x","n":2}}"#);
        let act = ctx(r#"{"a":{"color":"red"}}"#);
        let v = c.featurize(&shared, Some(&act)).unwrap();
        // 2 shared + 1 action + 2 crosses + constant.
        assert_eq!(v.idx.len(), 6);
        assert!(v.val.contains(&2.0));
    }

    #[test]
    fn bad_values_are_rejected_with_codes() {
        let c = cfg(&["p"], &[], 8);
        let e = c.featurize(&ctx(r#"{"p":{"x":null}}"#), None).unwrap_err();
        assert_eq!(e.code(), "NON_FINITE_FEATURE");
        assert!(e.to_string().contains("p.x"));
        let long = format!(r#"{{"p":{{"x":"{}"}}}}"#, "z".repeat(300));
        assert_eq!(
            c.featurize(&ctx(&long), None).unwrap_err().code(),
            "STRING_TOO_LONG"
        );
        let many = format!(r#"{{"p":{{"x":[{}]}}}}"#, vec!["\"q\""; 300].join(","));
        assert_eq!(
            c.featurize(&ctx(&many), None).unwrap_err().code(),
            "TOO_MANY_FEATURES"
        );
        for bad in [
            r#"{"p":{"x":{}}}"#,
            r#"{"p":{"x":[1]}}"#,
            r#"{"p":3}"#,
            r#"[1]"#,
            r#"{"p":{"":1}}"#,
        ] {
            assert_eq!(
                c.featurize(&ctx(bad), None).unwrap_err().code(),
                "INVALID_CONTEXT",
                "{bad}"
            );
        }
    }

    #[test]
    fn sorts_order_keys() {
        let mut rng = crate::rng::Rng::new(4);
        for n in [0, 1, 2, 10, 1000, 4096] {
            let mut v: Vec<u32> = (0..n).map(|_| (rng.next_u64() % 300) as u32).collect();
            let mut want = v.clone();
            want.sort();
            insitu_kernels::sort_slots(&mut v);
            assert_eq!(v, want);
        }
        let mut s: Vec<String> = ["b", "a", "c", "a"].iter().map(|x| x.to_string()).collect();
        sort_strings(&mut s);
        assert_eq!(s, ["a", "a", "b", "c"]);
    }

    #[test]
    fn options_are_checked() {
        let bad_bits = FeatureOptions {
            bits: Some(30),
            ..Default::default()
        }
        .check("features.");
        let e = bad_bits.unwrap_err();
        assert_eq!(e.code(), "INVALID_OPTION");
        assert!(e.to_string().contains("features.bits") && e.to_string().contains("30"));
        let bad_inter = FeatureOptions {
            allow: Some(vec!["a".into()]),
            interactions: Some(vec![("a".into(), "zz".into())]),
            ..Default::default()
        };
        assert!(bad_inter.check("").unwrap_err().to_string().contains("zz"));
        let bad_hash = FeatureOptions {
            hash_version: Some(2),
            ..Default::default()
        };
        assert_eq!(bad_hash.check("").unwrap_err().code(), "INVALID_OPTION");
        let j = ctx(r#"{"bits":5,"allow":["a"],"interactions":[["a"]]}"#);
        let e = FeatureOptions::read(Obj::new(&j, "features", Error::option_owned).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("features.interactions[0]"), "{e}");
        let j = ctx(r#"{"bitz":5}"#);
        let e = FeatureOptions::read(Obj::new(&j, "features", Error::option_owned).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("features.bitz"), "{e}");
    }

    #[test]
    fn hashing_is_stable_across_releases() {
        // Golden slots: a change here silently invalidates every shipped model.
        let c = cfg(&["page"], &[], 18);
        let v = c
            .featurize(&ctx(r#"{"page":{"section":"sports"}}"#), None)
            .unwrap();
        let s = hash::categorical(hash::namespace_seed("page"), "section", "sports") & 0x3ffff;
        let k = hash::constant() & 0x3ffff;
        let mut want = vec![s, k];
        want.sort_unstable();
        assert_eq!(v.idx, want);
        assert_eq!((s, k), (GOLDEN_SECTION_SPORTS, GOLDEN_CONSTANT));
    }
    const GOLDEN_SECTION_SPORTS: u32 = 75797;
    const GOLDEN_CONSTANT: u32 = 99154;
}
