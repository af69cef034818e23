// Load on `ebpfnet serve`: wrk (a second process, on loopback) posts Alertmanager payloads
// for 10 s, and this prints accepted webhooks per second and answer-time percentiles:
//   rejected   every alert new, each stored (a disk commit per request) but never run: the
//              HTTP and store path on an idle host
//   unique     every alert a new fingerprint: each one stored as a queued run (a disk commit
//              per request), while the worker runs host-drops diagnoses one after another
//   duplicate  one fingerprint: each copy counted on the run it duplicates (also a commit)
//   refused    no token: the 401 path, the cheapest answer
// Afterwards the store is checked: every alert answered 202 is in it.
//   npm run build && node dist/test/bench/webhooks.js [seconds] [connections]   (EBPFNET_BENCH_LOG=warn: quieter server)
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanup } from '../helpers/cleanup.js';
import { alertmanagerPayload, baseConfig, get, serveHome, TOKEN } from '../helpers/serve.js';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 32);

if (spawnSync('wrk', ['--version']).error) {
  console.error('bench: wrk is needed (apt-get install wrk)');
  process.exit(3);
}

const cleanup = new Cleanup();
const home = serveHome(cleanup, 'ebpfnet-bench-serve-');
home.configure(
  baseConfig(home.dataDir, {
    limits: { queue: 100_000 },
    cooldown: '1h',
    routes: [
      { name: 'host-drops', match: { alertname: 'HostDrops' }, runbook: 'host-drops', inputs: { duration: '300ms', long_duration: '300ms' } },
      // Its alerts carry a VM label that is no VM name: each is stored, rejected, and never run.
      { name: 'bad-vm', match: { alertname: 'BadVm' }, runbook: 'vm-loss', inputs: { vm: { label: 'vm' } } },
    ],
  }),
);
const logLevel = process.env.EBPFNET_BENCH_LOG ?? 'info';
const server = await home.start(['--log-level', logLevel]).catch(async (err: unknown) => {
  await cleanup.run();
  throw err;
});

/** Four hex digits per load, so that no two loads send the same fingerprint. */
function fingerprintPrefix(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) & 0xffff;
  return h.toString(16).padStart(4, '0');
}

/** A wrk script posting one payload; FP in it becomes a fingerprint unique per request when asked. */
function script(name: string, unique: boolean, auth: boolean, labels: Record<string, string>): string {
  const body = JSON.stringify(alertmanagerPayload([{ labels, fingerprint: 'FP' }]));
  const file = join(home.dir, `${name}.lua`);
  writeFileSync(
    file,
    `local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
${auth ? `wrk.headers["Authorization"] = "Bearer ${TOKEN}"` : ''}
local body = [[${body}]]
local n = 0
function request()
  n = n + 1
  local fp = ${unique ? `string.format("${fingerprintPrefix(name)}%02x%08x", tid, n)` : '"d0d0d0"'}
  return wrk.format(nil, nil, nil, (body:gsub("FP", fp)))
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.3f %.3f %.3f %.3f\\n", summary.requests, summary.errors.status,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
`,
  );
  return file;
}

interface Figures {
  requests: number;
  non2xx: number;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

const HOST_DROPS = { alertname: 'HostDrops', instance: 'hv1' };

function load(name: string, unique: boolean, auth = true, conns = connections, labels: Record<string, string> = HOST_DROPS, refusedIsAnswer = !auth): Figures {
  const r = spawnSync('wrk', ['-t2', `-c${conns}`, `-d${seconds}s`, '-s', script(name, unique, auth, labels), `${server.url}/webhooks/alertmanager`], { encoding: 'utf8' });
  const m = /RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk said:\n${r.stdout}\n${r.stderr}`);
  const [requests, non2xx, durationUs] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { requests, non2xx, perSecond: (requests - (refusedIsAnswer ? 0 : non2xx)) / (durationUs / 1e6), p50: Number(m[4]), p90: Number(m[5]), p99: Number(m[6]), max: Number(m[7]) };
}

try {
  const rows: Array<[string, Figures]> = [];
  // First, while no run has started: the HTTP and store path alone.
  rows.push([`unique alerts stored as rejected (no run), ${connections} connections`, load('rejected', true, true, connections, { alertname: 'BadVm', vm: 'not a vm!' }, true)]);
  rows.push(['unique alerts (each queued), 4 connections', load('unique-light', true, true, 4)]);
  rows.push([`unique alerts (each queued), ${connections} connections`, load('unique', true)]);
  const stored = (await get(`${server.url}/healthz`)).body.counts;
  rows.push([`one alert, duplicates, ${connections} connections`, load('duplicate', false)]);
  rows.push([`no token (401), ${connections} connections`, load('refused', true, false)]);
  console.log(`ebpfnet serve under wrk: 2 threads, ${seconds} s each, loopback; log level ${logLevel}; node ${process.version}`);
  console.log('| load | requests | answered non-2xx | per second | p50 ms | p90 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [what, f] of rows) {
    console.log(`| ${what} | ${f.requests} | ${f.non2xx} | ${f.perSecond.toFixed(0)} | ${f.p50.toFixed(2)} | ${f.p90.toFixed(2)} | ${f.p99.toFixed(2)} | ${f.max.toFixed(2)} |`);
  }
  const total = stored.queued + stored.running + stored.completed + stored.failed;
  const unique = { requests: rows[1]![1].requests + rows[2]![1].requests, non2xx: rows[1]![1].non2xx + rows[2]![1].non2xx };
  console.log(`stored after the queued loads: ${total} runs for ${unique.requests - unique.non2xx} alerts answered 202 (${stored.completed} completed, ${stored.running} running, ${stored.queued} queued); ${stored.rejected} rejected for ${rows[0]![1].requests} answered`);
  // wrk does not count requests still in flight when it stops: the store may hold a few more.
  if (total < unique.requests - unique.non2xx) process.exitCode = 1;
} finally {
  await server.stop('SIGKILL');
  await cleanup.run();
}
