// `ebpfnet selftest` through the real CLI: known drops in, the same counts out; doctor shows it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { SelftestResult } from '../../engine/host/selftest-state.js';
import { CLI, runCli, startCli } from '../helpers/cli.js';

const stateDir = mkdtempSync(join(tmpdir(), 'ebpfnet-selftest-state-'));
after(() => rmSync(stateDir, { recursive: true, force: true }));
const env = { EBPFNET_STATE_DIR: stateDir };

function leftovers(pid: number): string {
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  const mine = new RegExp(`ebpfnet-selftest-${pid}-|ebs${pid.toString(36)}x`);
  return [...ns.split('\n'), ...links.split('\n')].filter((l) => mine.test(l)).join('\n');
}

describe('selftest', () => {
  test('counts exactly the injected drops, stores the result, and doctor shows it', () => {
    const r = runCli(['selftest', '--json'], env);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const res = JSON.parse(r.stdout) as SelftestResult;
    assert.equal(res.status, 'ok');
    const byId = new Map(res.checks.map((c) => [c.id, c]));
    assert.deepEqual([...byId.keys()], ['netfilter', 'mtu']);
    assert.deepEqual(
      [byId.get('netfilter')!.reason, byId.get('netfilter')!.expected, byId.get('netfilter')!.counted, byId.get('netfilter')!.verdict],
      ['NETFILTER_DROP', 20, 20, 'ok'],
    );
    assert.deepEqual([byId.get('mtu')!.reason, byId.get('mtu')!.expected, byId.get('mtu')!.counted, byId.get('mtu')!.verdict], ['NOT_SPECIFIED', 10, 10, 'ok']);
    assert.equal(res.method, 'tp_btf');
    assert.equal(res.attach.length, 1);
    assert.ok(res.attach[0]!.attachMs >= 0 && res.attach[0]!.attachMs < 1000);
    assert.ok(res.durationMs < 15_000, `took ${res.durationMs} ms`);
    assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'selftest.json'), 'utf8')), res);

    const d = runCli(['doctor', '--json'], env);
    assert.equal(d.status, 0, d.stderr);
    const check = (JSON.parse(d.stdout) as { checks: Array<{ id: string; status: string; detail: string }> }).checks.find((c) => c.id === 'selftest');
    assert.ok(check, 'doctor has a selftest check');
    assert.equal(check.status, 'ok');
    assert.match(check.detail, /^ok \d+s ago on .*NETFILTER_DROP 20\/20, NOT_SPECIFIED 10\/10 \(tp_btf\)$/);
    assert.match(runCli(['doctor'], env).stdout, /^selftest\s+ok\s+ok \d+s ago/m);
  });

  test("doctor does not take a result of another kernel for this one's", () => {
    const dir = join(stateDir, 'other-kernel');
    mkdirSync(dir, { recursive: true });
    const other: SelftestResult = { version: 1, status: 'ok', at: new Date().toISOString(), kernel: '5.10.0-99-amd64', durationMs: 1, checks: [], other: {}, method: 'kprobe', attach: [] };
    writeFileSync(join(dir, 'selftest.json'), JSON.stringify(other));
    const d = runCli(['doctor', '--json'], { EBPFNET_STATE_DIR: dir });
    const check = (JSON.parse(d.stdout) as { checks: Array<{ id: string; status: string; detail: string }> }).checks.find((c) => c.id === 'selftest')!;
    assert.equal(check.status, 'warn');
    assert.equal(check.detail, `last run on kernel 5.10.0-99-amd64, not this one (${release()}): run ebpfnet selftest`);
  });

  test('the table shows checks, verdicts and the attach method', () => {
    const r = runCli(['selftest'], { EBPFNET_STATE_DIR: join(stateDir, 'table') });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^CHECK\s+REASON\s+EXPECTED\s+COUNTED\s+VERDICT$/m);
    assert.match(r.stdout, /^netfilter\s+NETFILTER_DROP @ nft_do_chain\s+20\s+20\s+ok$/m);
    assert.match(r.stdout, /^mtu\s+NOT_SPECIFIED @ __dev_forward_skb2\s+10\s+10\s+ok$/m);
    assert.match(r.stdout, /^attach: drops_tp_btf via tp_btf \(tp_btf\/kfree_skb\) in [0-9.]+ ms, load [0-9.]+ ms against vmlinux BTF$/m);
  });

  test('Ctrl-C tears the topology down', async () => {
    const { child, done } = startCli(['selftest']);
    // Until its topology exists: Node takes seconds to start under the kernel lab's emulated CPU.
    for (const until = Date.now() + 60_000; leftovers(child.pid!) === '' && Date.now() < until; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.notEqual(leftovers(child.pid!), '', 'the topology exists while it runs');
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.status, 130, r.stderr);
    assert.match(r.stderr, /interrupted by SIGINT; topology removed/);
    assert.equal(leftovers(child.pid!), '');
  });

  test('not root: one clear line, exit 3', () => {
    const r = (() => {
      try {
        execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, 'selftest'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          cwd: '/tmp',
          env: { ...process.env, ...env },
        });
        return { status: 0, stderr: '' };
      } catch (err) {
        const e = err as { status: number; stderr: string };
        return { status: e.status, stderr: e.stderr };
      }
    })();
    assert.equal(r.status, 3);
    assert.equal(r.stderr, 'ebpfnet: selftest needs root (it creates a network namespace and loads BPF): run it with sudo\n');
  });
});
