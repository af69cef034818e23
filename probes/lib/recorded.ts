// What a probe resolved before it loads anything (its devices, threads, filters), recorded as a
// capture: a replay works from the recorded values and never resolves them again.
import type { ProbeIO } from '../../engine/probe/types.js';

/** Records `value()` as JSON in the capture `name` and returns it as recorded (in a replay, the recording's). */
export async function recorded<T>(io: ProbeIO, name: string, value: () => T | Promise<T>): Promise<T> {
  return JSON.parse((await io.capture(name, async () => JSON.stringify(await value()))).stdout) as T;
}
