// The scope classifier the OVS, nftables and conntrack probes share (probes/vm-scope.ts), and
// OVS's readings of it: megaflow keys as `ovs-appctl dpctl/dump-flows -m` prints them and
// OpenFlow matches as `ovs-ofctl dump-flows` prints them (the lab tests in ovs-scope.test.ts
// read real ones; these are written here to reach the masks and fields the lab's rules do not).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { megaflowScope, ofRuleScope, parseFlowKey, type OvsVm } from '../../probes/lib/ovs.js';
import { addrTerm, addrText, addrVerdict, bothScope, devVerdict, parseAddr, rangeTerm, sameAddr, scopeOf, vmIdentityOf, widestScope } from '../../probes/lib/vm-scope.js';

const vm = { ...vmIdentityOf({ vm_ips: ['10.0.0.2', 'FD00:0::2'], vm_macs: ['52:54:00:AA:00:02'], vm_devs: ['tap2'] }), bridges: ['br0'] };

describe('vm-scope: addresses', () => {
  it('parses IPv4, IPv6 (compressed, embedded IPv4, zone) and MACs, and prints them back', () => {
    assert.deepEqual(vm.ips, ['10.0.0.2', 'fd00::2']);
    assert.deepEqual(vm.macs, ['52:54:00:aa:00:02']);
    assert.equal(addrText(parseAddr('::ffff:10.0.0.2')!), '::ffff:10.0.0.2');
    assert.ok(sameAddr('::ffff:10.0.0.2', '0:0:0:0:0:ffff:a00:2'));
    assert.ok(sameAddr('fe80::1%eth0', 'FE80:0:0::1'));
    assert.equal(parseAddr('10.0.0.256'), null);
    assert.equal(parseAddr('52:54:00:aa:00'), null);
    assert.deepEqual(vmIdentityOf({ vm_ips: '10.0.0.2/24, fd00::2/64' }).ips, ['10.0.0.2', 'fd00::2'], 'as ip addr and domifaddr print them');
    assert.throws(() => vmIdentityOf({ vm_ips: ['10.0.0.2', 'web-1'] }), /^Error: vm_ips: "web-1" is not an IPv4 or IPv6 address \(give each like 10\.0\.0\.2 or fd00::2\)$/);
    assert.throws(() => vmIdentityOf({ vm_macs: 'zz' }), /^Error: vm_macs: "zz" is not a MAC address/);
  });

  it('a field names the VM when one of its addresses fits (exact, prefix, mask, range, set), excludes it otherwise', () => {
    const v = (text: string, side: 'src' | 'dst' = 'src', negated = false) => addrVerdict(vm, { side, terms: text.split(' ').map((x) => (x.includes('-') ? rangeTerm(x.split('-')[0]!, x.split('-')[1]!)! : addrTerm(x)!)), negated });
    assert.equal(v('10.0.0.2'), 'names');
    assert.equal(v('10.0.0.0/24'), 'names');
    assert.equal(v('10.0.0.2/255.255.0.255'), 'names');
    assert.equal(v('10.0.0.1-10.0.0.9'), 'names');
    assert.equal(v('10.0.0.3 10.0.0.2'), 'names');
    assert.equal(v('10.0.0.3'), 'excludes');
    assert.equal(v('10.0.1.0/24'), 'excludes');
    assert.equal(v('10.0.0.2', 'src', true), 'excludes', '!= the VM');
    assert.equal(v('10.0.0.3', 'src', true), 'neutral', '!= another: says nothing');
    assert.equal(v('fd00::/64'), 'names');
    assert.equal(v('fd00::3/128'), 'excludes');
    assert.equal(v('52:54:00:aa:00:02'), 'names');
    assert.equal(v('52:54:00:aa:00:03'), 'excludes');
    // Group destinations can reach the VM: never an exclusion.
    assert.equal(v('224.0.0.251', 'dst'), 'neutral');
    assert.equal(v('255.255.255.255', 'dst'), 'neutral');
    assert.equal(v('ff02::1', 'dst'), 'neutral');
    assert.equal(v('01:00:5e:00:00:fb', 'dst'), 'neutral');
    assert.equal(v('01:00:5e:00:00:fb', 'src'), 'excludes');
    // A family the VM has no known address of says nothing.
    assert.equal(addrVerdict(vmIdentityOf({ vm_ips: ['10.0.0.2'] }), { side: 'dst', terms: [addrTerm('fd00::9')!] }), 'neutral');
    assert.equal(addrVerdict(vm, { side: 'dst', terms: null }), 'neutral', 'an unknown set');
  });

  it('devices: an input device names the VM or says nothing; an output device names or excludes it, but its bridge outside bridge hooks', () => {
    const d = (side: 'in' | 'out', names: string[], bridgeLevel = true, negated = false) => devVerdict(vm, { side, names, bridgeLevel, negated });
    assert.equal(d('in', ['tap*']), 'names');
    assert.equal(d('in', ['eth0']), 'neutral');
    assert.equal(d('out', ['tap3']), 'excludes');
    assert.equal(d('out', ['tap2', 'tap3']), 'names');
    assert.equal(d('out', ['tap2'], true, true), 'excludes');
    assert.equal(d('out', ['br0'], false), 'neutral');
    assert.equal(d('out', ['br0'], true), 'excludes');
  });

  it('scopes: a naming field wins; alternatives give the widest claim; a jump and its rule combine', () => {
    assert.equal(scopeOf(['excludes', 'names']), 'vm');
    assert.equal(scopeOf(['neutral', 'excludes']), 'other');
    assert.equal(scopeOf([]), 'any');
    assert.equal(widestScope(['other', 'any']), 'any');
    assert.equal(widestScope(['other', 'vm']), 'vm');
    assert.equal(bothScope('any', 'other'), 'other');
    assert.equal(bothScope('other', 'vm'), 'vm');
  });
});

describe('vm-scope: Open vSwitch keys and matches', () => {
  const ovm: OvsVm = { id: vm, port: { name: 'tap2', ofport: 5 } };
  const key = (k: string, inPort: string) => megaflowScope(parseFlowKey(k), inPort, ovm);

  it('megaflow keys: in_port, eth, ipv4/ipv6 (masks), arp and nd', () => {
    assert.equal(key('recirc_id(0),in_port(tap2),eth(src=52:54:00:aa:00:02/ff:ff:ff:ff:ff:ff,dst=00:00:00:00:00:00/00:00:00:00:00:00),eth_type(0x0800)', 'tap2'), 'vm');
    assert.equal(key('recirc_id(0),in_port(uplink),eth(src=00:00:00:00:00:00/00:00:00:00:00:00,dst=00:00:00:00:00:00/00:00:00:00:00:00),eth_type(0x0800),ipv4(src=0.0.0.0/0.0.0.0,dst=10.0.0.0/255.255.255.0,proto=17,frag=no)', 'uplink'), 'vm');
    assert.equal(key('in_port(uplink),eth_type(0x0800),ipv4(src=0.0.0.0/0.0.0.0,dst=10.0.0.3,proto=17,frag=no)', 'uplink'), 'other');
    assert.equal(key('in_port(uplink),eth_type(0x0800),ipv4(dst=10.0.0.0/255.255.255.252,proto=17)', 'uplink'), 'vm', 'a mask that holds the VM');
    assert.equal(key('in_port(uplink),eth_type(0x86dd),ipv6(src=::/::,dst=fd00::3,proto=17)', 'uplink'), 'other');
    assert.equal(key('in_port(uplink),eth(src=52:54:00:aa:00:09,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0806),arp(sip=10.0.0.9,tip=10.0.0.2,op=1)', 'uplink'), 'vm');
    assert.equal(key('in_port(uplink),eth(src=52:54:00:aa:00:09,dst=52:54:00:aa:00:03),eth_type(0x0800)', 'uplink'), 'other');
    assert.equal(key('in_port(uplink),eth(src=52:54:00:aa:00:09,dst=01:00:5e:00:00:fb),eth_type(0x0800)', 'uplink'), 'other', "a multicast frame from another: its source excludes the VM's own frames");
    assert.equal(key('in_port(uplink),eth(dst=01:00:5e:00:00:fb),eth_type(0x0800)', 'uplink'), 'any');
    assert.equal(key('in_port(uplink),eth_type(0x86dd),ipv6(proto=58),icmpv6(type=135),nd(target=fd00::2)', 'uplink'), 'vm');
    assert.equal(key('in_port(uplink),eth_type(0x0800),ipv4(proto=17),udp(dst=9)', 'uplink'), 'any');
  });

  it('OpenFlow matches: in_port by number or name, dl_*/nw_*/ipv6_*/arp_* with prefixes and masks', () => {
    assert.equal(ofRuleScope('udp,in_port=5', ovm), 'vm');
    assert.equal(ofRuleScope('in_port=tap2', ovm), 'vm');
    assert.equal(ofRuleScope('udp,in_port=7', ovm), 'any');
    assert.equal(ofRuleScope('ip,nw_dst=10.0.0.0/24', ovm), 'vm');
    assert.equal(ofRuleScope('ip,nw_src=10.0.0.3', ovm), 'other');
    assert.equal(ofRuleScope('ipv6,ipv6_dst=fd00::/64', ovm), 'vm');
    assert.equal(ofRuleScope('dl_dst=52:54:00:aa:00:00/ff:ff:ff:ff:ff:00', ovm), 'vm');
    assert.equal(ofRuleScope('arp,arp_tpa=10.0.0.7', ovm), 'other');
    assert.equal(ofRuleScope('udp,tp_dst=9', ovm), 'any');
    assert.equal(ofRuleScope('ip,in_port=5,nw_dst=10.0.0.3', ovm), 'vm', 'the VM sending to another');
  });
});
