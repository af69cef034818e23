// Network namespaces as the BPF programs know them, by inode: an `ip netns` name, a path or an
// inode number resolved to its inode, and the named namespaces a finding labels devices with.
import { readdir, stat } from 'node:fs/promises';

const NETNS_DIR = '/var/run/netns';

export async function netnsInode(ns: string): Promise<number> {
  if (/^\d+$/.test(ns)) return Number(ns);
  const path = ns.includes('/') ? ns : `${NETNS_DIR}/${ns}`;
  try {
    return (await stat(path)).ino;
  } catch {
    throw new Error(`no network namespace ${ns} (${path})`);
  }
}

export async function namedNamespaces(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let names: string[] = [];
  try {
    names = (await readdir(NETNS_DIR)).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      out[String((await stat(`${NETNS_DIR}/${name}`)).ino)] = name;
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
