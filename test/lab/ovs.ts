// Open vSwitch on the kernel datapath (`system`, as production hypervisors run it) where this
// kernel has openvswitch.ko, else on the userspace (`netdev`) datapath; the machine has no init
// system, so the lab starts ovsdb-server and ovs-vswitchd itself.
//
//   const ovs = await startOvs();                   // or reuses daemons already running
//   const br = await createOvsBridge(t, newLabName().dev('b'));
//   await br.addPort(tap);                          // a VM's tap or a veth end
//   await br.addFlow('priority=100,icmp,actions=drop');   // inject a fault
//   await br.teardown(); await ovs.stop();          // stop() stops only what it started
//
// The daemons use Debian's standard places (db /etc/openvswitch/conf.db, sockets and
// pidfiles in /var/run/openvswitch, logs in /var/log/openvswitch), as on a real host, so
// that ovs-vsctl, ovs-appctl and ebpfnet's OVS probes find them without options. One
// userspace datapath per host anyway: every netdev datapath owns a tap named "ovs-netdev".
//
// ovsDatapath() is what bridges get unless a test asks: `system` in the kernel lab, `netdev` on a
// kernel without the module (this project's CI machine).
//
// Ports: devices on a netdev bridge are added with the default type ("system"). The
// userspace datapath then reads and writes them through an AF_PACKET socket, which is what
// passes traffic for a tap that QEMU holds open and for a veth end. (type=tap would make OVS
// open /dev/net/tun itself and fail on a tap QEMU already has; type=internal creates a new
// tap.) The bridge's own internal port, a tap named after the bridge, stays down, unless the
// host keeps IPv6 there (hostIpv6: up, with a link-local address only).
import { mkdir, readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { disableIpv6, type Bridge, type BridgeOptions } from './bridge.js';
import { isAlive, killAndWait } from './names.js';
import type { TeardownHost } from '../helpers/netns.js';
import { run } from '../helpers/netns.js';

export const OVS_RUN_DIR = '/var/run/openvswitch';
export const OVS_DB = '/etc/openvswitch/conf.db';
export const OVS_DB_SOCK = `${OVS_RUN_DIR}/db.sock`;
const OVS_LOG_DIR = '/var/log/openvswitch';
const OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
type Daemon = 'ovsdb-server' | 'ovs-vswitchd';

export interface OvsDaemons {
  /** Daemons this call started (the others were running already). */
  readonly started: Daemon[];
  /** Stops the daemons this call started, leaving the others running. */
  stop(): Promise<void>;
}

export interface OvsPortStats {
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
}

export interface OvsBridgeOptions extends BridgeOptions {
  /** Default ovsDatapath(). */
  datapath?: OvsDatapathType;
}

export interface OvsBridge extends Bridge {
  readonly kind: 'ovs';
  readonly datapath: OvsDatapathType;
  /** ovs-ofctl add-flow on this bridge, e.g. 'priority=100,icmp,nw_dst=10.0.0.2,actions=drop'. */
  addFlow(flow: string): Promise<void>;
  /** ovs-ofctl del-flows, all flows or those matching (the NORMAL flow comes back on teardown only). */
  delFlows(match?: string): Promise<void>;
  /** Counters of one port as the datapath keeps them now (ovs-ofctl dump-ports). */
  portStats(dev: string): Promise<OvsPortStats>;
}

export type OvsDatapathType = 'system' | 'netdev';

/**
 * The datapath this kernel serves: `system` once openvswitch.ko is (or can be) loaded, else
 * `netdev`. Asked when a bridge is made, not on import: loading the module (and the conntrack
 * modules it needs) is no business of tests that make no bridge.
 */
export function ovsDatapath(): OvsDatapathType {
  if (!existsSync('/sys/module/openvswitch')) spawnSync('modprobe', ['-q', 'openvswitch'], { stdio: 'ignore' });
  return existsSync('/sys/module/openvswitch') ? 'system' : 'netdev';
}

/** Whether the OVS tools are installed; null when they are, else what to install. */
export async function canRunOvs(): Promise<string | null> {
  for (const bin of ['ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl', 'ovsdb-tool']) {
    const r = await execa(bin, ['--version'], { reject: false, stdin: 'ignore' });
    if (r.exitCode !== 0) return `needs ${bin} (apt-get install openvswitch-switch)`;
  }
  return null;
}

/** Starts ovsdb-server and ovs-vswitchd unless they run already (creating the db if missing). */
export async function startOvs(): Promise<OvsDaemons> {
  const missing = await canRunOvs();
  if (missing) throw new Error(`Open vSwitch: ${missing}`);
  await mkdir(OVS_RUN_DIR, { recursive: true });
  await mkdir(OVS_LOG_DIR, { recursive: true });
  const started: Daemon[] = [];
  const pids: number[] = [];
  try {
    if (!(await runningPid('ovsdb-server'))) {
      if (!existsSync(OVS_DB)) {
        await run(['ovsdb-tool', 'create', OVS_DB, OVS_SCHEMA]);
      } else if ((await run(['ovsdb-tool', 'needs-conversion', OVS_DB, OVS_SCHEMA])).stdout.trim() === 'yes') {
        await run(['ovsdb-tool', 'convert', OVS_DB, OVS_SCHEMA]);
      }
      // --detach returns once the socket listens.
      await run(['ovsdb-server', OVS_DB, `--remote=punix:${OVS_DB_SOCK}`, `--pidfile=${OVS_RUN_DIR}/ovsdb-server.pid`,
        '--detach', '--no-chdir', `--log-file=${OVS_LOG_DIR}/ovsdb-server.log`]);
      started.push('ovsdb-server');
      pids.push((await runningPid('ovsdb-server')) ?? 0);
      await run(['ovs-vsctl', '--no-wait', 'init']);
    }
    if (!(await runningPid('ovs-vswitchd'))) {
      // --detach returns once it has read the database and configured its bridges.
      await execa('ovs-vswitchd', [`unix:${OVS_DB_SOCK}`, `--pidfile=${OVS_RUN_DIR}/ovs-vswitchd.pid`,
        '--detach', '--no-chdir', `--log-file=${OVS_LOG_DIR}/ovs-vswitchd.log`], { stdin: 'ignore', timeout: 30_000 });
      started.push('ovs-vswitchd');
      pids.push((await runningPid('ovs-vswitchd')) ?? 0);
    }
  } catch (err) {
    for (const pid of pids.reverse()) if (pid) await killAndWait(pid);
    throw err;
  }
  return {
    started,
    async stop() {
      // vswitchd before the db server, the reverse of starting.
      for (const pid of pids.splice(0).reverse()) if (pid) await killAndWait(pid);
    },
  };
}

/** The pid of a running OVS daemon (from its pidfile), or null. */
export async function runningPid(daemon: Daemon): Promise<number | null> {
  const pid = Number((await readFile(`${OVS_RUN_DIR}/${daemon}.pid`, 'utf8').catch(() => '')).trim());
  if (!pid || !isAlive(pid)) return null;
  const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
  return comm === daemon ? pid : null;
}

/** Runs ovs-vsctl with a timeout, so that a missing ovs-vswitchd fails rather than hangs. */
export function vsctl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(['ovs-vsctl', '--timeout=15', ...args]);
}

/**
 * A bridge on `opts.datapath` (default ovsDatapath()) with the NORMAL (learning switch) flow. Needs the daemons
 * (startOvs). Registers its teardown with `t.after`. `mtu` goes to the internal port
 * (mtu_request), which then stays at it whatever its ports have.
 */
export async function createOvsBridge(t: TeardownHost | undefined, name: string, opts: OvsBridgeOptions = {}): Promise<OvsBridge> {
  const datapath = opts.datapath ?? ovsDatapath();
  const teardown = async () => {
    await execa('ovs-vsctl', ['--timeout=15', '--if-exists', 'del-br', name], { reject: false, stdin: 'ignore' });
  };
  t?.after(teardown);
  try {
    await vsctl(['add-br', name, '--', 'set', 'bridge', name, `datapath_type=${datapath}`]);
    if (opts.mtu) await vsctl(['set', 'interface', name, `mtu_request=${opts.mtu}`]);
    if (opts.hostIpv6) await run(['ip', 'link', 'set', name, 'up']);
    else await disableIpv6(name);
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    kind: 'ovs',
    datapath,
    name,
    hostIpv6: !!opts.hostIpv6,
    async addPort(dev) {
      if (!opts.hostIpv6) await disableIpv6(dev);
      await run(['ip', 'link', 'set', dev, 'up']);
      await vsctl(['add-port', name, dev]);
    },
    async delPort(dev) {
      await execa('ovs-vsctl', ['--timeout=15', '--if-exists', 'del-port', name, dev], { reject: false, stdin: 'ignore' });
    },
    async addFlow(flow) {
      await run(['ovs-ofctl', 'add-flow', name, flow]);
    },
    async delFlows(match) {
      await run(['ovs-ofctl', 'del-flows', name, ...(match ? [match] : [])]);
    },
    async portStats(dev) {
      return parseDumpPorts((await run(['ovs-ofctl', 'dump-ports', name, dev])).stdout);
    },
    teardown,
  };
}

/**
 * Parses one port of `ovs-ofctl dump-ports`:
 *   port  1: rx pkts=12, bytes=1176, drop=0, errs=0, frame=0, over=0, crc=0
 *            tx pkts=10, bytes=980, drop=0, errs=0, coll=0
 * ("?" stands for a counter the port does not keep: read as 0.)
 */
export function parseDumpPorts(text: string): OvsPortStats {
  const side = (dir: 'rx' | 'tx') => {
    const m = new RegExp(`${dir} pkts=(\\d+|\\?), bytes=(\\d+|\\?), drop=(\\d+|\\?)`).exec(text);
    if (!m) throw new Error(`ovs-ofctl dump-ports: no ${dir} counters in: ${text.trim()}`);
    return m.slice(1, 4).map((v) => (v === '?' ? 0 : Number(v))) as [number, number, number];
  };
  const [rxPackets, rxBytes, rxDropped] = side('rx');
  const [txPackets, txBytes, txDropped] = side('tx');
  return { rxPackets, rxBytes, rxDropped, txPackets, txBytes, txDropped };
}

/**
 * How many times ovs-vswitchd has flushed its datapaths' megaflows (coverage counter
 * `dpif_flow_flush`): deleting any bridge does it, so a test that counts megaflow packets on
 * the shared OVS can tell whether another lab disturbed it. OVS folds a thread's counters into
 * this total about once a second.
 */
export async function megaflowFlushes(): Promise<number> {
  const r = await execa('ovs-appctl', ['--timeout=10', 'coverage/read-counter', 'dpif_flow_flush'], { reject: false, stdin: 'ignore' });
  return Number(String(r.stdout).trim()) || 0;
}

/** Deletes the megaflows whose packets come in on `port` (by ufid), leaving every other flow alone. Returns how many. */
export async function deleteMegaflowsFrom(port: string): Promise<number> {
  const dps = String((await execa('ovs-appctl', ['--timeout=10', 'dpctl/dump-dps'], { reject: false, stdin: 'ignore' })).stdout).split('\n').filter(Boolean);
  let deleted = 0;
  for (const dp of dps) {
    const dump = await execa('ovs-appctl', ['--timeout=10', 'dpctl/dump-flows', '-m', dp], { reject: false, stdin: 'ignore' });
    for (const line of String(dump.stdout).split('\n')) {
      const ufid = /^(ufid:[0-9a-f-]+),/.exec(line.trim())?.[1];
      if (!ufid || !line.includes(`in_port(${port})`)) continue;
      const r = await execa('ovs-appctl', ['--timeout=10', 'dpctl/del-flow', dp, ufid], { reject: false, stdin: 'ignore' });
      if (r.exitCode === 0) deleted++;
    }
  }
  return deleted;
}
