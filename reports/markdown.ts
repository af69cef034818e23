// Markdown of runbooks, probes and conclusions → HTML, with raw HTML off: text that came
// from a runbook, a probe or a template filled from findings can format, never inject.
import markdownit, { type MarkdownIt, type RendererRule } from 'markdown-it';

let md: MarkdownIt | undefined;

function engine(): MarkdownIt {
  if (md) return md;
  md = markdownit({ html: false, linkify: false, typographer: false });
  // An image would be a request to somewhere: the report makes none.
  md.disable('image');
  // Links open outside the report, never replace it.
  const link: RendererRule = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx]!.attrSet('rel', 'noopener noreferrer');
    return link(tokens, idx, options, env, self);
  };
  return md;
}

/** A block of markdown (paragraphs, lists, code) as HTML. */
export function markdownBlock(text: string): string {
  return engine().render(text);
}

/** One line of markdown (an action, a summary) as inline HTML: no wrapping paragraph. */
export function markdownInline(text: string): string {
  return engine().renderInline(text);
}
