// cpu.runqlat's finding data: how long threads waited for a CPU, per thread and per class of
// thread (vCPU, vhost, other), with how the classes were identified.
import Type, { type Static } from '#typebox';
import { events } from '../lib/data/fields.js';
import { usBucketList } from '../lib/data/histogram.js';
import { LOADED_FIELDS, OVERHEAD, STOPPED } from '../lib/data/session.js';

const CLASS = Type.Union([Type.Literal('vcpu'), Type.Literal('vhost'), Type.Literal('other')], { description: 'The class of thread: vcpu, vhost or other.' });

const BUCKETS = usBucketList(events('Waits in the bucket.'), 'The log2 histogram of the waits (buckets with waits only).');

/** Percentiles at log2 bucket resolution: the upper bound of the bucket holding it, capped at the exact maximum. */
const percentile = (p: number) => Type.Number({ unit: 'µs', description: `P${p} of the waits (log2 bucket resolution: never below the true value, at most twice it).` });

const waits = {
  count: Type.Integer({ unit: 'events', description: 'Waits timed (woken or preempted → switched in), and those still running at the end.' }),
  p50Us: percentile(50),
  p95Us: percentile(95),
  p99Us: percentile(99),
  maxUs: Type.Number({ unit: 'µs', description: 'The longest wait (exact).' }),
};
const totalWaitMs = Type.Number({ unit: 'ms', description: 'Time spent waiting for a CPU, summed.' });

const counts = {
  overThreshold: Type.Integer({ unit: 'events', description: 'Waits of at least `threshold_us` (exact).' }),
  involuntary: Type.Integer({ unit: 'events', description: 'Switched out while still runnable (preempted).' }),
  voluntary: Type.Integer({ unit: 'events', description: 'Switched out to sleep or block.' }),
};

const THREAD_CLASS = Type.Object(
  {
    label: Type.String({ description: '`vCPU threads`, `vhost threads`, `other QEMU threads`, `other threads`.' }),
    threads: Type.Integer({ description: 'Threads of the class.' }),
    ...waits,
    totalWaitMs,
    waitShare: Type.Number({ unit: 'share', description: "Mean over the class's threads of their share of the window spent runnable but not running." }),
    maxWaitShare: Type.Number({ unit: 'share', description: 'The highest share of one thread of the class.' }),
    ...counts,
    worst: Type.Union(
      [Type.Object({ tid: Type.Integer({ description: 'Its thread id.' }), comm: Type.String({ description: 'Its name.' }) }, { additionalProperties: false }), Type.Null()],
      { description: 'The thread with the highest p99 (then max); null when none waited.' },
    ),
    waitingAtEnd: Type.Integer({ description: 'Threads of the class still waiting for a CPU when the window closed.' }),
    buckets: BUCKETS,
  },
  { additionalProperties: false },
);

const THREAD = Type.Object(
  {
    tid: Type.Integer({ description: 'Its thread id.' }),
    comm: Type.String({ description: 'Its name.' }),
    class: CLASS,
    count: waits.count,
    waitingAtEndUs: Type.Number({ unit: 'µs', description: 'The wait still running when the window closed, so far (0: none); in the counts and percentiles.' }),
    p50Us: waits.p50Us,
    p95Us: waits.p95Us,
    p99Us: waits.p99Us,
    maxUs: waits.maxUs,
    totalWaitMs,
    waitShare: Type.Number({ unit: 'share', description: 'Share of the window the thread spent runnable but not running, 0..1.' }),
    ...counts,
    buckets: BUCKETS,
  },
  { additionalProperties: false },
);

const IDENTIFICATION = (who: string) =>
  Type.Union([Type.Literal('tids'), Type.Literal('names'), Type.Literal('none')], {
    description: `How the ${who} class was filled: by id (\`tids\`), by thread names (\`names\`), or not at all (\`none\`: nothing identified its threads).`,
  });

export const DATA = Type.Object(
  {
    target: Type.Object(
      {
        pid: Type.Union([Type.Integer(), Type.Null()], { description: 'The process measured; null when threads were chosen otherwise.' }),
        process: Type.Union([Type.String(), Type.Null()], { description: "The process's name." }),
        comm: Type.Union([Type.String(), Type.Null()], { description: 'The `comm` regex, when threads were chosen by name.' }),
        filter: Type.Union([Type.Literal('tgid'), Type.Literal('tids'), Type.Literal('all')], { description: 'How the programs filter: a process, a list of threads, or every thread.' }),
        tids: Type.Array(Type.Integer(), { description: 'The threads chosen by id (or by `comm`), or the vhost kernel threads added to the process\'s.' }),
      },
      { additionalProperties: false, description: 'Who was measured.' },
    ),
    ...LOADED_FIELDS,
    windowMs: Type.Number({ unit: 'ms', description: 'Time the programs were attached, from attach to the read of the maps (or the early stop).' }),
    thresholdUs: Type.Number({ unit: 'µs', description: 'Waits this long or longer are counted in `overThreshold`.' }),
    overhead: Type.Optional(OVERHEAD),
    stopped: Type.Optional(STOPPED),
    count: Type.Integer({ unit: 'events', description: 'Waits of every measured thread together.' }),
    p50Us: waits.p50Us,
    p95Us: waits.p95Us,
    p99Us: waits.p99Us,
    maxUs: waits.maxUs,
    classes: Type.Object(
      {
        vcpu: Type.Object(THREAD_CLASS.properties, { additionalProperties: false, description: "The VM's vCPU threads." }),
        vhost: Type.Object(THREAD_CLASS.properties, { additionalProperties: false, description: "The VM's vhost workers." }),
        other: Type.Object(THREAD_CLASS.properties, { additionalProperties: false, description: 'Every other thread measured.' }),
      },
      { additionalProperties: false, description: 'The waits of each class of thread (zeros when a class has no thread).' },
    ),
    identified: Type.Object(
      { vcpu: IDENTIFICATION('vCPU'), vhost: IDENTIFICATION('vhost') },
      { additionalProperties: false, description: 'How the vCPU and vhost classes were filled.' },
    ),
    worst: Type.Union(
      [
        Type.Object(
          {
            tid: Type.Integer({ description: 'Its thread id.' }),
            comm: Type.String({ description: 'Its name.' }),
            class: CLASS,
            p99Us: waits.p99Us,
            maxUs: waits.maxUs,
            waitShare: THREAD.properties.waitShare,
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'The thread with the highest p99 among vCPU and vhost threads (among all when there are none); null when none waited.' },
    ),
    threads: Type.Array(THREAD, { description: 'Measured threads, worst p99 first (the first `top`).' }),
    threadCount: Type.Integer({ description: 'Threads measured.' }),
    lost: Type.Object(
      {
        starts: Type.Integer({ unit: 'events', description: 'Waits not timed: the start map was full.' }),
        threads: Type.Integer({ unit: 'events', description: 'Waits timed but not kept: the per-thread map was full.' }),
      },
      { additionalProperties: false, description: 'Waits lost to full maps.' },
    ),
    notes: Type.Array(Type.String(), { description: 'What limits the measurement: unidentified vCPUs, an early stop, full maps...' }),
  },
  { additionalProperties: false },
);

export type RunqlatData = Static<typeof DATA>;
export type RunqlatThread = Static<typeof THREAD>;
export type RunqlatClass = Static<typeof THREAD_CLASS>;
