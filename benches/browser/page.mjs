// The browser half of benches/browser-bench.mjs: the workload of
// benches/workload.mjs, run in the page against the package (pkg/index.js)
// and GrowthBook's ESM bundle, both served from this repo. insitu's side is
// one slot on its own, `new Insitu(...)` on the full engine (`await init()`
// loads insitu_full.wasm and full.js), so what is timed is `rank` alone, as
// before: no site, storage or behaviour features around it.
import init, { Insitu } from "/pkg/index.js";
import { GrowthBook } from "/node_modules/@growthbook/growthbook/dist/bundles/esm.min.js";
import { FEATURE_KEY, context, countFeatures, features, insituConfig, pairedRatio, userAttributes } from "../workload.mjs";

const pause = () => new Promise((r) => setTimeout(r, 0));

window.bench = async ({ batches, warmup, calls }) => {
  await init();
  const opts = Array.from({ length: 64 }, (_, i) => ({ context: context(i) }));
  if (!opts.every((o) => countFeatures(o.context) === 32)) throw new Error("expected 32 active features");
  const slot = new Insitu(insituConfig());
  let sink = 0;
  const rank = (i) => {
    sink ^= slot.rank(opts[i % opts.length]).index;
  };
  let tracked = 0;
  const gb = new GrowthBook({ trackingCallback: () => tracked++ });
  gb.initSync({ payload: { features } });
  const users = userAttributes((batches + warmup) * calls);
  const feature = (i) => {
    gb.setAttributes(users(i));
    sink ^= gb.getFeatureValue(FEATURE_KEY, "control").length;
  };
  const now = () => performance.now() * 1e6; // ns
  const result = await pairedRatio(rank, feature, { batches, warmup, calls, now, pause });
  if (tracked !== (batches + warmup) * calls) throw new Error(`GrowthBook tracked ${tracked} exposures`);
  document.querySelector("#status").textContent = "done";
  return { ...result, policy: slot.policy, userAgent: navigator.userAgent, sink };
};
document.querySelector("#status").textContent = "ready";
