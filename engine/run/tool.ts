import { packageVersion } from '../package-info.js';

export function toolInfo(): { name: 'ebpfnet'; version: string; node: string } {
  return { name: 'ebpfnet', version: packageVersion(), node: process.version };
}
