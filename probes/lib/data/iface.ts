// Declared data of the interface counter reader (net.iface/counters.ts's IfaceDevice and
// IfaceTotals): each device's counter rises over the window, its rates and state.
import Type from 'typebox';
import { bytes, nullable, packets } from './fields.js';

/** Rises of /sys/class/net/<dev>/statistics/* over the window (COUNTERS of counters.ts). */
const DELTAS = Type.Object(
  {
    rx_packets: packets('Packets received.'),
    tx_packets: packets('Packets sent.'),
    rx_bytes: bytes('Bytes received.'),
    tx_bytes: bytes('Bytes sent.'),
    rx_dropped: packets('Received packets dropped (by the driver or the stack before a protocol took them).'),
    tx_dropped: packets('Packets dropped on transmit.'),
    rx_errors: packets('Receive errors (all kinds).'),
    tx_errors: packets('Transmit errors (all kinds).'),
    rx_missed_errors: packets('Received packets the NIC missed (no host buffer).'),
    rx_fifo_errors: packets('Receive FIFO overruns.'),
    rx_over_errors: packets('Receive ring overflows.'),
    rx_crc_errors: packets('Frames received with a bad CRC.'),
    rx_frame_errors: packets('Frames received misaligned.'),
    rx_length_errors: packets('Frames received with a bad length.'),
    tx_fifo_errors: packets('Transmit FIFO underruns.'),
    tx_carrier_errors: packets('Transmit carrier errors (link lost).'),
    tx_aborted_errors: packets('Transmits aborted.'),
    collisions: packets('Collisions.'),
    multicast: packets('Multicast packets received.'),
  },
  { additionalProperties: false, description: 'Counter rises over the window.' },
);

export const IFACE_DEVICE = Type.Object(
  {
    name: Type.String({ description: 'The device.' }),
    ifindex: nullable(Type.Integer(), { description: 'Its ifindex; null when it could not be read.' }),
    mtu: nullable(Type.Integer(), { description: 'Its MTU; null when it could not be read.', unit: 'bytes' }),
    operstate: nullable(Type.String(), { description: 'Its operational state (`up`, `down`, `unknown`...); null when it could not be read.' }),
    carrier: nullable(Type.Boolean(), { description: 'Whether it has carrier; null when the kernel cannot tell (administratively down).' }),
    address: nullable(Type.String(), { description: 'Its MAC address; null when it could not be read.' }),
    vanished: Type.Boolean({ description: 'The device disappeared during the sample (its rises cover the time it was there).' }),
    deltas: DELTAS,
    drops: packets('rx_dropped + tx_dropped.'),
    errors: packets('rx_errors + tx_errors.'),
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
    drops: packets('Drops (rx + tx) over every device.'),
    errors: packets('Errors (rx + tx) over every device.'),
    rx_dropped: DELTAS.properties.rx_dropped,
    tx_dropped: DELTAS.properties.tx_dropped,
    rx_errors: DELTAS.properties.rx_errors,
    tx_errors: DELTAS.properties.tx_errors,
    rx_packets: DELTAS.properties.rx_packets,
    tx_packets: DELTAS.properties.tx_packets,
    rx_bytes: DELTAS.properties.rx_bytes,
    tx_bytes: DELTAS.properties.tx_bytes,
  },
  { additionalProperties: false, description: 'Counter rises summed over every device.' },
);
