// The runbook as a graph of steps and conclusions, and its Mermaid and DOT texts.
import type { Runbook } from './model.js';

export interface GraphNode {
  id: string;
  kind: 'probe' | 'ask' | 'conclusion';
  title: string;
  /** Probe ids for probe steps, category for conclusions. */
  detail: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: 'next' | 'default' | 'on_error' | 'timeout' | 'choice';
  label: string;
}

export interface RunbookGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export function runbookGraph(runbook: Runbook): RunbookGraph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (const step of runbook.steps) {
    if (step.kind === 'probe') {
      nodes.push({ id: step.id, kind: 'probe', title: step.title, detail: step.probes.map((p) => p.probe).join(', ') });
      for (const branch of step.next) {
        edges.push({
          from: step.id,
          to: branch.goto,
          kind: branch.if === undefined ? 'default' : 'next',
          label: branch.if ?? 'otherwise',
        });
      }
      if (step.on_error) edges.push({ from: step.id, to: step.on_error, kind: 'on_error', label: 'probe failed' });
    } else {
      nodes.push({ id: step.id, kind: 'ask', title: step.title, detail: step.question });
      for (const choice of step.choices) {
        const isDefault = choice.id === step.default ? ' (default)' : '';
        edges.push({ from: step.id, to: choice.goto, kind: 'choice', label: `${choice.id}${isDefault}` });
      }
    }
  }
  for (const conclusion of runbook.conclusions) {
    nodes.push({ id: conclusion.id, kind: 'conclusion', title: conclusion.title, detail: conclusion.category });
  }
  return { nodes, edges };
}

const mermaidId = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');
const mermaidText = (text: string) => text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');

export function toMermaid(runbook: Runbook): string {
  const graph = runbookGraph(runbook);
  const lines = ['flowchart TD'];
  for (const node of graph.nodes) {
    const label = mermaidText(`${node.id}: ${node.title}`) + (node.detail ? `<br/><i>${mermaidText(node.detail)}</i>` : '');
    const [open, close] = node.kind === 'probe' ? ['["', '"]'] : node.kind === 'ask' ? ['{"', '"}'] : ['(["', '"])'];
    lines.push(`  ${mermaidId(node.id)}${open}${label}${close}`);
  }
  for (const edge of graph.edges) {
    const arrow = edge.kind === 'on_error' || edge.kind === 'timeout' ? '-.->' : '-->';
    lines.push(`  ${mermaidId(edge.from)} ${arrow}|"${mermaidText(edge.label)}"| ${mermaidId(edge.to)}`);
  }
  return `${lines.join('\n')}\n`;
}

const dotText = (text: string) => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

export function toDot(runbook: Runbook): string {
  const graph = runbookGraph(runbook);
  const lines = [`digraph ${dotText(runbook.id)} {`, '  rankdir=TB;', '  node [fontname="Helvetica", fontsize=11];'];
  for (const node of graph.nodes) {
    const shape = node.kind === 'probe' ? 'box' : node.kind === 'ask' ? 'diamond' : 'box, style="rounded,filled", fillcolor="#eef3ff"';
    lines.push(`  ${dotText(node.id)} [shape=${shape}, label=${dotText(`${node.id}\n${node.title}\n${node.detail}`)}];`);
  }
  for (const edge of graph.edges) {
    const style = edge.kind === 'on_error' || edge.kind === 'timeout' ? ', style=dashed' : '';
    lines.push(`  ${dotText(edge.from)} -> ${dotText(edge.to)} [label=${dotText(edge.label)}${style}];`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
