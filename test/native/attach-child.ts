// Child process of signals.test.ts: attaches the selftest programs, streams their events, and
// runs until killed. argv[2] picks how it ends:
//   run       until a signal (the guard alone handles it)
//   graceful  holds a graceful handler with its own SIGTERM listener, as the CLI does: reports
//             what is open, exits 143
//   listener  a library's SIGTERM listener only (as signal-exit adds): the guard still closes
//             everything at once; the library's listener reports what is open and exits 0
//   throw     throws an uncaught error once attached
//   exit      calls process.exit(7) once attached
// It prints "attached" once everything is attached, and "open <json>" from its last exit handler.
import { holdGracefulSignals, installDetachGuard, liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { RingBufferReader } from '../../engine/native/ringbuf.js';

const mode = process.argv[2] ?? 'run';
installDetachGuard();
if (mode === 'graceful') {
  holdGracefulSignals();
  process.on('SIGTERM', () => {
    process.stdout.write(`on-signal ${JSON.stringify(liveHandles())}\n`);
    process.exit(143);
  });
}
if (mode === 'listener') {
  // Runs after the guard's listener (installed first): what is still open at that moment.
  process.on('SIGTERM', () => {
    process.stdout.write(`library-listener ${JSON.stringify(liveHandles())}\n`);
    process.exit(0);
  });
}
process.on('exit', () => process.stdout.write(`open ${JSON.stringify(liveHandles())}\n`));

const obj = BpfObject.open(bpfObjectPath('selftest'), { globals: { targ_tgid: process.pid } });
obj.load();
obj.program('st_tracepoint').attach();
obj.program('st_tp_btf').attach();
obj.program('st_raw_tp').attach();
const reader = new RingBufferReader(obj.map('events'), { lostMap: obj.map('lost') });
process.stdout.write('attached\n');

if (mode === 'throw') setTimeout(() => {
  throw new Error('boom after attach');
}, 20);
if (mode === 'exit') setTimeout(() => process.exit(7), 20);

setInterval(() => {
  for (let i = 0; i < 100; i++) void process.ppid;
}, 5);
void (async () => {
  for await (const batch of reader) void batch.count;
})();
