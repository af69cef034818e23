// The runbook's decision graph as SVG, laid out by Graphviz (compiled to WebAssembly,
// @viz-js/viz), with the path the run took drawn over it: the steps it visited, the
// branches it left them by (numbered, labelled with the condition that fired), where it
// stopped and the conclusion it reached.
import type { RunRecord, TimelineEntry } from '../engine/run/record.js';
import type { RunbookGraph } from '../engine/runbook/graph.js';

type VizModule = typeof import('@viz-js/viz');
type Viz = Awaited<ReturnType<VizModule['instance']>>;

let viz: Promise<Viz> | undefined;

function graphviz(): Promise<Viz> {
  viz ??= import('@viz-js/viz').then((m) => m.instance());
  return viz;
}

export async function graphvizVersion(): Promise<string> {
  return (await graphviz()).graphvizVersion;
}

/** One drawing: the whole graph, or one stretch of a long path. */
export interface GraphPart {
  svg?: string;
  /** Which stretch of the path this part shows. */
  caption?: string;
}

export interface DecisionGraph {
  parts: GraphPart[];
  /** Why there is no SVG, or what the drawing leaves out. */
  note?: string;
}

/** Above this many nodes the graph is drawn in parts along the path: one drawing would be unreadable on a page. */
export const MAX_NODES_IN_ONE_DRAWING = 30;
/** Steps of the path per part when drawn in parts. */
export const STEPS_PER_PART = 10;

const COLORS = {
  taken: '#1d4ed8',
  visitedFill: '#dbeafe',
  verdictFill: '#fde68a',
  verdictLine: '#b45309',
  stopped: '#c2410c',
  stoppedFill: '#ffedd5',
  idle: '#9ca3af',
  idleText: '#4b5563',
};

/**
 * Graphviz reads `\N`, `\G`, `\n`... in labels and decodes `&...;` entities: both are
 * escaped so that a label shows exactly its text. Lines are joined with Graphviz's `\n`.
 */
function label(lines: string[]): string {
  return lines.map((l) => l.replace(/\\/g, '\\\\').replace(/&/g, '&amp;')).join('\\n');
}

/** Wraps text at word boundaries to lines of about `width` characters. */
export function wrap(text: string, width: number, maxLines = 4): string[] {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
    while (line.length > width * 1.5) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) return [...lines.slice(0, maxLines - 1), `${lines[maxLines - 1]!.slice(0, width - 1)}…`];
  return lines;
}

interface PathEdge {
  from: string;
  to: string;
  order: number;
  kind: string;
  condition?: string;
  why?: string;
  answer?: string;
}

/** The branches the run took, in order: step → next step (or conclusion). */
export function pathEdges(timeline: TimelineEntry[]): PathEdge[] {
  return timeline.flatMap((t, i) =>
    t.branch
      ? [
          {
            from: t.step,
            to: t.branch.goto,
            order: i + 1,
            kind: t.branch.kind,
            ...(t.branch.condition !== undefined ? { condition: t.branch.condition } : {}),
            ...(t.branch.why !== undefined ? { why: t.branch.why } : {}),
            ...(t.answer !== undefined ? { answer: t.answer } : {}),
          },
        ]
      : [],
  );
}

/** Which runbook edge a taken branch went through: same ends and the same condition or choice. */
function matches(edge: RunbookGraph['edges'][number], taken: PathEdge): boolean {
  if (edge.from !== taken.from || edge.to !== taken.to) return false;
  switch (taken.kind) {
    case 'next':
      return taken.condition === undefined ? edge.kind === 'default' : edge.kind === 'next' && edge.label === taken.condition;
    case 'on_error':
      return edge.kind === 'on_error';
    case 'choice':
      return edge.kind === 'choice' && (taken.answer === undefined || edge.label.replace(/ \(default\)$/, '') === taken.answer);
    default:
      return edge.kind === taken.kind;
  }
}

export interface GraphInput {
  record: RunRecord;
  /** The runbook's graph, or null when the runbook could not be read: then only the path is drawn. */
  graph: RunbookGraph | null;
  /** step id → anchor of its evidence in the report. */
  anchors: Map<string, string>;
}

type VizNode = { name: string; attributes: Record<string, string | number> };
type VizEdge = { tail: string; head: string; attributes: Record<string, string | number> };
/** A styled edge with the runbook ids of its ends and the path orders it carries. */
type StyledEdge = VizEdge & { from: string; to: string; orders: number[] };

/** Renders the decision graph; a layout failure becomes a note, never a throw. */
export async function renderDecisionGraph({ record, graph, anchors }: GraphInput): Promise<DecisionGraph> {
  const timeline = Array.isArray(record.timeline) ? record.timeline : [];
  const taken = pathEdges(timeline);
  const visited = new Set(timeline.map((t) => t.step));
  const stoppedAt = record.status !== 'completed' ? timeline.filter((t) => t.status !== 'done').map((t) => t.step) : [];
  const verdict = record.conclusion?.id;

  // Without the runbook, the graph is the path itself.
  const g: RunbookGraph = graph ?? {
    nodes: [
      ...[...visited].map((id) => ({ id, kind: 'probe' as const, title: timeline.find((t) => t.step === id)?.title ?? '', detail: '' })),
      ...(verdict ? [{ id: verdict, kind: 'conclusion' as const, title: record.conclusion!.title, detail: record.conclusion!.category }] : []),
    ],
    edges: [],
  };
  const known = new Set(g.nodes.map((n) => n.id));
  const nodes = [...g.nodes];
  for (const e of taken) {
    for (const id of [e.from, e.to]) {
      if (!known.has(id)) {
        known.add(id);
        nodes.push({ id, kind: id === verdict ? 'conclusion' : 'probe', title: '', detail: '(not in the runbook file)' });
      }
    }
  }
  // Nodes get neutral names (n0, n1...): runbook ids only ever appear as label text.
  const name = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const inParts = nodes.length > MAX_NODES_IN_ONE_DRAWING && timeline.length > 0;

  const vizNodes = new Map<string, VizNode>();
  for (const n of nodes) {
    const isVisited = visited.has(n.id);
    const isVerdict = n.id === verdict;
    const isStopped = stoppedAt.includes(n.id);
    const title = wrap(n.title, 26, 3);
    const detail = n.detail ? wrap(n.detail, 30, 2) : [];
    const attributes: Record<string, string | number> = {
      label: label([n.id, ...title, ...(n.kind === 'conclusion' ? [`[${n.detail}]`] : detail)]),
      shape: 'box',
      style: n.kind === 'conclusion' ? 'rounded,filled' : n.kind === 'ask' ? 'rounded,dashed,filled' : 'filled',
      fillcolor: '#ffffff',
      color: COLORS.idle,
      fontcolor: COLORS.idleText,
      penwidth: 1,
      class: `gnode ${n.kind}${isVisited ? ' visited' : ''}${isVerdict ? ' verdict' : ''}${isStopped ? ' stopped' : ''}`,
      tooltip: n.kind,
    };
    // Visited steps share a group: dot keeps the path taken straight.
    if (isVisited) Object.assign(attributes, { fillcolor: COLORS.visitedFill, color: COLORS.taken, fontcolor: '#111827', penwidth: 2, group: 'path' });
    if (isVerdict) Object.assign(attributes, { fillcolor: COLORS.verdictFill, color: COLORS.verdictLine, fontcolor: '#111827', penwidth: 3 });
    if (isStopped) Object.assign(attributes, { fillcolor: COLORS.stoppedFill, color: COLORS.stopped, penwidth: 3, style: 'filled,dashed,bold' });
    const anchor = anchors.get(n.id);
    if (anchor) attributes.URL = `#${anchor}`;
    vizNodes.set(n.id, { name: name.get(n.id)!, attributes });
  }

  const used = new Set<PathEdge>();
  const edges: StyledEdge[] = g.edges.map((e): StyledEdge => {
    const hit = taken.filter((t) => !used.has(t) && matches(e, t));
    hit.forEach((t) => used.add(t));
    const dashed = e.kind === 'on_error' || e.kind === 'timeout';
    const text = wrap(e.label, 34, 3);
    const ends = { tail: name.get(e.from)!, head: name.get(e.to)!, from: e.from, to: e.to, orders: hit.map((t) => t.order) };
    if (hit.length) {
      return {
        ...ends,
        attributes: {
          label: label([`(${hit.map((t) => t.order).join(', ')}) ${text[0] ?? ''}`, ...text.slice(1)]),
          color: COLORS.taken,
          fontcolor: COLORS.taken,
          penwidth: 3,
          style: dashed ? 'dashed,bold' : 'bold',
          class: 'gedge taken',
          weight: 8,
        },
      };
    }
    return { ...ends, attributes: { label: label(text), color: COLORS.idle, fontcolor: COLORS.idleText, fontsize: 9, style: dashed ? 'dashed' : 'solid', class: 'gedge' } };
  });
  // Branches the runbook file does not have (it changed, or was not found).
  for (const t of taken.filter((t) => !used.has(t))) {
    edges.push({
      tail: name.get(t.from)!,
      head: name.get(t.to)!,
      from: t.from,
      to: t.to,
      orders: [t.order],
      attributes: { label: label([`(${t.order}) ${t.condition ?? t.answer ?? t.kind}`]), color: COLORS.taken, fontcolor: COLORS.taken, penwidth: 3, style: 'bold', class: 'gedge taken' },
    });
  }

  const notes: string[] = [];
  if (!graph) notes.push('The runbook file could not be read: only the path taken is drawn.');
  let parts: GraphPart[];
  try {
    if (!inParts) {
      parts = [{ svg: await layout([...vizNodes.values()], edges) }];
    } else {
      // A long path: one drawing per stretch of STEPS_PER_PART steps, each with the steps of
      // the stretch, every branch out of them and where those branches lead.
      notes.push(`The runbook has ${nodes.length} steps and conclusions: the graph is drawn in parts along the path taken, each with the branches out of its steps; steps the run never reached are left out.`);
      parts = [];
      for (let from = 0; from < timeline.length; from += STEPS_PER_PART) {
        const stretch = timeline.slice(from, from + STEPS_PER_PART);
        const steps = new Set(stretch.map((t) => t.step));
        const partEdges = edges.filter((e) => steps.has(e.from));
        const ids = new Set([...steps, ...partEdges.map((e) => e.to)]);
        const partNodes = [...ids].map((id) => vizNodes.get(id)).filter((n): n is VizNode => n !== undefined);
        const to = from + stretch.length;
        parts.push({ caption: `Steps ${from + 1}–${to} of ${timeline.length}`, svg: await layout(partNodes, partEdges) });
      }
    }
  } catch (err) {
    return { parts: [], note: `Graphviz could not lay out the graph: ${(err as Error).message}` };
  }
  return { parts, ...(notes.length ? { note: notes.join(' ') } : {}) };
}

async function layout(nodes: VizNode[], edges: VizEdge[]): Promise<string> {
  const instance = await graphviz();
  const result = instance.render(
    {
      directed: true,
      graphAttributes: { rankdir: 'TB', nodesep: 0.35, ranksep: 0.45, bgcolor: 'transparent', pad: 0.1 },
      nodeAttributes: { fontname: 'Arial', fontsize: 11, margin: '0.14,0.06' },
      edgeAttributes: { fontname: 'Arial', fontsize: 10, arrowsize: 0.7 },
      nodes,
      edges: edges.map(({ tail, head, attributes }) => ({ tail, head, attributes })),
    },
    { format: 'svg', engine: 'dot' },
  );
  if (result.status !== 'success') throw new Error(result.errors.map((e) => e.message).join('; '));
  return inlineSvg(result.output);
}

/** Graphviz writes a standalone SVG file: drop the XML prolog, DOCTYPE and comments to inline it. */
function inlineSvg(svg: string): string {
  const start = svg.indexOf('<svg');
  return svg
    .slice(start)
    .replace(/<!--[\s\S]*?-->\n?/g, '')
    .replace('<svg ', '<svg class="decision-graph" role="img" aria-label="decision graph of the runbook, path taken highlighted" ');
}
