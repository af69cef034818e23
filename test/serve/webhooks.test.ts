// The webhook front door of a real `ebpfnet serve` process, through a real HTTP client on
// loopback: who gets in, what is refused and how it is said, Grafana's HMAC signature, and
// what each kind of alert becomes (a run, a duplicate, a rejection, nothing).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cleanup } from '../helpers/cleanup.js';
import { alertmanagerPayload, AUTH, baseConfig, ended, get, post, serveHome, TOKEN, waitForRun, type ServeProcess } from '../helpers/serve.js';

const HMAC_SECRET = 'grafana-shared-secret-0001';
const cleanup = new Cleanup();
let server: ServeProcess;

const hostRoute = {
  name: 'host-drops',
  match: { alertname: 'HostDrops' },
  runbook: 'host-drops',
  inputs: { duration: '200ms', long_duration: '200ms' },
};
const vmRoute = { name: 'vm-loss', match: { alertname: 'VMPacketLoss' }, runbook: 'vm-loss', inputs: { vm: { label: 'vm' }, duration: '200ms' } };

function grafanaPayload(labels: Record<string, string>, fingerprint: string) {
  return {
    receiver: 'ebpfnet',
    status: 'firing',
    orgId: 1,
    version: '1',
    groupKey: '{}:{}',
    truncatedAlerts: 0,
    title: '[FIRING:1]',
    state: 'alerting',
    message: '',
    alerts: [{ status: 'firing', labels, annotations: {}, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', fingerprint, values: { B: 1 } }],
  };
}

function sign(body: string, timestamp?: number): Record<string, string> {
  const ts = timestamp === undefined ? undefined : String(timestamp);
  const signed = ts === undefined ? body : `${ts}:${body}`;
  return {
    ...AUTH,
    'x-grafana-alerting-signature': createHmac('sha256', HMAC_SECRET).update(signed).digest('hex'),
    ...(ts !== undefined ? { 'x-grafana-alerting-signature-timestamp': ts } : {}),
  };
}

before(async () => {
  const home = serveHome(cleanup);
  home.configure(
    baseConfig(home.dataDir, {
      auth: { token: TOKEN, basic: { username: 'alertmanager', password: 'basic-password-01' } },
      grafana_hmac: { secret: HMAC_SECRET, timestamp_header: 'X-Grafana-Alerting-Signature-Timestamp', max_age: '1m' },
      limits: { max_body_bytes: 8192, queue: 50 },
      cooldown: '1h',
      routes: [hostRoute, vmRoute],
    }),
  );
  server = await home.start();
});
after(() => cleanup.run());

describe('serve: authentication', () => {
  it('refuses every endpoint without credentials, with a challenge naming both schemes', async () => {
    for (const path of ['/runs', '/healthz', '/runs/0000000aa-000000']) {
      const r = await get(`${server.url}${path}`, {});
      assert.equal(r.status, 401, path);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="ebpfnet", Basic realm="ebpfnet"');
      assert.match(r.body.error, /authentication required/);
    }
    const r = await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'HostDrops' } }]), {});
    assert.equal(r.status, 401);
    assert.equal((await get(`${server.url}/runs`)).body.runs.length, 0, 'an unauthenticated alert is not stored');
  });

  it('refuses a wrong token, a wrong password, a wrong user and an unknown scheme', async () => {
    const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
    for (const headers of [
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      basic('alertmanager', 'basic-password-02'),
      basic('grafana', 'basic-password-01'),
      { authorization: `Token ${TOKEN}` },
      { authorization: TOKEN },
    ]) {
      assert.equal((await get(`${server.url}/runs`, headers)).status, 401, headers.authorization);
    }
  });

  it('lets the token and the basic credentials in', async () => {
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
    const basic = { authorization: `Basic ${Buffer.from('alertmanager:basic-password-01').toString('base64')}` };
    const r = await get(`${server.url}/healthz`, basic);
    assert.equal(r.status, 200);
    assert.equal(r.body.ok, true);
  });
});

describe('serve: malformed and oversized payloads', () => {
  const cases: Array<[string, string | object, number, RegExp]> = [
    ['broken JSON', '{"version": "4", "alerts": [', 400, /^the body is not valid JSON/],
    ['an empty body', '', 400, /the body is empty/],
    ['a JSON array', '[1,2]', 400, /^the body: must be object/],
    ['no alerts', { version: '4', status: 'firing' }, 400, /^the body: missing "alerts"/],
    ['a Grafana payload on the Alertmanager endpoint', grafanaPayload({ alertname: 'X' }, 'ab12'), 400, /version: expected "4" .* it looks like a grafana payload: POST it to \/webhooks\/grafana/],
    ['a label that is not text', { version: '4', status: 'firing', alerts: [{ status: 'firing', labels: { vm: 7 } }] }, 400, /^alerts\.0\.labels\.vm: must be string/],
    ['an unknown alert status', { version: '4', status: 'firing', alerts: [{ status: 'burning', labels: {} }] }, 400, /^alerts\.0\.status: expected one of firing, resolved/],
    ['a fingerprint with a slash', { version: '4', status: 'firing', alerts: [{ status: 'firing', labels: {}, fingerprint: '../x' }] }, 400, /fingerprint: expected up to 64 letters and digits/],
  ];
  for (const [what, body, status, message] of cases) {
    it(`answers ${status} to ${what}, saying what is wrong`, async () => {
      const r = await post(`${server.url}/webhooks/alertmanager`, body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(r.body.error, message);
    });
  }

  it('answers 415 to a body that is not JSON, and 413 past limits.max_body_bytes', async () => {
    const res = await fetch(`${server.url}/webhooks/alertmanager`, { method: 'POST', headers: { ...AUTH, 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(res.status, 415);
    assert.match(((await res.json()) as { error: string }).error, /Content-Type: application\/json/);
    const big = alertmanagerPayload([{ labels: { alertname: 'HostDrops', filler: 'x'.repeat(9000) } }]);
    const r = await post(`${server.url}/webhooks/alertmanager`, big);
    assert.equal(r.status, 413);
    assert.equal(r.body.error, 'the body is larger than the limit of 8192 bytes (limits.max_body_bytes)');
  });

  it('stored none of the refused payloads', async () => {
    assert.equal((await get(`${server.url}/runs`)).body.runs.length, 0);
  });

  it('answers 404 with the method and path for an unknown endpoint', async () => {
    const r = await post(`${server.url}/webhooks/pagerduty`, {});
    assert.equal(r.status, 404);
    assert.equal(r.body.error, 'no such endpoint: POST /webhooks/pagerduty');
  });
});

describe('serve: Grafana HMAC signatures', () => {
  const now = () => Math.floor(Date.now() / 1000);

  it('refuses a missing, a wrong, a stale and a body-swapped signature', async () => {
    const body = JSON.stringify(grafanaPayload({ alertname: 'HostDrops' }, 'feed01'));
    const other = JSON.stringify(grafanaPayload({ alertname: 'HostDrops', extra: '1' }, 'feed01'));
    const url = `${server.url}/webhooks/grafana`;
    const missing = await post(url, body, AUTH);
    assert.equal(missing.status, 401);
    assert.match(missing.body.error, /missing the X-Grafana-Alerting-Signature header/);
    const noTime = await post(url, body, sign(body));
    assert.match(noTime.body.error, /missing or malformed X-Grafana-Alerting-Signature-Timestamp/);
    const stale = await post(url, body, sign(body, now() - 120));
    assert.equal(stale.status, 401);
    assert.match(stale.body.error, /outside the allowed age/);
    const swapped = await post(url, other, sign(body, now()));
    assert.equal(swapped.status, 401);
    assert.match(swapped.body.error, /signature does not match the body/);
    assert.equal((await get(`${server.url}/runs`)).body.runs.length, 0);
  });

  it('accepts a signed Grafana alert and runs its route', async () => {
    const body = JSON.stringify(grafanaPayload({ alertname: 'HostDrops', host: 'hv1' }, 'feed02'));
    const r = await post(`${server.url}/webhooks/grafana`, body, sign(body, now()));
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.accepted.length, 1);
    assert.equal(r.body.accepted[0].fingerprint, 'feed02');
    const run = await waitForRun(server, r.body.accepted[0].id, ended);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.alert.source, 'grafana');
    assert.equal(run.runbook, 'host-drops');
    assert.ok(run.conclusion?.id, 'a completed run has a conclusion');
  });
});

describe('serve: what alerts become', () => {
  it('starts nothing for resolved or unmatched alerts, and says how many it ignored', async () => {
    const r = await post(
      `${server.url}/webhooks/alertmanager`,
      alertmanagerPayload([
        { labels: { alertname: 'HostDrops' }, fingerprint: 'aaaa01', status: 'resolved' },
        { labels: { alertname: 'DiskFull' }, fingerprint: 'aaaa02' },
      ]),
    );
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { accepted: [], duplicates: [], rejected: [], ignored: { resolved: 1, unmatched: 1 } });
  });

  it('rejects a VM label that is not a VM name (422), never running it, and keeps the record', async () => {
    const r = await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'VMPacketLoss', vm: 'web1; reboot' }, fingerprint: 'bbbb01' }]));
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.rejected.length, 1);
    assert.match(r.body.rejected[0].reason, /input "vm": expected a VM name .* got "web1; reboot"/);
    const run = (await get(`${server.url}/runs/${r.body.rejected[0].id}`)).body;
    assert.equal(run.status, 'rejected');
    assert.equal(run.target, 'web1; reboot', 'listed under the VM the alert named, as sent');
    assert.equal(run.bundle, null);
    assert.equal(run.startedAt, null, 'a rejected alert never starts a run');
    const again = await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'VMPacketLoss', vm: 'web1; reboot' }, fingerprint: 'bbbb01' }]));
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicates[0].id, r.body.rejected[0].id, 'its repeats count against the rejection');
  });

  it('rejects a route whose label is missing from the alert', async () => {
    const r = await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'VMPacketLoss' }, fingerprint: 'bbbb02' }]));
    assert.equal(r.status, 422);
    assert.equal(r.body.rejected[0].reason, 'the alert has no label "vm", which route vm-loss maps to input "vm"');
  });

  it('runs an alert for an unknown VM and records why it failed, in one line', async () => {
    const r = await post(`${server.url}/webhooks/alertmanager`, alertmanagerPayload([{ labels: { alertname: 'VMPacketLoss', vm: 'no-such-vm-here' }, fingerprint: 'bbbb03' }]));
    assert.equal(r.status, 202);
    const run = await waitForRun(server, r.body.accepted[0].id, ended);
    assert.equal(run.status, 'failed');
    assert.match(run.reason, /^no VM named "no-such-vm-here"/);
    assert.ok(!run.reason.includes('\n'));
  });

  it('lists runs newest first, filters them by status, and rejects a bad filter', async () => {
    const all = (await get(`${server.url}/runs`)).body;
    assert.ok(all.runs.length >= 4);
    const ids = all.runs.map((r: { id: string }) => r.id);
    assert.deepEqual(ids, [...ids].sort().reverse());
    const rejected = (await get(`${server.url}/runs?status=rejected`)).body.runs;
    assert.equal(rejected.length, 2);
    assert.ok(rejected.every((r: { status: string }) => r.status === 'rejected'));
    assert.equal((await get(`${server.url}/runs?status=weird`)).status, 400);
    assert.equal((await get(`${server.url}/runs?limit=0`)).status, 400);
    assert.equal((await get(`${server.url}/runs/not-an-id`)).status, 404);
  });
});
