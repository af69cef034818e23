// Nothing of ours stays attached: closeAll() on exit, SIGINT, SIGTERM and uncaught errors.
import { addon, addonLoaded, type HandleCounts } from './addon.js';

const NONE: HandleCounts = { readers: 0, links: 0, objects: 0 };

/** Stops every ring reader, detaches every link, closes every object of this process. */
export function closeAll(): HandleCounts {
  return addonLoaded() ? addon().closeAll() : { ...NONE };
}

/** Detaches every link; objects and their maps stay readable. */
export function detachAll(): HandleCounts {
  return addonLoaded() ? addon().detachAll() : { ...NONE };
}

/** What is still open. */
export function liveHandles(): HandleCounts {
  return addonLoaded() ? addon().liveHandles() : { ...NONE };
}

let uninstall: (() => void) | undefined;
let gracefulHolders = 0;

/**
 * Declares that this process handles SIGINT/SIGTERM gracefully (aborting its run and closing
 * what it opened) until the returned function is called. Counting other listeners would not
 * do: libraries (ora's signal-exit) listen too, and would make the guard skip its close.
 */
export function holdGracefulSignals(): () => void {
  gracefulHolders++;
  let released = false;
  return () => {
    if (!released) gracefulHolders--;
    released = true;
  };
}

/**
 * Installs the process-wide guard (once; later calls return the same remover):
 * - on exit and on an uncaught exception (observed, not handled: the crash and its exit
 *   code stay as they were), everything is closed;
 * - on SIGINT/SIGTERM with no graceful handler held, everything is closed and the signal is raised
 *   again, so the process still dies of it (exit status 130/143);
 * - on SIGINT/SIGTERM while a graceful handler is held (holdGracefulSignals: the CLI
 *   aborting a run), links are detached at once and objects stay open so the run can still read
 *   its maps; they close at exit.
 */
export function installDetachGuard(): () => void {
  if (uninstall) return uninstall;
  const onExit = () => closeAll();
  const onSignal = (sig: NodeJS.Signals) => {
    if (gracefulHolders > 0) {
      detachAll();
      return;
    }
    closeAll();
    remove();
    process.kill(process.pid, sig);
  };
  process.on('exit', onExit);
  process.on('uncaughtExceptionMonitor', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const remove = () => {
    process.off('exit', onExit);
    process.off('uncaughtExceptionMonitor', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    uninstall = undefined;
  };
  uninstall = remove;
  return remove;
}
