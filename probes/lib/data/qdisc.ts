// A qdisc as `tc -s qdisc` shows it (probes/lib/qdiscs.ts reads it), for qdisc.stats and
// qdisc.drops to declare their rows alike.
import Type from '#typebox';

/** Where the qdisc sits and what it held back; `drops` is left to each probe (its window differs). */
export const QDISC_ROW_FIELDS = {
  dev: Type.String({ description: 'The device the qdisc is on.' }),
  kind: Type.String({ description: "The qdisc's kind (fq_codel, tbf, htb...)." }),
  handle: Type.String({ description: "The qdisc's handle (`1:`)." }),
  parent: Type.String({ description: "The parent's handle (`1:10`, `ffff:fff1` for ingress/clsact), or `root`." }),
  overlimits: Type.Integer({ unit: 'events', description: 'Times a shaper held packets back over the window.' }),
  backlog_packets: Type.Integer({ unit: 'packets', description: 'Packets queued at the end of the window.' }),
};
