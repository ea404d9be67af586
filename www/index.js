// Entry point of the demo. Loads insitu (`load()` instantiates its wasm),
// makes the first decision for every slot before revealing them, then mounts
// the panels. If the wasm cannot run, the page keeps its fallback copy.

import { load } from "insitu";
import defs from "./slots.json";
import { App, FEATURES, showUnavailable, storeOptions } from "./app.js";
import { disableAb, mountAb } from "./panels/ab.js";
import { disableAudit, mountAudit, mountPrivacy } from "./panels/privacy.js";
import { disableSimulator, mountSimulator } from "./panels/simulator.js";

// The anti-flicker class set by the inline script in index.html.
const reveal = () => document.documentElement.classList.remove("insitu-pending");

// ?seed=N makes a run reproducible from the address bar; the default is fixed
// so the demo (and its end-to-end test) behaves the same on every load.
function seedFromUrl() {
  const n = Number(new URLSearchParams(window.location.search).get("seed"));
  return Number.isSafeInteger(n) && n > 0 ? n : 42;
}

async function main() {
  const simulator = document.querySelector('[data-panel="simulator"]');
  mountPrivacy(document.querySelector('[data-panel="privacy"]'), { features: FEATURES });

  const site = await load({
    ...storeOptions(),
    onFallback: (err) => console.warn("insitu: the learner could not load; showing default content.", err),
  });
  if (site.fallback !== null) {
    showUnavailable(defs, "fallback: learner unavailable");
    disableSimulator(simulator, "The learner could not load in this browser, so the page shows its default content.");
    disableAudit(document.querySelector('[data-panel="audit"]'), "insitu could not load in this browser.");
    disableAb(document.querySelector('[data-panel="ab"]'), "insitu could not load in this browser.");
    reveal();
    return;
  }

  const app = new App(site, defs, { seed: seedFromUrl() });
  app.site.track({ type: "view", category: "home" });
  app.decideForVisitor();
  app.runExperiments();
  reveal();
  mountSimulator(simulator, app);
  mountAudit(document.querySelector('[data-panel="audit"]'), app);
  mountAb(document.querySelector('[data-panel="ab"]'), app);
  // One audit a second, shared by both panels (it reads every stored key).
  app.refresh();
  setInterval(() => app.refresh(), 1000);
  // Handy in the console: window.insituDemo.slots.get("hero").engine.stats()
  window.insituDemo = app;
}

main().catch((err) => {
  console.error("insitu demo:", err);
  reveal();
});
