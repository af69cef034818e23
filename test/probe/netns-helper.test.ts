import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { canBuildTopologies, cleanupLeftovers, createVethPair, run } from '../helpers/netns.js';

const cannot = await canBuildTopologies();

/** A pid no process has: the kernel's pid_max is at most 4194304. */
function deadPid(): number {
  for (let pid = 4_194_000; pid < 4_194_304; pid++) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
  throw new Error('no free pid found');
}

describe('netns test helper', () => {
  // CI runs as root with iproute2 and ping installed: a missing tool is a failure, not a skip.
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));
  it('builds a pair whose host side is in the root namespace and tears it down', async (t) => {
    const pair = await createVethPair(t, { hostMtu: 1400, peerMtu: 1300 });
    assert.ok(existsSync(`/sys/class/net/${pair.hostDev}`));
    assert.ok(!existsSync(`/sys/class/net/${pair.peerDev}`), 'the peer is not in the root namespace');
    assert.match(pair.subnet, /^10\.(2[0-4]\d)\.\d+\.0\/24$/);
    const inside = JSON.parse((await pair.inNs(['ip', '-j', 'addr', 'show', 'dev', pair.peerDev])).stdout) as Array<{
      mtu: number;
      addr_info: Array<{ local: string }>;
    }>;
    assert.equal(inside[0]!.mtu, 1300);
    assert.ok(inside[0]!.addr_info.some((a) => a.local === pair.peerIp));
    const p = await pair.ping({ count: 3, interval: 0.02 });
    assert.equal(p.received, 3);
    await pair.teardown();
    assert.ok(!existsSync(`/sys/class/net/${pair.hostDev}`));
    const ns = await run(['ip', 'netns', 'list']);
    assert.ok(!ns.stdout.includes(pair.ns));
    await pair.teardown(); // twice is fine
  });

  it("removes a crashed run's leftovers but not a live process's topology", async (t) => {
    const mine = await createVethPair(t);
    const pid = deadPid();
    const ns = `ebpfnet-test-${pid}-0`;
    const dev = `ebt${pid.toString(36)}x0h`;
    t.after(async () => {
      await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
      await run(['ip', 'link', 'del', dev]).catch(() => undefined);
    });
    await run(['ip', 'netns', 'add', ns]);
    await run(['ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `ebt${pid.toString(36)}x0p`]);
    const removed = await cleanupLeftovers();
    assert.ok(removed.includes(`netns ${ns}`), JSON.stringify(removed));
    assert.ok(removed.includes(`link ${dev}`), JSON.stringify(removed));
    assert.ok(!existsSync(`/sys/class/net/${dev}`));
    assert.ok(existsSync(`/sys/class/net/${mine.hostDev}`), 'a running process keeps its topology');
  });
});
