// Reads `ebpfnet serve --config FILE`: YAML → schema → meaning → ServeConfig, with every
// mistake reported at its file:line:column, as runbooks are. Runbooks named by routes are
// loaded here, so a route to a broken or unknown runbook stops the server before it listens.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { createRequire } from 'node:module';
import type { Ajv as AjvType } from 'ajv';
import { parseDuration } from '../duration.js';
import type { ProbeCatalog } from '../probe/types.js';
import { CliError } from '../exit-codes.js';
import { openRunbook } from '../runbook/catalog.js';
import { RunbookError } from '../runbook/errors.js';
import { coerceInput } from '../runbook/inputs.js';
import type { InputValue, Runbook } from '../runbook/model.js';
import { readYaml, toPointer, type SourceMap } from '../yaml/positions.js';
import { formatProblem, ProblemsError, type Problem } from '../yaml/problems.js';
import { addAnnotationKeywords, placeSchemaErrors } from '../yaml/schema-errors.js';
import type { ReportFormat } from '../../reports/formats.js';
import { serveConfigSchema } from './config-schema.js';
import { parseListen, type ListenAddress } from './listen.js';

export const DEFAULT_LISTEN = '127.0.0.1:9465';
export const DEFAULT_DATA_DIR = '/var/lib/ebpfnet';

/** Where a runbook input's value comes from when an alert starts a run. */
export type InputSource = { label: string } | { annotation: string } | { value: InputValue };

export interface Route {
  name: string;
  match: Record<string, string>;
  /** Anchored, as Alertmanager's `match_re`. */
  matchRe: Record<string, RegExp>;
  runbook: Runbook;
  inputs: Record<string, InputSource>;
}

export interface ServeConfig {
  file: string;
  listen: ListenAddress;
  dataDir: string;
  /** Base of the report links in notifications and GET /runs answers; empty: the address bound. */
  publicUrl: string;
  auth: { token?: string; basic?: { username: string; password: string } };
  grafanaHmac?: { secret: string; header: string; timestampHeader?: string; maxAgeMs: number };
  maxBodyBytes: number;
  /** How many runs may wait; past it an alert gets 503 with Retry-After. */
  queueLimit: number;
  /** A fingerprint is not diagnosed again this long after its run ended. */
  cooldownMs: number;
  /** A run still going after this long is stopped (interrupted, its bundle kept). */
  runTimeoutMs: number;
  /** Ended runs and their bundles are deleted this long after they ended. */
  retentionMs: number;
  formats: ReportFormat[];
  inventory?: string;
  notify?: { url: string; headers: Record<string, string>; retries: number; timeoutMs: number };
  routes: Route[];
}

export class ServeConfigError extends ProblemsError {
  constructor(problems: Problem[]) {
    super(problems, 'invalid serve configuration');
    this.name = 'ServeConfigError';
  }
}

interface RawRoute {
  name: string;
  match?: Record<string, string>;
  match_re?: Record<string, string>;
  runbook: string;
  inputs?: Record<string, unknown>;
}

interface RawConfig {
  listen?: string;
  data_dir?: string;
  public_url?: string;
  auth?: { token?: string; token_file?: string; basic?: { username: string; password?: string; password_file?: string } };
  grafana_hmac?: { secret?: string; secret_file?: string; header?: string; timestamp_header?: string; max_age?: string };
  limits?: { max_body_bytes?: number; queue?: number };
  cooldown?: string;
  run_timeout?: string;
  retention?: string;
  formats?: ReportFormat[];
  inventory?: string;
  notify?: { url: string; headers?: Record<string, string>; retries?: number; timeout?: string };
  routes: RawRoute[];
}

let validate: ReturnType<AjvType['compile']> | undefined;

function schemaProblems(value: unknown, map: SourceMap): Problem[] {
  if (!validate) {
    // Compiled once, at start: the server reads its configuration once, so no build step is worth it.
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, allowUnionTypes: true });
    addAnnotationKeywords(ajv);
    validate = ajv.compile(serveConfigSchema);
  }
  if (validate(value)) return [];
  return placeSchemaErrors(validate.errors ?? [], map, 'a serve configuration is a mapping with auth and routes');
}

export interface LoadServeConfigOptions {
  catalog: ProbeCatalog;
  env?: NodeJS.ProcessEnv;
  /** `--listen`, which wins over the file's `listen:`. */
  listen?: string;
}

/** Reads and checks a serve configuration. Throws ServeConfigError with every problem found. */
export function loadServeConfig(file: string, opts: LoadServeConfigOptions): ServeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ServeConfigError([{ file, line: 1, column: 1, message: `cannot read the configuration: ${(err as Error).message}` }]);
  }
  const read = readYaml(text, file);
  const forConfig = (p: Problem) => ({ ...p, message: p.message.replace(/\ba runbook file\b/g, 'a configuration file') });
  if (read.problems.length) throw new ServeConfigError(read.problems.map(forConfig));
  const shape = schemaProblems(read.value, read.map);
  if (shape.length) throw new ServeConfigError(shape);
  return new ConfigChecker(file, read.value as RawConfig, read.map, opts).build();
}

/** The checks past the schema: secrets readable, runbooks loadable, inputs matching them. */
class ConfigChecker {
  private readonly problems: Problem[] = [];
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    private readonly file: string,
    private readonly raw: RawConfig,
    private readonly map: SourceMap,
    private readonly opts: LoadServeConfigOptions,
  ) {
    this.env = opts.env ?? process.env;
  }

  build(): ServeConfig {
    const raw = this.raw;
    const listen = this.listen();
    const auth = this.auth();
    const grafanaHmac = this.grafanaHmac();
    const routes = this.routes();
    if (this.problems.length) throw new ServeConfigError(this.problems);
    const ms = (value: string | undefined, fallback: number) => (value === undefined ? fallback : parseDuration(value)!);
    return {
      file: this.file,
      listen: listen!,
      dataDir: raw.data_dir ?? DEFAULT_DATA_DIR,
      publicUrl: (raw.public_url ?? '').replace(/\/+$/, ''),
      auth,
      ...(grafanaHmac ? { grafanaHmac } : {}),
      maxBodyBytes: raw.limits?.max_body_bytes ?? 1024 * 1024,
      queueLimit: raw.limits?.queue ?? 50,
      cooldownMs: ms(raw.cooldown, 30 * 60_000),
      runTimeoutMs: ms(raw.run_timeout, 15 * 60_000),
      retentionMs: ms(raw.retention, 30 * 24 * 3_600_000),
      formats: raw.formats ?? ['html', 'json'],
      ...(raw.inventory ? { inventory: raw.inventory } : {}),
      ...(raw.notify
        ? {
            notify: {
              url: raw.notify.url,
              headers: raw.notify.headers ?? {},
              retries: raw.notify.retries ?? 5,
              timeoutMs: ms(raw.notify.timeout, 10_000),
            },
          }
        : {}),
      routes,
    };
  }

  private problem(pointer: string, message: string, where: 'key' | 'value' = 'value'): void {
    this.problems.push(where === 'key' ? this.map.atKey(pointer, message) : this.map.atValue(pointer, message));
  }

  private listen(): ListenAddress | undefined {
    const text = this.opts.listen ?? this.raw.listen ?? DEFAULT_LISTEN;
    const parsed = parseListen(text);
    if (typeof parsed === 'string') {
      if (this.opts.listen !== undefined) throw new CliError(`--listen ${text}: ${parsed}`);
      this.problem('/listen', parsed);
      return undefined;
    }
    return parsed;
  }

  /** A secret given inline or in a file (trimmed: files usually end with a newline). */
  private secret(inline: string | undefined, file: string | undefined, at: string, name: string): string | undefined {
    if (inline !== undefined && file !== undefined) {
      this.problem(`${at}/${name}_file`, `give "${name}" or "${name}_file", not both`, 'key');
      return undefined;
    }
    if (file === undefined) return inline;
    try {
      const value = readFileSync(file, 'utf8').trim();
      if (value.length < 12) this.problem(`${at}/${name}_file`, `${file} holds fewer than 12 characters: too short to guard this server`);
      return value;
    } catch (err) {
      this.problem(`${at}/${name}_file`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  }

  private auth(): ServeConfig['auth'] {
    const raw = this.raw.auth ?? {};
    const token = this.secret(raw.token, raw.token_file, '/auth', 'token') ?? (this.env.EBPFNET_TOKEN?.trim() || undefined);
    if (token !== undefined && token.length < 16 && raw.token === undefined && raw.token_file === undefined) {
      this.problems.push({ file: this.file, line: 1, column: 1, message: 'EBPFNET_TOKEN holds fewer than 16 characters: use a longer token' });
    }
    let basic: ServeConfig['auth']['basic'];
    if (raw.basic) {
      const password = this.secret(raw.basic.password, raw.basic.password_file, '/auth/basic', 'password');
      if (password !== undefined) basic = { username: raw.basic.username, password };
      else if (raw.basic.password === undefined && raw.basic.password_file === undefined) {
        this.problem('/auth/basic', 'basic authentication needs "password" or "password_file"');
      }
    }
    if (token === undefined && basic === undefined && !this.problems.length) {
      this.problems.push({
        ...(this.raw.auth ? this.map.atValue('/auth', '') : { file: this.file, line: 1, column: 1 }),
        message: 'no credentials: every request must be authenticated; set auth.token, auth.token_file or auth.basic, or EBPFNET_TOKEN',
      });
    }
    return { ...(token !== undefined ? { token } : {}), ...(basic ? { basic } : {}) };
  }

  private grafanaHmac(): ServeConfig['grafanaHmac'] {
    const raw = this.raw.grafana_hmac;
    if (!raw) return undefined;
    const secret = this.secret(raw.secret, raw.secret_file, '/grafana_hmac', 'secret');
    if (secret === undefined) {
      if (raw.secret === undefined && raw.secret_file === undefined) this.problem('/grafana_hmac', 'the HMAC check needs "secret" or "secret_file"');
      return undefined;
    }
    return {
      secret,
      header: raw.header ?? 'X-Grafana-Alerting-Signature',
      ...(raw.timestamp_header ? { timestampHeader: raw.timestamp_header } : {}),
      maxAgeMs: raw.max_age ? parseDuration(raw.max_age)! : 5 * 60_000,
    };
  }

  private routes(): Route[] {
    const seen = new Map<string, number>();
    const routes: Route[] = [];
    this.raw.routes.forEach((raw, i) => {
      const at = `/routes/${i}`;
      if (seen.has(raw.name)) this.problem(`${at}/name`, `route "${raw.name}" is already defined (routes/${seen.get(raw.name)})`);
      seen.set(raw.name, i);
      if (!raw.match && !raw.match_re) {
        this.problem(at, 'a route needs match or match_re: one that takes every alert would diagnose each of them');
      }
      const matchRe: Record<string, RegExp> = {};
      for (const [label, source] of Object.entries(raw.match_re ?? {})) {
        try {
          matchRe[label] = new RegExp(`^(?:${source})$`);
        } catch (err) {
          this.problem(`${at}/match_re/${label}`, `not a regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
        }
      }
      const runbook = this.runbook(raw.runbook, `${at}/runbook`);
      const inputs = runbook ? this.inputs(raw.inputs ?? {}, runbook, at) : {};
      if (runbook) routes.push({ name: raw.name, match: raw.match ?? {}, matchRe, runbook, inputs });
    });
    return routes;
  }

  private runbook(ref: string, at: string): Runbook | undefined {
    // A path is taken relative to the configuration file, so the pair can move together.
    const looksLikePath = ref.includes('/') || /\.ya?ml$/.test(ref);
    const arg = looksLikePath && !isAbsolute(ref) ? join(dirname(this.file), ref) : ref;
    try {
      return openRunbook(arg, this.opts.catalog);
    } catch (err) {
      if (err instanceof RunbookError) {
        const first = err.problems[0];
        this.problem(at, `runbook ${ref} has ${err.problems.length} problem(s), first: ${first ? formatProblem(first) : err.message}`);
      } else {
        this.problem(at, (err as Error).message);
      }
      return undefined;
    }
  }

  private inputs(raw: Record<string, unknown>, runbook: Runbook, at: string): Record<string, InputSource> {
    const out: Record<string, InputSource> = {};
    const known = Object.keys(runbook.inputs);
    for (const [name, value] of Object.entries(raw)) {
      const pointer = `${at}/inputs${toPointer([name])}`;
      const spec = runbook.inputs[name];
      if (!spec) {
        this.problem(pointer, `runbook ${runbook.id} has no input "${name}" (it takes ${known.join(', ') || 'none'})`, 'key');
        continue;
      }
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        out[name] = value as InputSource;
        continue;
      }
      const coerced = coerceInput(spec.type, value);
      if ('expected' in coerced) this.problem(pointer, `input "${name}" of ${runbook.id}: expected ${coerced.expected}`);
      else out[name] = { value: coerced.value };
    }
    for (const [name, spec] of Object.entries(runbook.inputs)) {
      if (spec.default === undefined && !(name in raw)) {
        this.problem(`${at}/runbook`, `runbook ${runbook.id} needs input "${name}", which has no default: map it under inputs, e.g. ${name}: {label: ${name}}`);
      }
    }
    return out;
  }
}
