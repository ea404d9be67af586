// Per-slot running metrics for the charts: a moving window of rewards and
// choices, sampled into at most `maxPoints` points (halving the resolution
// when full, so memory stays flat however long the simulation runs).

export class SlotMetrics {
  constructor(variantCount, { window = 250, maxPoints = 240, stride = 5 } = {}) {
    this.k = variantCount;
    this.window = window;
    this.maxPoints = maxPoints;
    this.initialStride = stride;
    this.clear();
  }

  clear() {
    this.count = 0;
    this.totalReward = 0;
    this.rewards = new Uint8Array(this.window);
    this.choices = new Uint8Array(this.window);
    this.windowReward = 0;
    this.windowCounts = new Array(this.k).fill(0);
    this.stride = this.initialStride;
    /** @type {{ x: number, rate: number, uniform: number, best: number, shares: number[] }[]} */
    this.points = [];
  }

  /** Record one settled decision: the chosen index and its 0/1 reward. */
  record(index, reward, uniform, best) {
    const slot = this.count % this.window;
    if (this.count >= this.window) {
      this.windowReward -= this.rewards[slot];
      this.windowCounts[this.choices[slot]] -= 1;
    }
    this.rewards[slot] = reward;
    this.choices[slot] = index;
    this.windowReward += reward;
    this.windowCounts[index] += 1;
    this.totalReward += reward;
    this.count += 1;

    if (this.count % this.stride === 0) {
      const n = Math.min(this.count, this.window);
      this.points.push({
        x: this.count,
        rate: this.windowReward / n,
        uniform,
        best,
        shares: this.windowCounts.map((c) => c / n),
      });
      if (this.points.length > this.maxPoints) {
        // Keep the points on multiples of the doubled stride.
        this.points = this.points.filter((p) => p.x % (this.stride * 2) === 0);
        this.stride *= 2;
      }
    }
  }

  /** Click rate over the moving window. */
  get rate() {
    const n = Math.min(this.count, this.window);
    return n ? this.windowReward / n : 0;
  }
}
