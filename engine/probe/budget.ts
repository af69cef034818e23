// What a probe's BPF programs may cost: a probe declares it (types.ts), the overhead guard
// (overhead.ts) stops the probe past it. Apart from both, so neither imports the other.
export interface OverheadBudget {
  /** Share of one CPU the probe's programs may use (0.05 = 5%). */
  cpu: number;
  /** Program runs (events) per second the probe may handle. */
  eventsPerSec: number;
}
