// qdisc.drops' finding data: tc's qdisc drop counters next to the kernel's queueing-layer
// drop reasons, per device, and whether they agree.
import Type, { type Static } from '#typebox';
import { DROPS_ATTACH_FIELDS } from '../lib/data/drops.js';
import { countsBy } from '../lib/data/fields.js';
import { QDISC_ROW_FIELDS } from '../lib/data/qdisc.js';

const dev = Type.String({ description: 'The device.' });

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads of tc.' }),
    ...DROPS_ATTACH_FIELDS,
    devices: Type.Array(
      Type.Object(
        {
          dev,
          tcDrops: Type.Integer({ unit: 'packets', description: "tc's drop delta summed over the device's top-level qdiscs (children's drops are in them)." }),
          kernelDrops: Type.Integer({ unit: 'packets', description: 'Drops the kernel freed on this device with a QDISC_* / TC_* reason.' }),
          kernelReasons: countsBy('Those drops by reason.'),
          otherReasons: countsBy('Drops on this device with any other reason (not the qdisc\'s doing).'),
          agree: Type.Boolean({ description: 'tc and the kernel agree within 5% (or 1 packet).' }),
          dropper: Type.Optional(
            Type.Object(
              {
                kind: Type.String({ description: "The qdisc's kind." }),
                handle: Type.String({ description: "The qdisc's handle." }),
                drops: Type.Integer({ unit: 'packets', description: 'Packets it dropped over the window.' }),
              },
              { additionalProperties: false, description: 'The qdisc that dropped the most (the innermost on a tie), when one did.' },
            ),
          ),
        },
        { additionalProperties: false },
      ),
      { description: 'Per device: tc drops vs kernel drop reasons.' },
    ),
    qdiscs: Type.Array(
      Type.Object(
        {
          ...QDISC_ROW_FIELDS,
          depth: Type.Integer({ description: "How deep it sits under the device's top-level qdisc (0 for root, ingress/clsact)." }),
          drops: Type.Integer({ unit: 'packets', description: 'Packets it dropped over the window.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every qdisc read, with its counters over the window.' },
    ),
    totals: Type.Object(
      {
        tcDrops: Type.Integer({ unit: 'packets', description: 'tc drops of every device.' }),
        kernelDrops: Type.Integer({ unit: 'packets', description: 'Kernel QDISC_* / TC_* drops of every device.' }),
        kernelReasons: countsBy('Those kernel drops by reason.'),
      },
      { additionalProperties: false, description: 'Sums over every device.' },
    ),
    agree: Type.Boolean({ description: 'Every device agrees.' }),
    notes: Type.Array(Type.String(), { description: "tc's notes, kernel drops not attributed to a device, devices tc did not show." }),
  },
  { additionalProperties: false },
);

export type QdiscDropsData = Static<typeof DATA>;
