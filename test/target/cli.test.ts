// `ebpfnet vms` through the built CLI, as a user runs it, against a real QEMU VM
// on a real bridge and an inventory file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Discovery, VmFacts } from '../../engine/target/index.js';
import { runCli } from '../helpers/cli.js';
import { cleanupLeftovers, linuxBridge, startQemu, vmName } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-vms-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function json<T>(stdout: string): T {
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new Error(`not JSON:\n${stdout}`);
  }
}

describe('ebpfnet vms', () => {
  before(cleanupLeftovers);

  test('lists a QEMU VM and an inventory VM with source, pid, taps and bridge; shows one; names the unknown', async (t) => {
    const br = await linuxBridge(t);
    const q = await startQemu(t, { bridge: br });
    const only = vmName();
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, `vms:\n  ${only}:\n    ips: [203.0.113.5]\n`);

    const r = runCli(['vms', '--json', '--inventory', inventory]);
    assert.equal(r.status, 0, r.stderr);
    const found = json<Discovery>(r.stdout);
    const vm = found.vms.find((v) => v.name === q.name);
    assert.ok(vm, `${q.name} not listed: ${found.vms.map((v) => v.name).join(', ')}`);
    assert.equal(vm.source, 'qemu');
    assert.equal(vm.pid, q.pid);
    assert.deepEqual(vm.taps.map((tap) => [tap.name, tap.guestMac, tap.attachment?.kind, tap.attachment?.bridge]), [[q.tap, q.mac, 'linux-bridge', br]]);
    const inv = found.vms.find((v) => v.name === only);
    assert.deepEqual([inv?.source, inv?.state, inv?.pid, inv?.ips], ['inventory', 'unknown', null, [{ address: '203.0.113.5', source: 'inventory' }]]);
    assert.deepEqual(found.sources.map((s) => s.source), ['libvirt', 'qemu', 'inventory']);
    assert.deepEqual(found.sources.find((s) => s.source === 'inventory'), { source: 'inventory', available: true, detail: inventory, names: [only] });

    const text = runCli(['vms', '--inventory', inventory]);
    assert.equal(text.status, 0, text.stderr);
    const lines = text.stdout.split('\n');
    assert.match(lines[0]!, /^NAME +SOURCE +STATE +PID +TAPS +BRIDGE +ADDRESSES$/);
    // The QEMU here has no guest to speak: no address heard from it.
    assert.ok(lines.some((l) => new RegExp(`^${q.name} +qemu +running +${q.pid} +${q.tap} +${br} \\(bridge\\) +-$`).test(l)), text.stdout);
    assert.ok(lines.some((l) => new RegExp(`^${only} +inventory +unknown +- +- +- +203\\.0\\.113\\.5 \\(inventory\\)$`).test(l)), text.stdout);

    const one = runCli(['vms', q.name, '--json']);
    assert.equal(one.status, 0, one.stderr);
    const facts = json<VmFacts>(one.stdout);
    assert.equal(facts.pid, q.pid);
    assert.equal(facts.vcpuThreads.length, 1);
    const shown = runCli(['vms', q.name]);
    assert.match(shown.stdout, new RegExp(`^${q.name}: running \\(from qemu\\)\\n  pid ${q.pid}\\n`));
    assert.match(shown.stdout, new RegExp(`  tap ${q.tap} \\(ifindex \\d+, \\w+\\): guest MAC ${q.mac}, .*\\n    on Linux bridge ${br}\\n`));

    const unknown = runCli(['vms', 'ebpfnet-nope', '--inventory', inventory]);
    assert.equal(unknown.status, 2);
    assert.equal(unknown.stdout, '');
    // Where no libvirtd runs (the kernel lab), the message also says why libvirt was not asked.
    assert.match(unknown.stderr, new RegExp(`^ebpfnet: no VM named "ebpfnet-nope"; found: .*${q.name}.* \\(qemu\\), ${only} \\(inventory\\)(; libvirt not asked: .+)?\\n$`));
  });

  test('a broken inventory: every problem as file:line:column, exit 2', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'vms:\n  web:\n    pid: -3\n    tap: []\n');
    const r = runCli(['vms', '--inventory', bad]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr.split('\n'), [
      `${bad}:3:10: vms.web.pid: expected a process id (a positive integer), got -3`,
      `${bad}:4:5: vms.web: unknown key "tap" (expected one of: description, pid, pidfile, taps, ips); did you mean "taps"?`,
      `ebpfnet: invalid inventory ${bad}: 2 problem(s)`,
      '',
    ]);
    // The same file through the environment.
    const viaEnv = runCli(['vms', '--json'], { EBPFNET_INVENTORY: bad });
    assert.equal(viaEnv.status, 2);
    assert.match(viaEnv.stderr, new RegExp(`^${bad}:3:10: `));
  });
});
