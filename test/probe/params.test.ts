import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatMs, parseDuration } from '../../engine/duration.js';
import { ParamError, resolveParams } from '../../engine/probe/params.js';
import type { ParamSpec } from '../../engine/probe/types.js';

function def(params: Record<string, ParamSpec>) {
  return { id: 'net.iface', params };
}

describe('resolveParams', () => {
  const iface = def({
    devices: { type: 'string[]', default: [], description: 'devices' },
    duration: { type: 'duration', default: '5s', description: 'how long', min: 100 },
    interval: { type: 'duration', default: 1000, description: 'interval' },
  });

  it('applies defaults, normalising durations to integer ms', () => {
    assert.deepEqual(resolveParams(iface, {}), { devices: [], duration: 5000, interval: 1000 });
  });

  it('accepts duration strings with units and numbers of ms', () => {
    assert.equal(resolveParams(iface, { duration: '500ms' }).duration, 500);
    assert.equal(resolveParams(iface, { duration: '5s' }).duration, 5000);
    assert.equal(resolveParams(iface, { duration: '2m' }).duration, 120_000);
    assert.equal(resolveParams(iface, { duration: '1.5s' }).duration, 1500);
    assert.equal(resolveParams(iface, { duration: 750.4 }).duration, 750);
  });

  it('rejects a bad duration with a one-line error naming probe, param and value', () => {
    assert.throws(
      () => resolveParams(iface, { duration: 'abc' }),
      (err: unknown) => {
        assert.ok(err instanceof ParamError);
        assert.equal(err.message, 'probe net.iface: param "duration": expected a duration like 5s, got "abc"');
        assert.equal(err.param, 'duration');
        return true;
      },
    );
    // A bare number in a string is ambiguous (seconds? ms?): refused.
    assert.throws(() => resolveParams(iface, { duration: '5' }), /param "duration": expected a duration like 5s, got "5"/);
    assert.throws(() => resolveParams(iface, { duration: -5 }), /expected a duration/);
  });

  it('enforces min and max', () => {
    assert.throws(() => resolveParams(iface, { duration: '50ms' }), /param "duration": must be at least 100ms, got "50ms"/);
    const bounded = def({ n: { type: 'integer', description: 'n', min: 1, max: 10 } });
    assert.throws(() => resolveParams(bounded, { n: 11 }), /param "n": must be at most 10, got 11/);
    assert.equal(resolveParams(bounded, { n: '10' }).n, 10);
  });

  it('accepts lists as arrays or comma-separated strings', () => {
    assert.deepEqual(resolveParams(iface, { devices: 'eth0, veth1,,' }).devices, ['eth0', 'veth1']);
    assert.deepEqual(resolveParams(iface, { devices: ['eth0', ' tap0 '] }).devices, ['eth0', 'tap0']);
    assert.deepEqual(resolveParams(iface, { devices: '' }).devices, []);
    assert.throws(() => resolveParams(iface, { devices: [1, 2] }), /param "devices": expected a list of strings/);
  });

  it('rejects unknown params, listing the known ones', () => {
    assert.throws(() => resolveParams(iface, { device: 'eth0' }), {
      name: 'ParamError',
      message: 'probe net.iface: unknown param "device" (known params: devices, duration, interval)',
    });
  });

  it('rejects a missing required param', () => {
    const d = def({ dst: { type: 'ip', required: true, description: 'destination' } });
    assert.throws(() => resolveParams(d, {}), { message: 'probe net.iface: param "dst": missing: expected an IPv4 or IPv6 address' });
  });

  it('takes an empty optional address as no address, but not a required one', () => {
    const d = def({ ip: { type: 'ip', description: 'filter' }, dst: { type: 'ip', required: true, description: 'destination' } });
    assert.deepEqual(resolveParams(d, { ip: '', dst: '10.0.0.1' }), { dst: '10.0.0.1' });
    assert.throws(() => resolveParams(d, { dst: '' }), /param "dst": expected an IPv4 or IPv6 address, got ""/);
  });

  it('coerces CLI strings for integer, number and boolean', () => {
    const d = def({
      count: { type: 'integer', description: 'c' },
      ratio: { type: 'number', description: 'r' },
      verbose: { type: 'boolean', description: 'v' },
    });
    assert.deepEqual(resolveParams(d, { count: '42', ratio: '0.25', verbose: 'yes' }), { count: 42, ratio: 0.25, verbose: true });
    assert.deepEqual(resolveParams(d, { count: 7, ratio: 3, verbose: 'false' }), { count: 7, ratio: 3, verbose: false });
    assert.throws(() => resolveParams(d, { count: '4.5' }), /param "count": expected an integer, got "4.5"/);
    assert.throws(() => resolveParams(d, { ratio: 'fast' }), /param "ratio": expected a number, got "fast"/);
    assert.throws(() => resolveParams(d, { verbose: 'maybe' }), /param "verbose": expected true or false, got "maybe"/);
  });

  it('checks IP addresses with node:net', () => {
    const d = def({ src: { type: 'ip', description: 's' } });
    assert.equal(resolveParams(d, { src: '10.0.0.1' }).src, '10.0.0.1');
    assert.equal(resolveParams(d, { src: 'fd00::2' }).src, 'fd00::2');
    assert.throws(() => resolveParams(d, { src: '10.0.0.256' }), /param "src": expected an IPv4 or IPv6 address, got "10.0.0.256"/);
  });

  it('checks enums', () => {
    const d = def({ mode: { type: 'string', enum: ['summary', 'detail'], default: 'summary', description: 'm' } });
    assert.equal(resolveParams(d, {}).mode, 'summary');
    assert.equal(resolveParams(d, { mode: 'detail' }).mode, 'detail');
    assert.throws(() => resolveParams(d, { mode: 'all' }), { message: 'probe net.iface: param "mode": expected one of summary, detail, got "all"' });
  });

  it('treats null (an empty YAML value) as not given', () => {
    assert.deepEqual(resolveParams(iface, { devices: null }).devices, []);
  });

  it("reports a broken default as the definition's fault", () => {
    const d = def({ duration: { type: 'duration', default: 'soon', description: 'd' } });
    assert.throws(() => resolveParams(d, {}), /param "duration": default expected a duration like 5s, got "soon"/);
  });
});

describe('durations', () => {
  it('parses and formats', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('nonsense'), undefined);
    assert.equal(formatMs(5000), '5s');
    assert.equal(formatMs(500), '500ms');
    assert.equal(formatMs(1500), '1.5s');
    assert.equal(formatMs(90_000), '1m30s');
    assert.equal(formatMs(120_000), '2m');
  });
});
