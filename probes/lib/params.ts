// The params many probes take, declared once: how long to watch, how many rows to show, the
// address pair and the IP protocol a filter keeps. Each probe says what they mean for it.
import type { ParamSpec } from '../../engine/probe/types.js';

/** `duration`: 5 s by default, at least 100 ms (0 where it means one read); `max` where a probe caps it. */
export function durationParam(description: string, limits: { default?: string; min?: number; max?: number } = {}): ParamSpec {
  return {
    type: 'duration',
    default: limits.default ?? '5s',
    min: limits.min ?? 100,
    ...(limits.max !== undefined ? { max: limits.max } : {}),
    description,
    cliOption: 'duration',
  };
}

/** `top`: how many rows (bars, flows...) a finding lists. */
export function topParam(description: string, limits: { default: number; max: number }): ParamSpec {
  return { type: 'integer', default: limits.default, min: 1, max: limits.max, description };
}

/** `src_ip` and `dst_ip`: the addresses a filter keeps packets from and to. */
export function addressParams(descriptions: { src: string; dst: string }, opts: { required?: boolean } = {}): { src_ip: ParamSpec; dst_ip: ParamSpec } {
  const required = opts.required ? { required: true } : {};
  return {
    src_ip: { type: 'ip', ...required, description: descriptions.src, cliOption: 'src-ip' },
    dst_ip: { type: 'ip', ...required, description: descriptions.dst, cliOption: 'dst-ip' },
  };
}

/** IP protocol numbers of the `protocol` filters; `any` (and `all`, its other name) keeps every protocol. */
export const PROTOCOLS = { any: 0, all: 0, icmp: 1, tcp: 6, udp: 17 } as const;
export type ProtocolName = keyof typeof PROTOCOLS;

function isProtocolName(name: string): name is ProtocolName {
  return Object.hasOwn(PROTOCOLS, name);
}

/** The protocol number a `protocol` param names: 0 for every protocol; throws on an unknown name. */
export function protocolNumber(name: unknown): number {
  return PROTOCOLS[protocolName(name)];
}

/** The protocol a `protocol` param names (`dflt` when none); throws on an unknown name. */
export function protocolName(name: unknown, dflt: ProtocolName = 'any'): ProtocolName {
  if (name === undefined || name === null || name === '') return dflt;
  if (typeof name !== 'string' || !isProtocolName(name)) throw new Error(`not a protocol: ${String(name)}`);
  return name;
}

/** `protocol`: `any` or `all` keep every protocol; `dflt` is the word a probe's findings print. */
export function protocolParam(description: string, dflt: 'any' | 'all' = 'any'): ParamSpec {
  return { type: 'string', enum: Object.keys(PROTOCOLS), default: dflt, description };
}
