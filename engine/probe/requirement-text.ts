// A probe's requirement in words, as `probes show` and the probe's README print it.
import type { Requirement } from './types.js';

/** `documented`: words that hold on every machine (a README), not what this one has now. */
export function describeRequirement(req: Requirement, documented = false): string {
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
      return documented && req.documented !== undefined ? req.documented : `${req.path} (${req.why})`;
  }
}
