// drops.kernel.bpf.o loaded whole: its three tracepoint flavours of kfree_skb attach, beside
// its two kprobe twins (drops_tp_btf_hdr, which older verifiers refuse, is drops-kernel.test's).
import assert from 'node:assert/strict';
import type { GlobalValue } from '../../engine/native/globals.js';
import type { BpfObject } from '../../engine/native/object.js';
import { withAllLoaded } from './attach-plan.js';

const DROPS_PROGRAMS = ['drops_raw_tp', 'drops_tp_btf', 'drops_tracepoint', 'drops_kprobe', 'drops_kprobe_legacy'];

/** Loads every program of drops.kernel.bpf.o with `globals`, attaches the tracepoint flavours, then runs `then` on the object. */
export function assertDropsFlavoursAttach(globals: Record<string, GlobalValue>, then: (o: BpfObject) => void): void {
  withAllLoaded('drops.kernel', DROPS_PROGRAMS, globals, (o) => {
    assert.ok(o.program('drops_raw_tp').attachRawTracepoint('kfree_skb').attachMs >= 0);
    assert.ok(o.program('drops_tp_btf').attach().attachMs >= 0);
    assert.ok(o.program('drops_tracepoint').attach().attachMs >= 0);
    then(o);
  }, ['drops_tp_btf_hdr']);
}
