// Starting and stopping `ebpfnet serve`: the one-line refusals an operator gets (not root,
// a data folder another server holds, an address in use), a run stopped by run_timeout, and
// retention.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, runCli } from '../helpers/cli.js';
import { alertmanagerPayload, baseConfig, ended, get, post, serveHome, waitForRun, testHome, type ServeProcess } from '../helpers/serve.js';

const hostRoute = (duration: string) => ({
  name: 'host-drops',
  match: { alertname: 'HostDrops' },
  runbook: 'host-drops',
  inputs: { duration, long_duration: duration },
});

/** Posts one HostDrops alert with `fingerprint` and waits for its run to end. */
async function endedRunOfAlert(server: ServeProcess, fingerprint: string) {
  const r = await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'HostDrops' }, fingerprint }]));
  return waitForRun(server, r.body.accepted[0].id, ended);
}

describe('serve: starting and stopping', () => {
  it('refuses to start as a non-root user, in one line, exit 3', async (t) => {
    const { home } = testHome(t, { routes: [hostRoute('1s')] });
    chmodSync(home.dir, 0o755);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'serve', '--config', home.configFile], { encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stderr, 'ebpfnet: ebpfnet serve must run as root: the runs it starts load BPF programs\n');
  });

  it('refuses a second server on the same data folder, and an address in use', async (t) => {
    const { home, cleanup } = testHome(t, { routes: [hostRoute('1s')] });
    const first = await home.start();
    const second = runCli(['serve', '--config', home.configFile]);
    assert.equal(second.status, 3);
    assert.equal(second.stderr, `ebpfnet: another ebpfnet serve (pid ${first.child.pid}) uses ${home.dataDir}: stop it, or give this one another data_dir\n`);
    const other = serveHome(cleanup);
    other.configure(baseConfig(other.dataDir, { listen: first.url.replace('http://', ''), routes: [hostRoute('1s')] }));
    const busy = runCli(['serve', '--config', other.configFile]);
    assert.equal(busy.status, 3);
    assert.match(busy.stderr, /^ebpfnet: cannot listen on 127\.0\.0\.1:\d+: the address is in use\n$/);
    assert.equal(await first.stop(), 0, 'SIGTERM stops the server cleanly');
  });

  it('stops a run past run_timeout, marks it failed and keeps its bundle', async (t) => {
    // Long enough for the run to begin however slowly Node starts (seconds under the kernel lab's TCG).
    const { home } = testHome(t, { run_timeout: '8s', routes: [hostRoute('30s')] });
    const server = await home.start();
    const run = await endedRunOfAlert(server, '71e0a7');
    assert.equal(run.status, 'failed');
    assert.equal(run.reason, 'stopped after the run timeout (8s); the bundle keeps what it found');
    assert.ok(run.bundle, 'the partial bundle is kept');
    assert.ok(run.durationMs >= 8000 && run.durationMs < 30_000, `ran ${run.durationMs} ms`);
  });

  it('deletes ended runs and their bundles past retention', async (t) => {
    const { home } = testHome(t, { retention: '2s', routes: [hostRoute('200ms')] });
    const server = await home.start();
    const run = await endedRunOfAlert(server, '7e7e7e');
    assert.equal(run.status, 'completed');
    assert.ok(existsSync(run.bundle));
    const deadline = Date.now() + 10_000;
    while ((await get(`${server.url}/runs/${run.id}`)).status !== 404) {
      assert.ok(Date.now() < deadline, 'the run outlived its retention');
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(!existsSync(join(home.dataDir, 'runs', run.id)), 'its bundle folder is gone too');
  });
});
