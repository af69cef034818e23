#!/usr/bin/env node
// What attaches where: every program of every shipped BPF object (build/bpf/*.bpf.o) loaded and
// attached alone on a kernel, counted per probe and kind (tp_btf, raw_tp, tracepoint, fentry,
// kprobe, kretprobe). Programs that attach to a device or a binary (tc, XDP, uprobes) are left
// out: they need a target, not a kernel feature. The modules whose functions kprobes attach to
// (openvswitch, nf_conntrack) are loaded first where the kernel has them.
//
//   node scripts/attach-matrix.mjs                  this kernel, as JSON
//   node scripts/attach-matrix.mjs --kernels host,bookworm,bullseye,trixie [--readme]
//       this kernel and Debian's stock kernels in the kernel lab (scripts/build-kernel-lab.sh
//       builds them); prints the Markdown table, and with --readme writes it into README.md
//       between the attach-matrix markers.
// Needs root and `npm run build`.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const KINDS = ['tp_btf', 'raw_tp', 'tracepoint', 'fentry', 'kprobe', 'kretprobe'];
const SUITES = { bookworm: 'Debian 12', bullseye: 'Debian 11', trixie: 'Debian 13' };

/** The kind of a program from its ELF section (`?tp_btf/kfree_skb` → tp_btf), or null. */
function kindOf(section) {
  const s = section.replace(/^\?/, '').split('/')[0];
  const alias = { raw_tracepoint: 'raw_tp', tp: 'tracepoint', fexit: 'fentry' };
  const k = alias[s] ?? s;
  return KINDS.includes(k) ? k : null;
}

/** On this kernel: { release, probes: { probe: { kind: { ok, total, errors } } } }. */
async function here() {
  const { BpfObject } = await import(join(root, 'dist/engine/native/object.js'));
  // Kprobes on a module's functions attach once it is loaded: OVS's datapath, conntrack.
  spawnSync('modprobe', ['-qa', 'openvswitch', 'nf_conntrack'], { stdio: 'ignore' });
  const dir = join(root, 'build', 'bpf');
  const probes = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.bpf.o')).sort()) {
    // net.defrag.kprobe.bpf.o is net.defrag's; selftest.bpf.o is doctor's.
    const probe = file.replace(/(\.kprobe)?\.bpf\.o$/, '');
    process.stderr.write(`attach-matrix: ${file}\n`);
    const names = (() => {
      const o = BpfObject.open(join(dir, file));
      try {
        return o.programs().map((p) => ({ name: p.name, kind: kindOf(p.section) })).filter((p) => p.kind);
      } finally {
        o.close();
      }
    })();
    // The programs of one kind together first (one load: fast under the lab's TCG), one by one when that fails.
    const tryLoad = (programs) => {
      const o = BpfObject.open(join(dir, file));
      try {
        for (const p of o.programs()) p.autoload = programs.includes(p.name);
        o.load();
        for (const name of programs) o.program(name).attach();
        return null;
      } catch (err) {
        return String(err instanceof Error ? err.message : err).split('\n')[0];
      } finally {
        o.close();
      }
    };
    for (const kind of KINDS) {
      const ofKind = names.filter((p) => p.kind === kind).map((p) => p.name);
      if (ofKind.length === 0) continue;
      const cell = ((probes[probe] ??= {})[kind] = { ok: 0, total: ofKind.length, errors: [] });
      if (tryLoad(ofKind) === null) {
        cell.ok = ofKind.length;
        continue;
      }
      for (const name of ofKind) {
        const error = tryLoad([name]);
        if (error === null) cell.ok++;
        else if (cell.errors.length < 2) cell.errors.push(`${name}: ${error}`);
      }
    }
  }
  return { release: release(), probes };
}

/** `node scripts/attach-matrix.mjs` inside the lab of `suite`: its JSON. */
async function inLab(suite) {
  const { runInKernelLab } = await import(join(root, 'dist/test/lab/kernel-lab.js'));
  const r = await runInKernelLab('node scripts/attach-matrix.mjs 2>/dev/null', { suite, timeoutMs: 1_800_000 });
  const json = r.output.slice(r.output.indexOf('{'), r.output.lastIndexOf('}') + 1);
  if (r.code !== 0 || !json) throw new Error(`attach-matrix in the ${suite} lab: exit ${r.code}: ${r.output.slice(-500)}`);
  return JSON.parse(json);
}

function table(columns) {
  const probes = [...new Set(columns.flatMap((c) => Object.keys(c.result.probes)))].sort();
  const head = ['probe', 'kind', ...columns.map((c) => `${c.label} (${c.result.release})`)];
  const rows = [];
  for (const probe of probes) {
    for (const kind of KINDS) {
      const cells = columns.map((c) => c.result.probes[probe]?.[kind]);
      if (cells.every((x) => !x)) continue;
      rows.push([probe, kind, ...cells.map((x) => (!x ? '' : x.ok === x.total ? `${x.ok}/${x.total}` : `**${x.ok}/${x.total}**`))]);
    }
  }
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const args = process.argv.slice(2);
const kernelsArg = args[args.indexOf('--kernels') + 1];
if (!args.includes('--kernels')) {
  process.stdout.write(`${JSON.stringify(await here())}\n`);
} else {
  const columns = [];
  for (const k of kernelsArg.split(',')) {
    const label = k === 'host' ? 'this machine' : (SUITES[k] ?? k);
    process.stderr.write(`attach-matrix: ${label}...\n`);
    columns.push({ label, result: k === 'host' ? await here() : await inLab(k) });
  }
  const md = `${table(columns)}\n\nProduced by \`node scripts/attach-matrix.mjs --kernels ${kernelsArg} --readme\` (${new Date().toISOString().slice(0, 10)}): programs that attached / programs of that kind, each loaded and attached alone; **bold** where some did not.`;
  process.stdout.write(`${md}\n`);
  if (args.includes('--readme')) {
    const path = join(root, 'README.md');
    const text = readFileSync(path, 'utf8');
    const start = '<!-- attach-matrix:start -->';
    const end = '<!-- attach-matrix:end -->';
    if (!text.includes(start) || !text.includes(end)) throw new Error(`README.md has no ${start} ... ${end} markers`);
    writeFileSync(path, text.replace(new RegExp(`${start}[\\s\\S]*${end}`), `${start}\n${md}\n${end}`));
  }
}
