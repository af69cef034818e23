// other.arp's declared data: per-kind ARP counts, and the conflicts, storms, unsolicited replies
// and MAC mismatches found in them (findings.ts builds it).
import Type, { type Static } from '#typebox';
import { nullable, packets } from '../lib/data/fields.js';
import { LOADED_FIELDS, OVERHEAD, STOPPED } from '../lib/data/session.js';

/** The seven kinds of KINDS (findings.ts): every received ARP frame is exactly one of them. */
const COUNTS_FIELDS = {
  requests: packets('ARP requests (asking for another IP).'),
  replies: packets('Replies answering a request this namespace sent within `reply_window`.'),
  gratuitous: packets('Gratuitous ARP (sender IP = target IP): announcements after a boot, a migration or an address change.'),
  probes: packets('Requests from 0.0.0.0: duplicate address detection.'),
  unsolicited: packets('Replies nobody here asked for within `reply_window`.'),
  unverified: packets('Replies without a request seen, too early in the session to call them unsolicited.'),
  other: packets('Frames of other opcodes (RARP, InARP).'),
};
const COUNTS = Type.Object(COUNTS_FIELDS, { additionalProperties: false });

const DEVICE = Type.String({ description: 'The receiving device (`ifN@netns:<inode>` outside the watched namespace).' });
const IP = Type.String({ description: 'ARP sender IP.' });
const MAC = Type.String({ description: 'ARP sender MAC.' });

const ARP_SENDER = Type.Object(
  {
    device: DEVICE,
    ip: IP,
    mac: MAC,
    ...COUNTS_FIELDS,
    macMismatch: packets('Frames whose Ethernet source was not the ARP sender MAC.'),
    peakPerSec: Type.Integer({ description: 'Most gratuitous + unsolicited frames in one second.', unit: 'pps' }),
    frames: packets('Frames of every kind from this sender.'),
  },
  { additionalProperties: false },
);

const CONFLICT = Type.Object(
  {
    ip: Type.String({ description: 'The IP claimed by several MACs.' }),
    macs: Type.Array(
      Type.Object(
        {
          mac: Type.String({ description: 'A MAC claiming the IP.' }),
          frames: packets('Frames in which it claimed the IP (DAD probes excluded).'),
          devices: Type.Array(Type.String(), { description: 'Devices its frames were received on.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every MAC that claimed the IP.' },
    ),
  },
  { additionalProperties: false },
);

const STORM = Type.Object(
  {
    device: DEVICE,
    mac: Type.String({ description: 'The MAC sending the storm.' }),
    ips: Type.Array(Type.String(), { description: 'The IPs the MAC announced.' }),
    gratuitous: packets('Gratuitous frames from the MAC.'),
    unsolicited: packets('Unsolicited replies from the MAC.'),
    peakPerSec: Type.Integer({ description: 'Most gratuitous + unsolicited frames in one second from one (IP, MAC).', unit: 'pps' }),
    ratePerSec: Type.Number({ description: 'Gratuitous + unsolicited frames per second over the window.', unit: 'pps' }),
  },
  { additionalProperties: false },
);

const UNSOLICITED = Type.Object(
  { device: DEVICE, ip: IP, mac: MAC, count: packets('Unsolicited replies from this sender.') },
  { additionalProperties: false },
);

const MISMATCH = Type.Object(
  {
    device: DEVICE,
    ip: IP,
    arpMac: Type.String({ description: 'The sender MAC inside the ARP frame.' }),
    ethMac: Type.String({ description: 'The Ethernet source MAC that differed (the last one seen).' }),
    count: packets('Frames with the mismatch.'),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...LOADED_FIELDS,
    windowMs: Type.Number({ description: 'Time the programs watched ARP.', unit: 'ms' }),
    overhead: Type.Optional(OVERHEAD),
    stopped: Type.Optional(STOPPED),
    filters: Type.Object(
      {
        netns: nullable(Type.String(), { description: 'The namespace watched; null: every namespace.' }),
        dev: nullable(Type.String(), { description: 'The device watched; null: every device.' }),
        ip: nullable(Type.String(), { description: 'Only ARP whose sender or target is this IP; null: any.' }),
      },
      { additionalProperties: false, description: 'What the programs watched.' },
    ),
    stormPerSec: Type.Integer({ description: 'Gratuitous + unsolicited frames per second from one MAC at which it is a storm (`storm_pps`).', unit: 'pps' }),
    replyWindowMs: Type.Number({ description: 'How long after a request a reply counts as solicited (`reply_window`).', unit: 'ms' }),
    frames: packets('ARP frames received (all kinds, also those not kept per sender).'),
    totals: Type.Object(
      { ...COUNTS_FIELDS, macMismatch: packets('Frames whose Ethernet source was not the ARP sender MAC.') },
      { additionalProperties: false, description: 'Frames per kind over every sender.' },
    ),
    byDevice: Type.Record(Type.String(), COUNTS, { description: 'Frames per kind, by receiving device.' }),
    requestsSent: packets('ARP requests the watched namespace sent (what makes a reply solicited).'),
    conflicts: Type.Array(CONFLICT, { description: 'IPs claimed by more than one MAC (duplicate address, a failover that did not complete).' }),
    storms: Type.Array(STORM, { description: 'MACs sending gratuitous or unsolicited ARP at `storm_pps` or more.' }),
    unsolicited: Type.Array(UNSOLICITED, { description: 'Senders of replies nobody asked for.' }),
    mismatches: Type.Array(MISMATCH, { description: 'Senders whose Ethernet source differed from the ARP sender MAC (spoofing, a rewriting proxy).' }),
    senders: Type.Array(ARP_SENDER, { description: 'Senders, most gratuitous + unsolicited frames first (the first `top`).' }),
    senderCount: Type.Integer({ description: 'Senders seen (all of them, not only the listed `top`).' }),
    lost: packets('Frames counted but not kept per sender (the senders map was full).'),
    abnormal: Type.Boolean({ description: 'Any conflict, storm, unsolicited reply or MAC mismatch.' }),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: an early stop, a full map, unverified replies.' }),
  },
  { additionalProperties: false },
);

export type ArpData = Static<typeof DATA>;
export type ArpSender = Static<typeof ARP_SENDER>;
export type ArpConflict = Static<typeof CONFLICT>;
export type ArpStorm = Static<typeof STORM>;
