// A probe's requirement in words, as `probes show` and the probe's README print it.
import type { Requirement } from './types.js';

export function describeRequirement(req: Requirement): string {
  switch (req.kind) {
    case 'root':
      return 'root';
    case 'binary':
      return `binary ${req.name}${req.package ? ` (apt-get install ${req.package})` : ''}`;
    case 'kernel':
      return `kernel feature ${req.feature}`;
    case 'tracepoint':
      return `tracepoint ${req.name}`;
    case 'path':
      return `${req.path} (${req.why})`;
  }
}
