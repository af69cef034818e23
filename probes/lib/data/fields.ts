// Small builders for declared data: counts with their unit, counts by key, nullable fields, and
// the device and namespace labels of lib/netdev.ts (deviceLabel, namespaceLabel) that many
// findings carry.
import Type, { type TSchema, type TSchemaOptions } from '#typebox';

export const packets = (description: string) => Type.Integer({ description, unit: 'packets' });
export const bytes = (description: string) => Type.Integer({ description, unit: 'bytes' });
export const events = (description: string) => Type.Integer({ description, unit: 'events' });

/** A count per key (reason, device, function...): `{ NETFILTER_DROP: 12 }`. */
export const countsBy = (description: string, unit = 'packets') => Type.Record(Type.String(), Type.Integer({ unit }), { description });

/** `schema` or null; `options` describe the field (say what null means). */
export const nullable = <T extends TSchema>(schema: T, options: TSchemaOptions) => Type.Union([schema, Type.Null()], options);

export const DEVICE_LABEL = Type.String({ description: 'The device: `dev`, or `dev@namespace` outside ebpfnet’s namespace.' });
export const NETNS_LABEL = nullable(Type.String(), { description: 'Its namespace’s `ip netns` name (or `netns:<inode>`); null for ebpfnet’s own.' });

/** A device as the queueing and transmit probes list it (lib/netdev.ts's NetdevId, labelled). */
export const NETDEV_FIELDS = {
  device: DEVICE_LABEL,
  dev: Type.String({ description: 'The device’s name.' }),
  ifindex: Type.Integer({ description: 'Its ifindex.' }),
  netns: NETNS_LABEL,
};

/** The device filter a probe applied in the kernel (its `dev` and `netns` params, resolved), for a data object to spread. */
export const DEVICE_FILTER_FIELDS = {
  dev: nullable(Type.String(), { description: 'The device filter (`dev`); null: every device.' }),
  ifindex: Type.Integer({ description: 'The device’s ifindex; 0: every device.' }),
  netns: nullable(Type.String(), { description: 'The namespace filter (`netns`); null: any.' }),
};
