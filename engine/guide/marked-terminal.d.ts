// marked-terminal ships no types: the part of its API the guide uses.
declare module 'marked-terminal' {
  import type { MarkedExtension } from 'marked';

  export interface TerminalRendererOptions {
    /** Column to wrap at when reflowText is on. */
    width?: number;
    reflowText?: boolean;
    /** Print `#` before headings. */
    showSectionPrefix?: boolean;
    /** Indentation of lists and code, in spaces. */
    tab?: number;
  }

  export function markedTerminal(options?: TerminalRendererOptions, highlightOptions?: Record<string, unknown>): MarkedExtension;
}
