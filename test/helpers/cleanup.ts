// Teardown outside node:test (the fixture recorder, benchmarks): a TeardownHost whose steps
// run in reverse order when asked; a failing step is reported and the others still run.
import type { TeardownHost } from './netns.js';

export class Cleanup implements TeardownHost {
  private readonly steps: Array<() => unknown> = [];
  after(fn: () => unknown): void {
    this.steps.push(fn);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        console.error(`  cleanup: ${(err as Error).message}`);
      }
    }
  }
}
