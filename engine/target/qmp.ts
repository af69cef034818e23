// The vCPU threads of a QEMU process as QEMU itself reports them: QMP's query-cpus-fast
// gives each vCPU's index and host thread id, whatever the threads are named.
import { QemuSocketError, withQemuSocket } from './qemu-socket.js';

export interface QmpVcpu {
  index: number;
  tid: number;
}

/** query-cpus-fast's answer (qapi/machine.json: CpuInfoFast) as index and thread id. */
export function parseQueryCpusFast(answer: unknown): QmpVcpu[] {
  if (!Array.isArray(answer)) throw new QemuSocketError('query-cpus-fast did not answer a list', 'protocol');
  const out: QmpVcpu[] = [];
  for (const cpu of answer as Array<Record<string, unknown>>) {
    const index = cpu?.['cpu-index'];
    const tid = cpu?.['thread-id'];
    if (typeof index === 'number' && typeof tid === 'number' && tid > 0) out.push({ index, tid });
  }
  return out.sort((a, b) => a.index - b.index);
}

/**
 * Asks the QMP monitor on unix socket `path` for the vCPUs: the greeting, capabilities
 * negotiation, then query-cpus-fast, all within `timeoutMs`.
 */
export function qmpVcpus(path: string, timeoutMs: number): Promise<QmpVcpu[]> {
  return withQemuSocket(path, timeoutMs, async (qmp) => {
    const greeting = await qmp.next();
    if (!('QMP' in greeting)) throw new QemuSocketError(`${path} is not a QMP monitor (it greeted with ${JSON.stringify(greeting).slice(0, 80)})`, 'protocol');
    await qmp.execute('qmp_capabilities');
    return parseQueryCpusFast(await qmp.execute('query-cpus-fast'));
  });
}
