// The serve configuration: a good file becomes routes with loaded runbooks and typed inputs;
// every kind of mistake is reported at its line and column, all at once, and `serve --check`
// says so through the CLI with exit code 2.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../probes/index.js';
import { loadServeConfig, ServeConfigError } from '../../engine/serve/config.js';
import { parseListen } from '../../engine/serve/listen.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-serve-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const catalog = probeRegistry();

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problems(path: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadServeConfig(path, { catalog, env });
  } catch (err) {
    assert.ok(err instanceof ServeConfigError, String(err));
    return err.problems.map((p) => `${p.line}:${p.column}: ${p.message}`);
  }
  assert.fail('expected problems');
}

const GOOD = `listen: 127.0.0.1:9999
data_dir: /var/lib/ebpfnet-test
auth:
  token: a-token-of-sixteen-chars
cooldown: 10m
formats: [html, pdf]
routes:
  - name: vm-packet-loss
    match: { alertname: VMPacketLoss }
    match_re: { severity: "critical|page" }
    runbook: vm-loss
    inputs:
      vm: { label: vm }
      duration: 3s
  - name: host
    match: { alertname: HostDrops }
    runbook: host-drops
`;

describe('serve configuration', () => {
  it('loads routes, their runbooks and typed inputs, with defaults for the rest', () => {
    const config = loadServeConfig(file('good.yaml', GOOD), { catalog, env: {} });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 9999, display: '127.0.0.1:9999', loopback: true });
    assert.equal(config.cooldownMs, 600_000);
    assert.equal(config.queueLimit, 50);
    assert.equal(config.maxBodyBytes, 1024 * 1024);
    assert.deepEqual(config.formats, ['html', 'pdf']);
    assert.equal(config.auth.token, 'a-token-of-sixteen-chars');
    assert.equal(config.routes.length, 2);
    const [loss, host] = config.routes;
    assert.equal(loss!.runbook.id, 'vm-loss');
    assert.deepEqual(loss!.inputs, { vm: { label: 'vm' }, duration: { value: '3s' } });
    assert.ok(loss!.matchRe.severity!.test('page') && !loss!.matchRe.severity!.test('paged'), 'match_re is anchored');
    assert.equal(host!.runbook.id, 'host-drops');
  });

  it('takes the token from EBPFNET_TOKEN, or from a file, and refuses to run without any', () => {
    const noAuth = file('noauth.yaml', GOOD.replace(/auth:\n  token: .*\n/, ''));
    assert.equal(loadServeConfig(noAuth, { catalog, env: { EBPFNET_TOKEN: 'from-the-environment-1' } }).auth.token, 'from-the-environment-1');
    assert.deepEqual(problems(noAuth), [
      '1:1: no credentials: every request must be authenticated; set auth.token, auth.token_file or auth.basic, or EBPFNET_TOKEN',
    ]);
    const secret = file('token.txt', 'token-from-a-file-0001\n');
    const fromFile = file('tokenfile.yaml', GOOD.replace(/token: .*/, `token_file: ${secret}`));
    assert.equal(loadServeConfig(fromFile, { catalog, env: {} }).auth.token, 'token-from-a-file-0001');
    const missing = file('missingfile.yaml', GOOD.replace(/token: .*/, `token_file: ${dir}/absent`));
    assert.deepEqual(problems(missing), [`4:15: auth.token_file: cannot read ${dir}/absent: ENOENT`]);
  });

  it('reports shape mistakes at their place, with what was expected', () => {
    const text = `auth:
  token: short
routes:
  - name: Bad_Name
    match: { alertname: X }
    runbok: vm-loss
`;
    assert.deepEqual(problems(file('shape.yaml', text)), [
      '2:10: auth.token: too short: expected a bearer token of at least 16 characters',
      '4:11: routes[0].name: expected a route name of lowercase words joined by "-" (like "vm-packet-loss"), got "Bad_Name"',
      '6:5: routes[0]: unknown key "runbok" (expected one of: name, match, match_re, runbook, inputs); did you mean "runbook"?',
    ]);
  });

  it('reports meaning mistakes all at once: runbooks, regular expressions, inputs, duplicates', () => {
    const text = `listen: nowhere
auth:
  token: a-token-of-sixteen-chars
routes:
  - name: one
    match: { alertname: A }
    runbook: no-such-runbook
  - name: one
    match_re: { vm: "web(" }
    runbook: vm-loss
    inputs:
      durations: 3s
      duration: soon
  - name: three
    runbook: host-drops
`;
    assert.deepEqual(problems(file('meaning.yaml', text)), [
      '1:9: listen: expected HOST:PORT (like 127.0.0.1:9465, or [::1]:9465), got "nowhere"',
      '7:14: routes[0].runbook: unknown runbook "no-such-runbook" (known: host-drops, vm-latency, vm-loss; see `ebpfnet runbooks list`)',
      '8:11: routes[1].name: route "one" is already defined (routes/0)',
      '9:21: routes[1].match_re.vm: not a regular expression: /^(?:web()$/: Unterminated group',
      '10:14: routes[1].runbook: runbook vm-loss needs input "vm", which has no default: map it under inputs, e.g. vm: {label: vm}',
      '12:7: routes[1].inputs: runbook vm-loss has no input "durations" (it takes vm, duration, min_drops, min_loss)',
      '13:17: routes[1].inputs.duration: input "duration" of vm-loss: expected a duration like 500ms, 5s or 2m',
      '14:5: routes[2]: a route needs match or match_re: one that takes every alert would diagnose each of them',
    ]);
  });

  it('parses listen addresses, IPv6 in brackets, and knows loopback', () => {
    assert.deepEqual(parseListen('[::1]:9465'), { host: '::1', port: 9465, display: '[::1]:9465', loopback: true });
    assert.equal((parseListen('0.0.0.0:80') as { loopback: boolean }).loopback, false);
    assert.match(String(parseListen('127.0.0.1:70000')), /out of range/);
    assert.match(String(parseListen('[10.0.0.1]:80')), /not an IPv6 address/);
  });

  it('the shipped example (examples/serve.yaml) is a valid configuration', () => {
    // Its secrets live under /etc/ebpfnet; here they are files of this test.
    const example = readFileSync(join(packageRoot(), 'examples', 'serve.yaml'), 'utf8').replaceAll('/etc/ebpfnet/', `${dir}/`);
    writeFileSync(join(dir, 'token'), 'example-token-0123456789\n');
    writeFileSync(join(dir, 'grafana-hmac'), 'example-hmac-secret-01\n');
    const config = loadServeConfig(file('example.yaml', example), { catalog, env: {} });
    assert.deepEqual(config.routes.map((r) => `${r.name}:${r.runbook.id}`), ['vm-packet-loss:vm-loss', 'vm-latency:vm-latency', 'host-drops:host-drops']);
    assert.equal(config.auth.token, 'example-token-0123456789');
    assert.equal(config.grafanaHmac?.timestampHeader, 'X-Grafana-Alerting-Signature-Timestamp');
    assert.equal(config.notify?.retries, 5);
    assert.equal(config.publicUrl, 'http://hv1.example.com:9465');
  });

  it('serve --check through the CLI: ok with the routes, or every problem and exit code 2', () => {
    const ok = runCli(['serve', '--config', join(dir, 'good.yaml'), '--check']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /ok \(2 routes: vm-packet-loss → vm-loss, host → host-drops\)/);
    const bad = runCli(['serve', '--config', join(dir, 'meaning.yaml'), '--check']);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim().split('\n').length, 8, bad.stderr);
    assert.match(bad.stderr, /meaning\.yaml:7:14: routes\[0\]\.runbook: unknown runbook/);
    const absent = runCli(['serve', '--config', join(dir, 'absent.yaml'), '--check']);
    assert.equal(absent.status, 2);
    assert.match(absent.stderr, /absent\.yaml:1:1: cannot read the configuration/);
  });
});
