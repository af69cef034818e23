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

/**
 * Installs the process-wide guard (once; later calls return the same remover):
 * - on exit and on an uncaught exception (observed, not handled: the crash and its exit
 *   code stay as they were), everything is closed;
 * - on SIGINT/SIGTERM with no other listener, everything is closed and the signal is raised
 *   again, so the process still dies of it (exit status 130/143);
 * - on SIGINT/SIGTERM when the program has its own listener (the CLI aborting a run
 *   gracefully), links are detached at once and objects stay open so the run can still read
 *   its maps; they close at exit.
 */
export function installDetachGuard(): () => void {
  if (uninstall) return uninstall;
  const onExit = () => closeAll();
  const onSignal = (sig: NodeJS.Signals) => {
    if (process.listenerCount(sig) > 1) {
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
