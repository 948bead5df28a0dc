// A flow drawn from its compiled policy (GET /v1/policies/{id} -> flow): states, events,
// the roles that may send each (`by:`), as a mermaid flowchart. Nothing is drawn by hand:
// the text below is generated, and mermaid lays it out. For an entity, its state is marked
// and every move it may not make from there (another state's move, an event its state does
// not take, or roles this token may not claim) is greyed. Loaded when first shown.
import { useEffect, useRef, useState } from "preact/hooks";
import { pick, t } from "./i18n";
import type { FlowDoc } from "./types";

let counter = 0;

export type Standing = {
  state: string; // the entity's state
  allowed: string[]; // the events its state takes (GET /v1/flows/{p}/{e} allowed_events)
  claimable: (role: string) => boolean; // whether this token may claim a role
};

/** Whether a move (one transition from one state) is open to the entity now. */
export function open(flow: FlowDoc, move: FlowDoc["transitions"][number], from: string, standing: Standing): boolean {
  if (from !== standing.state || !standing.allowed.includes(move.event)) return false;
  const roles = rolesOf(flow, move);
  return roles === null || roles.some(standing.claimable);
}

/** The roles that may make a move: its own `by:`, else its event's; null: anyone. */
export function rolesOf(flow: FlowDoc, move: FlowDoc["transitions"][number]): string[] | null {
  if (move.by) return move.by;
  return flow.events.find((e) => e.name === move.event)?.by ?? null;
}

/** Mermaid's flowchart text of a flow, and how many of its edges are greyed. */
export function diagramText(flow: FlowDoc, standing?: Standing): { text: string; greyed: number; edges: number } {
  const clean = (text: string) => text.replace(/["\n:;#|<>{}[\]()]/g, " ");
  const ids = new Map(flow.states.map((s, i) => [s.id, `s${i}`]));
  const events = new Map(flow.events.map((e) => [e.name, pick(e.label) || e.name]));
  const roleLabels = new Map((flow.roles ?? []).map((r) => [r.id, pick(r.label) || r.id]));
  const lines = ["flowchart LR", "  start(( ))"];
  for (const state of flow.states) {
    const label = clean(pick(state.label) || state.id);
    lines.push(state.final ? `  ${ids.get(state.id)}((("${label}")))` : `  ${ids.get(state.id)}(["${label}"])`);
  }
  lines.push(`  start --> ${ids.get(flow.initial)}`);
  const grey: number[] = [];
  let edge = 1; // the start arrow is edge 0
  for (const move of flow.transitions) {
    const roles = rolesOf(flow, move);
    const who = roles ? ` [${roles.map((r) => clean(roleLabels.get(r) ?? r)).join(", ")}]` : "";
    const label = clean(events.get(move.event) ?? move.event) + who;
    for (const from of move.from) {
      const to = move.to ?? from;
      if (!ids.has(from) || !ids.has(to)) continue;
      lines.push(`  ${ids.get(from)} -->|"${label}"| ${ids.get(to)}`);
      if (standing && !open(flow, move, from, standing)) grey.push(edge);
      edge++;
    }
  }
  lines.push("  classDef start fill:#17324f,stroke:#17324f");
  lines.push("  class start start");
  if (standing && ids.has(standing.state)) {
    lines.push("  classDef current fill:#fde9b8,stroke:#b7791f,stroke-width:3px");
    lines.push(`  class ${ids.get(standing.state)} current`);
  }
  if (grey.length) lines.push(`  linkStyle ${grey.join(",")} stroke:#c5ccd3,stroke-dasharray:4 4,color:#9aa5b1`);
  return { text: lines.join("\n"), greyed: grey.length, edges: edge - 1 };
}

export function FlowDiagram({ flow, standing }: { flow: FlowDoc; standing?: Standing }) {
  const box = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const { text, greyed, edges } = diagramText(flow, standing);
  useEffect(() => {
    let live = true;
    import("mermaid").then(async ({ default: mermaid }) => {
      mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        theme: "neutral",
        fontFamily: "'IPAPGothic', 'Noto Sans CJK JP', sans-serif",
        flowchart: { htmlLabels: false },
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
      <div
        ref={box}
        class="diagram-box"
        role="img"
        aria-label={t("flow.diagram_label")}
        data-edges={edges}
        data-greyed={greyed}
      />
      {standing && <figcaption>{t("flow.greyed_caption", { greyed, edges })}</figcaption>}
      {failed && <div class="error">{failed}</div>}
      <details>
        <summary>{t("flow.diagram_text")}</summary>
        <pre class="json">{text}</pre>
      </details>
    </figure>
  );
}
