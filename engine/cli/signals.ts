// Ctrl-C and SIGTERM abort the work in progress so it can close its bundle and
// detach what it attached; a second signal exits at once.

import { holdGracefulSignals } from '../native/guard.js';

export interface SignalScope {
  signal: AbortSignal;
  /** The signal that aborted, if any. */
  received(): NodeJS.Signals | undefined;
  dispose(): void;
}

export function abortOnSignals(): SignalScope {
  const controller = new AbortController();
  let got: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (got) process.exit(sig === 'SIGTERM' ? 143 : 130);
    got = sig;
    controller.abort(`received ${sig}`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  const release = holdGracefulSignals();
  return {
    signal: controller.signal,
    received: () => got,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      release();
    },
  };
}
