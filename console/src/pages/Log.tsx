// The decision log: a decision opened by its ID; filters (policy, revision, outcome, rule
// fired, time), pages by cursor; one decision with its explanation, and "try again with
// changes".
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, query } from "../api";
import { ErrorBox, Loading, Refs, Section, useLoad } from "../components";
import { DecisionView } from "../explain";
import { formatTime, t } from "../i18n";
import { go, href } from "../router";
import { SourceView } from "../source";
import type { Decision, LoggedDecision, PolicySummary } from "../types";

const FILTERS = ["policy", "revision", "outcome", "rule", "since", "until"] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

/** A datetime-local value (Japan time, as the editors read it) as RFC 3339. */
function instant(local: string | undefined): string | undefined {
  if (!local) return undefined;
  return local.length === 16 ? `${local}:00+09:00` : `${local}+09:00`;
}

export function LogPage({ params }: { params: URLSearchParams }) {
  const filters: Filters = {};
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) filters[name] = value;
  }
  const [pages, setPages] = useState<string[]>([]);
  const [draft, setDraft] = useState<Filters>(filters);
  const [decisionId, setDecisionId] = useState("");
  const bind = (name: (typeof FILTERS)[number]) => ({
    id: "filter-" + name,
    name,
    value: draft[name] ?? "",
    onInput: (e: Event) => setDraft({ ...draft, [name]: (e.target as HTMLInputElement).value }),
  });
  const cursor = params.get("cursor") ?? undefined;
  const policies = useLoad(() => get<{ policies: PolicySummary[] }>("/v1/policies"), []);
  const list = useLoad(
    () =>
      get<{ decisions: LoggedDecision[]; next_cursor: string | null }>(
        "/v1/decisions" +
          query({ ...filters, since: instant(filters.since), until: instant(filters.until), cursor, limit: 50 }),
      ),
    [params.toString()],
  );
  const submit = (event: Event) => {
    event.preventDefault();
    const next: Record<string, string | undefined> = {};
    for (const name of FILTERS) next[name] = draft[name] || undefined;
    setPages([]);
    go(["log"], next);
  };
  const denied = list.error instanceof ApiError && list.error.status === 403;
  return (
    <>
      <h1>{t("log.title")}</h1>
      <form
        class="card filters"
        id="open-decision"
        aria-label={t("log.open_id")}
        onSubmit={(event) => {
          event.preventDefault();
          const id = decisionId.trim();
          if (id) go(["log", id]);
        }}
      >
        <div class="field">
          <label for="decision-id">{t("log.id")}</label>
          <input
            id="decision-id"
            name="id"
            autocomplete="off"
            spellcheck={false}
            aria-describedby="decision-id-help"
            value={decisionId}
            onInput={(e) => setDecisionId((e.target as HTMLInputElement).value)}
          />
          <small class="description" id="decision-id-help">
            {t("log.id_help")}
          </small>
        </div>
        <div class="submit-row">
          <button type="submit" id="open-id" disabled={!decisionId.trim()}>
            {t("log.open_id")}
          </button>
        </div>
      </form>
      <form class="card filters" onSubmit={submit} aria-label={t("log.filters")}>
        <div class="field">
          <label for="filter-policy">{t("log.policy")}</label>
          <select {...bind("policy")} onChange={bind("policy").onInput}>
            <option value="">{t("log.any")}</option>
            {policies.value?.policies
              .filter((p) => p.kind === "decision")
              .map((p) => (
                <option key={p.id} value={p.id}>
                  {p.id}
                </option>
              ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-revision">{t("log.revision")}</label>
          <input {...bind("revision")} />
        </div>
        <div class="field">
          <label for="filter-outcome">{t("log.outcome")}</label>
          <input {...bind("outcome")} placeholder="held=true" />
        </div>
        <div class="field">
          <label for="filter-rule">{t("log.rule")}</label>
          <input {...bind("rule")} />
        </div>
        <div class="field">
          <label for="filter-since">{t("log.since")}</label>
          <input {...bind("since")} type="datetime-local" />
        </div>
        <div class="field">
          <label for="filter-until">{t("log.until")}</label>
          <input {...bind("until")} type="datetime-local" />
        </div>
        <div class="submit-row">
          <button type="submit" class="primary" id="search">
            {t("log.search")}
          </button>
        </div>
      </form>
      {list.loading && !list.value && <Loading />}
      {denied ? (
        <div class="error" role="alert">
          {t("log.needs_admin")}
        </div>
      ) : (
        list.error && <ErrorBox error={list.error} />
      )}
      {list.value && (
        <>
          <div class="table-scroll">
            <table class="list" id="decision-list">
              <thead>
                <tr>
                  <th>{t("log.logged_at")}</th>
                  <th>{t("decision.id")}</th>
                  <th>{t("log.policy")}</th>
                  <th>{t("log.revision")}</th>
                  <th>{t("log.fired")}</th>
                </tr>
              </thead>
              <tbody>
                {list.value.decisions.map((d) => (
                  <tr key={d.decision_id} data-decision-id={d.decision_id}>
                    <td>{formatTime(d.logged_at)}</td>
                    <td>
                      <a href={href(["log", d.decision_id])}>
                        <code>{d.decision_id}</code>
                      </a>
                    </td>
                    <td>
                      <code>{d.policy.id}</code>
                    </td>
                    <td>
                      <code>{d.policy.revision}</code>
                    </td>
                    <td>
                      {d.fired.length ? <Refs refs={d.fired} /> : <span class="muted">{t("log.none_fired")}</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {list.value.decisions.length === 0 && <p class="muted">{t("log.empty")}</p>}
          <nav class="actions" aria-label={t("log.pages")}>
            {cursor && (
              <button
                type="button"
                onClick={() => {
                  const previous = pages.slice(0, -1);
                  setPages(previous);
                  go(["log"], { ...filters, cursor: pages[pages.length - 1] });
                }}
              >
                {t("log.newer")}
              </button>
            )}
            {list.value.next_cursor && (
              <button
                type="button"
                onClick={() => {
                  setPages([...pages, cursor ?? ""]);
                  go(["log"], { ...filters, cursor: list.value!.next_cursor! });
                }}
              >
                {t("log.older")}
              </button>
            )}
          </nav>
        </>
      )}
    </>
  );
}

/** A flow's decision (the `decision_id` of an event's answer): its entity's move or refusal. */
type FlowDecision = { kind: "flow"; policy: { id: string }; entity: string; move: { version: number } | null };

export function LoggedDecisionPage({ id }: { id: string }) {
  const decision = useLoad(() => get<Decision | FlowDecision>(`/v1/decisions/${encodeURIComponent(id)}`), [id]);
  const [line, setLine] = useState<number | undefined>(undefined);
  // a flow decides moves of an entity: its page shows the move among the others, marked
  const flow = decision.value && "kind" in decision.value && decision.value.kind === "flow" ? decision.value : null;
  useEffect(() => {
    if (flow) location.replace(href(["flows", flow.policy.id, flow.entity], { move: flow.move ? String(flow.move.version) : undefined }));
  }, [flow]);
  if ((decision.loading && !decision.value) || flow) return <Loading />;
  if (decision.error) return <ErrorBox error={decision.error} />;
  const value = decision.value as Decision;
  return (
    <>
      <h1>
        {t("log.one")} <code class="muted">{value.decision_id}</code>
      </h1>
      <nav class="actions" aria-label={t("policy.actions")}>
        <a class="button primary" id="try-again" href={href(["policies", value.policy.id, "try"], { from: value.decision_id })}>
          {t("log.try_again")}
        </a>
        <a class="button" href={href(["log"], { policy: value.policy.id })}>
          {t("log.back")}
        </a>
        <a class="button" href={href(["policies", value.policy.id])}>
          {value.policy.id}
        </a>
      </nav>
      <p class="meta">
        {t("log.logged_at")}: {formatTime(value.logged_at)}
      </p>
      <Section title={t("log.request")} id="request">
        <pre class="json">{JSON.stringify(value.request, null, 2)}</pre>
      </Section>
      <DecisionView decision={value} onShowLine={setLine} />
      <Section title={t("source.heading")} id="source">
        <SourceView policy={value.policy.id} line={line} />
      </Section>
    </>
  );
}
