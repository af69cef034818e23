// net.nft's finding data: which netfilter rules dropped in the window (of a VM, when scoped),
// the drop rules that cannot be counted, the chains whose policy is drop.
import Type, { type Static } from '#typebox';

const VM_SCOPE = Type.Union([Type.Literal('vm'), Type.Literal('any'), Type.Literal('other')], {
  description: "Whose packets its matches (and the jumps that reach it) say it drops: the VM's (`vm`), anyone's (`any`), another's (`other`).",
});

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T, description: string) => Type.Union([schema, Type.Null()], { description });

const at = {
  family: Type.String({ description: 'The table\'s family (ip, ip6, inet, bridge, netdev, arp).' }),
  table: Type.String({ description: 'The table.' }),
  chain: Type.String({ description: 'The chain.' }),
};
const hook = {
  hook: nullable(Type.String(), 'The netfilter hook of the base chain the rule is reached from; null when unreachable.'),
  priority: nullable(Type.Integer(), 'The priority of that base chain; null when unknown.'),
};

const DROPPER = Type.Object(
  {
    source: Type.Union([Type.Literal('nft'), Type.Literal('iptables-legacy')], {
      description: '`nft` for nftables rules (iptables-nft rules included), `iptables-legacy` for x_tables rules.',
    }),
    ...at,
    handle: nullable(Type.Integer(), 'The nft rule handle; null for a chain policy and for legacy iptables rules.'),
    rule: Type.String({ description: 'The rule as nft (or iptables-save) prints it, counters left out; `policy drop` for a chain policy.' }),
    verdict: Type.Union([Type.Literal('drop'), Type.Literal('reject'), Type.Literal('policy')], { description: 'What it does: drop, reject, or the chain\'s drop policy.' }),
    packets: Type.Integer({ unit: 'packets', description: 'Packets it dropped over the window (since the rule was created when `cumulative`).' }),
    bytes: Type.Integer({ unit: 'bytes', description: 'Bytes it dropped over the window.' }),
    ...hook,
    via: Type.Array(Type.String(), { description: "The chains from the base chain to this rule's chain (jump/goto)." }),
    iptables: Type.Optional(Type.String({ description: 'The same rule in iptables syntax, for rules managed by iptables-nft.' })),
    comment: Type.Optional(Type.String({ description: "The rule's comment." })),
    scope: VM_SCOPE,
  },
  { additionalProperties: false },
);

const UNCOUNTED = Type.Object(
  {
    ...at,
    handle: Type.Integer({ description: 'The nft rule handle.' }),
    rule: Type.String({ description: 'The rule as nft prints it.' }),
    verdict: Type.Union([Type.Literal('drop'), Type.Literal('reject'), Type.Literal('vmap')], { description: 'What it does: drop, reject, or a verdict map that can drop.' }),
    ...hook,
    why: Type.String({ description: 'Why its drops cannot be told.' }),
    hint: Type.String({ description: 'How to make them countable.' }),
    scope: VM_SCOPE,
  },
  { additionalProperties: false },
);

const POLICY_CHAIN = Type.Object(
  {
    ...at,
    ...hook,
    rules: Type.Integer({ description: 'Rules in the chain (a packet that matches none of them is dropped by the policy).' }),
    counted: Type.Boolean({ description: "Whether the policy's drops could be counted (a last bare `counter` rule, or iptables' policy counters)." }),
    packets: nullable(Type.Integer({ unit: 'packets' }), 'Packets the policy dropped over the window; null when not counted.'),
    bytes: nullable(Type.Integer({ unit: 'bytes' }), 'Bytes the policy dropped over the window; null when not counted.'),
    countedBy: nullable(Type.String(), 'What counted them; null when nothing did.'),
    hint: nullable(Type.String(), 'How to count them; null when they are.'),
  },
  { additionalProperties: false },
);

const IPTABLES = Type.Object(
  {
    tool: Type.Union([Type.Literal('iptables-save'), Type.Literal('ip6tables-save')], { description: 'The tool read.' }),
    present: Type.Boolean({ description: 'It is installed.' }),
    variant: nullable(Type.Union([Type.Literal('nf_tables'), Type.Literal('legacy')]), '`nf_tables` (iptables-nft: its rules are in the nft ruleset too) or `legacy` (x_tables); null when unknown.'),
    rules: Type.Integer({ description: 'Rules it listed.' }),
    error: Type.Optional(Type.String({ description: 'Why it could not be read.' })),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads (0 with one read).' }),
    cumulative: Type.Boolean({ description: 'One read only (duration 0): counters are totals since each rule was created.' }),
    netns: nullable(Type.String(), 'The network namespace read; null: ebpfnet\'s.'),
    dev: nullable(Type.String(), 'Only rules that can apply to this device; null: every rule.'),
    droppers: Type.Array(DROPPER, { description: 'Rules (and counted chain policies) that dropped: scope `vm` then `any`, most packets first.' }),
    top: Type.Optional(Type.Object(DROPPER.properties, { additionalProperties: false, description: 'The first dropper, when one dropped.' })),
    total: Type.Integer({ unit: 'packets', description: 'Packets dropped by all droppers.' }),
    totalBytes: Type.Integer({ unit: 'bytes', description: 'Bytes dropped by all droppers.' }),
    vmTotal: Type.Integer({ unit: 'packets', description: 'Packets dropped by the droppers that name the VM.' }),
    otherDroppers: Type.Array(DROPPER, { description: "Droppers whose matches exclude the VM (another tenant's rules), most packets first: never in `total`." }),
    otherTotal: Type.Integer({ unit: 'packets', description: 'Packets dropped by `otherDroppers`.' }),
    vm: nullable(
      Type.Object(
        {
          macs: Type.Array(Type.String(), { description: "The VM's MACs." }),
          ips: Type.Array(Type.String(), { description: "The VM's addresses." }),
          devs: Type.Array(Type.String(), { description: "The VM's taps." }),
          bridges: Type.Array(Type.String(), { description: 'The bridges those taps are ports of.' }),
        },
        { additionalProperties: false },
      ),
      'The VM the droppers are scoped to; null when none is given.',
    ),
    dropRulesWithoutCounters: Type.Array(UNCOUNTED, { description: 'Drop/reject rules, reachable from a hook, whose drops cannot be counted.' }),
    policyDropChains: Type.Array(POLICY_CHAIN, { description: 'Base chains whose policy is drop.' }),
    counts: Type.Object(
      {
        tables: Type.Integer({ description: 'Tables.' }),
        chains: Type.Integer({ description: 'Chains.' }),
        rules: Type.Integer({ description: 'Rules.' }),
        dropRules: Type.Integer({ description: 'Drop and reject rules.' }),
        countedDropRules: Type.Integer({ description: 'Drop and reject rules with a counter.' }),
      },
      { additionalProperties: false, description: 'The size of the ruleset at the end.' },
    ),
    iptables: Type.Array(IPTABLES, { description: 'The iptables tools read, and what they showed.' }),
    nftVersion: nullable(Type.String(), "nft's version; null when unknown."),
    notes: Type.Array(Type.String(), { description: 'What could not be read or told.' }),
  },
  { additionalProperties: false },
);

export type NftData = Static<typeof DATA>;
