// Two small SVG charts, no library: a learning curve (moving-average click
// rate against the uniform-random and best-possible rates) and the allocation
// over time (each variant's share of a moving window, stacked).

const W = 360;
const H = 150;
const M = { left: 34, right: 8, top: 8, bottom: 20 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

const fmtCount = (n) => (n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n));
const fmtPct = (x) => `${Math.round(x * 100)}%`;
const r1 = (x) => Math.round(x * 10) / 10;

function frame(xMax, yMax, yTicks) {
  const sy = (v) => M.top + PH - (v / yMax) * PH;
  let out = "";
  for (const t of yTicks) {
    const y = r1(sy(t));
    out += `<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}"/>`;
    out += `<text class="axis-label" x="${M.left - 6}" y="${y + 3}" text-anchor="end">${fmtPct(t)}</text>`;
  }
  const yb = H - 5;
  out += `<text class="axis-label" x="${M.left}" y="${yb}">0</text>`;
  out += `<text class="axis-label" x="${W - M.right}" y="${yb}" text-anchor="end">${fmtCount(xMax)} visits</text>`;
  return out;
}

function scales(xMax, yMax) {
  return {
    sx: (v) => r1(M.left + (v / xMax) * PW),
    sy: (v) => r1(M.top + PH - (Math.min(v, yMax) / yMax) * PH),
  };
}

function polyline(points, sx, sy, pick) {
  return points.map((p, i) => `${i ? "L" : "M"}${sx(p.x)} ${sy(pick(p))}`).join("");
}

/**
 * Learning curve. `points` from SlotMetrics; `events` are visit counts where
 * the hidden preferences changed, drawn as vertical markers.
 */
export function drawLearningCurve(svg, { points, xMax, events = [] }) {
  const top = Math.max(0.2, ...points.map((p) => Math.max(p.best, p.rate)));
  // Round up to a multiple of 0.2 so the middle tick is a round number too.
  const yMax = Math.min(1, Math.ceil((top + 0.05) * 5) / 5);
  const ticks = [0, yMax / 2, yMax];
  const { sx, sy } = scales(xMax, yMax);
  let out = frame(xMax, yMax, ticks);
  if (points.length < 2) {
    out += `<text class="empty" x="${M.left + PW / 2}" y="${M.top + PH / 2}" text-anchor="middle">Press Start to simulate visitors</text>`;
  } else {
    for (const x of events) {
      if (x > 0 && x <= xMax) out += `<line class="event" x1="${sx(x)}" x2="${sx(x)}" y1="${M.top}" y2="${M.top + PH}"/>`;
    }
    out += `<path class="line best" d="${polyline(points, sx, sy, (p) => p.best)}"/>`;
    out += `<path class="line baseline" d="${polyline(points, sx, sy, (p) => p.uniform)}"/>`;
    out += `<path class="line model" d="${polyline(points, sx, sy, (p) => p.rate)}"/>`;
  }
  svg.innerHTML = out;
}

/** Allocation over time: stacked shares of each variant, colour i = class v{i}. */
export function drawAllocation(svg, { points, xMax, variantCount, events = [] }) {
  const { sx, sy } = scales(xMax, 1);
  let out = frame(xMax, 1, [0, 0.5, 1]);
  if (points.length < 2) {
    out += `<text class="empty" x="${M.left + PW / 2}" y="${M.top + PH / 2}" text-anchor="middle">No visits yet</text>`;
    svg.innerHTML = out;
    return;
  }
  const below = points.map(() => 0);
  for (let j = 0; j < variantCount; j++) {
    const above = points.map((p, i) => below[i] + p.shares[j]);
    const upper = points.map((p, i) => `${i ? "L" : "M"}${sx(p.x)} ${sy(above[i])}`).join("");
    let lower = "";
    for (let i = points.length - 1; i >= 0; i--) lower += `L${sx(points[i].x)} ${sy(below[i])}`;
    out += `<path class="area v${j}" d="${upper}${lower}Z"/>`;
    above.forEach((v, i) => (below[i] = v));
  }
  for (const x of events) {
    if (x > 0 && x <= xMax) out += `<line class="event" x1="${sx(x)}" x2="${sx(x)}" y1="${M.top}" y2="${M.top + PH}" style="stroke:#fff"/>`;
  }
  svg.innerHTML = out;
}
