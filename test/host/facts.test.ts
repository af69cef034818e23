import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem, uptime } from 'node:os';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { packageRoot, packageVersion } from '../../engine/package-info.js';
import { hostFacts, parseBootTime, parseOsRelease } from '../../engine/host/facts.js';

// dist/test/host/facts.test.js → the package root is three levels up.
const repoRoot = new URL('../../../', import.meta.url);

test('hostFacts reports this host', async () => {
  const f = await hostFacts();
  assert.equal(f.hostname, hostname());
  assert.equal(f.kernelRelease, execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
  assert.equal(f.kernelRelease, release());
  assert.equal(f.kernelVersion, execFileSync('uname', ['-v'], { encoding: 'utf8' }).trim());
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  assert.ok(pretty);
  assert.equal(f.os, pretty);
  assert.equal(f.cpus, cpus().length);
  assert.ok(f.cpus >= 1);
  assert.equal(f.memoryBytes, totalmem());
  assert.equal(f.nodeVersion, process.version);
  const pkg = JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')) as { version: string };
  assert.equal(f.ebpfnetVersion, pkg.version);
  assert.equal(f.uid, process.getuid!());
  assert.equal(f.root, process.geteuid!() === 0);
  const bootFromUptime = Date.now() - uptime() * 1000;
  assert.ok(Math.abs(Date.parse(f.bootTime) - bootFromUptime) < 5000, `${f.bootTime} vs uptime`);
  assert.deepEqual(JSON.parse(JSON.stringify(f)), f);
});

test('packageRoot finds the package root from the compiled module', () => {
  assert.equal(packageRoot(), new URL('.', repoRoot).pathname.replace(/\/$/, ''));
  assert.equal(packageVersion(), JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')).version);
});

test('parseOsRelease and parseBootTime', () => {
  const osr = parseOsRelease('NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\nPRETTY_NAME=\'Deb "x"\'\n# comment\n');
  assert.deepEqual(osr, { NAME: 'Debian GNU/Linux', ID: 'debian', VERSION_ID: '12', PRETTY_NAME: 'Deb "x"' });
  assert.equal(parseBootTime('cpu  1 2 3\nbtime 1764081784\nprocesses 5\n'), 1764081784);
  assert.equal(parseBootTime('cpu 1 2 3\n'), null);
});
