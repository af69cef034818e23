// Symbolisation from a kallsyms-format file: the nearest text symbol below each address,
// module names kept, data symbols and addresses past any function's end left as they are.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { functionRanges, symbolise } from '../../engine/host/kallsyms.js';

test('symbolise names the function and offset of each address, from any kallsyms file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-kallsyms-'));
  try {
    const file = join(dir, 'kallsyms');
    // Unsorted on purpose (module symbols come after the kernel's), with a data symbol between.
    writeFileSync(
      file,
      [
        'ffffffffc0a00000 t ovs_dp_process_packet\t[openvswitch]',
        'ffffffffc0a00800 t ovs_vport_send\t[openvswitch]',
        'ffffffff81000000 T _stext',
        'ffffffff81a00100 T nft_do_chain',
        'ffffffff81a00180 D some_data',
        'ffffffff81a00400 t nf_hook_slow',
        '0000000000000000 T zero_is_skipped',
        '',
      ].join('\n'),
    );
    const got = await symbolise(['0xffffffff81a00150', '0xffffffff81a00400', '0xffffffffc0a00010', '0xffffffff81000000', '0xffffffffff000000'], file);
    assert.deepEqual(got, {
      '0xffffffff81a00150': 'nft_do_chain+0x50',
      '0xffffffff81a00400': 'nf_hook_slow+0x0',
      '0xffffffffc0a00010': 'ovs_dp_process_packet+0x10 [openvswitch]',
      '0xffffffff81000000': '_stext+0x0',
      '0xffffffffff000000': '0xffffffffff000000',
    });
    // A range reaches the next function (past data symbols); a module's function is asked as
    // `name [module]`; the last function has no known end.
    assert.deepEqual(await functionRanges(['nft_do_chain', 'nf_hook_slow', 'missing', 'ovs_dp_process_packet', 'ovs_dp_process_packet [openvswitch]', 'ovs_vport_send [openvswitch]'], file), [
      { name: 'nft_do_chain', lo: 0xffffffff81a00100n, hi: 0xffffffff81a00400n },
      { name: 'nf_hook_slow', lo: 0xffffffff81a00400n, hi: 0xffffffffc0a00000n },
      { name: 'ovs_dp_process_packet [openvswitch]', lo: 0xffffffffc0a00000n, hi: 0xffffffffc0a00800n },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a module loaded after the table was read is named, not lent to the symbol before it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-kallsyms-'));
  try {
    const file = join(dir, 'kallsyms');
    const modules = join(dir, 'modules');
    writeFileSync(file, ['ffffffffc0a00000 t br_dev_xmit\t[bridge]', ''].join('\n'));
    writeFileSync(modules, 'bridge 311296 0 - Live 0xffffffffc0a00000\n');
    const addr = '0xffffffffc0a10040';
    // Read before the module loads, the nearest symbol below is all there is.
    assert.deepEqual(await symbolise([addr], file, modules), { [addr]: 'br_dev_xmit+0x10040 [bridge]' });
    // sch_htb loads (the first `tc qdisc add ... htb`): kallsyms and the module list both change.
    writeFileSync(file, ['ffffffffc0a00000 t br_dev_xmit\t[bridge]', 'ffffffffc0a10000 t htb_enqueue\t[sch_htb]', ''].join('\n'));
    writeFileSync(modules, 'bridge 311296 0 - Live 0xffffffffc0a00000\nsch_htb 40960 1 - Live 0xffffffffc0a10000\n');
    assert.deepEqual(await symbolise([addr], file, modules), { [addr]: 'htb_enqueue+0x40 [sch_htb]' });
    // A use count changing is no new module: the table read is kept.
    writeFileSync(file, '');
    writeFileSync(modules, 'bridge 311296 3 - Live 0xffffffffc0a00000\nsch_htb 40960 2 - Live 0xffffffffc0a10000\n');
    assert.deepEqual(await symbolise([addr], file, modules), { [addr]: 'htb_enqueue+0x40 [sch_htb]' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
