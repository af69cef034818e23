// perf.icmp-rtt's declared data: ICMP echo round trips per (local address, peer, direction):
// requests, replies, losses, and the time between them.
import Type, { type Static } from '#typebox';
import { DEVICE_FILTER_FIELDS, nullable, packets } from '../lib/data/fields.js';
import { US_BUCKET } from '../lib/data/histogram.js';
import { LOADED_FIELDS, OVERHEAD } from '../lib/data/session.js';

const ms = (description: string) => Type.Number({ description, unit: 'ms' });
const DIRECTION = Type.Union([Type.Literal('outgoing'), Type.Literal('incoming')], {
  description: 'outgoing: this host pinged the peer (the RTT); incoming: the peer pinged this host (its answer time).',
});

const PEER = Type.Object(
  {
    local: Type.String({ description: 'This host’s address in the echoes.' }),
    peer: Type.String({ description: 'The other end’s address.' }),
    direction: DIRECTION,
    requests: packets('Echo requests.'),
    replies: packets('Replies matched to their request: the round trips timed.'),
    lost: packets('Requests with no reply: older than `timeout` at the end, or evicted while waiting.'),
    inFlight: packets('Requests still within `timeout` at the end: not counted as lost.'),
    unmatchedReplies: packets('Replies with no request waiting (sent before the window, or a duplicate).'),
    lossRatio: Type.Number({ description: 'lost / (requests − inFlight), 0..1 (critical from 0.5).', unit: 'share' }),
    minMs: ms('Shortest round trip (exact; 0 without a reply).'),
    meanMs: ms('Mean round trip (exact).'),
    maxMs: ms('Longest round trip (exact).'),
    p50Ms: ms('Median round trip, at log2 bucket resolution, capped at max (never below the true value, at most twice it).'),
    p95Ms: ms('95th percentile round trip, at log2 bucket resolution, capped at max.'),
    p99Ms: ms('99th percentile round trip, at log2 bucket resolution, capped at max.'),
    slow: packets('Round trips of at least `latency_ms` (exact).'),
    buckets: Type.Array(US_BUCKET, { description: 'Non-empty log2 buckets of round trips.' }),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...DEVICE_FILTER_FIELDS,
    filters: Type.Object(
      {
        srcIp: nullable(Type.String(), { description: 'Only echoes from this address; null: any.' }),
        dstIp: nullable(Type.String(), { description: 'Only echoes to this address; null: any.' }),
        direction: Type.Union([Type.Literal('both'), Type.Literal('outgoing'), Type.Literal('incoming')], { description: 'Which pings were watched.' }),
      },
      { additionalProperties: false, description: 'What the programs filtered on.' },
    ),
    thresholdMs: ms('Round trips of at least this are `slow` (`latency_ms`); 0: not counted.'),
    timeoutMs: ms('A request unanswered for this long is lost (`timeout`).'),
    ...LOADED_FIELDS,
    windowMs: ms('Time the programs were attached.'),
    overhead: Type.Optional(OVERHEAD),
    requests: packets('Echo requests over every peer and direction.'),
    replies: packets('Replies matched over every peer and direction.'),
    lost: packets('Requests lost over every peer and direction.'),
    unmatchedReplies: packets('Replies with no request waiting, over every peer and direction.'),
    peers: Type.Array(PEER, { description: 'Per (local, peer, direction), worst first (most lost, then highest P99).' }),
    worst: nullable(
      Type.Object(
        {
          local: PEER.properties.local,
          peer: PEER.properties.peer,
          direction: DIRECTION,
          lost: PEER.properties.lost,
          p99Ms: PEER.properties.p99Ms,
        },
        { additionalProperties: false },
      ),
      { description: 'The first of `peers`; null when no echo was seen.' },
    ),
    skipped: Type.Object(
      {
        short: packets('Echoes whose ICMP header was outside the skb’s linear area.'),
        noPeer: packets('Echoes not counted: the peers map was full.'),
      },
      { additionalProperties: false, description: 'Echoes not read, by why.' },
    ),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: unread echoes, requests in flight, unmatched replies, an early stop.' }),
  },
  { additionalProperties: false },
);

export type IcmpRttData = Static<typeof DATA>;
export type IcmpRttPeer = Static<typeof PEER>;
