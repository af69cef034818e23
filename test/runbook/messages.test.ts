// What the loader says about each kind of mistake, and where.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProbeCatalog } from '../../engine/probe/types.js';
import { formatProblem, loadRunbookText, RunbookError, type Problem } from '../../engine/runbook/load.js';
import { testCatalog } from './catalog.js';

/** A valid runbook; tests splice one mistake into it. */
const BASE = `id: demo
title: Demo
description: A small runbook.
inputs:
  duration:
    type: duration
    default: 5s
    description: Window.
steps:
  - id: sample
    title: Sample
    probe: net.iface
    as: iface
    params:
      duration: \${inputs.duration}
    next:
      - if: findings.iface.dropping.size() > 0
        goto: drops
      - goto: clean
conclusions:
  - id: drops
    title: Drops
    category: device
    confidence: high
    summary: \${findings.iface.worst.name} drops
    explanation: Dropping.
  - id: clean
    title: Clean
    category: none
    confidence: low
    summary: Nothing dropped
    explanation: Nothing.
`;

function problems(text: string, catalog: ProbeCatalog = testCatalog): Problem[] {
  try {
    loadRunbookText(text, 'demo.yaml', catalog);
  } catch (err) {
    assert.ok(err instanceof RunbookError, `not a RunbookError: ${String(err)}`);
    return err.problems;
  }
  assert.fail('the runbook was accepted');
}

/** `line:column: message` of every problem, without the file. */
function said(text: string, catalog?: ProbeCatalog): string[] {
  return problems(text, catalog).map((p) => `${p.line}:${p.column}: ${p.message}`);
}

function edit(from: string, to: string, text = BASE): string {
  assert.ok(text.includes(from), `base has no ${from}`);
  return text.replace(from, to);
}

describe('the base runbook', () => {
  test('is valid', () => {
    const runbook = loadRunbookText(BASE, 'demo.yaml', testCatalog);
    assert.equal(runbook.id, 'demo');
  });
});

describe('schema messages', () => {
  test('a wrong duration says what a duration looks like', () => {
    assert.deepEqual(said(edit('    as: iface\n', '    as: iface\n    timeout: fast\n')), [
      '14:14: steps[0].timeout: expected a duration like 30s or 2m, got "fast"',
    ]);
  });

  test('an unknown key lists the expected ones and suggests the closest', () => {
    assert.deepEqual(said(edit('    probe: net.iface', '    prob: net.iface')), [
      '12:5: steps[0]: unknown key "prob" (expected one of: id, title, description, timeout, on_error, probe, as, params, probes, next); did you mean "probe"?',
    ]);
  });

  test('a wrong enum value lists the allowed ones', () => {
    assert.deepEqual(said(edit('confidence: low', 'confidence: certain')), [
      '30:17: conclusions[1].confidence: expected one of low, medium, high, got "certain"',
    ]);
  });

  test('a typo of a required key is one problem, not also a missing key', () => {
    assert.deepEqual(said(edit('    title: Sample', '    titel: Sample')), [
      '11:5: steps[0]: unknown key "titel" (expected one of: id, title, description, timeout, on_error, probe, as, params, probes, next); did you mean "title"?',
    ]);
  });

  test('a misspelt "ask" is read as a mistyped ask step, not as a probe step missing its keys', () => {
    const text = edit(
      '  - goto: clean\n',
      '  - goto: wait\n  - id: wait\n    title: Wait\n    aks:\n      question: Q?\n      choices: [{ id: a, label: A, goto: clean }]\n      default: a\n',
    ).replace('      - goto: clean\n', '      - goto: wait\n');
    const messages = said(text);
    assert.equal(messages.length, 1, messages.join('\n'));
    assert.match(messages[0]!, /unknown key "aks" .*did you mean "ask"\?/);
  });

  test('a wrong type hides the other complaints about the same value', () => {
    assert.deepEqual(said(edit('  - id: sample', '  - id: 5')), [
      '10:9: steps[0].id: expected an id of lowercase words joined by "-" (like "sample"), got 5',
    ]);
  });

  test('a step that is not a mapping', () => {
    const messages = said(edit('steps:\n', 'steps:\n  - sample\n'));
    assert.deepEqual(messages, ['10:5: steps[0]: expected a step (a mapping with id, title, and probe, probes or ask), got "sample"']);
  });

  test('a step with neither probe, probes nor ask', () => {
    const text = edit('    probe: net.iface\n    as: iface\n    params:\n      duration: ${inputs.duration}\n', '');
    assert.deepEqual(said(text), ['10:5: steps[0]: a step needs "probe:" (one probe), "probes:" (a list of probes) or "ask:" (a question)']);
  });

  test('"as:" on a step with "probes:" is one problem at the key', () => {
    const text = edit('    probe: net.iface\n', '    probes: [{ probe: net.iface }]\n').replace('    params:\n      duration: ${inputs.duration}\n', '');
    assert.deepEqual(said(text), ['13:5: steps[0]: "as:" on the step goes with "probe:"; with "probes:", give each entry its own "as:"']);
  });

  test('a missing required key is reported at the mapping that lacks it', () => {
    assert.deepEqual(said(edit('    category: none\n', '')), ['27:5: conclusions[1]: missing required key "category"']);
  });

  test('an empty file and a file that is a list', () => {
    assert.deepEqual(said(''), ['1:1: the file is empty: a runbook is a mapping with id, title, description, steps and conclusions']);
    assert.deepEqual(said('- a\n- b\n'), [
      '1:1: expected a runbook (a mapping with id, title, description, steps and conclusions), got a list',
    ]);
  });

  test('an empty title, a null param, an enum typo', () => {
    assert.deepEqual(said(edit('title: Demo', 'title: ""')), ['2:8: title: must not be empty: expected text']);
    assert.deepEqual(said(edit('      duration: ${inputs.duration}', '      duration:')), [
      '15:7: steps[0].params.duration: expected a value (text, a number, true/false, or a list of them), got nothing',
    ]);
    assert.deepEqual(said(edit('type: duration', 'type: durations')), [
      '6:11: inputs.duration.type: expected one of string, integer, number, boolean, duration, ip, vm, string[], got "durations"; did you mean "duration"?',
    ]);
  });

  test('every schema mistake is reported, sorted by position', () => {
    const text = edit('confidence: low', 'confidence: sure', edit('  - id: sample', '  - id: Sample'));
    assert.deepEqual(
      problems(text).map((p) => `${p.line}:${p.column}`),
      ['10:9', '30:17'],
    );
  });
});

describe('phases', () => {
  test('a YAML error stops before the schema', () => {
    const messages = said(edit('title: Demo', 'title: Demo\nbogus: [1, 2'));
    assert.equal(messages.length, 1);
    assert.equal(messages[0], '3:8: YAML syntax error: this "[" list is never closed (add the closing "]", on the same line or indented under its key)');
  });

  test('a schema error stops before the meaning checks', () => {
    const text = edit('goto: clean', 'goto: nowhere', edit('confidence: low', 'confidence: sure'));
    assert.deepEqual(said(text), ['30:17: conclusions[1].confidence: expected one of low, medium, high, got "sure"']);
  });

  test('every meaning problem is reported at once', () => {
    const text = edit('goto: clean', 'goto: nowhere', edit('if: findings.iface', 'if: findings.ifac'));
    assert.deepEqual(said(text), [
      '17:22: steps[0].next[0].if: reads findings.ifac, but no step produces a finding named "ifac"; did you mean "iface"? (findings: iface)',
      '19:15: steps[0].next[1].goto: no step or conclusion has id "nowhere" (steps: sample; conclusions: drops, clean)',
    ]);
  });
});

describe('probes and params', () => {
  const ping = (params: string) =>
    edit('    probe: net.iface\n    as: iface\n    params:\n      duration: ${inputs.duration}\n', `    probe: ping.rtt\n    as: iface\n    params:\n${params}`);

  test('a missing required param', () => {
    assert.deepEqual(said(ping('      count: 3\n')), [
      '12:12: steps[0].probe: probe ping.rtt needs param "dst" (ip: Address to ping); add it under "params:"',
    ]);
  });

  test('literals of the wrong type, each at its value', () => {
    const messages = said(ping('      dst: 10.0.0.300\n      count: 2.5\n      ratio: "high"\n      verbose: "yes"\n      family: inet4\n'));
    assert.deepEqual(messages, [
      '15:12: steps[0].params.dst: expected an IPv4 or IPv6 address for param "dst", got "10.0.0.300"',
      '16:14: steps[0].params.count: expected an integer for param "count", got 2.5',
      '17:14: steps[0].params.ratio: expected a number for param "ratio", got "high"',
      '18:16: steps[0].params.verbose: expected true or false for param "verbose", got "yes"',
      '19:15: steps[0].params.family: expected one of inet, inet6 for param "family", got "inet4"; did you mean "inet6"?',
    ]);
  });

  test('a template is checked as CEL, not against the type, unless mixed with text for a non-text param', () => {
    assert.doesNotThrow(() => loadRunbookText(ping('      dst: ${inputs.duration}\n      count: ${1 + 2}\n'), 'demo.yaml', testCatalog));
    assert.deepEqual(said(ping('      dst: 10.0.0.1\n      count: ${1 + 2}0\n')), [
      '16:14: steps[0].params.count: param "count" takes an integer, but a template mixed with text gives text; write the value as exactly one ${...}',
    ]);
  });

  test('a list param with a non-text item', () => {
    const text = edit('      duration: ${inputs.duration}', '      devices: [eth0, 7]');
    assert.deepEqual(said(text), ['15:23: steps[0].params.devices[1]: expected text (param "devices" is a list of strings), got 7']);
  });

  test('an unknown param of a probe with params lists them; one with a typo suggests it', () => {
    const text = edit('      duration: ${inputs.duration}', '      durations: 5s');
    assert.deepEqual(said(text), [
      '15:7: steps[0].params: unknown param "durations" for probe net.iface; did you mean "duration"? (its params: devices, duration, interval)',
    ]);
  });

  test('an unknown probe with no close match lists known probes', () => {
    const messages = said(edit('probe: net.iface', 'probe: conntrack.table'));
    assert.deepEqual(messages, [
      '12:12: steps[0].probe: unknown probe "conntrack.table" (known probes: net.iface, ping.rtt, qdisc.stats; see `ebpfnet probes list`)',
    ]);
  });

  test('an empty catalog says so', () => {
    const empty: ProbeCatalog = { get: () => undefined, ids: () => [] };
    assert.match(said(BASE, empty).join('\n'), /unknown probe "net.iface" \(no probes are registered/);
  });

  test('two probes left to their default name in one step clash', () => {
    const text = edit('    probe: net.iface\n    as: iface\n    params:\n      duration: ${inputs.duration}\n', '    probes:\n      - probe: net.iface\n      - probe: net.iface\n').replace(
      /findings\.iface/g,
      'findings.net_iface',
    );
    assert.deepEqual(said(text), [
      '14:16: steps[0].probes[1].probe: finding name "net_iface" (the default name of net.iface) is already used by probes[0] of this step; give one of them a different "as:"',
    ]);
  });
});

describe('conditions and templates', () => {
  test('every broken ${...} of a string is reported at its character', () => {
    const text = edit('summary: ${findings.iface.worst.name} drops', 'summary: ${findings.iface.worst.} and ${nope} drops');
    assert.deepEqual(said(text), [
      '25:37: conclusions[0].summary: template "${findings.iface.worst.}" does not parse as CEL: Expected IDENTIFIER, got EOF',
      '25:45: conclusions[0].summary: template "${nope}" is not a valid CEL expression: Unknown variable: nope (expressions can read inputs, findings, answers, target, host)',
    ]);
  });

  test('quoted strings and block scalars point inside the text', () => {
    const quoted = edit('title: Sample', 'title: "Sample \\"${inputs.durration}\\""');
    assert.deepEqual(said(quoted), [
      '11:31: steps[0].title: reads inputs.durration, but no input "durration" is declared; did you mean "duration"? (inputs: duration)',
    ]);
    const block = edit('explanation: Dropping.', 'explanation: |\n      First line.\n      Then ${inputs.window}.');
    assert.deepEqual(said(block), [
      '28:21: conclusions[0].explanation: reads inputs.window, but no input "window" is declared (inputs: duration)',
    ]);
  });

  test('bracketed references are checked too', () => {
    assert.deepEqual(said(edit('if: findings.iface.dropping', 'if: findings["ifaces"].dropping')), [
      '17:23: steps[0].next[0].if: reads findings.ifaces, but no step produces a finding named "ifaces"; did you mean "iface"? (findings: iface)',
    ]);
  });

  test('answers name ask steps, and a dashed id needs brackets', () => {
    const withAsk = edit('      - goto: clean\n', '      - goto: look-again\n  - id: look-again\n    title: Again?\n    ask:\n      question: Again?\n      choices: [{ id: stop, label: Stop, goto: clean }]\n      default: stop\n');
    const messages = said(edit('if: findings.iface.dropping.size() > 0', 'if: answers.look == "stop"', withAsk));
    assert.deepEqual(messages, [
      '17:21: steps[0].next[0].if: reads answers.look, but no ask step has id "look"; write answers["look-again"] for an id with "-" (ask steps: look-again)',
    ]);
    assert.match(said(edit('if: findings.iface.dropping.size() > 0', 'if: answers.sample == "x"')).join(), /no ask step has id "sample" \(this runbook has no ask step\)/);
  });

  test('inputs of a runbook without inputs', () => {
    const text = edit('inputs:\n  duration:\n    type: duration\n    default: 5s\n    description: Window.\n', '');
    const messages = said(text);
    assert.equal(messages.length, 1);
    assert.match(messages[0]!, /^10:26: .*no input "duration" is declared \(this runbook declares no inputs\)/);
  });
});

describe('structure and graph', () => {
  test('an ask choice id used twice, and a zero ask timeout', () => {
    const text = edit(
      '      - goto: clean\n',
      '      - goto: wait\n  - id: wait\n    title: Wait\n    ask:\n      question: Again?\n      choices:\n        - { id: a, label: A, goto: clean }\n        - { id: a, label: B, goto: drops }\n      default: a\n      timeout: 0s\n',
    );
    assert.deepEqual(said(text), [
      '26:17: steps[1].ask.choices[1].id: choice id "a" is used twice in this question',
      '28:16: steps[1].ask.timeout: a timeout must be longer than 0, got "0s"',
    ]);
  });

  test('a step reached only from an unreachable step says so', () => {
    const text = edit(
      '      - goto: clean\n',
      '      - goto: clean\n  - id: orphan\n    title: Orphan\n    probe: net.iface\n    next:\n      - goto: child\n  - id: child\n    title: Child\n    probe: net.iface\n    next:\n      - goto: clean\n',
    );
    assert.deepEqual(said(text), [
      '20:9: steps[1].id: step "orphan" is never reached from the first step "sample": no goto, on_error or choice leads to it',
      '25:9: steps[2].id: step "child" is never reached from the first step "sample": only "orphan" leads to it, and that step is never reached either',
    ]);
  });

  test('a loop between steps without a way out names the steps it is stuck among', () => {
    const text = edit('      - goto: clean\n', '      - goto: ping\n  - id: ping\n    title: Ping\n    probe: net.iface\n    as: p1\n    next:\n      - goto: pong\n  - id: pong\n    title: Pong\n    probe: net.iface\n    as: p2\n    next:\n      - goto: ping\n');
    const messages = said(text);
    assert.deepEqual(messages, [
      '39:9: conclusions[1].id: conclusion "clean" is never reached from the first step "sample": no goto, on_error or choice leads to it',
      '20:9: steps[1].id: step "ping" has no way to a conclusion: every path from it only goes on to "pong"; add a branch or an on_error that goes to a conclusion',
      '26:9: steps[2].id: step "pong" has no way to a conclusion: every path from it only goes on to "ping"; add a branch or an on_error that goes to a conclusion',
    ].sort((a, b) => parseInt(a) - parseInt(b)));
  });
});

describe('errors', () => {
  test('RunbookError holds every problem and prints them as file:line:column: message', () => {
    const err = (() => {
      try {
        loadRunbookText(edit('goto: clean', 'goto: nowhere'), 'dir/demo.yaml', testCatalog);
      } catch (e) {
        return e as RunbookError;
      }
      return assert.fail('accepted');
    })();
    assert.ok(err instanceof RunbookError);
    assert.equal(err.problems[0]!.file, 'dir/demo.yaml');
    assert.equal(err.message, err.problems.map(formatProblem).join('\n'));
    assert.equal(formatProblem({ file: 'a.yaml', line: 3, column: 7, message: 'boom' }), 'a.yaml:3:7: boom');
  });

  test('a failure inside the loader is still a located problem without a stack', () => {
    const broken: ProbeCatalog = {
      get: () => {
        throw new TypeError('catalog exploded');
      },
      ids: () => [],
    };
    const found = problems(BASE, broken);
    assert.deepEqual(found, [
      { file: 'demo.yaml', line: 1, column: 1, message: 'internal error while checking this runbook: catalog exploded' },
    ]);
  });
});
