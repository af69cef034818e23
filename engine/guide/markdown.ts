// Runbook and probe markdown rendered for the terminal (marked + marked-terminal), indented
// under the heading it belongs to.
import { Marked } from 'marked';
import { markedTerminal } from 'marked-terminal';

export type RenderMarkdown = (markdown: string, indent?: number) => string;

/** A renderer wrapping at `columns` (the terminal's width), lines indented by `indent` spaces. */
export function terminalMarkdown(columns: number): RenderMarkdown {
  const byWidth = new Map<number, Marked>();
  const markedFor = (width: number) => {
    let marked = byWidth.get(width);
    if (!marked) {
      marked = new Marked();
      marked.use(markedTerminal({ width, reflowText: true, showSectionPrefix: false, tab: 2 }));
      byWidth.set(width, marked);
    }
    return marked;
  };
  return (markdown, indent = 0) => {
    const width = Math.max(40, columns - indent);
    const text = (markedFor(width).parse(markdown.trim(), { async: false }) as string).replace(/\s+$/, '');
    const pad = ' '.repeat(indent);
    return text
      .split('\n')
      .map((line) => (line ? pad + line : line))
      .join('\n');
  };
}
