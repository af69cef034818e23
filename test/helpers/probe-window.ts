// Helpers for tests that send traffic inside a probe's measurement window: the probe's own
// sleep (after its first reading) starts the traffic, so every packet lies inside the window
// however slow the machine is.
import { runProbe, type RunProbeOptions } from '../../engine/probe/runtime.js';
import type { Finding, ProbeDefinition, ProbeIO, ProbeRequest } from '../../engine/probe/types.js';
import type { LabTopology } from '../lab/topology.js';
import type { GuestNetStats } from '../lab/vm.js';
import { megaflowFlushes } from '../lab/ovs.js';

/**
 * A budget the overhead guard never stops a probe on, for tests whose subject is an exact count
 * over the whole window: programs that run for every packet of the host before they filter can
 * go over their own budget on a busy CI host, and the guard would end the window early. The
 * guard's own tests cover the guard.
 */
export const COUNTING_BUDGET = { cpu: 1, eventsPerSec: 1e9 };

/** `io` with its sleeps replaced by `sleep` (which may call the original's). */
function withSleep(io: ProbeIO, sleep: ProbeIO['sleep']): ProbeIO {
  return {
    exec: (n, a, o) => io.exec(n, a, o),
    readFile: (n, p, o) => io.readFile(n, p, o),
    readFiles: (n, p) => io.readFiles(n, p),
    readDir: (n, p, o) => io.readDir(n, p, o),
    capture: (n, s) => io.capture(n, s),
    sleep,
    get signal() {
      return io.signal;
    },
    get budget() {
      return io.budget;
    },
  };
}

/** `io` whose first sleep (a probe's window, after its first reading) awaits `first()` before sleeping its full time. */
export function beforeFirstSleep(io: ProbeIO, first: () => Promise<void>): ProbeIO {
  let done = false;
  return withSleep(io, async (ms, o) => {
    if (!done) {
      done = true;
      await first();
    }
    await io.sleep(ms, o);
  });
}

/** `def` whose collect runs `traffic` when it first waits (after its first reading), then waits its full duration. */
export function withTrafficInWindow<D extends Record<string, unknown>>(def: ProbeDefinition<D>, traffic: () => Promise<void>): ProbeDefinition<D> {
  return { ...def, collect: (params, io) => def.collect(params, beforeFirstSleep(io, traffic)) };
}

/**
 * `def` whose collect calls `mark('start')` as its first sleep (its window, once attached)
 * begins and `mark('end')` as it ends: an independent count read there covers less than the
 * probe's window, one read around runProbe more (a slow machine takes seconds to attach).
 */
export function aroundFirstSleep<D extends Record<string, unknown>>(def: ProbeDefinition<D>, mark: (when: 'start' | 'end') => void): ProbeDefinition<D> {
  return {
    ...def,
    collect: (params, io) => {
      let first = true;
      return def.collect(
        params,
        withSleep(io, async (ms, o) => {
          const marking = first;
          first = false;
          if (marking) mark('start');
          try {
            await io.sleep(ms, o);
          } finally {
            if (marking) mark('end');
          }
        }),
      );
    },
  };
}

/**
 * `def` whose collect starts `traffic` as its sleep number `n` (from 0) begins, without waiting
 * for it: traffic for a later window of a probe that sleeps once per window (drops.monitor),
 * however long its start took. `sent` settles with the traffic.
 */
export function trafficAtSleep<D extends Record<string, unknown>, T>(def: ProbeDefinition<D>, n: number, traffic: () => Promise<T>): { def: ProbeDefinition<D>; sent: Promise<T> } {
  let start!: () => void;
  const sent = new Promise<void>((resolve) => (start = resolve)).then(traffic);
  return {
    def: {
      ...def,
      collect: (params, io) => {
        let sleeps = 0;
        return def.collect(
          params,
          withSleep(io, (ms, o) => {
            if (sleeps++ === n) start();
            return io.sleep(ms, o);
          }),
        );
      },
    },
    sent,
  };
}

/**
 * Runs `def` with `traffic` inside its window: the traffic starts once the probe first sleeps
 * (after its first sample), and the probe's sleeps end no sooner than the traffic does.
 */
export async function runWindowOverTraffic(def: ProbeDefinition, request: ProbeRequest, opts: RunProbeOptions, traffic: () => Promise<void>): Promise<Finding> {
  let started!: () => void;
  const first = new Promise<void>((resolve) => (started = resolve));
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const gated: ProbeDefinition = {
    ...def,
    collect: (params, io) =>
      def.collect(
        params,
        withSleep(io, async (ms, o) => {
          started();
          await io.sleep(ms, o);
          await gate;
        }),
      ),
  };
  const probe = runProbe(gated, request, opts);
  // A probe that fails before its first sample never opens the window.
  await Promise.race([first, probe]);
  try {
    await traffic();
  } finally {
    open();
  }
  return probe;
}

/**
 * Runs `attempt` until no megaflow flush (another lab deleting its bridge) overlaps it, at most
 * three times; the last attempt is returned either way.
 */
export async function undisturbed<T>(t: { diagnostic(msg: string): void }, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    const before = await megaflowFlushes();
    const result = await attempt();
    await new Promise((resolve) => setTimeout(resolve, 1200)); // OVS folds its counters in once a second
    const flushed = (await megaflowFlushes()) - before;
    if (flushed === 0 || i === 3) return result;
    t.diagnostic(`attempt ${i}: the datapath's megaflows were flushed ${flushed} time(s) meanwhile (another lab deleted a bridge): again`);
  }
}

export function udpIn(s: GuestNetStats): number {
  return s.snmp.Udp?.InDatagrams ?? Number.NaN;
}

/** The guest's counters once `done` holds (TCG is slow), or after 5 s. */
export async function guestStats(lab: LabTopology, done: (s: GuestNetStats) => boolean): Promise<GuestNetStats> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = await lab.vm.netStats();
    if (done(s) || Date.now() > deadline) return s;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
