// Stands in for codemirror-json-schema's markdown renderer (vite.config.ts points its
// import here): the package renders schema descriptions with markdown-it and shiki, whose
// highlighter compiles WebAssembly at load time, which this origin's Content-Security-Policy
// rightly forbids (and it would weigh more than the editor). The policy schema's
// descriptions are plain sentences: shown as text, escaped.
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function renderMarkdown(markdown: string, inline = true): string {
  const text = String(markdown ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
  return inline ? text : `<p>${text}</p>`;
}
