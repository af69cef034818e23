// Declared data of the interface counter reader (lib/iface-counters.ts's IfaceDevice and
// IfaceTotals): each device's counter deltas over the window, its rates and state.
import Type from '#typebox';
import { bytes, nullable, packets } from './fields.js';

/** What each counter of /sys/class/net/<dev>/statistics counts (as deltas over the window). */
const INTERFACE_COUNTER_TEXT = {
  rx_packets: ['packets', 'Packets received.'],
  tx_packets: ['packets', 'Packets sent.'],
  rx_bytes: ['bytes', 'Bytes received.'],
  tx_bytes: ['bytes', 'Bytes sent.'],
  rx_dropped: ['packets', 'Received packets the driver or the stack dropped (no buffer, unknown protocol...).'],
  tx_dropped: ['packets', 'Packets dropped on their way out (on a tap: towards the VM).'],
  rx_errors: ['packets', 'Bad packets received.'],
  tx_errors: ['packets', 'Packets that could not be sent.'],
  rx_missed_errors: ['packets', 'Packets the device missed for want of room in its ring or FIFO.'],
  rx_fifo_errors: ['packets', 'Receive FIFO overruns.'],
  rx_over_errors: ['packets', 'Receive ring overflows.'],
  rx_crc_errors: ['packets', 'Frames received with a bad CRC.'],
  rx_frame_errors: ['packets', 'Frames received with an alignment error.'],
  rx_length_errors: ['packets', 'Frames received with a bad length.'],
  tx_fifo_errors: ['packets', 'Transmit FIFO underruns.'],
  tx_carrier_errors: ['packets', 'Frames lost for loss of carrier while sending.'],
  tx_aborted_errors: ['packets', 'Transmits the device aborted.'],
  collisions: ['events', 'Collisions on the medium.'],
  multicast: ['packets', 'Multicast packets received.'],
} as const;

/** The deltas of an interface's kernel counters over the window, one field per counter. */
export const INTERFACE_COUNTERS = Type.Object(
  Object.fromEntries(Object.entries(INTERFACE_COUNTER_TEXT).map(([name, [unit, description]]) => [name, Type.Integer({ unit, description })])) as {
    [K in keyof typeof INTERFACE_COUNTER_TEXT]: ReturnType<typeof Type.Integer>;
  },
  { additionalProperties: false, description: 'Deltas of /sys/class/net/<dev>/statistics over the window.' },
);

export const IFACE_DEVICE = Type.Object(
  {
    name: Type.String({ description: 'The interface.' }),
    ifindex: nullable(Type.Integer(), { description: 'Its index; null when unreadable.' }),
    mtu: nullable(Type.Integer({ unit: 'bytes' }), { description: 'Its MTU; null when unreadable.' }),
    operstate: nullable(Type.String(), { description: 'Its operational state (up, down, unknown...); null when unreadable.' }),
    carrier: nullable(Type.Boolean(), { description: 'Whether it has carrier; null when the kernel cannot tell (a device that is down).' }),
    address: nullable(Type.String(), { description: 'Its MAC address; null when unreadable.' }),
    vanished: Type.Boolean({ description: 'It disappeared during the sample (its deltas cover the time it was there).' }),
    deltas: INTERFACE_COUNTERS,
    drops: packets('rx_dropped + tx_dropped over the window.'),
    errors: packets('rx_errors + tx_errors over the window.'),
    rates: Type.Object(
      {
        rx_pps: Type.Number({ description: 'Packets received per second.', unit: 'pps' }),
        tx_pps: Type.Number({ description: 'Packets sent per second.', unit: 'pps' }),
        rx_bps: Type.Number({ description: 'Bits received per second.', unit: 'bps' }),
        tx_bps: Type.Number({ description: 'Bits sent per second.', unit: 'bps' }),
      },
      { additionalProperties: false, description: 'Averages over the window.' },
    ),
  },
  { additionalProperties: false },
);

export const IFACE_TOTALS = Type.Object(
  {
    drops: packets('Drops of every device.'),
    errors: packets('Errors of every device.'),
    rx_dropped: packets('rx_dropped of every device.'),
    tx_dropped: packets('tx_dropped of every device.'),
    rx_errors: packets('rx_errors of every device.'),
    tx_errors: packets('tx_errors of every device.'),
    rx_packets: packets('Packets received by every device.'),
    tx_packets: packets('Packets sent by every device.'),
    rx_bytes: bytes('Bytes received by every device.'),
    tx_bytes: bytes('Bytes sent by every device.'),
  },
  { additionalProperties: false, description: 'Sums over every watched device.' },
);

/** Which devices dropped (lib/iface-counters.ts's droppingDevices and directionOf), for a data object to spread. */
export const IFACE_DROPPING_FIELDS = {
  dropping: Type.Array(Type.String(), { description: 'Devices whose drops or errors rose.' }),
  worst: Type.Optional(
    Type.Object(
      {
        name: Type.String({ description: 'The device.' }),
        drops: packets('Its drops (rx + tx).'),
        errors: packets('Its errors (rx + tx).'),
        direction: Type.Union([Type.Literal('rx'), Type.Literal('tx'), Type.Literal('rx+tx')], { description: 'Which side dropped.' }),
      },
      { additionalProperties: false, description: 'The device with the most drops + errors; only when something dropped.' },
    ),
  ),
};
