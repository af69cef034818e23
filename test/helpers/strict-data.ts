// Loaded into every test process by scripts/run-tests.mjs (`--import`, with
// EBPFNET_STRICT_DATA=1): parser tests call a probe's `parse` directly, past the runtime's
// check of its output, so in strict mode each shipped probe's `parse` checks what it returns
// against the probe's declared data and throws the one-line mismatch.
import { checkDeclaredData, strictData } from '../../engine/probe/data-schema.js';
import { allProbes } from '../../probes/index.js';

if (strictData()) {
  for (const def of allProbes) {
    const parse = def.parse;
    def.parse = (records, params) => {
      const result = parse.call(def, records, params);
      const mismatch = checkDeclaredData(def, result.data);
      if (mismatch !== undefined) throw new Error(mismatch);
      return result;
    };
  }
}
