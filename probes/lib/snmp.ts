// The kernel's protocol counters as /proc/net/snmp, snmp6 and netstat print them (net.path reads
// fragmentation and PMTU counters there, net.defrag its reassembly counters).

/**
 * The Ip: counters of /proc/net/snmp, the Ip6* ones of snmp6, and the TcpExt: ones of
 * /proc/net/netstat (as `TcpExt.<name>`).
 */
export function parseSnmp(snmp: string, snmp6: string, netstat = ''): Map<string, number> {
  const out = new Map<string, number>();
  const pairs = (text: string, section: string, prefix: string) => {
    const lines = text.split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      const head = lines[i]!.trim().split(/\s+/);
      const vals = lines[i + 1]!.trim().split(/\s+/);
      if (head[0] !== section || vals[0] !== section || !/^\d/.test(vals[1] ?? '')) continue;
      head.slice(1).forEach((k, j) => {
        const v = Number(vals[j + 1]);
        if (Number.isFinite(v)) out.set(`${prefix}${k}`, v);
      });
      i++;
    }
  };
  pairs(snmp, 'Ip:', '');
  pairs(netstat, 'TcpExt:', 'TcpExt.');
  for (const line of snmp6.split('\n')) {
    const m = /^(Ip6\w+)\s+(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
