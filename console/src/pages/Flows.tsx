// Flows: each flow policy drawn as its state diagram (the roles of each move); an entity
// looked up (state, facts, history with the actor of each move, what it may do next) and an
// event sent to it by an actor who claims roles: only those the token may claim are offered
// (GET /v1/whoami), and the flow's `by:` decides the rest.
import { useRef, useState } from "preact/hooks";
import { call, get } from "../api";
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
type History = {
  moves: { at: string; event: { type?: string }; actor?: Actor; transition: string; state: { before: string; after: string } }[];
};

function roleNames(flow: FlowDoc, roles: string[] | null | undefined): string {
  if (!roles) return t("flows.anyone");
  const labels = new Map((flow.roles ?? []).map((r) => [r.id, pick(r.label) || r.id]));
  return roles.map((r) => labels.get(r) ?? r).join(", ");
}

export function EntityPage({ policy, entity }: { policy: string; entity: string }) {
  const base = `/v1/flows/${encodeURIComponent(policy)}/${encodeURIComponent(entity)}`;
  const loaded = useLoad(
    () => Promise.all([loadPolicy(policy), get<Entity>(base), get<History>(base + "/history"), whoami()]),
    [policy, entity],
  );
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const [doc, found, history, me] = loaded.value!;
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
        {history.moves.length === 0 ? (
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
                {history.moves.map((move, i) => (
                  <tr key={i}>
                    <td>{formatTime(move.at)}</td>
                    <td>
                      <code>{move.event?.type}</code>
                    </td>
                    <td class="actor">
                      {move.actor ? (
                        <>
                          <code>{move.actor.id}</code>
                          {move.actor.name && <> {move.actor.name}</>}
                          <div class="muted">{roleNames(doc.flow!, move.actor.roles)}</div>
                        </>
                      ) : (
                        "-"
                      )}
                    </td>
                    <td>
                      <code>{move.transition}</code>
                    </td>
                    <td>{labels.get(move.state.before) ?? move.state.before}</td>
                    <td>{labels.get(move.state.after) ?? move.state.after}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
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
