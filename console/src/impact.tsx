// An impact report (the log replayed against two revisions, docs/lifecycle.md): the counts,
// the before -> after transitions of each outcome field as a table and as a chart, the
// rules that newly fire or stop firing, facts the draft refuses, failures, the changed
// decisions, the decisions whose reasons read otherwise (before -> after), for a flow its
// stored entities that the draft strands or changes, and a few changed decisions with both
// explanations side by side.
import { Fragment } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { short } from "./components";
import { RuleTable } from "./explain";
import { lang, t } from "./i18n";
import { href } from "./router";
import type { ImpactReport, ImpactSide, ImpactSummary, RuleVerdict, Transition } from "./types";

/** What a report adds for reasons that read otherwise and, for a flow, its stored entities
 * (absent from revisions recorded before impact counted them). */
type ReasonChange = {
  decision_id: string;
  at: string;
  reasons: { rule: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null }[];
};
type EntitiesInState = { state: string; count: number; entities: string[] };
export type EntityImpact = {
  total: number;
  stranded: number;
  removed_states: EntitiesInState[];
  abolished_states: EntitiesInState[];
  events_changed: (EntitiesInState & { removed: string[]; added: string[] })[];
  facts: {
    schema_changed: boolean;
    checked: number;
    of: number;
    refused: number;
    kinds: { code: string; pointer: string; message: string; count: number; entities: string[] }[];
  };
};
type Additions = {
  reasons_only?: number;
  reason_rules?: Record<string, number>;
  reason_changes?: ReasonChange[];
  entities?: EntityImpact;
};

const COLOURS = ["#2e86c1", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#566573", "#17a589"];

export function Counts({ report }: { report: ImpactSummary }) {
  const { reasons_only } = report as ImpactSummary & Additions;
  const items: [string, number][] = [
    ["replayed", report.replayed],
    ["changed", report.changed],
    ["rules_only", report.rules_only],
    ...(reasons_only !== undefined ? [["reasons_only", reasons_only] as [string, number]] : []),
    ["unchanged", report.unchanged],
    ["invalid", report.invalid],
    ["failed", report.failed],
  ];
  return (
    <dl class="counts">
      {items.map(([name, value]) => (
        <div key={name} class={"count count-" + name} data-count={name}>
          <dt>{t("impact." + name)}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** A bar's label in at most 48 characters (the table beside it has the whole values). */
function clip(text: string): string {
  return text.length > 48 ? text.slice(0, 47) + "…" : text;
}

/** A value that may break after each comma (a list, an object): it wraps there, in its
 * column, rather than pushing the columns beside it out of sight. */
function Breakable({ text }: { text: string }) {
  const parts = text.split(",");
  return (
    <>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {part}
          {i < parts.length - 1 && (
            <>
              ,<wbr />
            </>
          )}
        </Fragment>
      ))}
    </>
  );
}

function rows(transitions: Record<string, Transition[]>) {
  return Object.entries(transitions).flatMap(([field, pairs]) => pairs.map((pair) => ({ field, ...pair })));
}

export function TransitionsTable({ transitions }: { transitions: Record<string, Transition[]> }) {
  const all = rows(transitions);
  if (all.length === 0) return <p class="muted">{t("impact.no_transitions")}</p>;
  return (
    <div class="table-scroll">
      <table class="transitions-table">
        <thead>
          <tr>
            <th>{t("impact.field")}</th>
            <th class="value">{t("impact.before")}</th>
            <th class="value">{t("impact.after")}</th>
            <th>{t("impact.decisions")}</th>
          </tr>
        </thead>
        <tbody>
          {all.map((row, i) => (
            <tr key={i} data-field={row.field}>
              <td>
                <code>{row.field}</code>
              </td>
              <td>
                <code class="from">
                  <Breakable text={row.from} />
                </code>
              </td>
              <td>
                <code class="to">
                  <Breakable text={row.to} />
                </code>
              </td>
              <td class="number">{row.count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The transitions as a horizontal bar chart: one bar per "field: before → after". */
export function TransitionsChart({ transitions }: { transitions: Record<string, Transition[]> }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const all = rows(transitions);
  const fields = [...new Set(all.map((r) => r.field))];
  useEffect(() => {
    if (!canvas.current || all.length === 0) return;
    let chart: { destroy(): void } | null = null;
    let live = true;
    import("chart.js").then(({ Chart, BarController, BarElement, CategoryScale, LinearScale, Tooltip }) => {
      if (!live || !canvas.current) return;
      Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);
      chart = new Chart(canvas.current, {
        type: "bar",
        data: {
          labels: all.map((r) => clip(`${r.field}: ${r.from} → ${r.to}`)),
          datasets: [
            {
              label: t("impact.decisions"),
              data: all.map((r) => r.count),
              backgroundColor: all.map((r) => COLOURS[fields.indexOf(r.field) % COLOURS.length]),
            },
          ],
        },
        options: {
          indexAxis: "y",
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          locale: lang() === "ja" ? "ja-JP" : "en-GB",
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
      canvas.current.dataset.ready = "true";
    });
    return () => {
      live = false;
      chart?.destroy();
    };
  }, [JSON.stringify(transitions)]);
  if (all.length === 0) return null;
  return (
    <figure class="chart transitions-chart">
      <div class="chart-box" style={{ height: `${Math.min(60 + all.length * 28, 420)}px` }}>
        <canvas ref={canvas} role="img" aria-label={t("impact.chart_label", { count: all.length })} />
      </div>
      <figcaption>{t("impact.chart_caption")}</figcaption>
    </figure>
  );
}

function RuleCounts({ title, counts, id }: { title: string; counts: Record<string, number>; id: string }) {
  const entries = Object.entries(counts);
  return (
    <div class="rule-counts" id={id}>
      <h4>{title}</h4>
      {entries.length === 0 ? (
        <p class="muted">-</p>
      ) : (
        <ul class="plain">
          {entries.map(([rule, count]) => (
            <li key={rule} data-rule={rule}>
              <code>{rule}</code> <span class="muted">{t("impact.times", { count })}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The fields of a reason that read otherwise (a message's languages apart), before and after. */
function reasonFields(before: Record<string, unknown> | null, after: Record<string, unknown> | null) {
  const a = before ?? {};
  const b = after ?? {};
  const out: { field: string; from: unknown; to: unknown }[] = [];
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const isText = (x: unknown): x is Record<string, unknown> => !!x && typeof x === "object" && !Array.isArray(x);
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[key];
    const y = b[key];
    if (isText(x) && isText(y)) {
      for (const sub of new Set([...Object.keys(x), ...Object.keys(y)])) {
        if (!same(x[sub], y[sub])) out.push({ field: `${key}.${sub}`, from: x[sub], to: y[sub] });
      }
    } else if (!same(x, y)) {
      out.push({ field: key, from: x, to: y });
    }
  }
  return out;
}

/** Decisions decided the same, by the same rules, whose reasons (codes, messages, actions:
 * what a customer or an operator reads) read otherwise. */
function ReasonChanges({ report }: { report: Additions }) {
  const changes = report.reason_changes ?? [];
  if (changes.length === 0) return null;
  const shown = (value: unknown) => (value === undefined ? "-" : typeof value === "string" ? value : JSON.stringify(value));
  return (
    <>
      <h3>{t("impact.reason_changes", { count: changes.length })}</h3>
      <div class="table-scroll">
        <table id="reason-changes">
          <thead>
            <tr>
              <th>{t("decision.id")}</th>
              <th>{t("impact.reason_field")}</th>
              <th class="value">{t("impact.before")}</th>
              <th class="value">{t("impact.after")}</th>
            </tr>
          </thead>
          <tbody>
            {changes.flatMap((c) =>
              c.reasons.flatMap((r) =>
                reasonFields(r.before, r.after).map((f, i) => (
                  <tr key={`${c.decision_id}/${r.rule}/${f.field}`} data-decision-id={c.decision_id} data-rule={r.rule}>
                    <td>
                      {i === 0 && (
                        <a href={href(["log", c.decision_id])}>
                          <code>{c.decision_id}</code>
                        </a>
                      )}
                    </td>
                    <td>
                      <code>{r.rule}</code> <code>{f.field}</code>
                    </td>
                    <td class="from">{shown(f.from)}</td>
                    <td class="to">{shown(f.to)}</td>
                  </tr>
                )),
              ),
            )}
          </tbody>
        </table>
      </div>
    </>
  );
}

function EntityIds({ ids }: { ids: string[] }) {
  if (ids.length === 0) return null;
  return (
    <span class="muted">
      {" "}
      ({t("impact.for_example")} <code>{ids.join(", ")}</code>)
    </span>
  );
}

/** A flow's stored entities that the draft strands (a state it no longer has or makes
 * abolished: no event can move them), changes (the events allowed in their state) or whose
 * facts its entity schema refuses. Stranded entities are an alert: an approver must see it. */
function EntitiesView({ entities }: { entities: EntityImpact }) {
  const { facts } = entities;
  const untouched = entities.stranded === 0 && entities.events_changed.length === 0 && facts.refused === 0;
  return (
    <div class="entity-impact" id="entity-impact" data-stranded={entities.stranded}>
      <h3>{t("impact.entities_title")}</h3>
      <p class="meta">{t("impact.entities_total", { count: entities.total })}</p>
      {entities.stranded > 0 && (
        <div class="error" role="alert" id="entities-stranded">
          <strong>{t("impact.stranded", { count: entities.stranded })}</strong>
          <ul class="plain">
            {entities.removed_states.map((s) => (
              <li key={"removed-" + s.state} data-state={s.state}>
                {t("impact.state_removed", { state: s.state, count: s.count })}
                <EntityIds ids={s.entities} />
              </li>
            ))}
            {entities.abolished_states.map((s) => (
              <li key={"abolished-" + s.state} data-state={s.state}>
                {t("impact.state_abolished", { state: s.state, count: s.count })}
                <EntityIds ids={s.entities} />
              </li>
            ))}
          </ul>
        </div>
      )}
      {entities.events_changed.length > 0 && (
        <div class="table-scroll">
          <table id="events-changed">
            <thead>
              <tr>
                <th>{t("impact.state")}</th>
                <th>{t("impact.entities")}</th>
                <th>{t("impact.events_removed")}</th>
                <th>{t("impact.events_added")}</th>
              </tr>
            </thead>
            <tbody>
              {entities.events_changed.map((s) => (
                <tr key={s.state} data-state={s.state}>
                  <td>
                    <code>{s.state}</code>
                  </td>
                  <td class="number">
                    {s.count}
                    <EntityIds ids={s.entities} />
                  </td>
                  <td>
                    <code>{s.removed.join(", ") || "-"}</code>
                  </td>
                  <td>
                    <code>{s.added.join(", ") || "-"}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {facts.schema_changed ? (
        <>
          <p id="entity-facts" class={facts.refused > 0 ? "error" : undefined}>
            {t("impact.facts_refused", { refused: facts.refused, checked: facts.checked, of: facts.of })}
          </p>
          {facts.kinds.length > 0 && (
            <ul class="diagnostics">
              {facts.kinds.map((k, i) => (
                <li key={i}>
                  <code class="pointer">{k.pointer}</code> <code>{k.code}</code> {k.message} ({k.count})
                  <EntityIds ids={k.entities} />
                </li>
              ))}
            </ul>
          )}
        </>
      ) : (
        <p class="muted">{t("impact.facts_unchanged")}</p>
      )}
      {untouched && <p class="muted">{t("impact.entities_untouched")}</p>}
    </div>
  );
}

/** A flow's stored entities as an impact counts them; undefined for a decision policy (and
 * for a revision recorded before impact counted them). */
export function entitiesOf(impact: ImpactSummary | null | undefined): EntityImpact | undefined {
  return (impact as (ImpactSummary & Additions) | null | undefined)?.entities;
}

/** A flow's entity impact in one cell of a list: what it strands (an alert), the entities
 * whose allowed events or facts it changes, or that none is touched. A flow logs no
 * decisions: "0 of 0 change" would say nothing of what matters. */
export function EntityImpactBrief({ entities }: { entities: EntityImpact }) {
  const changed = entities.events_changed.reduce((sum, s) => sum + s.count, 0);
  const parts = [
    entities.stranded > 0 && (
      <strong class="stranded" key="stranded">
        {t("impact.brief_stranded", { count: entities.stranded })}
      </strong>
    ),
    changed > 0 && (
      <span class="warn" key="events">
        {t("impact.brief_events_changed", { count: changed })}
      </span>
    ),
    entities.facts.refused > 0 && (
      <span class="warn" key="facts">
        {t("impact.brief_facts_refused", { count: entities.facts.refused })}
      </span>
    ),
  ].filter((part) => part);
  if (parts.length === 0) {
    return (
      <span class="muted entity-brief" data-stranded="0">
        {t("impact.brief_untouched")}
      </span>
    );
  }
  return (
    <span class="entity-brief" data-stranded={entities.stranded}>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {i > 0 && " · "}
          {part}
        </Fragment>
      ))}
    </span>
  );
}

/** What a revision record keeps of its impact: counts, largest transitions, rules. */
export function ImpactSummaryView({ impact }: { impact: ImpactSummary }) {
  if (impact.note) return <p class="muted">{impact.note}</p>;
  const added = impact as ImpactSummary & Additions;
  return (
    <div class="impact-summary">
      {added.entities && <EntitiesView entities={added.entities} />}
      <Counts report={impact} />
      <ReasonChanges report={added} />
      <TransitionsTable transitions={impact.transitions} />
      <div class="two-columns">
        <RuleCounts title={t("impact.newly_fire")} counts={impact.rules.newly_fire} id="summary-newly-fire" />
        <RuleCounts title={t("impact.stop_firing")} counts={impact.rules.stop_firing} id="summary-stop-firing" />
      </div>
    </div>
  );
}

/** A report; `stale` when what it measured has been edited since (marked at its side). */
export function ImpactView({ report, stale = false }: { report: ImpactReport; stale?: boolean }) {
  const added = report as ImpactReport & Additions;
  return (
    <div class={"impact-report" + (stale ? " stale" : "")} data-changed={report.changed} data-stale={stale ? "true" : undefined}>
      <p class="meta">
        <code>{report.before.label}</code> → <code>{report.after.label}</code>
        {report.source.log !== undefined && (
          <>
            {" "}
            · {t("impact.from_log", { policy: report.source.log })}
          </>
        )}
        {report.seconds !== undefined && <> · {t("impact.seconds", { seconds: report.seconds })}</>}
      </p>
      {added.entities && <EntitiesView entities={added.entities} />}
      <Counts report={report} />
      <h3>{t("impact.transitions")}</h3>
      <div class="two-columns">
        <TransitionsTable transitions={report.transitions} />
        <TransitionsChart transitions={report.transitions} />
      </div>
      <div class="two-columns">
        <RuleCounts title={t("impact.newly_fire")} counts={report.rules.newly_fire} id="newly-fire" />
        <RuleCounts title={t("impact.stop_firing")} counts={report.rules.stop_firing} id="stop-firing" />
      </div>
      {report.invalid_facts.length > 0 && (
        <>
          <h3>{t("impact.invalid_facts")}</h3>
          <div class="table-scroll">
            <table id="invalid-facts">
              <thead>
                <tr>
                  <th>{t("impact.pointer")}</th>
                  <th>{t("impact.code")}</th>
                  <th>{t("impact.message")}</th>
                  <th>{t("impact.decisions")}</th>
                </tr>
              </thead>
              <tbody>
                {report.invalid_facts.map((f, i) => (
                  <tr key={i}>
                    <td>
                      <code class="pointer">{f.pointer}</code>
                    </td>
                    <td>
                      <code>{f.code}</code>
                    </td>
                    <td>{f.message}</td>
                    <td class="number">{f.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {report.failures.length > 0 && (
        <>
          <h3>{t("impact.failures")}</h3>
          <ul class="diagnostics">
            {report.failures.map((f, i) => (
              <li key={i}>
                <code>{f.side}</code> <code>{f.code}</code> {f.pointer && <code class="pointer">{f.pointer}</code>} {f.message} (
                {f.count})
              </li>
            ))}
          </ul>
        </>
      )}
      {report.changes.length > 0 && (
        <>
          <h3>{t("impact.changes", { count: report.changes.length })}</h3>
          <div class="table-scroll">
            <table id="changed-decisions">
              <thead>
                <tr>
                  <th>{t("decision.id")}</th>
                  <th>{t("decision.at")}</th>
                  <th>{t("impact.what_changed")}</th>
                </tr>
              </thead>
              <tbody>
                {report.changes.map((c) => (
                  <tr key={c.decision_id} data-decision-id={c.decision_id}>
                    <td>
                      <a href={href(["log", c.decision_id])}>
                        <code>{c.decision_id}</code>
                      </a>
                    </td>
                    <td>
                      <code>{c.at}</code>
                    </td>
                    <td>
                      {Object.keys(c.before).map((field) => (
                        <div key={field}>
                          <code>{field}</code>:{" "}
                          <code class="from">
                            <Breakable text={short(c.before[field])} />
                          </code>{" "}
                          →{" "}
                          <code class="to">
                            <Breakable text={short(c.after[field])} />
                          </code>
                        </div>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <ReasonChanges report={added} />
      {report.samples.length > 0 && (
        <>
          <h3>{t("impact.samples")}</h3>
          {report.samples.map((sample) => (
            <Sample key={sample.decision_id} report={report} sample={sample} />
          ))}
        </>
      )}
    </div>
  );
}

/** One changed decision with both explanations side by side: the rules whose verdict
 * differs, each with the first false condition and the values it read. */
function Sample({ report, sample }: { report: ImpactReport; sample: ImpactReport["samples"][number] }) {
  const verdicts = (side: ImpactSide) => new Map((side.explanation?.rules ?? []).map((r) => [r.rule, r]));
  const before = verdicts(sample.before);
  const after = verdicts(sample.after);
  const differ = [...new Set([...before.keys(), ...after.keys()])].filter(
    (rule) => before.get(rule)?.verdict !== after.get(rule)?.verdict,
  );
  const pick = (side: Map<string, RuleVerdict>) => differ.map((rule) => side.get(rule)).filter((r): r is RuleVerdict => !!r);
  return (
    <div class="sample card" data-decision-id={sample.decision_id}>
      <p class="meta">
        <a href={href(["log", sample.decision_id])}>
          <code>{sample.decision_id}</code>
        </a>{" "}
        · <code>{sample.at}</code>
      </p>
      <div class="side-by-side">
        {(
          [
            ["before", report.before.label, sample.before, before],
            ["after", report.after.label, sample.after, after],
          ] as const
        ).map(([key, label, side, rules]) => (
          <div key={key} class={"side side-" + key}>
            <h4>
              {t("impact." + key)}: <code>{label}</code>
            </h4>
            <p class="fired">
              {t("impact.fired")}: <code>{side.fired.join(", ") || "-"}</code>
            </p>
            <RuleTable policy={report.policy} rules={pick(rules)} />
          </div>
        ))}
      </div>
    </div>
  );
}
