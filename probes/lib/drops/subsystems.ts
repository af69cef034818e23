// Names of drop reasons that belong to a subsystem (the reason's high 16 bits, kernel 6.4+:
// openvswitch, mac80211), which the kfree_skb tracepoint format does not list. They are read
// from the running kernel's BTF when a session saw such a reason: `enum skb_drop_reason_subsys`
// in vmlinux names the subsystem (SKB_DROP_REASON_SUBSYS_OPENVSWITCH → openvswitch), the
// subsystem's own `enum <x>_drop_reason` in its module's BTF names the reason
// (OVS_DROP_LAST_ACTION). The names are recorded with the session, so a replay names alike.
import { readdir, readFile } from 'node:fs/promises';
import { BTF_DIR, btfEnums, readVmlinuxBtf, type BtfEnum } from '../../../engine/host/btf.js';

/** Where the subsystem sits in a reason (SKB_DROP_REASON_SUBSYS_SHIFT, also when BTF lacks it). */
export const SUBSYS_SHIFT = 16;

export interface SubsystemNames {
  /** Subsystem number → lower-case name (`2` → `openvswitch`). */
  subsystems: Record<string, string>;
  /** Reason value (subsystem bits included) → enumerator name (`131073` → `OVS_DROP_LAST_ACTION`). */
  reasons: Record<string, string>;
  /** What could not be read, one line each (no BTF, no module BTF for a subsystem). */
  missing?: string[];
}

/** The subsystem of a reason value (0: the core reasons of enum skb_drop_reason). */
export function subsystemOf(reason: number): number {
  return reason >>> SUBSYS_SHIFT;
}

const SUBSYS_ENUM = 'skb_drop_reason_subsys';
const SUBSYS_PREFIX = 'SKB_DROP_REASON_SUBSYS_';

/** `SKB_DROP_REASON_SUBSYS_OPENVSWITCH = 2` → `{ 2: 'openvswitch' }` (the CORE and NUM markers left out). */
export function subsystemNamesOf(enums: BtfEnum[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of enums.find((e) => e.name === SUBSYS_ENUM)?.values ?? []) {
    if (!name.startsWith(SUBSYS_PREFIX) || value === 0 || name === `${SUBSYS_PREFIX}NUM`) continue;
    out[String(value)] = name.slice(SUBSYS_PREFIX.length).toLowerCase();
  }
  return out;
}

/**
 * The reasons of subsystem `id` among `enums` (a module's): enumerators of an enum named
 * `*drop_reason*` whose values carry the subsystem's bits. Markers (`__OVS_DROP_REASON`,
 * `OVS_DROP_MAX`) are left out.
 */
export function subsystemReasonsOf(enums: BtfEnum[], id: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of enums) {
    if (!/drop_reason/.test(e.name)) continue;
    for (const [name, value] of e.values) {
      if (subsystemOf(value) !== id || name.startsWith('__') || /_(MAX|NUM)$/.test(name)) continue;
      out[String(value >>> 0)] = name;
    }
  }
  return out;
}

/** Module BTF files worth reading for a subsystem: the one named like it first (`openvswitch`, `mac80211` for `mac80211_unusable`), else every module's. */
async function moduleCandidates(dir: string, subsystem: string): Promise<string[]> {
  const modules = (await readdir(dir).catch(() => [] as string[])).filter((m) => m !== 'vmlinux').sort();
  const named = [subsystem, subsystem.split('_')[0]!].filter((m, i, all) => modules.includes(m) && all.indexOf(m) === i);
  return named.length > 0 ? named : modules;
}

/**
 * Names the subsystems and reasons of `reasons` (values seen by a session) from the BTF under
 * `dir`. Reads nothing when every reason is a core one.
 */
export async function readSubsystemNames(reasons: number[], dir = BTF_DIR): Promise<SubsystemNames> {
  const ids = [...new Set(reasons.map(subsystemOf))].filter((id) => id !== 0).sort((a, b) => a - b);
  const names: SubsystemNames = { subsystems: {}, reasons: {} };
  if (ids.length === 0) return names;
  const missing: string[] = [];
  const vmlinux = await readVmlinuxBtf(dir);
  if (!vmlinux) return { ...names, missing: [`no kernel BTF at ${dir}/vmlinux: subsystem drop reasons are not named`] };
  let vmEnums: BtfEnum[];
  try {
    vmEnums = btfEnums(vmlinux);
  } catch (err) {
    return { ...names, missing: [`${dir}/vmlinux: ${err instanceof Error ? err.message : String(err)}: subsystem drop reasons are not named`] };
  }
  const all = subsystemNamesOf(vmEnums);
  for (const id of ids) {
    const subsystem = all[String(id)];
    if (subsystem === undefined) {
      missing.push(`subsystem ${id} is not in enum ${SUBSYS_ENUM} of ${dir}/vmlinux`);
      continue;
    }
    names.subsystems[String(id)] = subsystem;
    let found = false;
    for (const mod of await moduleCandidates(dir, subsystem)) {
      const blob = await readFile(`${dir}/${mod}`).catch(() => null);
      let own: Record<string, string> = {};
      try {
        if (blob) own = subsystemReasonsOf(btfEnums(blob, vmlinux), id);
      } catch (err) {
        missing.push(`${dir}/${mod}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (Object.keys(own).length === 0) continue;
      Object.assign(names.reasons, own);
      found = true;
      break;
    }
    if (!found) missing.push(`no BTF of ${subsystem} under ${dir} (module not loaded?): its reasons are numbered`);
  }
  return missing.length > 0 ? { ...names, missing } : names;
}

/**
 * The name of reason `value`: a core reason from the tracepoint's names, a subsystem's from
 * `names` (`OVS_DROP_LAST_ACTION`), else `<SUBSYSTEM>_<n>` (`OPENVSWITCH_7`, `SUBSYS3_7` when
 * even the subsystem is unknown). Core reasons the tracepoint does not list are `REASON_<n>`.
 */
export function reasonName(value: number, core: Map<number, string>, names: SubsystemNames | undefined): { name: string; subsystem: string } {
  const id = subsystemOf(value);
  if (id === 0) return { name: core.get(value) ?? `REASON_${value}`, subsystem: 'core' };
  const subsystem = names?.subsystems[String(id)] ?? `subsys${id}`;
  const code = value & ((1 << SUBSYS_SHIFT) - 1);
  return { name: names?.reasons[String(value >>> 0)] ?? `${subsystem.toUpperCase()}_${code}`, subsystem };
}
