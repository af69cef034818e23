// Reads a YAML file into a plain value plus a map from every value's JSON
// pointer ("/steps/0/next/1/if") to where it sits in the file, so that any later
// check can name the exact line and column, down to a character inside a string.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Scalar, type YAMLError } from '#yaml';
import type { Problem } from './problems.js';

/** Where a value sits in the YAML file, for error messages. */
export interface SourcePos {
  line: number;
  column: number;
}

/** `["steps", 0, "if"]` → `"/steps/0/if"` (RFC 6901 escaping, as ajv's instancePath). */
export function toPointer(segments: Array<string | number>): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

export function fromPointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `"/steps/1/params/a.b"` → `steps[1].params["a.b"]`, how messages name a place. */
export function displayPath(pointer: string): string {
  let out = '';
  for (const segment of fromPointer(pointer)) {
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

interface Located {
  /** Character offset in the file. */
  offset: number;
  /** Set for scalars, to place a character inside them. */
  scalar?: Scalar;
}

/** Where each value (and each mapping key) of one YAML file sits. */
export class SourceMap {
  private readonly values = new Map<string, Located>();
  private readonly keys = new Map<string, Located>();
  private readonly lines: LineCounter;

  constructor(
    readonly file: string,
    private readonly text: string,
    lineCounter: LineCounter,
  ) {
    this.lines = lineCounter;
  }

  setValue(pointer: string, at: Located): void {
    this.values.set(pointer, at);
  }

  setKey(pointer: string, offset: number): void {
    this.keys.set(pointer, { offset });
  }

  /** Makes `alias` resolve to the place of `pointer`, and (when `deep`) of everything under it. */
  addAlias(alias: string, pointer: string, deep = true): void {
    const covers = (p: string) => p === pointer || (deep && p.startsWith(pointer + '/'));
    for (const [p, at] of [...this.values]) if (covers(p)) this.values.set(alias + p.slice(pointer.length), at);
    for (const [p, at] of [...this.keys]) if (covers(p)) this.keys.set(alias + p.slice(pointer.length), at);
  }

  has(pointer: string): boolean {
    return this.values.has(pointer);
  }

  offsetPos(offset: number): SourcePos {
    const { line, col } = this.lines.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return { line, column: col };
  }

  /** Where the value at `pointer` starts; the nearest enclosing value when it is absent. */
  valuePos(pointer: string): SourcePos {
    let p = pointer;
    for (;;) {
      const at = this.values.get(p);
      if (at) return this.offsetPos(at.offset);
      if (p === '') return { line: 1, column: 1 };
      p = p.slice(0, p.lastIndexOf('/'));
    }
  }

  /** Where the key naming the value at `pointer` starts (a list item: its value). */
  keyPos(pointer: string): SourcePos {
    const at = this.keys.get(pointer);
    return at ? this.offsetPos(at.offset) : this.valuePos(pointer);
  }

  /**
   * Where character `index` of the string at `pointer` sits in the file: exact
   * for plain, quoted and block scalars, across folded lines and escapes; the
   * scalar's start when the text cannot be followed.
   */
  charPos(pointer: string, index: number): SourcePos {
    const at = this.values.get(pointer);
    if (!at?.scalar || typeof at.scalar.value !== 'string' || !at.scalar.range) return this.valuePos(pointer);
    const [start, end] = at.scalar.range;
    const raw = this.text.slice(start, end);
    const inRaw = rawOffset(raw, String(at.scalar.type ?? 'PLAIN'), at.scalar.value, index);
    return this.offsetPos(start + (inRaw ?? 0));
  }

  /** Every value's position, for the loaded Runbook. */
  positions(): Map<string, SourcePos> {
    const out = new Map<string, SourcePos>();
    for (const [pointer, at] of this.values) out.set(pointer, this.offsetPos(at.offset));
    return out;
  }

  problem(pos: SourcePos, message: string): Problem {
    return { file: this.file, line: pos.line, column: pos.column, message };
  }

  /** A problem at the value of `pointer`, its message prefixed with the value's path. */
  atValue(pointer: string, message: string): Problem {
    return this.problem(this.valuePos(pointer), prefixed(pointer, message));
  }

  /** A problem at the key of `pointer` (a key that should not be there), named by the mapping holding it. */
  atKey(pointer: string, message: string): Problem {
    return this.problem(this.keyPos(pointer), prefixed(pointer.slice(0, pointer.lastIndexOf('/')), message));
  }

  /** A problem at one character inside the string at `pointer`. */
  atChar(pointer: string, index: number, message: string): Problem {
    return this.problem(this.charPos(pointer, index), prefixed(pointer, message));
  }
}

function prefixed(pointer: string, message: string): string {
  const path = displayPath(pointer);
  return path === '' ? message : `${path}: ${message}`;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b',
  ' ': ' ', '"': '"', '/': '/', '\\': '\\', N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029',
};
const HEX_ESCAPES: Record<string, number> = { x: 2, u: 4, U: 8 };

/** One escape sequence of a double-quoted scalar at `raw[s]` (a backslash): its length and text. */
function decodeEscape(raw: string, s: number): { length: number; text: string } | undefined {
  const e = raw[s + 1];
  if (e === undefined) return undefined;
  if (e === '\n' || e === '\r') {
    // An escaped line break joins the lines: it and the next line's indentation vanish.
    let j = s + 1;
    while (j < raw.length && /[\r\n \t]/.test(raw[j]!)) j++;
    return { length: j - s, text: '' };
  }
  const hex = HEX_ESCAPES[e];
  if (hex !== undefined) {
    const code = Number.parseInt(raw.slice(s + 2, s + 2 + hex), 16);
    return Number.isNaN(code) ? undefined : { length: 2 + hex, text: String.fromCodePoint(code) };
  }
  const text = SIMPLE_ESCAPES[e];
  return text === undefined ? undefined : { length: 2, text };
}

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';

/**
 * Follows a scalar's value through its source text (`raw`, from the node's
 * start) and returns the source offset of value character `index`. YAML only
 * drops or folds whitespace, quote doubling and escapes between the two, so a
 * greedy walk that skips those finds every other character.
 */
export function rawOffset(raw: string, type: string, value: string, index: number): number | undefined {
  let s = 0;
  if (type === 'BLOCK_LITERAL' || type === 'BLOCK_FOLDED') {
    const header = raw.indexOf('\n');
    if (header < 0) return undefined;
    s = header + 1;
  } else if (type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE') {
    s = 1;
  }
  const double = type === 'QUOTE_DOUBLE';
  const single = type === 'QUOTE_SINGLE';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    let matched = false;
    while (s < raw.length) {
      const r = raw[s]!;
      if (double && r === '\\') {
        const esc = decodeEscape(raw, s);
        if (!esc) return undefined;
        if (esc.text === '') {
          s += esc.length;
          continue;
        }
        if (value.startsWith(esc.text, i)) {
          if (index >= i && index < i + esc.text.length) return s;
          i += esc.text.length;
          s += esc.length;
          matched = true;
          break;
        }
        return undefined;
      }
      if (r === c || (isSpace(c) && isSpace(r))) {
        if (i === index) return s;
        i++;
        s++;
        matched = true;
        break;
      }
      if (isSpace(r) || (single && r === "'")) {
        s++;
        continue;
      }
      return undefined;
    }
    if (!matched) return undefined;
  }
  // Just past the last character (where "unexpected end" errors point).
  return index === value.length ? s : undefined;
}

export interface YamlRead {
  /** The document as plain JSON-like data; undefined when the YAML itself is broken. */
  value: unknown;
  map: SourceMap;
  problems: Problem[];
}

/** How many nodes aliases may expand to before the file is refused (a "billion laughs" guard). */
const MAX_NODES = 100_000;

function plainYamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '').trim();
}

/** The latest quoted string or flow collection starting before `before` that is never closed. */
function unclosedOpening(doc: Document, text: string, before: number): number | undefined {
  let found: number | undefined;
  const consider = (range: readonly number[] | null | undefined, close: string) => {
    if (!range) return;
    const [start = 0, end = 0] = range;
    const closed = end - start >= 2 && text.slice(start + 1, end).trimEnd().endsWith(close);
    if (!closed && start <= before && (found === undefined || start > found)) found = start;
  };
  visit(doc, {
    Scalar(_key, node) {
      if (node.type === 'QUOTE_DOUBLE') consider(node.range, '"');
      if (node.type === 'QUOTE_SINGLE') consider(node.range, "'");
    },
    Seq(_key, node) {
      if (node.flow) consider(node.range, ']');
    },
    Map(_key, node) {
      if (node.flow) consider(node.range, '}');
    },
  });
  return found;
}

/** Moves a position in a line's indentation to the line's first character. */
function firstNonSpace(text: string, offset: number): number {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  if (!/^[ \t]*$/.test(text.slice(lineStart, offset))) return offset;
  let i = offset;
  while (text[i] === ' ') i++;
  return text[i] === '\n' || text[i] === undefined ? offset : i;
}

/** Turns the parser's first error into a problem in plain words, at the place a reader would fix. */
function syntaxProblem(err: YAMLError, doc: Document, text: string, map: SourceMap): Problem {
  const detail = plainYamlMessage(err.message);
  let offset = err.pos[0];
  let message = `YAML syntax error: ${detail}`;
  switch (err.code) {
    case 'TAB_AS_INDENT':
      message = 'YAML: tabs are not allowed for indentation in YAML; indent with spaces';
      break;
    case 'MULTIPLE_DOCS':
      message = 'YAML: a runbook file holds one YAML document; remove the "---" line that starts a second one';
      break;
    case 'BLOCK_AS_IMPLICIT_KEY':
      message = 'YAML syntax error: "key: value" inside a value (a line indented too far, or a value holding ": " that needs quotes)';
      break;
    case 'MULTILINE_IMPLICIT_KEY':
      offset = firstNonSpace(text, offset);
      message = 'YAML syntax error: this line is not "key: value" (is its ":" missing?)';
      break;
    case 'UNEXPECTED_TOKEN':
      message = `YAML syntax error: ${detail} (quote the whole value when it holds quotes, ": " or " #")`;
      break;
    case 'TAG_RESOLVE_FAILED':
      message = `YAML: ${detail}; runbooks use plain values without tags`;
      break;
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      if (/^Missing closing/.test(detail)) {
        offset = unclosedOpening(doc, text, offset) ?? offset;
        message = `YAML syntax error: this quoted string is never closed (add the closing ${detail.includes('"') ? '"' : "'"})`;
      } else if (/^Flow (sequence|map) .* end with a [\]}]$/.test(detail)) {
        offset = unclosedOpening(doc, text, offset) ?? offset;
        const close = detail.endsWith(']') ? ']' : '}';
        message = `YAML syntax error: this ${close === ']' ? '"[" list' : '"{" mapping'} is never closed (add the closing "${close}", on the same line or indented under its key)`;
      } else if (err.code === 'BAD_INDENT' || /^Sequence item without/.test(detail)) {
        offset = firstNonSpace(text, offset);
        message = `YAML syntax error: ${detail} (check the indentation of this line against the lines above)`;
      }
      break;
  }
  return map.problem(map.offsetPos(offset), message);
}

/**
 * Parses YAML text, keeping where every value came from. Never throws. After a
 * syntax error the parser's guesses about the rest of the file are unreliable,
 * so only the first one is reported.
 */
export function readYaml(text: string, file: string): YamlRead {
  const lineCounter = new LineCounter();
  const map = new SourceMap(file, text, lineCounter);
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const errors = [...doc.errors, ...doc.warnings].sort((a, b) => a.pos[0] - b.pos[0]);
  if (errors[0]) return { value: undefined, map, problems: [syntaxProblem(errors[0], doc, text, map)] };
  const problems: Problem[] = [];
  const value = new Walker(doc, map, problems).build(doc.contents, '', true);
  return { value: problems.length ? undefined : value, map, problems };
}

class Walker {
  private count = 0;
  private readonly expanding: Node[] = [];

  constructor(
    private readonly doc: Document,
    private readonly map: SourceMap,
    private readonly problems: Problem[],
  ) {}

  private report(offset: number, message: string): void {
    this.problems.push(this.map.problem(this.map.offsetPos(offset), message));
  }

  build(node: unknown, pointer: string, record: boolean): unknown {
    if (node === null || node === undefined) return null;
    if (++this.count > MAX_NODES) {
      if (this.count === MAX_NODES + 1) this.report(0, `YAML: the document expands to more than ${MAX_NODES} values (aliases nested too deep)`);
      return null;
    }
    const n = node as Node;
    const offset = n.range?.[0] ?? 0;
    if (record) this.map.setValue(pointer, isScalar(n) ? { offset, scalar: n } : { offset });
    if (isScalar(n)) return n.value === undefined ? null : n.value;
    if (isAlias(n)) {
      const target = n.resolve(this.doc);
      if (!target) {
        this.report(offset, `YAML: alias "*${n.source}" has no anchor "&${n.source}" before it`);
        return null;
      }
      if (this.expanding.includes(target)) {
        this.report(offset, `YAML: alias "*${n.source}" refers to the value that contains it`);
        return null;
      }
      this.expanding.push(target);
      // Under an alias, children point at the anchored text: the only place they are written.
      const value = this.build(target, pointer, false);
      this.expanding.pop();
      if (!isScalar(target)) this.map.setValue(pointer, { offset });
      else this.map.setValue(pointer, { offset: target.range?.[0] ?? offset, scalar: target });
      return value;
    }
    if (isSeq(n)) return n.items.map((item, i) => this.build(item, `${pointer}/${i}`, true));
    if (isMap(n)) {
      const out: Record<string, unknown> = {};
      const seen = new Map<string, number>();
      for (const pair of n.items) {
        const key = pair.key as Node | null;
        const keyOffset = key?.range?.[0] ?? offset;
        if (!isScalar(key) || key.value === null || key.value === undefined || typeof key.value === 'object') {
          this.report(keyOffset, key && !isScalar(key) ? 'YAML: a key must be a plain name, not a list or a mapping' : 'YAML: a value has no key before its ":"');
          continue;
        }
        const name = String(key.value);
        const first = seen.get(name);
        if (first !== undefined) {
          this.report(keyOffset, `YAML: duplicate key "${name}" (already set at line ${this.map.offsetPos(first).line}); each key may appear once per mapping`);
          continue;
        }
        seen.set(name, keyOffset);
        const child = `${pointer}${toPointer([name])}`;
        this.map.setKey(child, keyOffset);
        const valueNode = pair.value as Node | null;
        const value = this.build(valueNode, child, true);
        if (!valueNode || (isScalar(valueNode) && value === null && valueNode.range?.[0] === valueNode.range?.[1])) {
          // `key:` with nothing after it: place the missing value at its key.
          this.map.setValue(child, { offset: keyOffset });
        }
        // defineProperty: a key named "__proto__" stays a plain key.
        Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    this.report(offset, 'YAML: unsupported node');
    return null;
  }
}
