// The A/B panel: the experiments this page runs, this visitor's assignment
// in each (with the reason when not in it), where the unit id comes from,
// and the exposure log. Assignments are computed on this device by
// `site.run()`; exposures are logged here and go nowhere unless a site
// passes them on from `onExposure`.

import { el } from "../dom.js";
import { EXPERIMENT_COPY, EXPERIMENTS } from "../experiments.js";

const REASONS = {
  assigned: "in the test",
  "no-unit": "not stored under consent None: no visitor id, so the default",
  targeting: "not targeted: the default",
  namespace: "outside this test's namespace: the default",
  holdout: "in the holdout: the default",
  coverage: "outside the test's coverage: the default",
  unavailable: "WebAssembly unavailable: the default",
};

const UNITS = {
  device: "a random id drawn on this device (128 bits), kept in insitu.ab",
  site: "the site's own visitor id",
  none: "none yet: drawn on the next page view that runs a test",
};

/** Mount the A/B panel at `root` (data-panel="ab") for `app`. */
export function mountAb(root, app) {
  const $ = (role) => root.querySelector(`[data-role="${role}"]`);
  let last = "";
  function render() {
    const a = app.audit.experiments;
    const key = JSON.stringify([a, [...app.assignments]]);
    if (key === last) return;
    last = key;
    $("unit").textContent = UNITS[a.unit];
    $("unit").dataset.unit = a.unit;
    $("tests").replaceChildren(
      ...EXPERIMENTS.map((config) => {
        const r = app.assignments.get(config.key);
        const copy = EXPERIMENT_COPY[config.key];
        const weights = config.weights ?? config.variants.map(() => 1 / config.variants.length);
        return el("tr", { "data-testid": `ab-${config.key}`, "data-variant": r?.variant ?? "", "data-reason": r?.reason ?? "" }, [
          el("td", {}, [el("code", {}, config.key), el("div", { class: "muted" }, copy.label)]),
          el("td", {}, config.variants.map((v, i) =>
            el("span", { class: "split" }, [el("span", { class: `swatch v${i}` }), `${v} ${Math.round(weights[i] * 100)}%`]),
          )),
          el("td", {}, el("code", {}, config.hash ?? "insitu/1")),
          el("td", {}, r === undefined ? "–" : [
            el("strong", {}, r.variant),
            el("div", { class: "muted" }, r.inExperiment ? `in the test, p = ${r.probability.toFixed(2)}` : REASONS[r.reason]),
          ]),
        ]);
      }),
    );
    const log = a.exposures.slice(-6).reverse();
    $("exposures").dataset.count = String(a.exposures.length);
    $("exposures").replaceChildren(
      ...(log.length > 0
        ? log.map((x) => el("li", {}, [
            el("span", { class: "muted" }, new Date(x.at).toLocaleTimeString()),
            " ", el("code", {}, x.experiment), " → ", el("strong", {}, x.variant),
          ]))
        : [el("li", { class: "muted" }, "No exposures logged on this device.")]),
    );
  }
  app.addEventListener("audit", render);
}

/** The panel when insitu could not load. */
export function disableAb(root, reason) {
  root.querySelector('[data-role="tests"]').replaceChildren(
    el("tr", {}, el("td", { colspan: "4", class: "muted" }, `${reason} Every test shows its default.`)),
  );
}
