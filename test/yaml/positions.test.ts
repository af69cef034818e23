// Mapping values, keys and characters inside strings back to line:column.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { displayPath, fromPointer, rawOffset, readYaml, toPointer } from '../../engine/yaml/positions.js';

/** line:column of `needle`'s first occurrence (after `from`) in `text`, 1-based. */
function where(text: string, needle: string, from = 0): string {
  const offset = text.indexOf(needle, from);
  assert.ok(offset >= 0, `${needle} not in text`);
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

const at = (pos: { line: number; column: number }) => `${pos.line}:${pos.column}`;

describe('pointers', () => {
  test('escape like ajv instance paths and read back', () => {
    assert.equal(toPointer(['steps', 0, 'params', 'a/b~c']), '/steps/0/params/a~1b~0c');
    assert.deepEqual(fromPointer('/steps/0/params/a~1b~0c'), ['steps', '0', 'params', 'a/b~c']);
    assert.deepEqual(fromPointer(''), []);
  });

  test('display as a path a reader knows', () => {
    assert.equal(displayPath('/steps/1/timeout'), 'steps[1].timeout');
    assert.equal(displayPath('/inputs/src_ip/default'), 'inputs.src_ip.default');
    assert.equal(displayPath('/steps/0/params/a.b'), 'steps[0].params["a.b"]');
    assert.equal(displayPath(''), '');
  });
});

describe('readYaml', () => {
  test('places every value and key', () => {
    const text = 'id: x\nsteps:\n  - id: first\n    next:\n      - goto: done\n';
    const { value, map, problems } = readYaml(text, 'f.yaml');
    assert.deepEqual(problems, []);
    assert.deepEqual(value, { id: 'x', steps: [{ id: 'first', next: [{ goto: 'done' }] }] });
    assert.equal(at(map.valuePos('/steps/0/next/0/goto')), where(text, 'done'));
    assert.equal(at(map.keyPos('/steps/0/next')), where(text, 'next'));
    assert.equal(at(map.valuePos('/steps/0')), where(text, 'id: first'));
    assert.equal(at(map.valuePos('')), '1:1');
    // Absent values fall back to the nearest enclosing one.
    assert.equal(at(map.valuePos('/steps/0/timeout')), where(text, 'id: first'));
    assert.equal(map.positions().get('/steps/0/next/0/goto')?.line, 5);
  });

  test('a key with no value is placed at its key', () => {
    const text = 'a: 1\ntimeout:\nb: 2\n';
    const { value, map } = readYaml(text, 'f.yaml');
    assert.deepEqual(value, { a: 1, timeout: null, b: 2 });
    assert.equal(at(map.valuePos('/timeout')), '2:1');
  });

  test('problems carry the file as given and a 1-based position', () => {
    const { map } = readYaml('a: 1\n', 'dir/f.yaml');
    assert.deepEqual(map.atValue('/a', 'bad'), { file: 'dir/f.yaml', line: 1, column: 4, message: 'a: bad' });
    assert.deepEqual(map.atKey('/a', 'unknown'), { file: 'dir/f.yaml', line: 1, column: 1, message: 'unknown' });
  });

  test('an empty file is null, not an error', () => {
    const { value, problems } = readYaml('# nothing here\n', 'f.yaml');
    assert.equal(value, null);
    assert.deepEqual(problems, []);
  });

  test('duplicate keys are an error at the second key', () => {
    const text = 'a: 1\nsteps:\n  - id: x\n    id: y\n';
    const { value, problems } = readYaml(text, 'f.yaml');
    assert.equal(value, undefined);
    assert.equal(problems.length, 1);
    assert.equal(`${problems[0]!.line}:${problems[0]!.column}`, '4:5');
    assert.match(problems[0]!.message, /duplicate key "id" \(already set at line 3\)/);
  });

  test('only the first syntax error is reported, in plain words', () => {
    const text = 'a:\n\tb: 1\n\tc: 2\n';
    const { problems } = readYaml(text, 'f.yaml');
    assert.equal(problems.length, 1);
    assert.equal(`${problems[0]!.line}:${problems[0]!.column}`, '2:1');
    assert.match(problems[0]!.message, /tabs are not allowed for indentation/);
  });

  test('an indentation error points at the misplaced line, not its margin', () => {
    const text = 'steps:\n  - id: a\n    title: t\n   next: b\n';
    const { problems } = readYaml(text, 'f.yaml');
    assert.equal(`${problems[0]!.line}:${problems[0]!.column}`, '4:4');
    assert.match(problems[0]!.message, /check the indentation/);
  });

  test('an unclosed quote points at its opening quote', () => {
    const text = 'a: 1\nb: "never closed\nc: 2\n';
    const { problems } = readYaml(text, 'f.yaml');
    assert.equal(`${problems[0]!.line}:${problems[0]!.column}`, '2:4');
    assert.match(problems[0]!.message, /never closed/);
  });

  test('aliases resolve, their contents placed at the anchor', () => {
    const text = 'common: &p\n  duration: 5s\nparams: *p\n';
    const { value, map, problems } = readYaml(text, 'f.yaml');
    assert.deepEqual(problems, []);
    assert.deepEqual(value, { common: { duration: '5s' }, params: { duration: '5s' } });
    assert.equal(at(map.valuePos('/params')), where(text, '*p'));
    assert.equal(at(map.valuePos('/params/duration')), where(text, '5s'));
  });

  test('an alias without its anchor is a problem, not an exception', () => {
    const { problems } = readYaml('a: *nowhere\n', 'f.yaml');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /alias "\*nowhere" has no anchor/);
  });

  test('a key named __proto__ stays a plain key', () => {
    const { value } = readYaml('__proto__: 1\n', 'f.yaml');
    assert.deepEqual(Object.keys(value as object), ['__proto__']);
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });
});

describe('characters inside strings', () => {
  function charAt(text: string, pointer: string, needle: string): string {
    const { value, map, problems } = readYaml(text, 'f.yaml');
    assert.deepEqual(problems, []);
    const str = fromPointer(pointer).reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], value) as string;
    return at(map.charPos(pointer, str.indexOf(needle)));
  }

  test('plain scalar', () => {
    const text = 'if: findings.x.total > 0\n';
    assert.equal(charAt(text, '/if', 'total'), where(text, 'total'));
  });

  test('single-quoted with doubled quotes', () => {
    const text = "s: 'it''s ${inputs.x}'\n";
    assert.equal(charAt(text, '/s', 'inputs'), where(text, 'inputs'));
  });

  test('double-quoted with escapes', () => {
    const text = 's: "say \\"hi\\" \\u00e9 then ${inputs.x}"\n';
    assert.equal(charAt(text, '/s', 'inputs'), where(text, 'inputs'));
  });

  test('plain scalar folded over lines', () => {
    const text = 's: first line\n  second ${inputs.x} line\n';
    assert.equal(charAt(text, '/s', 'inputs'), where(text, 'inputs'));
  });

  test('literal block', () => {
    const text = 'explanation: |\n  One line.\n    Indented ${findings.a.b} here.\n  Last.\n';
    assert.equal(charAt(text, '/explanation', 'findings'), where(text, 'findings'));
  });

  test('folded block with a header comment', () => {
    const text = 'explanation: >- # folded\n  One line\n  then ${findings.a.b}.\n';
    assert.equal(charAt(text, '/explanation', 'findings'), where(text, 'findings'));
  });

  test('double-quoted across lines with an escaped line break', () => {
    const text = 's: "start \\\n  then ${inputs.x}"\n';
    assert.equal(charAt(text, '/s', 'inputs'), where(text, 'inputs'));
  });

  test('just past the end (where "unexpected end" points)', () => {
    const text = 'if: a >\n';
    const { map } = readYaml(text, 'f.yaml');
    assert.equal(at(map.charPos('/if', 3)), '1:8');
  });

  test('text that cannot be followed falls back to the scalar start', () => {
    assert.equal(rawOffset('abc', 'PLAIN', 'xyz', 1), undefined);
    const text = 'n: 42\n';
    const { map } = readYaml(text, 'f.yaml');
    assert.equal(at(map.charPos('/n', 1)), '1:4');
  });
});
