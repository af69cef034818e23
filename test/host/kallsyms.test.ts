// Symbolisation from a kallsyms-format file: the nearest text symbol below each address,
// module names kept, data symbols and addresses past any function's end left as they are.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { symbolise } from '../../engine/host/kallsyms.js';

test('symbolise names the function and offset of each address, from any kallsyms file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-kallsyms-'));
  try {
    const file = join(dir, 'kallsyms');
    // Unsorted on purpose (module symbols come after the kernel's), with a data symbol between.
    writeFileSync(
      file,
      [
        'ffffffffc0a00000 t ovs_dp_process_packet\t[openvswitch]',
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
