#!/usr/bin/env python3
"""Learning quality on real data (issue #24, part 1): insitu's shipped
defaults against Vowpal Wabbit 9 and mabwiser's LinUCB, on the same streams.

Supervised-to-bandit conversions of the classification datasets that
scikit-learn ships (no download at run time), as in Bietti, Agarwal and
Langford, "A Contextual Bandit Bake-off" (JMLR 2021): features z-scored, one
pass over a shuffled stream per seed, progressive validation (each example
is first acted on, then learned from), reward 1 for the true class and 0
otherwise, only the chosen action's reward revealed. The mean reward over
the pass is the score; five seeds give the spread.

And the Open Bandit Dataset samples that the `obp` package ships (its
uniform-random logs of ZOZOTOWN's "men" campaign, 34 items, and of its "all"
campaign, 80 items, each 10,000 impressions over 3 positions), replayed (Li
et al. 2011): a policy acts on every logged impression, and where it picks
the logged item it sees the click and learns; its click rate over those
matches estimates its value. Also the IPS estimate over all impressions. The
samples are small (38 clicks in "all"), so their intervals are wide. The
"all" campaign has more items than a slot's 64, so insitu runs it as a
catalogue (`catalogue`: one learner shared by the items through their
features, the item id and obp's item_context.csv), and VW gets the same item
features as action features.

insitu runs through scripts/replay.mjs (the built package, pkg/, the exact
code a site ships) with the engine's defaults; the only option set is the
driver's `interactions: false`, so the engine sees the site's defaults.
VW runs `--cb_explore_adf` with one linear model per action (`-q sa`) and
the explorers the bake-off recommends, its action drawn from its pmf by this
script's seeded generator; insitu samples inside the engine (seeded by the
run's seed), and mabwiser's LinUCB is greedy on its upper bound. Every
learner sees the same stream.

Usage:
  bash scripts/setup-eval.sh          # once: .venv-eval with pinned packages
  .venv-eval/bin/python scripts/eval-real.py [--seeds N] [--only NAME,...] [--no-obd]
    (NAME: iris, wine, breast_cancer, digits, obd (both campaigns), obd-men, obd-all)
Writes .artifacts/eval-real.json. Needs pkg/ (npm run build).
"""

import argparse
import csv
import io
import json
import math
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "scripts" / "replay.mjs"
OBP_WHEEL_DIR = ROOT / ".venv-eval" / "wheels"

# --------------------------------------------------------------- learners


class Insitu:
    """insitu through the replay driver: the built package, its defaults
    (or `options`, the driver's, for a trial of other settings)."""

    def __init__(self, k, seed, options=None, action_features=None, label=None):
        self.name = label or ("insitu (defaults)" if not options else f"insitu {json.dumps(options, separators=(',', ':'))}")
        log = ROOT / ".artifacts" / "eval-real-replay.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "a") as err:  # the driver's log lines, and any crash
            self.p = subprocess.Popen(
                ["node", str(REPLAY)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1
            )
        self.k = k
        self.t = 0
        opts = {"interactions": False, **(options or {})}
        init = {"type": "init", "protocol": 1, "num_actions": k, "seed": seed, "task": "eval-real", "options": opts}
        self.catalogue = action_features is not None
        if self.catalogue:
            init["action_features"] = action_features
        reply = self._ask(init)
        if reply.get("type") != "ready":
            raise RuntimeError(f"replay driver refused init: {reply}")

    def _send(self, msg):
        self.p.stdin.write(json.dumps(msg) + "\n")

    def _ask(self, msg):
        self._send(msg)
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("replay driver exited (see .artifacts/eval-real-replay.log)")
        reply = json.loads(line)
        if reply.get("type") == "error":
            raise RuntimeError(f"replay driver: {reply}")
        return reply

    def act(self, named, vec, rng):
        self.t += 1
        msg = {"type": "predict", "t": self.t, "shared": named}
        if not self.catalogue:
            msg["actions"] = [{} for _ in range(self.k)]
        r = self._ask(msg)
        return r["action"], r["probability"]

    def learn(self, named, vec, action, prob, reward):
        self._send({"type": "learn", "t": self.t, "action": action, "probability": prob, "reward": reward})

    def close(self):
        try:
            self._ask({"type": "end"})
        finally:
            self.p.stdin.close()
            self.p.wait(timeout=30)


def vw_line(feats):
    return " ".join(f"{k}:{v:.6g}" for k, v in feats.items())


class VW:
    """Vowpal Wabbit 9, `--cb_explore_adf`, one linear model per action."""

    def __init__(self, name, args, k, seed, action_features=None):
        from vowpalwabbit import Workspace

        self.name = f"VW {name}"
        self.k = k
        self.vw = Workspace(f"--cb_explore_adf -q sa --quiet --random_seed {seed} {args}")
        # Each action's features: its index alone, or the item's own.
        self.actions = [f"a{a}" for a in range(k)] if action_features is None else [vw_line(f) for f in action_features]

    def _ex(self, feats, label=None):
        lines = [f"shared |s {vw_line(feats)}"]
        for a in range(self.k):
            lab = f"0:{label[1]}:{label[2]} " if label is not None and label[0] == a else ""
            lines.append(f"{lab}|a {self.actions[a]}")
        return lines

    def act(self, named, vec, rng):
        pmf = np.asarray(self.vw.predict(self._ex(named)), dtype=float)
        pmf = pmf / pmf.sum()
        a = int(rng.choice(self.k, p=pmf))
        return a, float(pmf[a])

    def learn(self, named, vec, action, prob, reward):
        # VW minimises cost: cost 0 for a reward of 1, as in the bake-off.
        self.vw.learn(self._ex(named, (action, 1.0 - reward, prob)))

    def close(self):
        self.vw.finish()


class LinUCB:
    """mabwiser's LinUCB (greedy on the upper bound; ties broken by its seed)."""

    def __init__(self, alpha, k, seed):
        from mabwiser.mab import MAB, LearningPolicy

        self.name = f"mabwiser LinUCB α={alpha}"
        self.k = k
        self.mab = MAB(arms=list(range(k)), learning_policy=LearningPolicy.LinUCB(alpha=alpha), seed=seed)
        self.fitted = False

    def act(self, named, vec, rng):
        x = vec.reshape(1, -1)
        if not self.fitted:
            return int(rng.integers(self.k)), 1.0 / self.k
        return int(self.mab.predict(x)), 1.0

    def learn(self, named, vec, action, prob, reward):
        x = vec.reshape(1, -1)
        if self.fitted:
            self.mab.partial_fit([action], [reward], x)
        else:
            self.mab.fit([action], [reward], x)
            self.fitted = True

    def close(self):
        pass


# The explorers the bake-off recommends, and plain greedy.
VW_CONFIGS = [
    ("greedy", "--epsilon 0"),
    ("ε-greedy 0.05", "--epsilon 0.05"),
    ("squarecb", "--squarecb"),
    ("regcb-opt", "--regcbopt --mellowness 0.01"),
    ("cover 4 nu", "--cover 4 --psi 0.1 --nounif"),
    ("bag 4 greedify", "--bag 4 --greedify"),
]
LINUCB_ALPHAS = [0.5, 1.0]


# Extra insitu settings to try beside the defaults (--insitu-options), and
# whether to run only insitu (--insitu-only).
TRIALS = []
INSITU_ONLY = False


def learners(k, seed, items=None):
    """Every learner of one run. With `items` (each action's features), insitu
    is a catalogue with its defaults and VW sees the item features."""
    if items is None:
        yield lambda: Insitu(k, seed)
    else:
        yield lambda: Insitu(k, seed, {"catalogue": True}, items, "insitu catalogue (defaults)")
    for opts in TRIALS:
        extra = {"catalogue": True} if items is not None and "catalogue" not in opts else {}
        yield lambda opts=opts, extra=extra: Insitu(k, seed, {**extra, **opts}, items)
    if INSITU_ONLY:
        return
    for name, args in VW_CONFIGS:
        yield lambda name=name, args=args: VW(name, args, k, seed, items)
    for alpha in LINUCB_ALPHAS:
        yield lambda alpha=alpha: LinUCB(alpha, k, seed)


# ------------------------------------------------------------- classification


def classification():
    from sklearn import datasets as d

    for name, load in [
        ("iris", d.load_iris),
        ("wine", d.load_wine),
        ("breast_cancer", d.load_breast_cancer),
        ("digits", d.load_digits),
    ]:
        b = load()
        x = np.asarray(b.data, dtype=float)
        sd = x.std(axis=0)
        sd[sd == 0] = 1.0
        x = (x - x.mean(axis=0)) / sd
        yield name, x, np.asarray(b.target, dtype=int)


def named_rows(x):
    """Each row's named numeric features (insitu's and VW's; mabwiser takes the row itself)."""
    return [{f"x{i}": float(v) for i, v in enumerate(row) if v != 0.0} for row in x]


def run_classification(make, x, named, y, seed):
    order = np.random.default_rng(seed).permutation(len(y))
    rng = np.random.default_rng(seed + 1000)
    learner = make()
    total = 0.0
    try:
        for i in order:
            a, p = learner.act(named[i], x[i], rng)
            r = 1.0 if a == y[i] else 0.0
            learner.learn(named[i], x[i], a, p, r)
            total += r
    finally:
        learner.close()
    return learner.name, total / len(y)


# ---------------------------------------------------------------------- OBD


def obd_file(campaign, name):
    wheels = sorted(OBP_WHEEL_DIR.glob("obp-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no obp wheel in {OBP_WHEEL_DIR}: run bash scripts/setup-eval.sh")
    z = zipfile.ZipFile(wheels[-1])
    return list(csv.DictReader(io.StringIO(z.read(f"obp/dataset/obd/random/{campaign}/{name}").decode("utf-8"))))


def obd_rows(campaign="men"):
    rows = obd_file(campaign, f"{campaign}.csv")
    rows.sort(key=lambda r: r["timestamp"])
    return rows


def obd_items(rows, campaign):
    """Each item's features, in the stream's item order: its id, its three
    categorical features and its numeric one (obp's item_context.csv)."""
    context = {int(r["item_id"]): r for r in obd_file(campaign, "item_context.csv")}
    out = []
    for item in sorted({int(r["item_id"]) for r in rows}):
        c = context[item]
        f = {f"id={item}": 1.0, "f0": float(c["item_feature_0"])}
        for j in (1, 2, 3):
            f[f"f{j}={c[f'item_feature_{j}']}"] = 1.0
        out.append(f)
    return out


def obd_stream(rows):
    """The log as learners see it, built once: (K, and per impression its named
    features, one-hot vector, logged item index, click, propensity)."""
    items = {item: i for i, item in enumerate(sorted({int(r["item_id"]) for r in rows}))}
    cats = ["user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3"]
    index = {}
    for c in cats:
        for v in sorted({r[c] for r in rows}):
            index[(c, v)] = len(index)
    dim = len(index) + 3
    stream = []
    for r in rows:
        named = {f"{c}={r[c]}": 1.0 for c in cats}
        named[f"position={r['position']}"] = 1.0
        vec = np.zeros(dim)
        for c in cats:
            vec[index[(c, r[c])]] = 1.0
        vec[len(index) + int(r["position"]) - 1] = 1.0
        stream.append((named, vec, items[int(r["item_id"])], float(r["click"]), float(r["propensity_score"])))
    return len(items), stream


def run_obd(make, stream, seed):
    """Replay on the uniform-random log: (name, matches, clicks, ips)."""
    rng = np.random.default_rng(seed + 2000)
    learner = make()
    matches = clicks = 0
    ips = 0.0
    try:
        for named, vec, logged, click, propensity in stream:
            a, p = learner.act(named, vec, rng)
            if a == logged:
                matches += 1
                clicks += click
                ips += click / propensity
                learner.learn(named, vec, a, p, click)
    finally:
        learner.close()
    return learner.name, matches, clicks, ips / len(stream)


# -------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated dataset names")
    ap.add_argument("--no-obd", action="store_true")
    ap.add_argument("--insitu-options", action="append", default=[], help="driver options (JSON) of an extra insitu run; repeatable")
    ap.add_argument("--insitu-only", action="store_true", help="run no VW or mabwiser learner")
    args = ap.parse_args()
    global INSITU_ONLY
    TRIALS.extend(json.loads(o) for o in args.insitu_options)
    INSITU_ONLY = args.insitu_only
    if not (ROOT / "pkg" / "insitu_full.wasm").exists():
        sys.exit("pkg/ is missing: npm run build first")
    only = set(args.only.split(",")) if args.only else None
    results = {}
    start = time.time()
    for name, x, y in classification():
        if only and name not in only:
            continue
        k = int(y.max()) + 1
        named = named_rows(x)
        table = {}
        for seed in range(1, args.seeds + 1):
            for make in learners(k, seed):
                lname, score = run_classification(make, x, named, y, seed)
                table.setdefault(lname, []).append(score)
        results[name] = {"k": k, "n": len(y), "d": x.shape[1], "scores": table}
        print(f"\n{name}: {len(y)} examples, {x.shape[1]} features, K = {k} ({time.time() - start:.0f} s)")
        others = [(np.mean(s), n) for n, s in table.items() if not n.startswith("insitu")]
        best = max(others) if others else (float("nan"), "none")
        for lname, s in sorted(table.items(), key=lambda kv: -np.mean(kv[1])):
            mark = "  <- best VW / mabwiser" if (np.mean(s), lname) == best else ""
            print(f"  {lname:<28} {np.mean(s):.4f} ± {np.std(s, ddof=1) if len(s) > 1 else 0:.4f}{mark}")
        ins = np.mean(table["insitu (defaults)"])
        if others:
            print(f"  insitu − best: {ins - best[0]:+.4f} ({'meets' if ins >= best[0] else 'misses'} the bar)")
    for campaign in ("men", "all"):
        if args.no_obd or not (only is None or "obd" in only or f"obd-{campaign}" in only):
            continue
        rows = obd_rows(campaign)
        k, stream = obd_stream(rows)
        items = obd_items(rows, campaign) if campaign == "all" else None
        table = {}
        for seed in range(1, args.seeds + 1):
            for make in learners(k, seed, items):
                lname, m, c, ips = run_obd(make, stream, seed)
                table.setdefault(lname, []).append((m, c, ips))
        results[f"obd-{campaign}-random"] = {"n": len(rows), "k": k, "runs": table}
        ctr = sum(float(r["click"]) for r in rows) / len(rows)
        print(f"\nOpen Bandit Dataset sample (obp, random/{campaign}): {len(rows)} impressions, {k} items, logged CTR {ctr:.4f}")
        print("  replay CTR = clicks / matches over all seeds (95% Wilson interval); IPS mean over seeds")
        for lname, runs in sorted(table.items(), key=lambda kv: -sum(r[1] for r in kv[1]) / max(1, sum(r[0] for r in kv[1]))):
            m = sum(r[0] for r in runs)
            c = sum(r[1] for r in runs)
            p = c / m if m else 0.0
            z = 1.96
            half = z * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m) if m else 0.0
            centre = (p + z * z / (2 * m)) / (1 + z * z / m) if m else 0.0
            ips = np.mean([r[2] for r in runs])
            print(f"  {lname:<28} replay {p:.4f} [{centre - half:.4f}, {centre + half:.4f}] over {m} matches; IPS {ips:.4f}")
    out = ROOT / ".artifacts" / "eval-real.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    print(f"\nwrote {out.relative_to(ROOT)} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
