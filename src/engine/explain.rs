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
//! Hashing is one way, so names come from the context passed in, not from
//! the learned weights: explain with the same options the decision was
//! ranked with. Two different terms can hash to one slot and then share a
//! weight; such terms are marked [`Contribution::shared`].
//!
//! Nothing changes: no seed is drawn, no decision is recorded.

use super::{take_features, Engine, OPT_ERR};
use crate::error::Result;
use crate::features::{check_count, push, Hashed, Label, Origin, Term};
use crate::json::Json;

/// Most contributions one explanation lists.
pub(crate) const MAX_TOP: u64 = 64;
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
        let mut o = super::feature_options(&json)?;
        let variant = o.str("variant")?.map(str::to_owned);
        let top = o
            .int("top", 1, MAX_TOP)?
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

/// One term of a variant's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// `namespace.name` for a number or flag, `namespace.name=value` for a
    /// categorical, `a × b` for an interaction.
    pub feature: String,
    /// The term's value (summed when the context lists it more than once).
    pub value: f64,
    /// The posterior mean weight of its slot, for this variant.
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
    /// The variant explained.
    pub variant: String,
    /// Its position in the variant list.
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
    slot: u32,
    value: f64,
    term: Term,
}

impl Engine {
    /// Explain a variant's mean score for a context. Errors as for `rank`
    /// (a bad context), plus `UNKNOWN_VARIANT`. Nothing changes.
    pub fn explain(&self, opts: &ExplainOptions<'_>) -> Result<Explanation> {
        let fc = &self.cfg.model.features;
        let k = self.arms.len();
        self.check_actions(opts.actions.as_deref())?;
        // The shared features and each variant's own, hashed with their names.
        let mut shared = Named::default();
        let context = opts.context.as_ref().unwrap_or(&Json::Null);
        fc.walk_context(context, Origin::Context, &mut |h, l| shared.push(h, l))?;
        let mut own = Vec::with_capacity(k);
        for i in 0..k {
            let mut n = Named::default();
            let (json, origin) = match &opts.actions {
                Some(a) => (&a[i], Origin::Action(Some(i))),
                None => match &self.cfg.model.variants[i].features {
                    Some(f) => (f, Origin::Action(None)),
                    None => (&Json::Null, Origin::Action(None)),
                },
            };
            fc.walk_context(json, origin, &mut |h, l| n.push(h, l))?;
            own.push(n);
        }

        // Every variant's mean and sd, from the vectors `rank` folds.
        let mut scores = Vec::with_capacity(k);
        let mut sd = Vec::with_capacity(k);
        for (arm, own) in self.arms.iter().zip(&own) {
            check_count(shared.hashed.len() + own.hashed.len())?;
            let x = fc.fold(&[&shared.hashed[..], &own.hashed[..]].concat())?;
            scores.push(arm.mean_score(&x));
            sd.push(arm.score_variance(&x).sqrt());
        }
        // What `rank` refuses, explain refuses too.
        if !scores.iter().chain(&sd).all(|v| v.is_finite()) {
            return Err(super::overflow());
        }
        let best = (0..k).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
        let index = match &opts.variant {
            None => best,
            Some(v) => self.arm_of(v)?,
        };

        // The explained variant's terms.
        let mut names = shared;
        names.hashed.extend_from_slice(&own[index].hashed);
        names.labels.extend_from_slice(&own[index].labels);
        let mut items = Vec::new();
        fc.expand_each(&names.hashed, |slot, value, term| {
            items.push(Item { slot, value, term })
        })?;
        let w = &self.arms[index].mean;
        let weight = |it: &Item| w[it.slot as usize];
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
        while contributions.len() < opts.top && !items.is_empty() {
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
                let same = it.slot == first.slot && names.same(it.term, first.term);
                if same {
                    value += it.value;
                }
                !same
            });
            let shared = all
                .iter()
                .any(|it| it.slot == first.slot && !names.same(it.term, first.term));
            let contribution = value * weight(&first);
            listed += contribution;
            contributions.push(Contribution {
                feature: names.name(first.term),
                value,
                weight: weight(&first),
                contribution,
                shared,
            });
        }
        let score = scores[index];
        Ok(Explanation {
            variant: self.cfg.model.variants[index].id.clone(),
            index,
            score,
            bias,
            other: score - bias - listed,
            contributions,
            scores,
            sd,
            best,
            updates: self.arms[index].n,
        })
    }
}

/// Hashed features with their names.
#[derive(Default)]
struct Named<'j> {
    hashed: Vec<Hashed>,
    labels: Vec<Label<'j>>,
}

impl<'j> Named<'j> {
    fn push(&mut self, h: Hashed, l: Label<'j>) -> Result<()> {
        push(&mut self.hashed, h)?;
        self.labels.push(l);
        Ok(())
    }

    /// Whether two terms are the same feature or interaction by name.
    fn same(&self, a: Term, b: Term) -> bool {
        let l = &self.labels;
        match (a, b) {
            (Term::Constant, Term::Constant) => true,
            (Term::Feature(i), Term::Feature(j)) => l[i] == l[j],
            (Term::Cross(i, j), Term::Cross(p, q)) => l[i] == l[p] && l[j] == l[q],
            _ => false,
        }
    }

    /// A term's display name.
    fn name(&self, t: Term) -> String {
        let one = |l: &Label<'_>| match l.value {
            None => format!("{}.{}", l.ns, l.name),
            Some(v) => format!("{}.{}={v}", l.ns, l.name),
        };
        match t {
            Term::Constant => "bias".to_owned(),
            Term::Feature(i) => one(&self.labels[i]),
            Term::Cross(i, j) => format!("{} × {}", one(&self.labels[i]), one(&self.labels[j])),
        }
    }
}
