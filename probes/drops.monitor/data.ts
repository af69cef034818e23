// drops.monitor's finding data: a timeline of kernel drops, one window per interval, with
// the totals and what changed from one window to the next.
import Type, { type Static } from '#typebox';
import { DROPS_ATTACH_FIELDS } from '../lib/data/drops.js';
import { countsBy } from '../lib/data/fields.js';
import { OVERHEAD } from '../lib/data/session.js';

const WINDOW = Type.Object(
  {
    index: Type.Integer({ description: "The window's number, from 0." }),
    start: Type.Number({ unit: 'ms', description: 'When the window started, ms since the epoch.' }),
    end: Type.Number({ unit: 'ms', description: 'When its maps were read, ms since the epoch.' }),
    windowMs: Type.Number({ unit: 'ms', description: 'Time the programs counted in it.' }),
    total: Type.Integer({ unit: 'packets', description: 'Drops in the window.' }),
    rate: Type.Number({ unit: 'events/s', description: 'Drops per second over the window.' }),
    byReason: countsBy('Drops in the window by reason.'),
    rates: Type.Record(Type.String(), Type.Number({ unit: 'events/s' }), { description: 'Drops per second by reason.' }),
  },
  { additionalProperties: false },
);

const REASON_AT = Type.Object(
  {
    reason: Type.String({ description: 'The drop reason.' }),
    window: Type.Integer({ description: 'The window it changed in.' }),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    intervalMs: Type.Number({ unit: 'ms', description: 'Length of one window.' }),
    durationMs: Type.Number({ unit: 'ms', description: 'From the start of the first window to the end of the last.' }),
    ...DROPS_ATTACH_FIELDS,
    windows: Type.Array(WINDOW, { description: 'The timeline, one entry per window.' }),
    overhead: Type.Optional(OVERHEAD),
    totals: Type.Object(
      {
        total: Type.Integer({ unit: 'packets', description: 'Drops in every window.' }),
        rate: Type.Number({ unit: 'events/s', description: 'Drops per second over the time counted.' }),
        byReason: countsBy('Drops by reason, most first.'),
      },
      { additionalProperties: false, description: 'Over every window.' },
    ),
    changes: Type.Object(
      {
        appeared: Type.Array(REASON_AT, { description: 'A reason absent in the window before and present in this one.' }),
        vanished: Type.Array(REASON_AT, { description: 'A reason present in the window before and absent in this one.' }),
        peak: Type.Union(
          [
            Type.Object(
              {
                window: Type.Integer({ description: 'The window.' }),
                total: Type.Integer({ unit: 'packets', description: 'Its drops.' }),
                rate: Type.Number({ unit: 'events/s', description: 'Its drops per second.' }),
                start: Type.Number({ unit: 'ms', description: 'When it started, ms since the epoch.' }),
              },
              { additionalProperties: false },
            ),
            Type.Null(),
          ],
          { description: 'The window with the most drops; null when nothing dropped.' },
        ),
        steady: Type.Array(Type.String(), { description: 'Reasons seen in every window.' }),
      },
      { additionalProperties: false, description: 'What changed from one window to the next.' },
    ),
  },
  { additionalProperties: false },
);

export type DropsMonitorData = Static<typeof DATA>;
