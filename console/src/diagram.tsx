// A flow drawn from its compiled policy (GET /v1/policies/{id} -> flow): states, events,
// transitions, as a mermaid state diagram. Nothing is drawn by hand: the text below is
// generated, and mermaid lays it out. Loaded when a diagram is first shown.
import { useEffect, useRef, useState } from "preact/hooks";
import { pick, t } from "./i18n";
import type { FlowDoc } from "./types";

let counter = 0;

/** Mermaid's state-diagram text of a flow; `current` is marked. */
export function diagramText(flow: FlowDoc, current?: string): string {
  const label = (text: string) => text.replace(/["\n:;#]/g, " ");
  const events = new Map(flow.events.map((e) => [e.name, pick(e.label) || e.name]));
  const lines = ["stateDiagram-v2", "  direction LR"];
  for (const state of flow.states) lines.push(`  state "${label(pick(state.label) || state.id)}" as ${state.id}`);
  lines.push(`  [*] --> ${flow.initial}`);
  for (const move of flow.transitions) {
    for (const from of move.from) {
      lines.push(`  ${from} --> ${move.to ?? from} : ${label(events.get(move.event) ?? move.event)}`);
    }
  }
  for (const state of flow.states) if (state.final) lines.push(`  ${state.id} --> [*]`);
  if (current) {
    lines.push("  classDef current fill:#fde9b8,stroke:#b7791f,stroke-width:3px");
    lines.push(`  class ${current} current`);
  }
  return lines.join("\n");
}

export function FlowDiagram({ flow, current }: { flow: FlowDoc; current?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const text = diagramText(flow, current);
  useEffect(() => {
    let live = true;
    import("mermaid").then(async ({ default: mermaid }) => {
      mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        theme: "neutral",
        fontFamily: "'IPAPGothic', 'Noto Sans CJK JP', sans-serif",
      });
      try {
        const { svg } = await mermaid.render("flow-diagram-" + ++counter, text);
        if (live && box.current) {
          box.current.innerHTML = svg;
          box.current.dataset.ready = "true";
        }
      } catch (error) {
        if (live) setFailed(String(error));
      }
    });
    return () => {
      live = false;
    };
  }, [text]);
  return (
    <figure class="diagram">
      <div ref={box} class="diagram-box" role="img" aria-label={t("flow.diagram_label")} />
      {failed && <div class="error">{failed}</div>}
      <details>
        <summary>{t("flow.diagram_text")}</summary>
        <pre class="json">{text}</pre>
      </details>
    </figure>
  );
}
