// The run queue of a real `ebpfnet serve`: a storm of one alert is one run; the queue bound
// answers 503 with Retry-After; runs never overlap on the host; a server stopped or killed
// with alerts queued and a run going loses none of them and runs none twice; the notifier
// retries until the receiver takes the verdict; reports download in every format.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAlive } from '../../engine/host/process.js';
import { packageRoot } from '../../engine/package-info.js';
import { Cleanup } from '../helpers/cleanup.js';
import { alertmanagerPayload, baseConfig, ended, get, post, serveHome, waitForRun, type ServeProcess, testHome } from '../helpers/serve.js';

const route = (duration: string) => ({
  name: 'host-drops',
  match: { alertname: 'HostDrops' },
  runbook: 'host-drops',
  inputs: { duration, long_duration: duration },
});

const alert = (fingerprint: string) => alertmanagerPayload([{ labels: { alertname: 'HostDrops', instance: fingerprint }, fingerprint }]);

/** The bundles under the data folder, per run id: each run must have written exactly one. */
function bundlesByRun(dataDir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const runs = join(dataDir, 'runs');
  for (const id of existsSync(runs) ? readdirSync(runs) : []) out.set(id, readdirSync(join(runs, id)));
  return out;
}

function bundleRecord(bundle: string): { status: string; startedAt: string; endedAt: string; resumes: unknown[]; interruptions: unknown[] } {
  return JSON.parse(readFileSync(join(bundle, 'run.json'), 'utf8'));
}

async function allEnded(server: ServeProcess, count: number, timeoutMs = 90_000): Promise<any[]> {
  const deadline = Date.now() + timeoutMs;
  let runs: any[] = [];
  while (Date.now() < deadline) {
    runs = (await get(`${server.url}/runs?limit=1000`)).body.runs;
    if (runs.length === count && runs.every(ended)) return runs;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not all of ${count} runs ended: ${JSON.stringify(runs.map((r) => [r.id, r.status, r.reason]))}\n${server.log().slice(-3000)}`);
}

/** No two runs' bundles were live at once: the host ran one diagnosis at a time. */
function assertNoOverlap(runs: any[]): void {
  const spans = runs
    .map((r) => bundleRecord(r.bundle))
    .map((rec) => [Date.parse(rec.startedAt), Date.parse(rec.endedAt)] as const)
    .sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    assert.ok(spans[i]![0] >= spans[i - 1]![1], `runs overlap: ${JSON.stringify(spans)}`);
  }
}

describe('serve: the run queue', () => {
  it('a storm of 1,000 copies of one alert is one run, and the rest are counted on it', async (t) => {
    const { home } = testHome(t, { cooldown: '1h', routes: [route('300ms')] });
    const server = await home.start();
    const url = `${server.url}/webhooks/alertmanager`;
    const body = JSON.stringify(alert('5707a1'));
    const answers: number[] = [];
    let accepted: string[] = [];
    // 50 clients at a time, as a fleet of Alertmanagers retrying would.
    for (let wave = 0; wave < 20; wave++) {
      const results = await Promise.all(Array.from({ length: 50 }, () => post(url, body)));
      for (const r of results) {
        answers.push(r.status);
        accepted = accepted.concat(r.body.accepted.map((a: { id: string }) => a.id));
      }
    }
    assert.equal(answers.length, 1000);
    assert.equal(accepted.length, 1, 'exactly one copy was accepted as a run');
    assert.equal(answers.filter((s) => s === 202).length, 1);
    assert.equal(answers.filter((s) => s === 200).length, 999, 'every other copy is answered 200 (a duplicate)');
    const run = await waitForRun(server, accepted[0]!, ended);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.duplicates, 999);
    assert.equal((await get(`${server.url}/runs`)).body.runs.length, 1);
    assert.deepEqual([...bundlesByRun(home.dataDir).entries()].map(([id, b]) => [id, b.length]), [[accepted[0], 1]], 'one bundle in all');
    // Within the cool-down, the alert firing again is still the same run.
    const later = await post(url, body);
    assert.equal(later.status, 200);
    assert.equal(later.body.duplicates[0].id, accepted[0]);
    assert.equal(later.body.duplicates[0].status, 'completed');
  });

  it('answers 503 with Retry-After past the queue bound, stores nothing of that payload, and runs one at a time', async (t) => {
    const { home } = testHome(t, { limits: { queue: 2 }, routes: [route('1s')] });
    const server = await home.start();
    const url = `${server.url}/webhooks/alertmanager`;
    const first = await post(url, alert('c0ffee01'));
    assert.equal(first.status, 202);
    await waitForRun(server, first.body.accepted[0].id, (r) => r.status === 'running');
    const early = await get(`${server.url}/runs/${first.body.accepted[0].id}/report.html`);
    assert.equal(early.status, 409);
    assert.match(early.body.error, /is running: its reports are ready when it ends/);
    assert.equal((await post(url, alert('c0ffee02'))).status, 202);
    assert.equal((await post(url, alert('c0ffee03'))).status, 202);
    const full = await post(url, alertmanagerPayload([
      { labels: { alertname: 'HostDrops', n: '4' }, fingerprint: 'c0ffee04' },
      { labels: { alertname: 'HostDrops', n: '5' }, fingerprint: 'c0ffee05' },
    ]));
    assert.equal(full.status, 503);
    assert.match(full.body.error, /^the queue is full \(2 runs waiting\); retry later$/);
    const retryAfter = Number(full.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 5 && retryAfter <= 3600, `Retry-After ${full.headers.get('retry-after')}`);
    // A duplicate is still answered while the queue is full: it needs no slot.
    const dup = await post(url, alert('c0ffee02'));
    assert.equal(dup.status, 200);
    const health = (await get(`${server.url}/healthz`)).body;
    assert.equal(health.counts.queued + health.counts.running + health.counts.completed, 3);
    const runs = await allEnded(server, 3);
    assert.ok(runs.every((r) => r.status === 'completed'), JSON.stringify(runs));
    assert.ok(!runs.some((r) => ['c0ffee04', 'c0ffee05'].includes(r.alert.fingerprint)), 'the refused payload was not stored');
    assertNoOverlap(runs);
    // Once there is room, the sender's retry is accepted.
    assert.equal((await post(url, alert('c0ffee04'))).status, 202);
  });

  for (const [how, signal] of [
    ['stopped (SIGTERM)', 'SIGTERM'],
    ['killed (SIGKILL)', 'SIGKILL'],
  ] as const) {
    it(`a server ${how} during a run, with alerts queued, loses none and runs none twice when it starts again`, async (t) => {
      const { home } = testHome(t, { routes: [route('2s')] });
      let server = await home.start();
      const url = `${server.url}/webhooks/alertmanager`;
      const ids: string[] = [];
      for (const fp of ['de1e7e01', 'de1e7e02', 'de1e7e03']) ids.push((await post(url, alert(fp))).body.accepted[0].id);
      const running = await waitForRun(server, ids[0]!, (r) => r.status === 'running' && r.bundle === null);
      // Let the first run get into its sampling step, so there is a snapshot to resume from: its
      // bundle's run.json written (its signal handlers in place, however slowly it started), then a moment.
      const begun = Date.now() + 120_000;
      const hasRunJson = () => (bundlesByRun(home.dataDir).get(ids[0]!) ?? []).some((b) => existsSync(join(home.dataDir, 'runs', ids[0]!, b, 'run.json')));
      while (!hasRunJson() && Date.now() < begun) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1500));
      const childPid = Number(/"run":"[^"]+","runbook":"host-drops","target":"host","child":(\d+)/.exec(server.log())?.[1]);
      assert.ok(childPid > 0, `the run's pid is logged:\n${server.log()}`);
      const exit = await server.stop(signal);
      assert.equal(exit, signal === 'SIGTERM' ? 0 : 'SIGKILL');
      if (signal === 'SIGTERM') assert.ok(!isAlive(childPid), 'a stopped server interrupts its run before exiting');
      else assert.ok(isAlive(childPid), 'a killed server leaves its run going; the next server waits for it');

      server = await home.start();
      const runs = await allEnded(server, 3);
      assert.deepEqual(runs.map((r) => r.id).sort(), [...ids].sort(), 'the same three runs, no more');
      for (const r of runs) assert.equal(r.status, 'completed', JSON.stringify(r));
      const bundles = bundlesByRun(home.dataDir);
      for (const id of ids) assert.equal(bundles.get(id)?.length, 1, `run ${id} wrote one bundle: ${bundles.get(id)}`);
      const firstRecord = bundleRecord(runs.find((r) => r.id === running.id).bundle);
      if (signal === 'SIGTERM') {
        assert.equal(firstRecord.interruptions.length, 1, 'the interrupted run is in its bundle');
        assert.equal(firstRecord.resumes.length, 1, 'and it was resumed, not started again');
        assert.equal(runs.find((r) => r.id === running.id).attempts, 2);
      } else {
        assert.equal(firstRecord.resumes.length, 0, 'the run the killed server left was waited for, not redone');
      }
      assertNoOverlap(runs);
      await server.stop();
    });
  }
});

describe('serve: results', () => {
  it('notifies the verdict with report links, retrying a failing receiver; the reports download in every format', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const received: Array<{ headers: IncomingMessage['headers']; body: any }> = [];
    let failuresLeft = 2;
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(body) });
        res.statusCode = failuresLeft-- > 0 ? 500 : 204;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    cleanup.after(() => new Promise((r) => receiver.close(r)));
    const port = (receiver.address() as { port: number }).port;
    const home = serveHome(cleanup);
    home.configure(
      baseConfig(home.dataDir, {
        formats: ['html'],
        notify: { url: `http://127.0.0.1:${port}/hook`, headers: { 'X-Ticket-Token': 'tkt-1' }, retries: 3 },
        routes: [route('300ms')],
      }),
    );
    const server = await home.start();
    const accepted = (await post(`${server.url}/webhooks/alertmanager`, alert('0b5e7e01'))).body.accepted[0];
    const run = await waitForRun(server, accepted.id, (r) => r.notification?.status === 'sent', 30_000);
    assert.equal(received.length, 3, 'two failures (HTTP 500), then taken');
    assert.equal(run.notification.attempts, 3);
    const note = received[2]!;
    assert.equal(note.headers['x-ticket-token'], 'tkt-1');
    assert.equal(note.body.run, accepted.id);
    assert.equal(note.body.status, 'completed');
    assert.equal(note.body.conclusion.id, run.conclusion.id);
    assert.equal(note.body.alert.fingerprint, '0b5e7e01');
    assert.equal(note.body.links.run, `${server.url}/runs/${accepted.id}`);

    // The links work, with the token: HTML written at the end of the run, the others on first ask.
    const html = await get(note.body.links.reports.html);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type')!, /^text\/html/);
    const escaped = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
    assert.ok(html.body.includes(escaped(run.conclusion.title)), `the HTML report carries the verdict "${run.conclusion.title}"`);
    const json = await get(note.body.links.reports.json);
    assert.equal(json.body.conclusion.id, run.conclusion.id);
    const md = await get(note.body.links.reports.md);
    assert.match(md.body, /\*\*Verdict:\*\*/);
    const pdf = await fetch(note.body.links.reports.pdf, { headers: { authorization: `Bearer serve-test-token-0123456789` } });
    assert.equal(pdf.status, 200);
    assert.equal(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString(), '%PDF-');
    assert.ok(existsSync(join(run.bundle, 'report.pdf')), 'the PDF is kept in the bundle for the next download');
    assert.equal((await get(note.body.links.reports.pdf, {})).status, 401, 'report links need the token too');
    assert.equal((await get(`${server.url}/runs/${accepted.id}/report.docx`)).status, 404);
  });

  it('a condition that could not be evaluated is in the run view and the notification, and lowers the confidence', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const received: any[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    cleanup.after(() => new Promise((r) => receiver.close(r)));
    const port = (receiver.address() as { port: number }).port;
    // The server and the runs it starts find the test runbook through $EBPFNET_RUNBOOKS.
    const before = process.env.EBPFNET_RUNBOOKS;
    process.env.EBPFNET_RUNBOOKS = join(packageRoot(), 'test', 'serve', 'runbooks');
    cleanup.after(() => {
      if (before === undefined) delete process.env.EBPFNET_RUNBOOKS;
      else process.env.EBPFNET_RUNBOOKS = before;
    });
    const home = serveHome(cleanup);
    home.configure(
      baseConfig(home.dataDir, {
        notify: { url: `http://127.0.0.1:${port}/hook` },
        routes: [{ name: 'broken-condition', match: { alertname: 'ConditionError' }, runbook: 'condition-error', inputs: { duration: '200ms' } }],
      }),
    );
    const server = await home.start();
    const accepted = (await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'ConditionError' }, fingerprint: 'c0ffee01' }]))).body.accepted[0];
    const run = await waitForRun(server, accepted.id, (r) => r.notification?.status === 'sent', 30_000);
    assert.equal(run.conclusion.id, 'by-default');
    assert.equal(run.conclusion.confidence, 'medium', 'one caveat lowers high to medium');
    assert.equal(run.conclusion.caveats.length, 1);
    assert.match(run.conclusion.caveats[0], /^a condition could not be evaluated and counted as false: watch: findings\.iface\.worst\.drops > 0: /);
    assert.equal(received.length, 1);
    assert.deepEqual(received[0].conclusion.caveats, run.conclusion.caveats);
    assert.equal(received[0].conclusion.confidence, 'medium');
  });
});
