// Flows: each flow policy drawn as its state diagram (the roles of each move); an entity
// looked up (state, facts, history with the actor of each move, what it may do next) and an
// event sent to it by an actor who claims roles: only those the token may claim are offered
// (GET /v1/whoami), and the flow's `by:` decides the rest.
import { useEffect, useRef, useState } from "preact/hooks";
import { call, get, query } from "../api";
import { ErrorBox, Json, Loading, Section, useBusy, useLoad } from "../components";
import { FlowDiagram, open, rolesOf, type Standing } from "../diagram";
import { mayClaim, whoami } from "../me";
import { FactsForm, errorsByPointer } from "../factsform";
import { ApiError } from "../api";
import { formatTime, pick, t } from "../i18n";
import { stringify } from "../jsontext";
import { go, href } from "../router";
import type { Entity, FlowDoc, PolicyDoc, PolicySummary, Whoami } from "../types";
import { loadPolicy } from "./Policies";

export function FlowList() {
  const list = useLoad(() => get<{ policies: PolicySummary[] }>("/v1/policies"), []);
  if (list.loading && !list.value) return <Loading />;
  if (list.error) return <ErrorBox error={list.error} />;
  const flows = list.value!.policies.filter((p) => p.kind === "flow");
  return (
    <>
      <h1>{t("flows.title")}</h1>
      {flows.length === 0 && <p class="muted">{t("flows.none")}</p>}
      <ul class="plain">
        {flows.map((p) => (
          <li key={p.id}>
            <a href={href(["flows", p.id])}>
              <code>{p.id}</code> {pick(p.title)}
            </a>
          </li>
        ))}
      </ul>
    </>
  );
}

function EntityLookup({ policy, initial = "" }: { policy: string; initial?: string }) {
  const [entity, setEntity] = useState(initial);
  return (
    <form
      class="inline-form"
      aria-label={t("flows.lookup")}
      onSubmit={(event) => {
        event.preventDefault();
        if (entity.trim()) go(["flows", policy, entity.trim()]);
      }}
    >
      <label for="entity-id">{t("flows.entity_id")}</label>
      <input id="entity-id" value={entity} onInput={(e) => setEntity((e.target as HTMLInputElement).value)} required />
      <button type="submit" id="lookup">
        {t("flows.open")}
      </button>
    </form>
  );
}

export function FlowPage({ id }: { id: string }) {
  const doc = useLoad(() => loadPolicy(id), [id]);
  if (doc.loading && !doc.value) return <Loading />;
  if (doc.error) return <ErrorBox error={doc.error} />;
  const policy = doc.value!;
  if (!policy.flow) return <ErrorBox error={new Error(t("flows.not_a_flow"))} />;
  return (
    <>
      <h1>
        {pick(policy.title)} <code class="muted">{id}</code>
      </h1>
      <Section title={t("flows.lookup")} id="lookup-section">
        <EntityLookup policy={id} />
      </Section>
      <Section title={t("flows.diagram")} id="diagram">
        <FlowDiagram flow={policy.flow} />
        <StateTable flow={policy.flow} />
      </Section>
    </>
  );
}

function StateTable({ flow }: { flow: FlowDoc }) {
  const events = new Map(flow.events.map((e) => [e.name, e]));
  // the states by their labels, as the diagram and the history name them
  const labels = new Map(flow.states.map((s) => [s.id, pick(s.label) || s.id]));
  const named = (state: string) => labels.get(state) ?? state;
  return (
    <div class="table-scroll">
      <table class="transitions">
        <thead>
          <tr>
            <th>{t("flows.transition")}</th>
            <th>{t("flows.from")}</th>
            <th>{t("flows.event")}</th>
            <th>{t("flows.to")}</th>
            <th>{t("flows.by")}</th>
          </tr>
        </thead>
        <tbody>
          {flow.transitions.map((move) => (
            <tr key={move.id}>
              <td>
                <code>{move.id}</code>
              </td>
              <td>{move.from.map(named).join(", ")}</td>
              <td>{pick(events.get(move.event)?.label) || move.event}</td>
              <td>{move.to ? named(move.to) : t("flows.stays")}</td>
              <td>{roleNames(flow, rolesOf(flow, move))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type Actor = { id: string; roles: string[]; name?: string };
/** A row of the history (docs/flows.md): a move, or the import (version 0: who imported the
 * entity, into which state; no event, no transition, no state before it). */
type HistoryRow = {
  kind?: "move" | "import";
  version: number;
  at: string;
  event: { type?: string } | null;
  actor?: Actor | null;
  principal?: string | null;
  transition: string | null;
  state: { before: string | null; after: string };
};
type HistoryPage = { moves: HistoryRow[]; next_after: number | null };

// The rows of the history the entity page loads at first, and with each "earlier" click: the
// service's own page (GET .../history answers 100 rows unless asked otherwise).
const HISTORY_PAGE = 100;
const MAX_LIMIT = 500; // the most rows the service answers at once

const imported = (row: HistoryRow) => (row.kind ? row.kind === "import" : row.version === 0);

/** The history rows of versions above `after` (null: from the start, the import's row 0
 * first) up to `through` (null: to the end), following `next_after` across the pages the
 * service splits them into (it ends a page early when its rows are large, one row at least
 * a page: each request moves on). */
async function historyRows(base: string, after: number | null, through: number | null, size: number = HISTORY_PAGE): Promise<HistoryRow[]> {
  const rows: HistoryRow[] = [];
  let from = after;
  for (;;) {
    const limit = through === null ? size : Math.min(MAX_LIMIT, Math.max(1, through - (from ?? -1)));
    const page = await get<HistoryPage>(`${base}/history${query({ limit, after: from })}`);
    rows.push(...page.moves.filter((row) => through === null || row.version <= through));
    const last = page.moves.length ? page.moves[page.moves.length - 1].version : null;
    if (page.next_after == null || last === null || (through !== null && last >= through)) break;
    if (from !== null && page.next_after <= from) break; // no further: never ask the same again
    from = page.next_after;
  }
  return rows;
}

/** Rows joined by version, each once, in version order. */
function joined(rows: HistoryRow[], more: HistoryRow[]): HistoryRow[] {
  const byVersion = new Map(rows.map((row) => [row.version, row]));
  for (const row of more) byVersion.set(row.version, row);
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

function roleNames(flow: FlowDoc, roles: string[] | null | undefined): string {
  if (!roles) return t("flows.anyone");
  const labels = new Map((flow.roles ?? []).map((r) => [r.id, pick(r.label) || r.id]));
  return roles.map((r) => labels.get(r) ?? r).join(", ");
}

export function EntityPage({ policy, entity, move }: { policy: string; entity: string; move?: string | null }) {
  const base = `/v1/flows/${encodeURIComponent(policy)}/${encodeURIComponent(entity)}`;
  const loaded = useLoad(
    () => Promise.all([loadPolicy(policy), get<Entity>(base), whoami()]),
    [policy, entity],
  );
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const [doc, found, me] = loaded.value!;
  const labels = new Map((doc.flow?.states ?? []).map((s) => [s.id, pick(s.label)]));
  const standing: Standing = {
    state: found.state.id,
    allowed: found.allowed_events,
    claimable: (role) => mayClaim(me, role),
  };
  return (
    <>
      <h1>
        {pick(doc.title)}: <code>{entity}</code>
      </h1>
      <p>
        <a href={href(["flows", policy])}>{t("flows.back")}</a>
      </p>
      <Section title={t("flows.lookup")} id="lookup-section">
        <EntityLookup policy={policy} initial={entity} />
      </Section>
      <div class="two-columns">
        <Section title={t("flows.state")} id="entity-state">
          <p class="state-now">
            <span class="badge state" id="current-state" data-state={found.state.id}>
              {pick(found.state.label) || found.state.id}
            </span>{" "}
            <code>{found.state.id}</code> {found.state.final && <span class="muted">{t("flows.final")}</span>}
          </p>
          {!found.entity.exists && <p class="muted">{t("flows.not_yet")}</p>}
          {found.state.note && <p>{pick(found.state.note)}</p>}
          <p class="meta">
            {t("flows.version")} {found.entity.version}
          </p>
          {doc.flow && <Moves flow={doc.flow} standing={standing} />}
          <h3>{t("flows.facts")}</h3>
          <Json value={found.facts} label={t("flows.facts")} />
        </Section>
        {doc.flow && (
          <Section title={t("flows.send")} id="send-event">
            <EventForm policy={doc} entity={entity} found={found} me={me} onDone={loaded.reload} />
          </Section>
        )}
      </div>
      {doc.flow && (
        <Section title={t("flows.diagram")} id="diagram">
          <FlowDiagram flow={doc.flow} standing={standing} />
        </Section>
      )}
      <Section title={t("flows.history")} id="history">
        <HistoryTable
          key={base}
          base={base}
          version={found.entity.version}
          flow={doc.flow}
          labels={labels}
          opened={move && /^[1-9][0-9]{0,17}$/.test(move) ? Number(move) : null}
        />
      </Section>
    </>
  );
}

/** The entity's history, oldest first, as `kimari history` reads it. A long one opens at its
 * end: the latest HISTORY_PAGE rows (the moves that matter most), with the number of earlier
 * moves and a button that loads them a page at a time above. The versions of the moves are
 * 1, 2, ... with no gap, so the `?after=` of any window is known from the entity's version.
 * When the entity moves (an event sent here), only the rows after the last one shown are
 * read and appended, and the earlier rows already loaded stay. */
function HistoryTable({
  base,
  version,
  flow,
  labels,
  opened,
}: {
  base: string;
  version: number;
  flow: FlowDoc | undefined;
  labels: Map<string, string>;
  opened: number | null; // a move opened by its decision id: shown, marked, scrolled to
}) {
  // rows: those loaded; start: whether they reach the start of the history
  const [shown, setShown] = useState<{ rows: HistoryRow[]; start: boolean } | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const current = useRef(shown);
  current.current = shown;
  const earlier = useBusy();
  const scrolled = useRef(false);
  // the move to open, as the page opened: one the entity reaches only later is not marked then
  const target = useRef(opened !== null && opened <= version ? opened : null).current;
  useEffect(() => {
    let live = true;
    const had = current.current;
    const last = had?.rows.length ? had.rows[had.rows.length - 1].version : null;
    // first: the last page's worth of moves (all of them when they fit), or from the move
    // opened when it is older; then what follows
    const from = target !== null ? Math.min(target - 1, version - HISTORY_PAGE) : version - HISTORY_PAGE;
    const after = had ? last : from > 0 ? from : null;
    // from an old move to the end: in the largest pages the service gives
    historyRows(base, after, null, had ? HISTORY_PAGE : MAX_LIMIT).then(
      (rows) => {
        if (!live) return;
        setFailure(null);
        setShown((old) => ({ rows: joined(old?.rows ?? [], rows), start: old ? old.start : after === null }));
      },
      (error) => live && setFailure(error),
    );
    return () => {
      live = false;
    };
  }, [base, version]);
  useEffect(() => {
    if (shown && target !== null && !scrolled.current) {
      const row = document.querySelector(`#history-table tr[data-version="${target}"]`);
      if (row) {
        scrolled.current = true; // once: later rows appended leave the reader where they are
        row.scrollIntoView({ block: "center" });
      }
    }
  }, [shown, target]);
  if (!shown) return failure ? <ErrorBox error={failure} /> : <Loading />;
  const rows = shown.rows;
  const first = rows.length ? rows[0].version : null;
  // the moves before the first row shown (versions 1 to first - 1); the import, if any, too
  const rest = shown.start || first === null ? 0 : first - 1;
  const loadEarlier = () =>
    earlier.run(async () => {
      if (first === null) return;
      try {
        const from = first - 1 - HISTORY_PAGE;
        const more = await historyRows(base, from > 0 ? from : null, first - 1);
        setFailure(null);
        setShown((old) => ({ rows: joined(old?.rows ?? [], more), start: old?.start || from <= 0 }));
      } catch (error) {
        setFailure(error);
      }
    });
  return (
    <>
      {rest > 0 && (
        <div class="history-more" id="history-more">
          <p class="muted" id="history-partial">
            {t("flows.history_partial", { shown: rows.length, count: rest })}
          </p>
          <button type="button" id="history-earlier" disabled={earlier.busy} onClick={loadEarlier}>
            {t("flows.history_earlier", { count: rest })}
          </button>
        </div>
      )}
      {failure !== null && <ErrorBox error={failure} />}
      {rows.length === 0 ? (
        <p class="muted">{t("flows.no_history")}</p>
      ) : (
        <div class="table-scroll">
          <table id="history-table">
            <thead>
              <tr>
                <th>{t("decision.at")}</th>
                <th>{t("flows.event")}</th>
                <th>{t("flows.actor")}</th>
                <th>{t("flows.transition")}</th>
                <th>{t("flows.from")}</th>
                <th>{t("flows.to")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) =>
                imported(row) ? (
                  <tr key={row.version} data-version={row.version} data-kind="import" class="import">
                    <td>{formatTime(row.at)}</td>
                    <td>
                      <strong>{t("flows.imported")}</strong>
                    </td>
                    <td class="actor">
                      <code class="principal">{row.principal || "-"}</code>
                      <div class="muted">{t("flows.imported_by")}</div>
                    </td>
                    <td colSpan={2} class="muted">
                      {t("flows.imported_note")}
                    </td>
                    <td>{labels.get(row.state.after) || row.state.after}</td>
                  </tr>
                ) : (
                  <tr
                    key={row.version}
                    data-version={row.version}
                    data-kind="move"
                    class={row.version === target ? "opened" : undefined}
                    aria-current={row.version === target ? "true" : undefined}
                  >
                    <td>{formatTime(row.at)}</td>
                    <td>
                      <code>{row.event?.type}</code>
                    </td>
                    <td class="actor">
                      {row.actor ? (
                        <>
                          <code>{row.actor.id}</code>
                          {row.actor.name && <> {row.actor.name}</>}
                          {flow && <div class="muted">{roleNames(flow, row.actor.roles)}</div>}
                        </>
                      ) : (
                        "-"
                      )}
                    </td>
                    <td>
                      <code>{row.transition}</code>
                    </td>
                    <td>{row.state.before ? labels.get(row.state.before) ?? row.state.before : ""}</td>
                    <td>{labels.get(row.state.after) ?? row.state.after}</td>
                  </tr>
                ),
              )}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

type Moved = { allowed: boolean; state: { after: { id: string; label?: { ja: string; en?: string } } } };

/** A fresh event id, a random UUID (crypto.randomUUID exists only over HTTPS or on
 * localhost; the console may be served over plain HTTP inside a network). */
function freshEventId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // the RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What the entity may do from its state: each event, open or greyed, and why. */
function Moves({ flow, standing }: { flow: FlowDoc; standing: Standing }) {
  return (
    <div class="table-scroll">
      <table class="moves" id="moves">
        <thead>
          <tr>
            <th>{t("flows.event")}</th>
            <th>{t("flows.by")}</th>
            <th>{t("flows.now")}</th>
          </tr>
        </thead>
        <tbody>
          {flow.events.map((event) => {
            const moves = flow.transitions.filter((m) => m.event === event.name && m.from.includes(standing.state));
            const taken = standing.allowed.includes(event.name);
            const roles = moves.length ? rolesOf(flow, moves[0]) : event.by ?? null;
            const possible = moves.some((m) => open(flow, m, standing.state, standing));
            const why = possible ? "open" : !taken ? "not_here" : "not_your_role";
            return (
              <tr key={event.name} data-event={event.name} data-open={possible} class={possible ? "" : "refused"}>
                <td>
                  {pick(event.label) || event.name} <code class="muted">{event.name}</code>
                </td>
                <td>{roleNames(flow, roles)}</td>
                <td>{t("flows.why_" + why)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function EventForm({
  policy,
  entity,
  found,
  me,
  onDone,
}: {
  policy: PolicyDoc;
  entity: string;
  found: Entity;
  me: Whoami;
  onDone: () => void;
}) {
  const flow = policy.flow!;
  const events = flow.events;
  const allowed = found.allowed_events;
  const [type, setType] = useState(allowed[0] ?? events[0]?.name ?? "");
  const [fields, setFields] = useState<unknown>(undefined);
  const [at, setAt] = useState("");
  // Who sends the event (every flow event has an actor): an id, a name, and the roles it
  // claims, among those the token may claim; by default those the move needs.
  const [actorId, setActorId] = useState(me.principal);
  const [actorName, setActorName] = useState("");
  const needed = (name: string) => found.allowed_roles?.[name] ?? events.find((e) => e.name === name)?.by ?? null;
  const preset = (name: string) => (needed(name) ?? []).filter((r) => mayClaim(me, r));
  const [roles, setRoles] = useState<string[]>(() => preset(type));
  const [answer, setAnswer] = useState<Moved | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const sending = useBusy();
  // the event id of the submission not yet answered with a move: sent again unchanged (after
  // no answer, a server error), it keeps its id, and the service moves the entity once
  const unanswered = useRef<{ body: string; id: string } | null>(null);
  const event = events.find((e) => e.name === type);
  const schema = { type: "object", properties: event?.fields ?? {} };
  const problem = failure instanceof ApiError ? failure.problem : null;
  const declared = flow.roles ?? [];
  return (
    <form
      aria-label={t("flows.send")}
      onSubmit={(e) => {
        e.preventDefault();
        sending.run(async () => {
          setFailure(null);
          setAnswer(null);
          const actor: Record<string, unknown> = { id: actorId, roles };
          if (actorName.trim()) actor.name = actorName.trim();
          const body: Record<string, unknown> = {
            event: { type, ...((fields as Record<string, unknown>) ?? {}) },
            actor,
          };
          if (at) body.at = at;
          const same = stringify(body);
          if (unanswered.current?.body !== same) unanswered.current = { body: same, id: freshEventId() };
          try {
            setAnswer(
              await call<Moved>(
                "POST",
                `/v1/flows/${encodeURIComponent(policy.id)}/${encodeURIComponent(entity)}/events`,
                { ...body, event_id: unanswered.current.id },
              ),
            );
            unanswered.current = null; // moved: the next submission is another event
            setFields(undefined);
            onDone();
          } catch (error) {
            setFailure(error);
          }
        });
      }}
    >
      <div class="field">
        <label for="event-type">{t("flows.event")}</label>
        <select
          id="event-type"
          value={type}
          onChange={(e) => {
            const name = (e.target as HTMLSelectElement).value;
            setType(name);
            setRoles(preset(name));
          }}
        >
          {events.map((e) => (
            <option key={e.name} value={e.name}>
              {pick(e.label)} ({e.name}){allowed.includes(e.name) ? "" : " — " + t("flows.not_allowed_here")}
            </option>
          ))}
        </select>
        {needed(type) && (
          <small class="description" id="event-needs">
            {t("flows.needs_roles", { roles: roleNames(flow, needed(type)) })}
          </small>
        )}
      </div>
      {event && Object.keys(event.fields).length > 0 && (
        <FactsForm schema={schema} value={fields} onChange={setFields} errors={errorsByPointer(problem?.errors)} base="/event" />
      )}
      <fieldset class="object actor-fields">
        <legend>{t("flows.actor")}</legend>
        <div class="field">
          <label for="event-actor">{t("flows.actor_id")}</label>
          <input id="event-actor" value={actorId} required onInput={(e) => setActorId((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="event-actor-name">{t("flows.actor_name")}</label>
          <input id="event-actor-name" value={actorName} onInput={(e) => setActorName((e.target as HTMLInputElement).value)} />
        </div>
        <fieldset class="roles" aria-describedby="roles-help">
          <legend>{t("flows.roles")}</legend>
          {declared.map((role, i) => {
            const claimable = mayClaim(me, role.id);
            return (
              <label key={role.id} class={claimable ? "role" : "role refused"}>
                <input
                  type="checkbox"
                  id={"role-" + i}
                  data-role={role.id}
                  checked={roles.includes(role.id)}
                  disabled={!claimable}
                  onChange={(e) => {
                    const on = (e.target as HTMLInputElement).checked;
                    setRoles((old) => (on ? [...old, role.id] : old.filter((r) => r !== role.id)));
                  }}
                />{" "}
                {pick(role.label) || role.id}
                {!claimable && <span class="muted"> ({t("flows.not_claimable")})</span>}
              </label>
            );
          })}
          <small class="description" id="roles-help">
            {me.roles.includes("*") ? t("flows.token_any_role") : t("flows.token_roles", { roles: me.roles.join(", ") || "-" })}
          </small>
        </fieldset>
      </fieldset>
      <div class="field">
        <label for="event-at">
          {t("flows.at")} <span class="type">date-time</span>
        </label>
        <input id="event-at" placeholder={t("try.at_placeholder")} value={at} onInput={(e) => setAt((e.target as HTMLInputElement).value)} />
      </div>
      <div class="submit-row">
        <button type="submit" class="primary" id="send" disabled={sending.busy}>
          {t("flows.send_button")}
        </button>
      </div>
      {answer && (
        <p class="ok" role="status">
          {t("flows.moved", { state: pick(answer.state.after.label) || answer.state.after.id })}
        </p>
      )}
      {failure !== null && <ErrorBox error={failure} />}
    </form>
  );
}
