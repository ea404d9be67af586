//! "Why this variant": a variant's posterior mean score split into the
//! contributions of the features that made it.
//!
//! Every policy here scores a variant with a linear model, `x'w`, whose
//! posterior mean weights are what the engine has learned. So the score of
//! a variant for a context is exactly the sum, over the terms of its feature
//! vector (the bias, each feature, each interaction product), of the term's
//! value times the mean weight of the slot it hashes to. An explanation lists
//! the largest of those products. It explains the *mean* score; the policy
//! may still choose another variant (exploration, or LinUCB's optimism and
//! Thompson sampling's draw when a variant is uncertain), which
//! [`Explanation::best`] and [`Explanation::sd`] make visible.
//!
//! Hashing is one way, so names stay with the caller: each feature comes
//! with a label id (equal ids: the same feature by name), and a term is
//! returned by the positions of its features, for the caller to name. Two
//! different terms can hash to one slot and then share a weight; such
//! terms are marked [`Contribution::shared`].
//!
//! Nothing changes: no seed is drawn, no decision is recorded.

use crate::prelude::*;

use super::Engine;
use crate::error::{Error, Result};
pub use crate::features::Term;
use crate::features::{check_count, Hashed};
#[cfg(feature = "json")]
pub use json::{ExplainOptions, NamedContribution, NamedExplanation};

/// Most contributions one explanation lists.
pub(crate) const MAX_TOP: usize = 64;

/// One term of a variant's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The term: a feature or the product of two, by position in the
    /// explained features (the context's, then the variant's own).
    pub term: Term,
    /// The term's value (summed when the context lists it more than once).
    pub value: f64,
    /// The posterior mean weight of its slot, for this variant; with
    /// normalized features, times the context's factor (1 / the length of
    /// its vector), so that `value × weight` is still the contribution.
    pub weight: f64,
    /// `value × weight`: what the term adds to the score.
    pub contribution: f64,
    /// Another term (or the bias) hashes to the same slot, so the weight was
    /// learned from both.
    pub shared: bool,
}

/// A variant's score, term by term.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The variant explained: its position in the variant list.
    pub index: usize,
    /// Its posterior mean score: `bias + Σ contributions + other`.
    pub score: f64,
    /// What the bias slot adds, the variant's score with no features.
    pub bias: f64,
    /// The largest terms by size, largest first.
    pub contributions: Vec<Contribution>,
    /// What the terms not listed add together.
    pub other: f64,
    /// Every variant's posterior mean score, in variant order.
    pub scores: Vec<f64>,
    /// Every variant's posterior standard deviation of the score: how unsure
    /// the learner still is, which is what exploration acts on.
    pub sd: Vec<f64>,
    /// The variant with the highest mean score (the first of equals).
    pub best: usize,
    /// Rewards this variant has learned from.
    pub updates: u64,
}

/// A term of the explained variant's vector: its slot and value.
#[derive(Clone, Copy)]
struct Item {
    /// Its slots: one, or a feature's two (`slotsPerFeature: 2`).
    slots: [Option<u32>; 2],
    /// The page's value.
    value: f64,
    /// What one unit of it adds to the score: its slot's weight, or the
    /// two slots' weights times their signed shares.
    weight: f64,
    term: Term,
}

/// Features with their label ids.
pub struct Labelled<'a> {
    /// The hashed features.
    pub hashed: &'a [Hashed],
    /// One label id per feature: equal ids name the same feature.
    pub labels: &'a [u32],
}

impl Engine {
    /// Explain a variant's mean score for a context: `shared` is the
    /// context's features, `own` each variant's own (the per-call actions,
    /// or the model's variant features), `variant` the one to explain
    /// (default: the highest mean score) and `top` how many contributions to
    /// list (1 to 64). Errors as for `rank` (bad features), plus
    /// `UNKNOWN_VARIANT`. Nothing changes.
    pub fn explain_hashed(
        &self,
        shared: Labelled<'_>,
        own: &[Labelled<'_>],
        variant: Option<usize>,
        top: usize,
    ) -> Result<Explanation> {
        if self.s.cfg.model.catalogue.is_some() {
            return Err(Error::option(
                "explain",
                text!("is not available for a catalogue slot (its variants share one learner)"),
            ));
        }
        let fc = &self.s.cfg.model.features;
        let k = self.s.arms.len();
        let actions: Vec<Vec<Hashed>> = own.iter().map(|o| o.hashed.to_vec()).collect();
        self.s.clone().score(shared.hashed, Some(&actions))?;
        if shared.labels.len() != shared.hashed.len()
            || own.iter().any(|o| o.labels.len() != o.hashed.len())
            || !(1..=MAX_TOP).contains(&top)
        {
            return Err(Error::option(
                "explain",
                text!("labels or top out of range"),
            ));
        }

        // Every variant's mean and sd, from the vectors `rank` folds.
        let mut scores = Vec::with_capacity(k);
        let mut sd = Vec::with_capacity(k);
        for (arm, own) in self.s.arms.iter().zip(&actions) {
            check_count(shared.hashed.len() + own.len())?;
            let x = fc.fold(&[shared.hashed, &own[..]].concat())?;
            scores.push(arm.mean_score(&x));
            sd.push(crate::prim::math::sqrt(arm.score_variance(&x)));
        }
        // What `rank` refuses, explain refuses too.
        if !scores.iter().chain(&sd).all(|v| v.is_finite()) {
            return Err(super::overflow());
        }
        let best = (0..k).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
        let index = match variant {
            None => best,
            Some(v) if v < k => v,
            Some(v) => {
                return Err(Error::UnknownVariant {
                    variant: text!("#{v}"),
                })
            }
        };

        // The explained variant's terms, and the label of each feature.
        let hashed = [shared.hashed, &actions[index][..]].concat();
        let labels = [shared.labels, own[index].labels].concat();
        let same = |a: Term, b: Term| match (a, b) {
            (Term::Constant, Term::Constant) => true,
            (Term::Feature(i), Term::Feature(j)) => labels[i] == labels[j],
            (Term::Cross(i, j), Term::Cross(p, q)) => {
                labels[i] == labels[p] && labels[j] == labels[q]
            }
            _ => false,
        };
        // Terms keep the values the page gave; their weights act on the
        // vector `rank` folds, scaled to length 1 when features are
        // normalized, so each contribution carries that factor. A feature
        // folded into two slots is one term whose weight is theirs, signed
        // and shared as the fold splits its value.
        let scale = fc.scale(&fc.fold_raw(&hashed)?);
        let w = &self.s.arms[index].mean;
        let mask = (fc.dim() - 1) as u32;
        let mut items: Vec<Item> = Vec::new();
        fc.expand_each(&hashed, |slot, value, term| {
            let at = |s: u32| w.get(s as usize).copied().unwrap_or(0.0) * scale;
            match (term, items.last()) {
                // The second slot of a feature already listed.
                (Term::Feature(i), Some(last)) if fc.two_slots && last.term == term => {
                    let (a, b, ca, cb) = crate::features::two_slots(hashed[i].hash(), mask, 1.0);
                    if let Some(last) = items.last_mut() {
                        last.slots = [Some(a), Some(b)];
                        last.weight = ca * at(a) + cb * at(b);
                        last.value = hashed[i].value();
                    }
                }
                _ => items.push(Item {
                    slots: [Some(slot), None],
                    value,
                    weight: at(slot),
                    term,
                }),
            }
        })?;
        let weight = |it: &Item| it.weight;
        let bias = items
            .iter()
            .filter(|it| it.term == Term::Constant)
            .map(|it| it.value * weight(it))
            .sum::<f64>();
        let all = items.clone();
        items.retain(|it| it.term != Term::Constant);

        // The `top` largest, merging repeats of one term (a list naming a
        // value twice) into one.
        let mut contributions = Vec::new();
        let mut listed = 0.0;
        while contributions.len() < top && !items.is_empty() {
            let size = |it: &Item| (it.value * weight(it)).abs();
            let pick = (0..items.len()).fold(0, |b, i| {
                if size(&items[i]) > size(&items[b]) {
                    i
                } else {
                    b
                }
            });
            let first = items.swap_remove(pick);
            let mut value = first.value;
            items.retain(|it| {
                let dup = it.slots == first.slots && same(it.term, first.term);
                if dup {
                    value += it.value;
                }
                !dup
            });
            let meets = |it: &Item| {
                it.slots
                    .iter()
                    .flatten()
                    .any(|s| first.slots.contains(&Some(*s)))
            };
            let shared = all.iter().any(|it| meets(it) && !same(it.term, first.term));
            let contribution = value * weight(&first);
            listed += contribution;
            contributions.push(Contribution {
                term: first.term,
                value,
                weight: weight(&first),
                contribution,
                shared,
            });
        }
        let score = scores[index];
        Ok(Explanation {
            index,
            score,
            bias,
            other: score - bias - listed,
            contributions,
            scores,
            sd,
            best,
            updates: self.s.arms[index].n,
        })
    }
}

#[cfg(feature = "json")]
mod json {
    //! `explain` with options read from JSON, naming each term.
    use crate::prelude::*;

    use super::super::json::{feature_options, take_features, OPT_ERR};
    use super::{Engine, Labelled, Term};
    use crate::error::Result;
    use crate::features::{push, Hashed, Label, Origin};
    use crate::json::Json;

    /// Contributions listed when `top` is not given.
    const DEFAULT_TOP: usize = 5;

    /// Options of `explain`: the rank options (`context`, `actions`), the
    /// variant to explain and how many contributions to list.
    #[derive(Debug, Clone, Default)]
    pub struct ExplainOptions<'a> {
        pub(crate) context: Option<Json<'a>>,
        pub(crate) actions: Option<Vec<Json<'a>>>,
        pub(crate) variant: Option<String>,
        pub(crate) top: usize,
    }

    impl<'a> ExplainOptions<'a> {
        /// Parse `{ context?, actions?, variant?, top? }`. `variant` defaults to
        /// the variant with the highest mean score; `top` (1 to 64) to 5.
        pub fn parse(text: &'a str) -> Result<ExplainOptions<'a>> {
            ExplainOptions::from_json(Json::parse(text, "explain options", OPT_ERR)?)
        }

        /// [`parse`](Self::parse) of options already read.
        pub(crate) fn from_json(mut json: Json<'a>) -> Result<ExplainOptions<'a>> {
            let mut o = feature_options(&json)?;
            let variant = o.str("variant")?.map(str::to_owned);
            let top = o
                .int("top", 1, super::MAX_TOP as u64)?
                .map_or(DEFAULT_TOP, |t| t as usize);
            o.finish()?;
            let (context, actions) = take_features(&mut json);
            Ok(ExplainOptions {
                context,
                actions,
                variant,
                top,
            })
        }
    }

    /// A term named: `ns.name`, `ns.name=value`, `a × b` or `bias`.
    pub(crate) fn term_name(labels: &[Label<'_>], t: Term) -> String {
        let one = |l: &Label<'_>| match l.value {
            None => format!("{}.{}", l.ns, l.name),
            Some(v) => format!("{}.{}={v}", l.ns, l.name),
        };
        match t {
            Term::Constant => "bias".to_owned(),
            Term::Feature(i) => one(&labels[i]),
            Term::Cross(i, j) => format!("{} × {}", one(&labels[i]), one(&labels[j])),
        }
    }

    /// The id of label `l`: its position among the labels seen.
    fn intern<'j>(seen: &mut Vec<Label<'j>>, l: Label<'j>) -> u32 {
        match seen.iter().position(|s| *s == l) {
            Some(i) => i as u32,
            None => {
                seen.push(l);
                (seen.len() - 1) as u32
            }
        }
    }

    /// One term of an explanation, named.
    #[derive(Debug, Clone, PartialEq)]
    pub struct NamedContribution {
        /// `namespace.name` for a number or flag, `namespace.name=value` for
        /// a categorical, `a × b` for an interaction.
        pub feature: String,
        /// The term's value (summed when the context lists it more than once).
        pub value: f64,
        /// The posterior mean weight of its slot, for this variant; with
        /// normalized features, times the context's factor (1 / the length of
        /// its vector), so that `value × weight` is still the contribution.
        pub weight: f64,
        /// `value × weight`: what the term adds to the score.
        pub contribution: f64,
        /// Another term hashes to the same slot.
        pub shared: bool,
    }

    /// An [`Explanation`](super::Explanation) with the variant and each
    /// term named.
    #[derive(Debug, Clone, PartialEq)]
    pub struct NamedExplanation {
        /// The variant explained.
        pub variant: String,
        /// Its position in the variant list.
        pub index: usize,
        /// Its posterior mean score: `bias + Σ contributions + other`.
        pub score: f64,
        /// What the bias slot adds.
        pub bias: f64,
        /// The largest terms by size, largest first.
        pub contributions: Vec<NamedContribution>,
        /// What the terms not listed add together.
        pub other: f64,
        /// Every variant's posterior mean score.
        pub scores: Vec<f64>,
        /// Every variant's posterior standard deviation of the score.
        pub sd: Vec<f64>,
        /// The variant with the highest mean score.
        pub best: usize,
        /// Rewards this variant has learned from.
        pub updates: u64,
    }

    /// Features hashed with their names.
    #[derive(Default)]
    struct Named<'j> {
        hashed: Vec<Hashed>,
        labels: Vec<Label<'j>>,
    }

    impl Engine {
        /// Explain a variant's mean score for a context given as JSON, each
        /// term named (see [`term_name`]).
        pub fn explain(&self, opts: &ExplainOptions<'_>) -> Result<NamedExplanation> {
            let fc = &self.s.cfg.model.features;
            let k = self.s.variant_count();
            self.check_actions(opts.actions.as_deref())?;
            let mut shared = Named::default();
            let context = opts.context.as_ref().unwrap_or(&Json::Null);
            fc.walk_context(context, Origin::Context, &mut |h, l| {
                push(&mut shared.hashed, h)?;
                shared.labels.push(l);
                Ok(())
            })?;
            let mut own = Vec::with_capacity(k);
            for i in 0..k {
                let mut n = Named::default();
                let (json, origin) = match &opts.actions {
                    Some(a) => (&a[i], Origin::Action(Some(i))),
                    None => match &self.s.cfg.model.variants[i].features {
                        Some(f) => (f, Origin::Action(None)),
                        None => (&Json::Null, Origin::Action(None)),
                    },
                };
                fc.walk_context(json, origin, &mut |h, l| {
                    push(&mut n.hashed, h)?;
                    n.labels.push(l);
                    Ok(())
                })?;
                own.push(n);
            }
            // Label ids: equal labels, equal ids.
            let mut seen: Vec<Label<'_>> = Vec::new();
            let shared_ids: Vec<u32> = shared
                .labels
                .iter()
                .map(|l| intern(&mut seen, *l))
                .collect();
            let own_ids: Vec<Vec<u32>> = own
                .iter()
                .map(|n| n.labels.iter().map(|l| intern(&mut seen, *l)).collect())
                .collect();
            let variant = match &opts.variant {
                None => None,
                Some(v) => Some(self.arm_of(v)?),
            };
            let own_l: Vec<Labelled<'_>> = own
                .iter()
                .zip(&own_ids)
                .map(|(n, ids)| Labelled {
                    hashed: &n.hashed,
                    labels: ids,
                })
                .collect();
            let e = self.explain_hashed(
                Labelled {
                    hashed: &shared.hashed,
                    labels: &shared_ids,
                },
                &own_l,
                variant,
                opts.top,
            )?;
            let mut labels = shared.labels.clone();
            labels.extend_from_slice(&own[e.index].labels);
            Ok(NamedExplanation {
                variant: self.s.cfg.model.variants[e.index].id.clone(),
                index: e.index,
                score: e.score,
                bias: e.bias,
                contributions: e
                    .contributions
                    .iter()
                    .map(|c| NamedContribution {
                        feature: term_name(&labels, c.term),
                        value: c.value,
                        weight: c.weight,
                        contribution: c.contribution,
                        shared: c.shared,
                    })
                    .collect(),
                other: e.other,
                scores: e.scores,
                sd: e.sd,
                best: e.best,
                updates: e.updates,
            })
        }
    }
}
