// drops.eth's finding data: one device's drops as its kernel counters, its driver
// (`ethtool -S`) and the kernel's drop reasons count them over one window.
import Type, { type Static } from '#typebox';
import { DROPS_ATTACH_FIELDS } from '../lib/data/drops.js';
import { countsBy } from '../lib/data/fields.js';
import { INTERFACE_COUNTERS } from '../lib/data/iface.js';

const ETHTOOL = Type.Object(
  {
    supported: Type.Boolean({ description: 'The driver answers `ethtool -S`.' }),
    reason: Type.Optional(Type.String({ description: 'Why not, when not.' })),
    deltas: countsBy('Every driver counter\'s delta over the window.', 'events'),
    changed: countsBy('The counters that moved, largest first.', 'events'),
    dropCounters: countsBy('Moved counters whose name says drop, error, discard, miss, fail or overrun.', 'events'),
  },
  { additionalProperties: false, description: "The driver's own counters (`ethtool -S`) over the window." },
);

export const DATA = Type.Object(
  {
    dev: Type.String({ description: 'The device watched.' }),
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the first and the last read of its counters.' }),
    mtu: Type.Union([Type.Integer({ unit: 'bytes' }), Type.Null()], { description: 'Its MTU; null when unreadable.' }),
    operstate: Type.Union([Type.String(), Type.Null()], { description: 'Its operational state; null when unreadable.' }),
    statistics: INTERFACE_COUNTERS,
    rx_dropped: Type.Integer({ unit: 'packets', description: 'Received packets dropped over the window.' }),
    tx_dropped: Type.Integer({ unit: 'packets', description: 'Packets dropped on their way out over the window.' }),
    rx_errors: Type.Integer({ unit: 'packets', description: 'Bad packets received over the window.' }),
    tx_errors: Type.Integer({ unit: 'packets', description: 'Packets that could not be sent over the window.' }),
    ethtool: ETHTOOL,
    kernel: Type.Object(
      {
        ...DROPS_ATTACH_FIELDS,
        total: Type.Integer({ unit: 'packets', description: 'Packets the kernel freed as drops on the device.' }),
        byReason: countsBy('Those drops by reason.'),
        byLocation: countsBy('Those drops by kernel function.'),
      },
      { additionalProperties: false, description: "The kernel's drops on the device (drops.kernel's session)." },
    ),
    notes: Type.Array(Type.String(), { description: 'Counter resets, unreadable files, why ethtool gave nothing.' }),
  },
  { additionalProperties: false },
);

export type DropsEthData = Static<typeof DATA>;
