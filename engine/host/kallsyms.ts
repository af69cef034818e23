// Kernel addresses → `function+0xoff`, from /proc/kallsyms. Reading and indexing it takes
// ~250 ms (the kernel generates 120k lines, then they are parsed and sorted), so a probe
// starts it when its programs attach (`prefetchKallsyms`) and the table is ready when the
// window ends. The table is kept for a minute, and while the loaded modules stay the same: a
// module loaded meanwhile (a qdisc's, on the first `tc qdisc add`) would otherwise lend its
// addresses to the symbol before it.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Past the end of a function by more than any function is long: not a known symbol. */
const MAX_SYMBOL_OFFSET = 0x100000n;
const KEEP_MS = 60_000;
/** Lines parsed between yields to the event loop, so timers and ring buffers stay served. */
const CHUNK = 8192;

interface Table {
  addrs: BigUint64Array;
  names: string[];
}

let cached: { path: string; at: number; modules: string; table: Promise<Table> } | undefined;

/** The loaded modules by name and address (not their use counts, which change all the time): /proc/modules when `path` is the running kernel's table. */
function modulesOf(path: string, modulesPath = path === '/proc/kallsyms' ? '/proc/modules' : undefined): string {
  if (modulesPath === undefined) return '';
  try {
    return readFileSync(modulesPath, 'utf8')
      .split('\n')
      .map((line) => {
        const f = line.split(' ');
        return `${f[0]} ${f[5] ?? ''}`;
      })
      .join('\n');
  } catch {
    return ''; // a kernel without modules
  }
}

async function load(path: string): Promise<Table> {
  const text = await readFile(path, 'utf8');
  const lines = text.split('\n');
  const entries: Array<{ addr: bigint; name: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (i % CHUNK === CHUNK - 1) await yieldToLoop();
    const line = lines[i]!;
    const sp1 = line.indexOf(' ');
    if (sp1 < 0) continue;
    const type = line[sp1 + 1];
    if (type !== 't' && type !== 'T') continue;
    const rest = line.slice(sp1 + 3);
    const tab = rest.indexOf('\t');
    // A module's function: `name\t[module]`, kept as the kernel prints it, `name+0xoff [module]`.
    const name = tab < 0 ? rest : `${rest.slice(0, tab)}\t${rest.slice(tab + 1).trim()}`;
    const addr = BigInt(`0x${line.slice(0, sp1)}`);
    if (addr !== 0n) entries.push({ addr, name });
  }
  await yieldToLoop();
  entries.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  return { addrs: BigUint64Array.from(entries, (e) => e.addr), names: entries.map((e) => e.name) };
}

/** Starts reading the symbol table (once a minute at most); `symbolise` then waits for it. */
export function prefetchKallsyms(path = '/proc/kallsyms', modulesPath?: string): void {
  const modules = modulesOf(path, modulesPath);
  if (cached && cached.path === path && Date.now() - cached.at < KEEP_MS && cached.modules === modules) return;
  const table = load(path);
  table.catch(() => undefined); // reported by symbolise
  cached = { path, at: Date.now(), modules, table };
}

/** Address (hex) → `symbol+0xoff` (`symbol+0xoff [module]` in a module) for each address; an unknown one stays as it is. */
export async function symbolise(addrs: string[], path = '/proc/kallsyms', modulesPath?: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (addrs.length === 0) return out;
  prefetchKallsyms(path, modulesPath);
  const { addrs: table, names } = await cached!.table;
  for (const hexAddr of addrs) {
    const a = BigInt(hexAddr);
    let lo = 0;
    let hi = table.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (table[mid]! <= a) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // (a BPF program's address once it is unloaded is past every function's end)
    const off = found < 0 ? -1n : a - table[found]!;
    if (off < 0n || off > MAX_SYMBOL_OFFSET) {
      out[hexAddr] = hexAddr;
      continue;
    }
    const [fn, module] = names[found]!.split('\t');
    out[hexAddr] = `${fn}+0x${off.toString(16)}${module ? ` ${module}` : ''}`;
  }
  return out;
}

/**
 * Address ranges [start, next symbol) of the functions named (those the kernel has), in the order
 * asked: the core kernel's, or a loaded module's as `name [module]`.
 */
export async function functionRanges(names: readonly string[], path = '/proc/kallsyms'): Promise<Array<{ name: string; lo: bigint; hi: bigint }>> {
  prefetchKallsyms(path);
  const { addrs, names: all } = await cached!.table;
  return names.flatMap((name) => {
    const i = all.indexOf(name.replace(/ (\[.+\])$/, '\t$1'));
    return i < 0 || i + 1 >= addrs.length ? [] : [{ name, lo: addrs[i]!, hi: addrs[i + 1]! }];
  });
}
