// drops.kernel's finding data is the drop session's (probes/lib/data/drops.ts), which the
// composite drop probes read too.
export { DROPS_DATA as DATA, type DropsData } from '../lib/data/drops.js';
