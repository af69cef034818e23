// drops.kernel.bpf.o loaded whole: its three tracepoint flavours of kfree_skb attach, beside
// its two kprobe twins (drops_tp_btf_hdr, which older verifiers refuse, is drops-kernel.test's).
// Before 5.17 the tracepoint has no drop reason and the flavours that read it cannot load: the
// object is then loaded with its kprobe twins only, as drops.kernel runs there.
import assert from 'node:assert/strict';
import { tracepointFormat } from '../../engine/host/tracefs.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import type { BpfObject } from '../../engine/native/object.js';
import { hasReasonField, KFREE_SKB, parseReasonNames } from '../../probes/lib/drop-reasons.js';
import { withAllLoaded } from './attach-plan.js';

const TRACEPOINT_FLAVOURS = ['drops_raw_tp', 'drops_tp_btf', 'drops_tracepoint'];
const KPROBE_TWINS = ['drops_kprobe', 'drops_kprobe_legacy'];

/** Loads every program of drops.kernel.bpf.o this kernel can load with `globals`, attaches the tracepoint flavours, then runs `then` on the object. */
export async function assertDropsFlavoursAttach(globals: Record<string, GlobalValue>, then: (o: BpfObject) => void): Promise<void> {
  const reasoned = hasReasonField((await tracepointFormat(KFREE_SKB)) ?? '');
  const programs = reasoned ? [...TRACEPOINT_FLAVOURS, ...KPROBE_TWINS] : KPROBE_TWINS;
  const notLoaded = reasoned ? ['drops_tp_btf_hdr'] : ['drops_tp_btf_hdr', ...TRACEPOINT_FLAVOURS];
  withAllLoaded('drops.kernel', programs, globals, (o) => {
    if (reasoned) {
      assert.ok(o.program('drops_raw_tp').attachRawTracepoint('kfree_skb').attachMs >= 0);
      assert.ok(o.program('drops_tp_btf').attach().attachMs >= 0);
      assert.ok(o.program('drops_tracepoint').attach().attachMs >= 0);
    }
    then(o);
  }, notLoaded);
}

const FORMAT = (await tracepointFormat(KFREE_SKB)) ?? '';
/** Whether this kernel gives drops a reason (5.17+); before, drops.kernel names them by where they happen. */
export const REASONED = hasReasonField(FORMAT);
/** The drop reasons this kernel names (none before 5.17). */
export const REASON_NAMES = new Set(parseReasonNames(FORMAT).values());
/** Where nftables' drops are freed: nft_do_chain itself on 6.x (NF_DROP_REASON), nf_hook_slow before. */
export const NFT_PLACE = REASONED ? 'nft_do_chain' : 'nf_hook_slow';
