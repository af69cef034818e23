// `ebpfnet diagnose vm-latency --vm NAME` on a real VM with a real delay injected into one
// layer: the conclusion must name that layer, with its P99.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import type { TeardownHost } from '../helpers/netns.js';
import { backgroundUdp, contendCpu0, diagnoseVm, diagnoseVmUnderUdp, findingsOf, type BackgroundUdpOptions } from './scenario.js';
import { buildLabTopology, type LabTopology } from './topology.js';
import { canBootVms } from './vm.js';

const cannot = await canBootVms();
const diagnose = (t: TeardownHost, vm: string, ip: string, extra: string[] = []) => diagnoseVm(t, 'vm-latency', vm, ip, extra);
/** vm-latency on the lab's VM while UDP flows to it from the peer. */
const diagnoseUnderUdp = (t: TeardownHost, lab: LabTopology, udp: BackgroundUdpOptions, extra: string[] = []) =>
  diagnoseVmUnderUdp(t, lab, 'vm-latency', lab.vm.name, lab.vm.ip, udp, extra);

describe('vm-latency on real delays', () => {
  before(() => assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`));

  it('a shaper holding packets on the tap → qdisc-delay', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await execa('tc', ['qdisc', 'add', 'dev', lab.vm.tap, 'root', 'tbf', 'rate', '400kbit', 'burst', '1600', 'latency', '400ms']);
    const r = await diagnoseUnderUdp(t, lab, { port: 7, size: 1000, intervalMs: 10 }, ['--format', 'html']);
    assert.equal(r.conclusion?.id, 'qdisc-delay', r.conclusion?.summary);
    assert.equal(r.conclusion?.category, 'qdisc-queueing');
    const f = await findingsOf(r.bundle);
    const worst = f.lat!.data.worst as { layer: string; direction: string; p99: number };
    assert.equal(worst.direction, 'to-vm');
    assert.ok(worst.p99 >= 10_000, `qdisc p99 ${worst.p99} µs`);
    // The report of this real run: the verdict, and the per-layer breakdown drawn from the finding.
    const html = readFileSync(join(r.bundle, 'report.html'), 'utf8');
    assert.match(html, /A queueing discipline delays the VM(&#x27;|')s packets/);
    const breakdown = html.indexOf('Mean time per layer');
    assert.ok(breakdown > 0, 'no per-layer breakdown in the report');
    assert.ok(html.indexOf('<svg', breakdown) > breakdown, 'the breakdown is not drawn');
  });

  it('a VM that stops for a while → packets wait in the tap ring, vCPU not starved → guest-slow', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    const traffic = backgroundUdp(lab, lab.vm.ip, { port: 7, intervalMs: 5 });
    t.after(() => traffic.stop());
    // Stop the guest for 400 ms every second while the runbook times the layers.
    let pausing = true;
    const pauser = (async () => {
      while (pausing) {
        await lab.vm.pause();
        await new Promise((resolve) => setTimeout(resolve, 400));
        await lab.vm.resume();
        await new Promise((resolve) => setTimeout(resolve, 600));
      }
    })();
    const r = await diagnose(t, lab.vm.name, lab.vm.ip);
    pausing = false;
    await pauser;
    await traffic.stop();
    assert.equal(r.conclusion?.id, 'guest-slow', r.conclusion?.summary);
    const worst = (await findingsOf(r.bundle)).lat!.data.worst as { layer: string; p99: number };
    assert.equal(worst.layer, 'tun ring');
    assert.ok(worst.p99 >= 100_000, `tun ring p99 ${worst.p99} µs`);
  });

  it('a VM pinned at nice 19 to a CPU that busy loops hold → vcpu-wait', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    await contendCpu0(t, lab.vm.pid, 4);
    const r = await diagnoseUnderUdp(t, lab, { port: 7, intervalMs: 5 });
    assert.equal(r.conclusion?.id, 'vcpu-wait', r.conclusion?.summary);
    const f = await findingsOf(r.bundle);
    // Four busy loops on the VM's only CPU: each wake-up of a vCPU waits milliseconds.
    const vcpu = (f.runq!.data.classes as Record<string, { p99Us: number }>).vcpu!;
    const ring = f.lat!.data.worst as { layer: string; p99: number };
    assert.equal(ring.layer, 'tun ring');
    assert.ok(vcpu.p99Us >= 2000 && vcpu.p99Us * 4 >= ring.p99, `vCPU p99 wait ${vcpu.p99Us} µs, tap ring p99 ${ring.p99} µs`);
  });

  it('a quiet host → host-fast, with every layer timed', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    // Under TCG (no KVM here) QEMU takes a few ms to read a packet; a KVM host would pass the 1 ms default.
    const r = await diagnoseUnderUdp(t, lab, { port: 7, intervalMs: 20 }, ['--input', 'threshold_us=50000']);
    assert.equal(r.conclusion?.id, 'host-fast', r.conclusion?.summary);
    const f = await findingsOf(r.bundle);
    const layers = (f.lat!.data.directions as Record<string, { layers: Record<string, { count: number }> }>)['to-vm']!.layers;
    assert.ok((layers.bridge?.count ?? 0) > 20, `bridge layer timed ${layers.bridge?.count ?? 0} packets`);
    assert.ok((layers['tun ring']?.count ?? 0) > 20);
  });
});
