// Flows: each flow policy drawn as its state diagram; an entity looked up (state, facts,
// history) and an event sent to it. (Actors and roles come with the actors' API.)
import { useState } from "preact/hooks";
import { call, get } from "../api";
import { ErrorBox, Json, Loading, Section, useLoad } from "../components";
import { FlowDiagram } from "../diagram";
import { FactsForm, errorsByPointer } from "../factsform";
import { ApiError } from "../api";
import { formatTime, pick, t } from "../i18n";
import { go, href } from "../router";
import type { Entity, FlowDoc, PolicyDoc, PolicySummary } from "../types";
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
  return (
    <table class="transitions">
      <thead>
        <tr>
          <th>{t("flows.transition")}</th>
          <th>{t("flows.from")}</th>
          <th>{t("flows.event")}</th>
          <th>{t("flows.to")}</th>
        </tr>
      </thead>
      <tbody>
        {flow.transitions.map((move) => (
          <tr key={move.id}>
            <td>
              <code>{move.id}</code>
            </td>
            <td>{move.from.join(", ")}</td>
            <td>{pick(events.get(move.event)?.label) || move.event}</td>
            <td>{move.to ?? t("flows.stays")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

type History = { moves: { at: string; event: { type?: string }; transition: string; state: { before: string; after: string } }[] };

export function EntityPage({ policy, entity }: { policy: string; entity: string }) {
  const base = `/v1/flows/${encodeURIComponent(policy)}/${encodeURIComponent(entity)}`;
  const loaded = useLoad(
    () => Promise.all([loadPolicy(policy), get<Entity>(base), get<History>(base + "/history")]),
    [policy, entity],
  );
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const [doc, found, history] = loaded.value!;
  const labels = new Map((doc.flow?.states ?? []).map((s) => [s.id, pick(s.label)]));
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
            {t("flows.version")} {found.entity.version} · {t("flows.allowed")}{" "}
            {found.allowed_events.join(", ") || "-"}
          </p>
          <h3>{t("flows.facts")}</h3>
          <Json value={found.facts} label={t("flows.facts")} />
        </Section>
        {doc.flow && (
          <Section title={t("flows.send")} id="send-event">
            <EventForm policy={doc} entity={entity} allowed={found.allowed_events} onDone={loaded.reload} />
          </Section>
        )}
      </div>
      {doc.flow && (
        <Section title={t("flows.diagram")} id="diagram">
          <FlowDiagram flow={doc.flow} current={found.state.id} />
        </Section>
      )}
      <Section title={t("flows.history")} id="history">
        {history.moves.length === 0 ? (
          <p class="muted">{t("flows.no_history")}</p>
        ) : (
          <table id="history-table">
            <thead>
              <tr>
                <th>{t("decision.at")}</th>
                <th>{t("flows.event")}</th>
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
                  <td>
                    <code>{move.transition}</code>
                  </td>
                  <td>{labels.get(move.state.before) ?? move.state.before}</td>
                  <td>{labels.get(move.state.after) ?? move.state.after}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

type Moved = { allowed: boolean; state: { after: { id: string; label?: { ja: string; en?: string } } } };

function EventForm({
  policy,
  entity,
  allowed,
  onDone,
}: {
  policy: PolicyDoc;
  entity: string;
  allowed: string[];
  onDone: () => void;
}) {
  const events = policy.flow!.events;
  const [type, setType] = useState(allowed[0] ?? events[0]?.name ?? "");
  const [fields, setFields] = useState<unknown>(undefined);
  const [at, setAt] = useState("");
  // Who sends the event (every flow event has an actor): an id, and roles defaulting to
  // those the chosen event names in its `by:`.
  const [actorId, setActorId] = useState("console");
  const [roles, setRoles] = useState("");
  const [answer, setAnswer] = useState<Moved | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const event = events.find((e) => e.name === type);
  const defaultRoles = (event?.by ?? (policy.flow!.roles ?? []).map((r) => r.id)).join(", ");
  const schema = { type: "object", properties: event?.fields ?? {} };
  const problem = failure instanceof ApiError ? failure.problem : null;
  return (
    <form
      aria-label={t("flows.send")}
      onSubmit={async (e) => {
        e.preventDefault();
        setFailure(null);
        setAnswer(null);
        const claimed = (roles || defaultRoles)
          .split(",")
          .map((r) => r.trim())
          .filter((r) => r);
        const body: Record<string, unknown> = {
          event: { type, ...((fields as Record<string, unknown>) ?? {}) },
          actor: { id: actorId, roles: claimed },
        };
        if (at) body.at = at;
        try {
          setAnswer(
            await call<Moved>(
              "POST",
              `/v1/flows/${encodeURIComponent(policy.id)}/${encodeURIComponent(entity)}/events`,
              body,
            ),
          );
          setFields(undefined);
          onDone();
        } catch (error) {
          setFailure(error);
        }
      }}
    >
      <div class="field">
        <label for="event-type">{t("flows.event")}</label>
        <select id="event-type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
          {events.map((e) => (
            <option key={e.name} value={e.name}>
              {pick(e.label)} ({e.name}){allowed.includes(e.name) ? "" : " — " + t("flows.not_allowed_here")}
            </option>
          ))}
        </select>
      </div>
      {event && Object.keys(event.fields).length > 0 && (
        <FactsForm schema={schema} value={fields} onChange={setFields} errors={errorsByPointer(problem?.errors)} base="/event" />
      )}
      <div class="field">
        <label for="event-actor">{t("flows.actor")}</label>
        <input id="event-actor" value={actorId} onInput={(e) => setActorId((e.target as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="event-roles">{t("flows.roles")}</label>
        <input
          id="event-roles"
          placeholder={defaultRoles}
          value={roles}
          onInput={(e) => setRoles((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="field">
        <label for="event-at">at</label>
        <input id="event-at" placeholder={t("try.at_placeholder")} value={at} onInput={(e) => setAt((e.target as HTMLInputElement).value)} />
      </div>
      <div class="submit-row">
        <button type="submit" class="primary" id="send">
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
