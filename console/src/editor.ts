// The YAML editor of the draft page: CodeMirror 6 (bundled, loaded when the page opens) with
// YAML highlighting, the policy JSON Schema's completion and hover (codemirror-json-schema,
// from the same schema file `kimari validate` uses), the search panel and line numbers,
// and the validate API's diagnostics as markers at their line:col. Tab leaves the editor
// (no tab trapping): the page stays usable by keyboard; Ctrl-Space completes.
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
import { lintGutter, setDiagnostics, type Diagnostic as CmDiagnostic } from "@codemirror/lint";
import { EditorSelection, EditorState, type Extension } from "@codemirror/state";
import { EditorView, hoverTooltip } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { stateExtensions } from "codemirror-json-schema";
import { yamlCompletion, yamlSchemaHover } from "codemirror-json-schema/yaml";
import policySchema from "../../schemas/policy.schema.json";
import testsSchema from "../../schemas/tests.schema.json";

/** The JSON Schemas of a policy file and of its test cases, as `kimari validate` reads them. */
export const SCHEMAS = { policy: policySchema, tests: testsSchema };

export type Marker = { line: number; col: number; severity: "error" | "warning"; message: string };

export type Editor = {
  text(): string;
  setText(text: string): void;
  setMarkers(markers: Marker[]): void;
  goTo(line: number, col?: number): void;
  focus(): void;
  destroy(): void;
};

export type EditorOptions = {
  text: string;
  schema: unknown;
  label: string;
  phrases: Record<string, string>;
  onChange: (text: string) => void;
  onCursor: (line: number, col: number) => void;
};

/** A marker's range: from its column to the end of the name there (at least one character). */
function range(state: EditorState, marker: Marker): { from: number; to: number } {
  const doc = state.doc;
  const line = doc.line(Math.min(Math.max(marker.line, 1), doc.lines));
  const from = Math.min(line.from + Math.max(marker.col - 1, 0), line.to);
  let to = from;
  while (to < line.to && /[\w.\-]/.test(line.text[to - line.from])) to++;
  if (to === from) to = Math.max(line.to, from);
  return { from, to };
}

export function createEditor(parent: HTMLElement, options: EditorOptions): Editor {
  const extensions: Extension[] = [
    basicSetup,
    yaml(),
    yamlLanguage.data.of({ autocomplete: yamlCompletion() }),
    hoverTooltip(yamlSchemaHover()),
    stateExtensions(options.schema as Parameters<typeof stateExtensions>[0]),
    lintGutter(),
    EditorState.phrases.of(options.phrases),
    EditorView.contentAttributes.of({ "aria-label": options.label }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) options.onChange(update.state.doc.toString());
      if (update.docChanged || update.selectionSet) {
        const head = update.state.selection.main.head;
        const line = update.state.doc.lineAt(head);
        options.onCursor(line.number, head - line.from + 1);
      }
    }),
  ];
  const view = new EditorView({
    parent,
    state: EditorState.create({ doc: options.text, extensions }),
  });
  return {
    text: () => view.state.doc.toString(),
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    setMarkers(markers) {
      const diagnostics: CmDiagnostic[] = markers.map((m) => ({
        ...range(view.state, m),
        severity: m.severity,
        message: m.message,
      }));
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
    goTo(line, col = 1) {
      const { from } = range(view.state, { line, col, severity: "error", message: "" });
      view.dispatch({
        selection: EditorSelection.cursor(from),
        effects: EditorView.scrollIntoView(from, { y: "center" }),
      });
      view.focus();
    },
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}
