// qdisc.stats' finding data: every qdisc's counters over the window, their sums, and what dropped.
import Type, { type Static } from '#typebox';
import { QDISC_ROW_FIELDS } from '../lib/data/qdisc.js';

const { dev, kind, handle, overlimits } = QDISC_ROW_FIELDS;
const drops = Type.Integer({ unit: 'packets', description: 'Packets it dropped over the window (since creation when `cumulative`).' });

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads (0 with one read).' }),
    cumulative: Type.Boolean({ description: 'One read only (duration 0): counters are totals since each qdisc was created.' }),
    qdiscs: Type.Array(
      Type.Object(
        {
          ...QDISC_ROW_FIELDS,
          root: Type.Boolean({ description: 'It is the device\'s root qdisc.' }),
          drops,
          requeues: Type.Integer({ unit: 'packets', description: 'Packets the driver pushed back over the window.' }),
          packets: Type.Integer({ unit: 'packets', description: 'Packets it sent over the window.' }),
          bytes: Type.Integer({ unit: 'bytes', description: 'Bytes it sent over the window.' }),
          backlog_bytes: Type.Integer({ unit: 'bytes', description: 'Bytes queued at the end of the window.' }),
          qlen: Type.Integer({ unit: 'packets', description: 'Its queue length at the end of the window.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every qdisc read, with its counters over the window.' },
    ),
    totals: Type.Object(
      {
        drops: Type.Integer({ unit: 'packets', description: 'Drops of the top-level qdiscs.' }),
        overlimits: Type.Integer({ unit: 'events', description: 'Overlimits of the top-level qdiscs.' }),
        requeues: Type.Integer({ unit: 'packets', description: 'Requeues of the top-level qdiscs.' }),
        packets: Type.Integer({ unit: 'packets', description: 'Packets sent by the top-level qdiscs.' }),
      },
      {
        additionalProperties: false,
        description: "Sums over each device's top-level qdiscs (root and ingress/clsact): the kernel adds a child's drops to its parents.",
      },
    ),
    dropping: Type.Array(Type.Object({ dev, kind, handle, drops }, { additionalProperties: false }), { description: 'Every qdisc that dropped, most drops first.' }),
    top: Type.Optional(
      Type.Object({ dev, kind, handle, drops, overlimits }, { additionalProperties: false, description: 'The qdisc with the most drops (the innermost on a tie); only when something dropped.' }),
    ),
    notes: Type.Array(Type.String(), { description: 'Qdiscs that appeared, were replaced or removed, counters that went down.' }),
  },
  { additionalProperties: false },
);

export type QdiscData = Static<typeof DATA>;
