// The static inventory: a VM no other source knows, described by hand and found
// on the host (its process, its tap on a real bridge); IPs added to a VM another
// source found; and every mistake in the file reported at its line and column.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InventoryError, inventoryLocation, loadInventory, resolveVm, DEFAULT_INVENTORY } from '../../engine/target/index.js';
import { parseInventory } from '../../engine/target/inventory.js';
import type { LinuxBridgeAttachment } from '../../engine/target/types.js';
import { cleanupLeftovers, devName, guestMac, linuxBridge, sh, startQemu, sysfs, vmName } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-inventory-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function inventoryFile(text: string): string {
  const file = join(dir, `inventory-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The problems of a broken inventory, as `file:line:column: message` lines. */
function problemsOf(text: string): string[] {
  const file = inventoryFile(text);
  try {
    loadInventory({ path: file, explicit: true });
  } catch (err) {
    assert.ok(err instanceof InventoryError, String(err));
    return err.problems.map((p) => `${p.file === file ? 'F' : p.file}:${p.line}:${p.column}: ${p.message}`);
  }
  assert.fail(`no problem found in:\n${text}`);
}

describe('inventory files', () => {
  test('a valid file: VMs by name with pid or pidfile, taps and IPs', () => {
    const inv = parseInventory(
      [
        'vms:',
        '  web-1:',
        '    description: the web VM',
        '    pidfile: /run/web-1.pid',
        '    taps:',
        '      - name: tap-web1',
        '        mac: 52:54:00:AB:CD:EF',
        '        model: virtio-net-pci',
        '        vhost: true',
        '    ips: [10.0.0.2, "fd00::2"]',
        '  db.2: {pid: 4242}',
        '',
      ].join('\n'),
      'inv.yaml',
    );
    assert.deepEqual([...inv.vms.keys()], ['web-1', 'db.2']);
    assert.deepEqual(inv.vms.get('web-1'), {
      name: 'web-1',
      description: 'the web VM',
      pid: null,
      pidfile: '/run/web-1.pid',
      taps: [{ name: 'tap-web1', mac: '52:54:00:ab:cd:ef', model: 'virtio-net-pci', vhost: true }],
      ips: ['10.0.0.2', 'fd00::2'],
    });
    assert.deepEqual(inv.vms.get('db.2'), { name: 'db.2', description: null, pid: 4242, pidfile: null, taps: [], ips: [] });
  });

  test('every mistake is reported at its line and column, in plain words', () => {
    assert.deepEqual(
      problemsOf(
        [
          'vms:',
          '  web-1:',
          '    pid: abc',
          '    ip: [10.0.0.1]',
          '    taps:',
          '      - name: tap0',
          '        mac: "52:54:00:zz:00:01"',
          '    ips: [10.0.0.300, "fd00::2"]',
          '  "bad name!":',
          '    pidfile: run/x.pid',
          '',
        ].join('\n'),
      ),
      [
        'F:3:10: vms.web-1.pid: expected a process id (a positive integer), got "abc"',
        'F:4:5: vms.web-1: unknown key "ip" (expected one of: description, pid, pidfile, taps, ips); did you mean "ips"?',
        'F:7:14: vms.web-1.taps[0].mac: expected the guest MAC, like "52:54:00:12:34:56", got "52:54:00:zz:00:01"',
        'F:8:11: vms.web-1.ips[0]: expected an IPv4 or IPv6 address, got "10.0.0.300"',
        'F:9:3: vms: "bad name!" is not a VM name ebpfnet accepts (letters, digits, ".", "_", "-", starting with a letter or digit)',
        'F:10:14: vms["bad name!"].pidfile: expected the absolute path of a file holding the pid, got "run/x.pid"',
      ],
    );
    assert.deepEqual(problemsOf('vms:\n  web:\n    pid: 0\n    taps:\n      - mac: "52:54:00:00:00:01"\n        vhost: yes\n'), [
      'F:3:10: vms.web.pid: expected a process id (a positive integer), got 0',
      'F:5:9: vms.web.taps[0]: missing required key "name"',
      'F:6:16: vms.web.taps[0].vhost: expected true or false, got "yes"',
    ]);
    assert.deepEqual(problemsOf('vms:\n  web:\n    pid: 12\n    pidfile: /run/x.pid\n    taps:\n      - name: tap0\n      - name: tap0\n'), [
      'F:4:5: vms.web: give "pid" or "pidfile", not both',
      'F:7:15: vms.web.taps[1].name: tap "tap0" is listed twice',
    ]);
    assert.deepEqual(problemsOf('vms:\n  web:\n    taps: [ {name: tap0}\n'), [
      'F:3:11: YAML syntax error: this "[" list is never closed (add the closing "]", on the same line or indented under its key)',
    ]);
    assert.deepEqual(problemsOf('vms:\n  web: {}\n  web: {}\n'), [
      'F:3:3: YAML: duplicate key "web" (already set at line 2); each key may appear once per mapping',
    ]);
    assert.deepEqual(problemsOf('vms:\n  - web-1\n'), ['F:2:3: vms: expected a mapping of VM names to their pid, taps and ips, got a list']);
    assert.deepEqual(problemsOf(''), ['F:1:1: the file is empty: an inventory is a mapping with "vms:"']);
    assert.deepEqual(problemsOf('vms: {}\n---\nvms: {}\n'), [
      'F:2:1: YAML: an inventory file holds one YAML document; remove the "---" line that starts a second one',
    ]);
  });

  test('which file: --inventory, else $EBPFNET_INVENTORY, else the default, which may be absent', () => {
    assert.deepEqual(inventoryLocation('/x.yaml', { EBPFNET_INVENTORY: '/y.yaml' }), { path: '/x.yaml', explicit: true });
    assert.deepEqual(inventoryLocation(undefined, { EBPFNET_INVENTORY: '/y.yaml' }), { path: '/y.yaml', explicit: true });
    assert.deepEqual(inventoryLocation(undefined, {}), { path: DEFAULT_INVENTORY, explicit: false });
    const missing = join(dir, 'missing.yaml');
    assert.equal(loadInventory({ path: missing, explicit: false }), null);
    assert.throws(() => loadInventory({ path: missing, explicit: true }), (err: InventoryError) => {
      assert.deepEqual(err.problems, [{ file: missing, line: 1, column: 1, message: 'cannot read the inventory: no such file' }]);
      return true;
    });
  });
});

describe('VMs from the inventory', () => {
  before(cleanupLeftovers);

  test('a VM only the inventory knows: its process from the pid file, its tap on a real bridge, its IPs', async (t) => {
    const br = await linuxBridge(t);
    const tap = devName('t');
    t.after(() => sh(['ip', 'link', 'del', tap]).catch(() => undefined));
    await sh(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await sh(['ip', 'link', 'set', tap, 'master', br, 'up']);
    // Any process stands for the VM's process (a VMM QEMU discovery would not recognise).
    const vmm = spawn('sleep', ['600'], { stdio: 'ignore' });
    t.after(() => vmm.kill('SIGKILL'));
    const pidfile = join(dir, 'vmm.pid');
    writeFileSync(pidfile, `${vmm.pid}\n`);
    const name = vmName();
    const mac = guestMac();
    const file = inventoryFile(`vms:\n  ${name}:\n    pidfile: ${pidfile}\n    taps:\n      - name: ${tap}\n        mac: "${mac}"\n    ips: [203.0.113.10]\n`);

    const vm = await resolveVm(name, { inventory: file });
    assert.equal(vm.source, 'inventory');
    assert.equal(vm.state, 'running');
    assert.equal(vm.pid, vmm.pid);
    assert.equal(vm.taps.length, 1);
    const t0 = vm.taps[0]!;
    assert.equal(t0.name, tap);
    assert.equal(t0.ifindex, Number(sysfs(tap, 'ifindex')));
    assert.equal(t0.guestMac, mac);
    assert.equal(t0.hostMac, sysfs(tap, 'address'));
    assert.ok(t0.flags.includes('persist'), t0.flags.join(' '));
    assert.equal((t0.attachment as LinuxBridgeAttachment).bridge, br);
    assert.deepEqual(vm.ips, [{ address: '203.0.113.10', source: 'inventory' }]);
    // `sleep` names no vCPU threads: said, not guessed.
    assert.deepEqual(vm.vcpuThreads, []);
    assert.match(vm.notes.join('\n'), /vCPU threads .* are not named/);

    // The same VM through $EBPFNET_INVENTORY.
    assert.equal((await resolveVm(name, { env: { EBPFNET_INVENTORY: file } })).source, 'inventory');
  });

  test('an inventory VM whose process is gone: not running, with a note', async () => {
    const name = vmName();
    const file = inventoryFile(`vms:\n  ${name}:\n    pid: 4194305\n    taps: [{name: ${devName('t')}}]\n`);
    const vm = await resolveVm(name, { inventory: file });
    assert.equal(vm.state, 'not running');
    assert.equal(vm.pid, null);
    assert.equal(vm.taps[0]?.present, false);
    assert.deepEqual(vm.notes, ['process 4194305 is not running', `tap ${vm.taps[0]!.name} does not exist on this host`]);
  });

  test('IPs from the inventory join a VM another source found; unknown names list every source', async (t) => {
    const q = await startQemu(t);
    const only = vmName();
    const file = inventoryFile(`vms:\n  ${q.name}:\n    ips: [203.0.113.77]\n  ${only}: {}\n`);
    const vm = await resolveVm(q.name, { inventory: file });
    assert.equal(vm.source, 'qemu');
    assert.equal(vm.pid, q.pid);
    assert.deepEqual(vm.ips, [{ address: '203.0.113.77', source: 'inventory' }]);
    await assert.rejects(resolveVm('ebpfnet-none', { inventory: file }), (err: Error) => {
      // The QEMU VM the inventory also names is listed once, under the source that found it.
      // Where no libvirtd runs (the kernel lab), the message also says why libvirt was not asked.
      assert.match(err.message, new RegExp(`^no VM named "ebpfnet-none"; found: (.*\\(libvirt\\), )?(.*, )?${q.name}(, .*)? \\(qemu\\), ${only} \\(inventory\\)(; libvirt not asked: .+)?$`));
      return true;
    });
    // A broken inventory stops resolution, even of a VM another source knows.
    await assert.rejects(resolveVm(q.name, { inventory: inventoryFile('vms: [\n') }), InventoryError);
  });
});
