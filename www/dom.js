// The one DOM helper the panels share.

/** A DOM element with attributes and children (strings become text). */
export function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...[children].flat());
  return e;
}
