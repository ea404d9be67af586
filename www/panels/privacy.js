// The privacy panel. For now it states what the learners may see, read from
// the live configuration; the audit (live audit(), consent switch, GPC
// indicator, Forget button) joins it with the store work.

/** Mount the panel found at `root` (the element with data-panel="privacy"). */
export function mountPrivacy(root, { features }) {
  const list = root.querySelector('[data-role="allowlist"]');
  list.replaceChildren(
    ...features.allow.map((ns) => {
      const li = document.createElement("li");
      li.textContent = ns;
      return li;
    }),
  );
}
