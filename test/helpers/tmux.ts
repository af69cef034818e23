// Drives a command in a real terminal: a detached tmux session on its own server socket,
// keys sent as a person would type them, the screen read back as text.
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/** Our own tmux server, so tests never touch anyone's sessions. */
const SOCKET = 'ebpfnet-test';
const EXIT_MARK = /\[exit (\d+)\]/;

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });

/** Single-quotes for sh. */
const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

export class TerminalSession {
  private constructor(readonly name: string) {}

  /**
   * Runs argv in a new session of `columns` × `rows`. When the command ends, its exit status
   * is printed as `[exit N]` and the pane stays open, so the screen can still be read.
   */
  static start(name: string, argv: string[], opts: { cwd?: string; columns?: number; rows?: number } = {}): TerminalSession {
    const command = `${argv.map(shellQuote).join(' ')}; echo "[exit $?]"; sleep 600`;
    const size = ['-x', String(opts.columns ?? 160), '-y', String(opts.rows ?? 50)];
    tmux('new-session', '-d', '-s', name, ...size, ...(opts.cwd ? ['-c', opts.cwd] : []), command);
    return new TerminalSession(name);
  }

  /** Everything the pane has shown, scrollback included, wrapped lines joined. */
  screen(): string {
    return tmux('capture-pane', '-p', '-J', '-S', '-', '-t', this.name);
  }

  /** tmux key names: 'Enter', 'Down', 'C-c', or literal text. */
  keys(...keys: string[]): void {
    tmux('send-keys', '-t', this.name, ...keys);
  }

  /** Waits until `ready(screen)` holds; fails showing the screen as it was. */
  async waitFor(what: string, ready: (screen: string) => boolean, timeoutMs = 90_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (ready(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000}s for ${what}; the screen:\n${screen}`);
      await sleep(100);
    }
  }

  /** Waits until `text` is on the screen `times` times (a prompt asked again, say). */
  waitForText(text: string, times = 1, timeoutMs?: number): Promise<string> {
    return this.waitFor(`${times} × "${text}"`, (s) => s.split(text).length - 1 >= times, timeoutMs);
  }

  /** Waits for the command to end; its exit status and the final screen. */
  async exited(timeoutMs?: number): Promise<{ status: number; screen: string }> {
    const screen = await this.waitFor('the command to exit', (s) => EXIT_MARK.test(s), timeoutMs);
    return { status: Number(EXIT_MARK.exec(screen)![1]), screen };
  }

  kill(): void {
    try {
      tmux('kill-session', '-t', this.name);
    } catch {
      // already gone
    }
  }
}
