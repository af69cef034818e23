// The trigger end to end: Alertmanager's webhook for a lab VM that loses packets (a real QEMU
// VM on Open vSwitch, an OpenFlow rule dropping its UDP) reaches `ebpfnet serve`, which runs
// vm-loss for that VM; the verdict and its reports are then fetched over HTTP.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { alertmanagerPayload, AUTH, baseConfig, ended, get, post, serveHome, waitForRun } from '../helpers/serve.js';
import { backgroundUdp, inventoryFor } from './scenario.js';
import { buildLabTopology } from './topology.js';
import { canBootVms } from './vm.js';

const cannot = await canBootVms();

describe('serve on the lab', () => {
  before(() => assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`));

  it('an Alertmanager alert for a VM losing packets → a vm-loss run, its verdict and reports over HTTP', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'ovs' });
    await lab.ovs!.addFlow('priority=200,udp,tp_dst=9,actions=drop');
    const traffic = backgroundUdp(lab, lab.vm.ip, { port: 9 });
    t.after(() => traffic.stop());
    const home = serveHome(t);
    home.configure(
      baseConfig(home.dataDir, {
        inventory: inventoryFor(t, { [lab.vm.name]: lab.vm.ip }),
        formats: ['html', 'pdf'],
        routes: [{ name: 'vm-packet-loss', match: { alertname: 'VMPacketLoss' }, runbook: 'vm-loss', inputs: { vm: { label: 'domain' }, duration: '2s' } }],
      }),
    );
    const server = await home.start();
    const answer = await post(
      `${server.url}/webhooks/alertmanager`,
      alertmanagerPayload([{ labels: { alertname: 'VMPacketLoss', domain: lab.vm.name, severity: 'critical' }, fingerprint: '7e57e57e' }]),
    );
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assert.equal(answer.body.accepted[0].target, lab.vm.name);
    const run = await waitForRun(server, answer.body.accepted[0].id, ended, 120_000);
    await traffic.stop();
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.conclusion.id, 'ovs-flow-drop', JSON.stringify(run.conclusion));
    assert.equal(run.conclusion.category, 'ovs-flow-drop');
    assert.equal(run.inputs.vm, lab.vm.name);
    const html = await get(run.links.reports.html);
    assert.equal(html.status, 200);
    assert.match(html.body, /ovs-flow-drop/);
    assert.ok(html.body.includes(lab.vm.name), 'the report names the VM');
    const pdf = await fetch(run.links.reports.pdf, { headers: AUTH });
    assert.equal(pdf.status, 200);
    const bytes = Buffer.from(await pdf.arrayBuffer());
    assert.equal(bytes.subarray(0, 5).toString(), '%PDF-');
    assert.ok(bytes.length > 20_000, `PDF of ${bytes.length} bytes`);
    await server.stop();
  });
});
