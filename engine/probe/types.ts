// The probe contract of DESIGN.md: what a probe declares, what it observes, what it returns.
import type { TSchema } from '#typebox';
import type { KernelFeature } from '../host/features.js';
import type { OverheadBudget } from './budget.js';

export type ParamType = 'string' | 'integer' | 'number' | 'boolean' | 'duration' | 'ip' | 'string[]';
export type ParamValue = string | number | boolean | string[];
export type Params = Record<string, ParamValue>;

export interface ParamSpec {
  type: ParamType;
  description: string;
  default?: ParamValue;
  required?: boolean;
  /** Allowed values for `string` params. */
  enum?: string[];
  /** Which of the seed's common CLI options feeds this param (`-i`, `-d`, `--dev`...). */
  cliOption?: CommonOption;
  /** Inclusive bounds for `integer`, `number` and `duration` (in ms) params. */
  min?: number;
  max?: number;
}

/** The common options every seed tool accepted, mapped onto params of the same meaning. */
export type CommonOption = 'interval' | 'duration' | 'count' | 'src-ip' | 'dst-ip' | 'pid' | 'dev' | 'verbose';

export type Requirement =
  | { kind: 'root' }
  | { kind: 'binary'; name: string; package?: string }
  | { kind: 'kernel'; feature: KernelFeature }
  | { kind: 'tracepoint'; name: string }
  /** `documented`: the requirement as the probe's README states it, when `path`/`why` are read from this machine's state. */
  | { kind: 'path'; path: string; why: string; documented?: string };

export type Overhead = 'none' | 'low' | 'medium' | 'high';
export type Severity = 'info' | 'warning' | 'critical';
export type DriverName = 'command' | 'native' | 'bpftrace';

/** One observation a probe made: a command it ran or a file/directory it read. */
export interface RawRecord {
  seq: number;
  op: 'exec' | 'read' | 'readdir' | 'readfiles' | 'capture';
  /** Short label chosen by the probe ("sample-0", "tc-qdisc"): names the evidence file. */
  name: string;
  argv?: string[];
  path?: string;
  /** The files a `readfiles` observation read; its stdout is their FileReading[] as JSON. */
  paths?: string[];
  /** Wall clock at the start of the observation, ms since the epoch. Parsers use it for rates. */
  at: number;
  durationMs: number;
  stdout: string;
  stderr: string;
  /**
   * A command's exit status (128 + signal number when killed, 127 when it could not start);
   * for a read, 0 or the errno of the failure (ENOENT = 2, EINVAL = 22...).
   */
  exitCode: number;
  /** Set when the observation failed: the one-line message the IO threw (or would have, given allowFailure). */
  error?: string;
  /** Bundle-relative file holding stdout (filled in when the record is written to a bundle). */
  file?: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** A non-zero exit is returned rather than thrown. */
  allowFailure?: boolean;
}

export interface ReadOptions {
  /** A failed read (file gone, EINVAL...) is returned as a record with `error` set rather than thrown. */
  allowFailure?: boolean;
}

/**
 * Everything a probe observes goes through this interface, so that a live run
 * records it and a replay answers it from the recording. A replay answers calls
 * in the order they are made: calls made concurrently must be started in an
 * order that does not depend on timing (start them all, then await them together).
 */
export interface ProbeIO {
  exec(name: string, argv: string[], opts?: ExecOptions): Promise<RawRecord>;
  readFile(name: string, path: string, opts?: ReadOptions): Promise<RawRecord>;
  /**
   * Reads many small files (sysfs, procfs) as one observation, so that a sample of
   * hundreds of counters is one evidence file. A file that fails is noted in its entry,
   * never thrown: read the result with `fileReadings(record)`.
   */
  readFiles(name: string, paths: string[]): Promise<RawRecord>;
  /** Lists a directory; the record's stdout holds one entry per line, sorted. */
  readDir(name: string, path: string, opts?: ReadOptions): Promise<RawRecord>;
  /**
   * Runs a session the IO cannot observe call by call (the native driver: load BPF, attach,
   * wait, dump maps) and records the text it returns (op `capture`). A replay returns the
   * recorded text and never runs `session`, so no BPF is loaded. The session should stop
   * when `signal` aborts; a session that throws is recorded as a failed capture.
   */
  capture(name: string, session: (signal: AbortSignal) => Promise<string>): Promise<RawRecord>;
  /**
   * Waits, or returns at once in a replay. Rejects when the probe is aborted; returns early
   * (resolves) when `until` aborts.
   */
  sleep(ms: number, opts?: { until?: AbortSignal }): Promise<void>;
  readonly signal: AbortSignal;
  /**
   * The overhead budget in force (the probe's declared one with the user's `--budget` on top):
   * BPF sessions stop early past it. Null for probes without BPF and in a replay.
   */
  readonly budget: OverheadBudget | null;
}

/** One file of a `readfiles` observation. */
export interface FileReading {
  path: string;
  /** The content, when the read worked. */
  text?: string;
  /** errno of a failed read (ENOENT = 2). */
  errno?: number;
  error?: string;
}

export interface BarChart { kind: 'bar'; title: string; unit?: string; bars: Array<{ label: string; value: number }> }
export interface TimeSeriesChart {
  kind: 'timeseries';
  title: string;
  unit?: string;
  /** Each point is [ms since the epoch, value]. */
  series: Array<{ name: string; points: Array<[number, number]> }>;
}
export interface HistogramChart {
  kind: 'histogram';
  title: string;
  unit?: string;
  buckets: Array<{ low: number; high: number; count: number }>;
  percentiles?: Record<string, number>;
}
/**
 * A per-layer breakdown: for each row (a direction, a flow, a VM), the time each layer of the
 * path took, drawn as stacked horizontal bars. Values add up, so they are means, not percentiles.
 */
export interface LayersChart {
  kind: 'layers';
  title: string;
  unit?: string;
  /** The layers in path order: `["bridge", "qdisc", "tun ring"]`. */
  layers: string[];
  /** One bar per row; `values[i]` is the time spent in `layers[i]`. */
  rows: Array<{ label: string; values: number[] }>;
}
export type ChartSpec = BarChart | TimeSeriesChart | HistogramChart | LayersChart;

export interface TableSpec {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

export type FindingData = Record<string, unknown>;

/** What a probe's parser returns. */
export interface ProbeResult<D extends FindingData = FindingData> {
  data: D;
  summary: string;
  severity: Severity;
  charts?: ChartSpec[];
  tables?: TableSpec[];
}

/**
 * A probe's memory as its README states it: the maps of the BPF objects of its folder, at the
 * sizes they declare, are found by the README writer; this adds what those cannot show.
 */
export interface ProbeMemory {
  /** Shipped objects of other folders it loads (a composite's drops.kernel session). */
  objects?: string[];
  /** Maps it sizes at run time: the most entries it gives them (`threads: 8192`), or so many per possible CPU. */
  resized?: Record<string, number | { perCpu: number }>;
  /** Markdown: what user space holds beyond one copy of each map read, and its bound. */
  user?: string;
}

export interface ProbeDefinition<D extends FindingData = FindingData> {
  id: string;
  title: string;
  /** Markdown: what it measures and when to use it. */
  description: string;
  /** Markdown: what a healthy host shows. */
  normal: string;
  /** Seed tools this probe replaces (PROBES.md). */
  replaces?: string[];
  params: Record<string, ParamSpec>;
  requirements: Requirement[];
  overhead: Overhead;
  /**
   * What the probe's BPF programs may cost (required for the native and bpftrace drivers):
   * the overhead guard stops the probe early past it.
   */
  budget?: OverheadBudget;
  /** What its README states of its memory beyond its own folder's BPF objects (ProbeMemory). */
  memory?: ProbeMemory;
  driver: DriverName;
  /**
   * The fields of its findings' `data` (probes/<id>/data.ts, TypeBox): names, types, units and
   * descriptions. Parser output is checked against it, `runbooks validate` checks the field
   * paths runbooks read against it, `probes show` and the report print it.
   */
  data: TSchema;
  /** Gathers raw evidence through `io` only. */
  collect(params: Params, io: ProbeIO): Promise<void>;
  /** Turns the recorded evidence into a finding. Pure: the same records give the same result. */
  parse(records: RawRecord[], params: Params): ProbeResult;
}

export type FindingStatus = 'ok' | 'skipped' | 'error' | 'timeout' | 'interrupted';

/** A probe's result as kept in the run bundle and seen by runbook conditions. */
export interface Finding<D extends FindingData = FindingData> {
  probe: string;
  /** Name the runbook uses for it (`findings.<alias>`). */
  alias: string;
  step: string;
  /** Which visit of the step produced it (a step can run more than once). */
  visit?: number;
  status: FindingStatus;
  summary: string;
  severity: Severity;
  /** Why it was skipped or failed. */
  reason?: string;
  /** What the engine noticed about the finding itself: its data does not match the probe's declaration. */
  notes?: string[];
  data: D;
  params: Params;
  charts: ChartSpec[];
  tables: TableSpec[];
  /** Bundle-relative paths of the raw evidence. */
  raw: string[];
  /** Bundle-relative folder holding this probe's evidence (what a replay reads). */
  evidence?: string;
  driver: DriverName | 'replay';
  startedAt: string;
  endedAt: string;
  durationMs: number;
}

export interface ProbeRequest {
  step: string;
  alias: string;
  probe: string;
  params: Params;
}

/** Looks probes up by id: what the loader validates against and the runner runs. */
export interface ProbeCatalog {
  get(id: string): ProbeDefinition | undefined;
  ids(): string[];
}
