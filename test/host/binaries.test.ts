import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binaryVersion, debianPackageFor, findBinary, findFirstBinary, installHint, searchDirs } from '../../engine/host/binaries.js';

test('findBinary finds root tools in /usr/sbin even when PATH lacks sbin', async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/usr/bin:/bin';
  try {
    assert.ok(!searchDirs().slice(0, 2).includes('/usr/sbin'));
    assert.ok(searchDirs().includes('/usr/sbin'));
    assert.equal(await findBinary('tc'), '/usr/sbin/tc');
    assert.equal(await findBinary('bpftool'), '/usr/sbin/bpftool');
    // iproute2 installs ip in /bin (= /usr/bin on merged-/usr Debian), so PATH wins.
    assert.equal(await findBinary('ip'), '/usr/bin/ip');
  } finally {
    process.env.PATH = saved;
  }
});

test('findBinary returns null for a made-up name, a directory and a non-executable file', async () => {
  assert.equal(await findBinary('ebpfnet-no-such-binary-4711'), null);
  assert.equal(await findBinary(''), null);
  assert.equal(await findBinary('/usr'), null);
  assert.equal(await findBinary('/etc/os-release'), null);
  assert.equal(await findBinary('/usr/sbin/tc'), '/usr/sbin/tc');
});

test('findFirstBinary takes the first name that exists', async () => {
  assert.deepEqual(await findFirstBinary(['ebpfnet-no-such-binary-4711', 'tc']), { name: 'tc', path: '/usr/sbin/tc' });
  assert.equal(await findFirstBinary(['ebpfnet-no-such-binary-4711']), null);
});

test('binaryVersion reads the version line of real tools', async () => {
  assert.match((await binaryVersion('tc')) ?? '', /^tc utility, iproute2-\d/);
  assert.match((await binaryVersion('ip')) ?? '', /^ip utility, iproute2-\d/);
  assert.match((await binaryVersion('bpftool')) ?? '', /^bpftool v\d+\.\d+/);
  assert.match((await binaryVersion('/usr/sbin/bpftool')) ?? '', /^bpftool v\d+\.\d+/);
  assert.match((await binaryVersion('bpftrace')) ?? '', /^bpftrace v\d+\.\d+/);
  assert.match((await binaryVersion('ethtool')) ?? '', /^ethtool version \d/);
  assert.equal(await binaryVersion('ebpfnet-no-such-binary-4711'), null);
});

test('installHint names the Debian package, or says how to find it', () => {
  assert.equal(debianPackageFor('tc'), 'iproute2');
  assert.equal(installHint('tc'), 'apt-get install iproute2');
  assert.equal(installHint('pdftotext'), 'apt-get install poppler-utils');
  assert.equal(installHint('whatever', 'some-pkg'), 'apt-get install some-pkg');
  assert.match(installHint('ebpfnet-no-such-binary-4711'), /apt-file search bin\/ebpfnet-no-such-binary-4711/);
});
