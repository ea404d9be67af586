// The privacy panels: what the learners may see (read from the live
// configuration), and the live audit: what is stored on this device and for
// how long, the consent tier and where it came from, the Global Privacy
// Control signal, and a Forget button. Everything shown comes from
// `site.audit()`, the same manifest a privacy reviewer gets in the console.

import { el } from "../dom.js";
import { demoClock, received } from "../app.js";

/** Mount the allowlist panel found at `root` (data-panel="privacy"). */
export function mountPrivacy(root, { features }) {
  const list = root.querySelector('[data-role="allowlist"]');
  list.replaceChildren(...features.allow.map((ns) => el("li", {}, ns)));
}

const TIERS = [
  ["none", "None", "nothing is stored; learning lasts for this page view"],
  ["functional", "Functional", "only the A/B test id, its exposure log and the storage event history are kept"],
  ["personalization", "Personalization", "learning and your on-site activity are kept on this device"],
];

const HOLDS = {
  snapshot: "learning and activity",
  "audit-history": "storage event history",
  experiments: "A/B test id and exposure log",
  quarantine: "unreadable data set aside",
};

/** Mount the live audit panel at `root` (data-panel="audit") for `app`. */
export function mountAudit(root, app) {
  const $ = (role) => root.querySelector(`[data-role="${role}"]`);
  const consentForm = $("consent");
  consentForm.replaceChildren(
    ...TIERS.map(([tier, label, what]) =>
      el("label", { class: "tier" }, [
        el("input", { type: "radio", name: "consent", value: tier, "data-testid": `consent-${tier}` }),
        el("span", {}, [el("strong", {}, label), el("span", { class: "muted" }, what)]),
      ]),
    ),
  );
  consentForm.addEventListener("change", (e) => {
    const state = app.setConsent(e.target.value);
    app.toast(state.source === "gpc"
      ? "Your browser sends Global Privacy Control, so learning stays in memory (functional at most)."
      : `Consent set to ${state.tier}.`);
  });
  $("close-period").addEventListener("click", async () => {
    const before = received.length;
    // Store today's sums, then write again a day later: that write closes the day.
    await app.site.flush();
    demoClock.days += 1;
    await app.site.flush();
    app.refresh();
    const got = received.slice(before);
    app.toast(got.length === 0
      ? "No report: nothing was counted today, or consent is not Personalize."
      : `${got.length} report${got.length === 1 ? "" : "s"} handed to the site (${got.map((r) => `${r.key}: ${r.measurement.length} numbers`).join(", ")}). The demo keeps them; nothing was sent.`);
  });
  $("forget").addEventListener("click", () => {
    app.reset(); // re-renders through the "audit" event below
    app.toast("Forgotten: everything insitu stored on this device is erased, in every tab.");
  });

  let last = "";
  function render() {
    const a = app.audit;
    // Re-render only when something changed (the audit is refreshed every second).
    const key = JSON.stringify({ ...a, generatedAt: 0 });
    if (key === last) return;
    last = key;

    for (const input of consentForm.querySelectorAll("input")) input.checked = input.value === a.consent.tier;
    $("consent-source").textContent = {
      default: `the site's default (${a.consent.default})`,
      site: "your choice",
      gpc: "capped by Global Privacy Control",
    }[a.consent.source];
    const gpc = $("gpc");
    gpc.textContent = a.consent.gpc ? "on: honoured" : "off";
    gpc.dataset.on = String(a.consent.gpc);

    const rows = a.storage.keys.map((k) =>
      el("tr", {}, [
        el("td", {}, el("code", {}, k.key)),
        el("td", {}, HOLDS[k.holds] ?? k.holds),
        el("td", { class: "num" }, bytes(k.bytes)),
        el("td", {}, k.expiresAt === null ? "–" : new Date(k.expiresAt).toLocaleDateString()),
      ]),
    );
    $("keys").replaceChildren(
      ...(rows.length > 0
        ? rows
        : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "Nothing is stored on this device."))]),
    );
    $("keys").dataset.count = String(rows.length);
    $("storage-status").textContent = `${a.storage.backend}, ${a.storage.status}`;

    const byType = Object.entries(a.events.byType);
    $("events").textContent = byType.length === 0
      ? "none"
      : byType.map(([t, n]) => `${n} ${t}${n === 1 ? "" : "s"}`).join(" · ");
    const r = a.retention;
    $("retention").textContent = `${r.maxAgeDays} days, at most ${r.maxEvents} events (${bytes(r.maxBytes)})`;
    $("models").replaceChildren(
      ...a.models.map((m) =>
        el("li", {}, [
          el("strong", {}, m.slot),
          ` ${m.updates} update${m.updates === 1 ? "" : "s"} · ${m.policy} · `,
          el("code", {}, m.modelVersion),
        ]),
      ),
    );
    $("network").textContent = a.network;
    $("reports").replaceChildren(
      ...(a.reports.length > 0
        ? a.reports.map((r) => {
            const last = r.ledger.at(-1);
            return el("li", {}, [
              el("strong", {}, r.key),
              ` ${r.owner}, task `,
              el("code", {}, r.task),
              last === undefined
                ? " · no period closed yet"
                : ` · ${r.ledger.length} closed (last ${last.period}: ${last.outcome}${last.clipped.length ? `, clipped ${last.clipped.join(", ")}` : ""})`,
              r.last === null ? "" : ` · last payload ${r.last.measurement.length} numbers`,
            ]);
          })
        : [el("li", { class: "muted" }, "none: reports are made with consent Personalize only")]),
    );
    const recent = a.history.slice(-5).reverse();
    $("history").replaceChildren(
      ...(recent.length > 0
        ? recent.map((h) =>
            el("li", {}, [
              el("span", { class: "muted" }, new Date(h.at).toLocaleTimeString()),
              ` ${h.event}${h.code ? ` (${h.code})` : ""}${h.detail ? `: ${h.detail}` : ""}`,
            ]),
          )
        : [el("li", { class: "muted" }, "no storage events yet")]),
    );
    $("raw").textContent = JSON.stringify(a, null, 2);
  }

  app.addEventListener("audit", render);
}

/** The audit panel when insitu could not load: say so; nothing is stored. */
export function disableAudit(root, reason) {
  root.querySelectorAll("button, input").forEach((e) => (e.disabled = true));
  root.querySelector('[data-role="keys"]').replaceChildren(
    el("tr", {}, el("td", { colspan: "4", class: "muted" }, `${reason} Nothing is stored.`)),
  );
}

function bytes(n) {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`;
}
