// Revisions and approvals: a policy's revisions (draft, pending, published, retired,
// rejected) with their tests and impact, one revision with its diff against the published
// one, approve (another principal: the service refuses its author, and the refusal is
// shown as it comes), reject, roll back to an earlier publication, and the audit trail.
import { useState } from "preact/hooks";
import { ApiError, call, get } from "../api";
import { ErrorBox, Loading, Section, useBusy, useLoad } from "../components";
import { DiffView } from "../diff";
import { formatTime, pick, t } from "../i18n";
import { EntityImpactBrief, entitiesOf, ImpactSummaryView } from "../impact";
import { JobProgress, useJob } from "../jobs";
import { whoami } from "../me";
import { href } from "../router";
import type {
  AuditEntry,
  ConsultingFlow,
  Diff,
  PolicySummary,
  Publication,
  RevisionDetail,
  RevisionList,
  RevisionRecord,
} from "../types";
import { TestsView } from "./Edit";

const base = (policy: string) => `/v1/policies/${encodeURIComponent(policy)}`;

function StateBadge({ record }: { record: { state: string; stale?: boolean } }) {
  return (
    <span class={"badge revision-" + record.state} data-state={record.state}>
      {t("revision.state_" + record.state)}
      {record.stale ? " · " + t("revision.stale") : ""}
    </span>
  );
}

function TestsCell({ record }: { record: RevisionRecord }) {
  if (!record.tests) return <span class="muted">-</span>;
  return <span>{t("revision.tests", { passed: record.tests.passed, cases: record.tests.cases })}</span>;
}

/** A decision policy's revision: how many of the decisions replayed change. A flow's: its
 * stored entities (a flow logs no decisions), what it strands first. */
function ImpactCell({ record }: { record: RevisionRecord }) {
  if (!record.impact) return <span class="muted">-</span>;
  const entities = entitiesOf(record.impact);
  if (entities) return <EntityImpactBrief entities={entities} />;
  if (record.impact.note) return <span class="muted">{t("revision.no_impact")}</span>;
  return <span>{t("revision.impact", { changed: record.impact.changed, replayed: record.impact.replayed })}</span>;
}

export function RevisionsPage({ id }: { id: string }) {
  const loaded = useLoad(
    () => Promise.all([get<RevisionList>(`${base(id)}/revisions`), get<{ entries: AuditEntry[] }>(`${base(id)}/audit?limit=50`)]),
    [id],
  );
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const [list, audit] = loaded.value!;
  return <Revisions id={id} list={list} audit={audit.entries} reload={loaded.reload} />;
}

type RolledBack = { ref: string; publication: Publication };

function Revisions({ id, list, audit, reload }: { id: string; list: RevisionList; audit: AuditEntry[]; reload: () => void }) {
  // said above the table: the row that offered the rollback is published after the reload
  const [rolledBack, setRolledBack] = useState<RolledBack | null>(null);
  return (
    <>
      <h1>
        {t("revisions.title")} <code class="muted">{id}</code>
      </h1>
      <p class="meta">
        <Published publication={list.published} /> · {t("revisions.approvals_required", { count: list.approvals_required })} ·{" "}
        <a href={href(["policies", id])}>{t("try.back")}</a>
      </p>
      <nav class="actions" aria-label={t("policy.actions")}>
        <a class="button primary" href={href(["policies", id, "edit"])}>
          {t("policy.edit")}
        </a>
      </nav>
      <Section title={t("revisions.list")} id="revisions">
        {rolledBack && (
          <p class="ok" role="status" id="rolled-back" data-publication={rolledBack.publication.publication}>
            {t("revisions.rolled_back", { ref: rolledBack.ref, publication: rolledBack.publication.publication })}
          </p>
        )}
        <RevisionTable
          policy={id}
          revisions={list.revisions}
          published={list.published}
          onRolledBack={(ref, publication) => {
            setRolledBack({ ref, publication });
            reload();
          }}
        />
      </Section>
      <Section title={t("audit.title")} id="audit">
        <AuditTable entries={audit} />
      </Section>
    </>
  );
}

function Published({ publication }: { publication: Publication | null }) {
  if (!publication) return <span>{t("revisions.nothing_published")}</span>;
  return (
    <span id="published">
      {t("revisions.published", {
        ref: `${publication.policy}@${publication.number}`,
        publication: publication.publication,
        kind: t("publication.kind_" + publication.kind),
      })}{" "}
      <code>{publication.revision}</code>
    </span>
  );
}

function RevisionTable({
  policy,
  revisions,
  published,
  onRolledBack,
}: {
  policy: string;
  revisions: RevisionRecord[];
  published: Publication | null;
  onRolledBack: (ref: string, publication: Publication) => void;
}) {
  return (
    <div class="table-scroll">
      <table id="revision-list" class="stacked">
        <thead>
          <tr>
            <th>{t("revisions.ref")}</th>
            <th>{t("revisions.state")}</th>
            <th>{t("revisions.author")}</th>
            <th>{t("revisions.message")}</th>
            <th>{t("revisions.tests")}</th>
            <th>{t("revisions.impact")}</th>
            <th>{t("revisions.publications")}</th>
            <th>{t("revisions.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {revisions.map((record) => (
            <tr key={record.number} data-number={record.number} data-state={record.state}>
              <td data-label={t("revisions.ref")}>
                <a href={href(["policies", policy, "revisions", String(record.number)])}>
                  <code>{record.ref}</code>
                </a>
                <div class="muted">
                  <code>{record.revision}</code>
                </div>
              </td>
              <td data-label={t("revisions.state")}>
                <StateBadge record={record} />
              </td>
              <td data-label={t("revisions.author")}>
                {record.author}
                {record.approver && <div class="muted">{t("revisions.approved_by", { approver: record.approver })}</div>}
                <div class="muted">{formatTime(record.created_at)}</div>
              </td>
              <td class="message" data-label={t("revisions.message")}>
                {record.message}
              </td>
              <td data-label={t("revisions.tests")}>
                <TestsCell record={record} />
              </td>
              <td data-label={t("revisions.impact")}>
                <ImpactCell record={record} />
              </td>
              <td data-label={t("revisions.publications")}>{(record.publications ?? []).join(", ")}</td>
              <td class="revision-actions" data-label={t("revisions.actions")}>
                {record.state === "retired" && (record.publications ?? []).length > 0 && published && (
                  <Rollback policy={policy} record={record} onDone={(publication) => onRolledBack(record.ref, publication)} />
                )}
                {(record.state === "pending" || record.state === "draft") && (
                  <a href={href(["policies", policy, "revisions", String(record.number)])}>{t("revisions.review")}</a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Rollback({ policy, record, onDone }: { policy: string; record: RevisionRecord; onDone: (publication: Publication) => void }) {
  const [message, setMessage] = useState("");
  const [failure, setFailure] = useState<unknown>(null);
  // a flow's earlier revision may lack states entities stand in now: the service says how
  // many it strands, and the rollback is sent again acknowledging that count once ticked
  const [stranding, setStranding] = useState<Stranding | null>(null);
  const [acknowledged, setAcknowledged] = useState(false);
  const sending = useBusy();
  const id = (what: string) => `rollback-${what}-${record.number}`;
  return (
    <form
      class="rollback"
      aria-label={t("revisions.rollback_to", { ref: record.ref })}
      onSubmit={(e) => {
        e.preventDefault();
        sending.run(async () => {
          setFailure(null);
          const body = stranding && acknowledged ? { to: record.number, message, acknowledge_stranded: stranding.count } : { to: record.number, message };
          try {
            onDone(await call<Publication>("POST", `${base(policy)}/rollback`, body));
          } catch (error) {
            const found = strandingOf(error);
            if (found) {
              setStranding(found);
              setAcknowledged(false); // acknowledged for fewer, or not yet: asked with the count now
            } else setFailure(error);
          }
        });
      }}
    >
      <label for={id("message")} class="muted">
        {t("revisions.rollback_message")}
      </label>
      <input id={id("message")} value={message} onInput={(e) => setMessage((e.target as HTMLInputElement).value)} />
      {stranding && (
        <div class="error stranded-warning" role="alert" id={id("stranded")} data-stranded={stranding.count}>
          <strong>{t("revisions.rollback_stranded", { ref: record.ref, count: stranding.count, states: stranding.states.join(", ") })}</strong>
          <label class="acknowledge">
            <input type="checkbox" id={id("ack")} checked={acknowledged} onChange={(e) => setAcknowledged((e.target as HTMLInputElement).checked)} />{" "}
            {t("revision.stranded_ack")}
          </label>
        </div>
      )}
      <button
        type="submit"
        id={"rollback-" + record.number}
        disabled={sending.busy || (stranding !== null && !acknowledged)}
        aria-describedby={stranding ? id("stranded") : undefined}
      >
        {t("revisions.rollback_to", { ref: record.ref })}
      </button>
      {failure !== null && <ErrorBox error={failure} />}
    </form>
  );
}

/** What a 409 strands_entities counted (an approval's or a rollback's); null for another error. */
function strandingOf(error: unknown): Stranding | null {
  if (!(error instanceof ApiError) || error.problem.code !== "strands_entities") return null;
  const found = error.problem as unknown as { stranded?: number; states?: string[] };
  return { count: found.stranded ?? 0, states: found.states ?? [] };
}

export function AuditTable({ entries, withPolicy = false }: { entries: AuditEntry[]; withPolicy?: boolean }) {
  if (entries.length === 0) return <p class="muted">{t("audit.none")}</p>;
  return (
    <div class="table-scroll">
      <table id="audit-table" class="stacked">
        <thead>
          <tr>
            <th>{t("audit.at")}</th>
            <th>{t("audit.principal")}</th>
            <th>{t("audit.action")}</th>
            {withPolicy && <th>{t("audit.policy")}</th>}
            <th>{t("audit.revision")}</th>
            <th>{t("audit.detail")}</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.seq} data-action={entry.action} data-principal={entry.principal}>
              <td data-label={t("audit.at")}>{formatTime(entry.at)}</td>
              <td data-label={t("audit.principal")}>{entry.principal}</td>
              <td data-label={t("audit.action")}>
                <span class="badge">{t("audit.action_" + entry.action).startsWith("audit.") ? entry.action : t("audit.action_" + entry.action)}</span>
              </td>
              {withPolicy && (
                <td data-label={t("audit.policy")}>
                  <a href={href(["policies", entry.policy, "revisions"])}>
                    <code>{entry.policy}</code>
                  </a>
                </td>
              )}
              <td data-label={t("audit.revision")}>{entry.number !== null && <code>{`${entry.policy}@${entry.number}`}</code>}</td>
              <td data-label={t("audit.detail")} class="audit-detail">
                {Object.entries(entry.detail)
                  .filter(([, value]) => value !== null && value !== "")
                  .map(([key, value]) => (
                    <span key={key}>
                      {key}=<code>{typeof value === "string" ? value : JSON.stringify(value)}</code>{" "}
                    </span>
                  ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RevisionPage({ id, number }: { id: string; number: string }) {
  const loaded = useLoad(async () => {
    const [me, record] = await Promise.all([whoami(), get<RevisionDetail>(`${base(id)}/revisions/${encodeURIComponent(number)}`)]);
    const diff = await get<Diff>(`${base(id)}/diff?from=published&to=${record.number}`).catch((error: unknown) => error);
    return { me, record, diff };
  }, [id, number]);
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const { me, record, diff } = loaded.value!;
  return (
    <>
      <h1>
        {t("revision.title")} <code id="revision-ref">{record.ref}</code>
      </h1>
      <p class="meta">
        <StateBadge record={record} /> · {t("revisions.author")}: <strong id="revision-author">{record.author}</strong> ·{" "}
        {formatTime(record.created_at)} · <code>{record.revision}</code>
        {record.approver && (
          <>
            {" "}
            · {t("revisions.approved_by", { approver: record.approver })}
          </>
        )}{" "}
        · <a href={href(["policies", id, "revisions"])}>{t("revision.all")}</a>
      </p>
      {record.message && <p class="revision-message">{record.message}</p>}
      <Decide policy={id} record={record} principal={me.principal} onDone={loaded.reload} />
      <Section title={t("revision.diff")} id="revision-diff">
        {diff instanceof Error || !(diff && "changes" in (diff as object)) ? <ErrorBox error={diff} /> : <DiffView diff={diff as Diff} />}
      </Section>
      <div class="two-columns">
        <Section title={t("revision.tests_title")} id="revision-tests">
          {record.tests ? (
            <>
              <TestsView report={record.tests} />
              {(record.tests.consulting_flows ?? []).length > 0 && <ConsultingFlows flows={record.tests.consulting_flows!} />}
            </>
          ) : (
            <p class="muted">{t("revision.not_tested")}</p>
          )}
        </Section>
        <Section title={t("revision.impact_title")} id="revision-impact">
          {record.impact ? (
            <>
              {record.impact.window_days !== undefined && (
                <p class="meta">{t("revision.impact_window", { days: record.impact.window_days })}</p>
              )}
              <ImpactSummaryView impact={record.impact} />
            </>
          ) : (
            <p class="muted">{t("revision.not_measured")}</p>
          )}
        </Section>
      </div>
      {record.publications.length > 0 && (
        <Section title={t("revisions.publications")} id="revision-publications">
          <ul class="plain">
            {record.publications.map((p) => (
              <li key={p.publication}>
                {t("revision.publication_line", {
                  publication: p.publication,
                  kind: t("publication.kind_" + p.kind),
                  principal: p.principal,
                  time: formatTime(p.published_at),
                })}
              </li>
            ))}
          </ul>
        </Section>
      )}
    </>
  );
}

/** The published flows that consult this decision policy, each tested against this
 * revision at submission (a submission one of them fails is refused): which flow, which
 * of its revisions, how its cases went. */
function ConsultingFlows({ flows }: { flows: ConsultingFlow[] }) {
  return (
    <div class="consulting-flows" id="consulting-flows">
      <h3>{t("revision.consulting_flows")}</h3>
      <ul class="plain">
        {flows.map((flow) => (
          <li key={flow.ref} data-policy={flow.policy} data-failed={flow.failed + flow.errors}>
            <a href={href(["policies", flow.policy, "revisions", flow.ref.slice(flow.ref.lastIndexOf("@") + 1)])}>
              <code>{flow.ref}</code>
            </a>{" "}
            <code class="muted">{flow.revision}</code>{" "}
            <span class={flow.failed || flow.errors ? "warn" : undefined}>
              {t("tests.summary", { passed: flow.passed, cases: flow.cases, failed: flow.failed, errors: flow.errors })}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Before the approve button of a revision that strands stored entities: how many, in
 * which states, a way to the details, and a tick the approver gives before approving. */
function StrandedWarning({
  record,
  now,
  acknowledged,
  onAcknowledge,
}: {
  record: RevisionDetail;
  now: Stranding | null;
  acknowledged: boolean;
  onAcknowledge: (yes: boolean) => void;
}) {
  const entities = entitiesOf(record.impact);
  const count = now?.count ?? entities?.stranded ?? 0;
  if (count === 0) return null;
  return (
    <div class="error stranded-warning" role="alert" id="stranded-warning" data-stranded={count}>
      <strong>{t("revision.stranded_warning", { count })}</strong>
      {now && (
        <p id="stranded-now">
          {t("revision.stranded_now", { count: now.count, states: now.states.join(", ") })}
        </p>
      )}
      <ul class="plain">
        {(entities?.removed_states ?? []).map((s) => (
          <li key={"removed-" + s.state} data-state={s.state}>
            {t("impact.state_removed", { state: s.state, count: s.count })}
          </li>
        ))}
        {(entities?.abolished_states ?? []).map((s) => (
          <li key={"abolished-" + s.state} data-state={s.state}>
            {t("impact.state_abolished", { state: s.state, count: s.count })}
          </li>
        ))}
      </ul>
      <button type="button" class="link" id="stranded-details" onClick={() => document.getElementById("revision-impact")?.scrollIntoView()}>
        {t("revision.stranded_details")}
      </button>
      <label class="acknowledge">
        <input type="checkbox" id="stranded-ack" checked={acknowledged} onChange={(e) => onAcknowledge((e.target as HTMLInputElement).checked)} />{" "}
        {t("revision.stranded_ack")}
      </label>
    </div>
  );
}

type Approved = { publication: Publication; revision: RevisionRecord };
/** What the service counted at the approval, when more entities stood in those states than
 * the revision's impact measured (409 strands_entities). */
type Stranding = { count: number; states: string[] };

function Decide({
  policy,
  record,
  principal,
  onDone,
}: {
  policy: string;
  record: RevisionDetail;
  principal: string;
  onDone: () => void;
}) {
  const [message, setMessage] = useState("");
  const [failure, setFailure] = useState<unknown>(null);
  const [approved, setApproved] = useState<Approved | null>(null);
  const [rejected, setRejected] = useState(false);
  // a revision that strands stored entities is approved only once that is acknowledged,
  // with the count acknowledged: the service refuses when more stand there now
  const [acknowledged, setAcknowledged] = useState(false);
  const [strandingNow, setStrandingNow] = useState<Stranding | null>(null);
  const strandedCount = strandingNow?.count ?? entitiesOf(record.impact)?.stranded ?? 0;
  const strands = strandedCount > 0;
  const submit = useJob<{ revision: RevisionRecord }>();
  const acting = useBusy();
  const url = `${base(policy)}/revisions/${record.number}`;
  const act = (what: "approve" | "reject") =>
    acting.run(async () => {
      setFailure(null);
      try {
        if (what === "approve") {
          const body = strands && acknowledged ? { message, acknowledge_stranded: strandedCount } : { message };
          setApproved(await call<Approved>("POST", `${url}:approve`, body));
        }
        else {
          await call("POST", `${url}:reject`, { message });
          setRejected(true);
        }
        onDone();
      } catch (error) {
        const found = strandingOf(error);
        if (found) {
          setStrandingNow(found);
          setAcknowledged(false); // acknowledged for fewer: asked again, with the count now
        }
        setFailure(error);
      }
    });
  const submitIt = async () => {
    const job = await submit.start(`${url}:submit`, undefined);
    if (job?.state === "done") onDone(); // the page shows the revision as it is now: pending
  };
  // decided (here, or since: published, rejected, retired): nothing more to do with it
  const open = (record.state === "pending" || record.state === "draft") && !approved && !rejected;
  const busy = acting.busy || submit.running;
  if (!open && !approved && !rejected) return null;
  return (
    <Section title={t("revision.decide")} id="decide">
      {open && record.state === "pending" && record.author === principal && (
        <p class="muted" id="own-revision">
          {t("revision.own", { principal })}
        </p>
      )}
      {open && (
        <>
          <div class="field">
            <label for="decision-message">{t("revision.message")}</label>
            <input id="decision-message" value={message} onInput={(e) => setMessage((e.target as HTMLInputElement).value)} />
          </div>
          {record.state === "pending" && (
            <StrandedWarning record={record} now={strandingNow} acknowledged={acknowledged} onAcknowledge={setAcknowledged} />
          )}
          <div class="actions">
            {record.state === "pending" && (
              <button
                type="button"
                class="primary"
                id="approve"
                disabled={busy || (strands && !acknowledged)}
                aria-busy={busy ? "true" : undefined}
                aria-describedby={strands ? "stranded-warning" : undefined}
                onClick={() => act("approve")}
              >
                {t("revision.approve")}
              </button>
            )}
            {record.state === "draft" && (
              <>
                <a class="button" href={href(["policies", policy, "edit"], { from: String(record.number) })}>
                  {t("revision.edit")}
                </a>
                <button type="button" class="primary" id="submit-revision" disabled={busy} onClick={submitIt}>
                  {t("edit.submit")}
                </button>
              </>
            )}
            <button type="button" id="reject" disabled={busy} onClick={() => act("reject")}>
              {t("revision.reject")}
            </button>
            {record.state === "pending" && strands && !acknowledged && (
              <span class="muted" id="stranded-ack-first">
                {t("revision.stranded_ack_first")}
              </span>
            )}
          </div>
        </>
      )}
      <JobProgress job={submit.job} id="submit-job" />
      {submit.failure !== null && <ErrorBox error={submit.failure} />}
      {submit.job?.state === "done" && (
        <p class="ok" role="status">
          {t("edit.pending", { ref: record.ref })}
        </p>
      )}
      {approved && (
        <p class="ok" role="status" id="approved" data-publication={approved.publication.publication}>
          {t("revision.approved", { ref: approved.revision.ref, publication: approved.publication.publication, revision: approved.publication.revision })}
        </p>
      )}
      {rejected && (
        <p class="ok" role="status">
          {t("revision.rejected", { ref: record.ref })}
        </p>
      )}
      {failure !== null && <ErrorBox error={failure} />}
    </Section>
  );
}

/** Every revision waiting for approval, of every policy, and the whole audit trail. */
export function ApprovalsPage() {
  const loaded = useLoad(async () => {
    const [policies, audit] = await Promise.all([
      get<{ policies: PolicySummary[] }>("/v1/policies"),
      get<{ entries: AuditEntry[] }>("/v1/audit?limit=50"),
    ]);
    const waiting = policies.policies.filter((p) => p.unserved?.state === "pending");
    const lists = await Promise.all(waiting.map((p) => get<RevisionList>(`${base(p.id)}/revisions`)));
    const pending = lists.flatMap((list) => list.revisions.filter((r) => r.state === "pending"));
    return { policies: policies.policies, pending, audit: audit.entries };
  }, []);
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const { policies, pending, audit } = loaded.value!;
  const titles = new Map(policies.map((p) => [p.id, pick(p.title)]));
  return (
    <>
      <h1>{t("approvals.title")}</h1>
      <Section title={t("approvals.pending", { count: pending.length })} id="pending">
        {pending.length === 0 ? (
          <p class="muted">{t("approvals.none")}</p>
        ) : (
          <div class="table-scroll">
            <table id="pending-list" class="stacked">
              <thead>
                <tr>
                  <th>{t("revisions.ref")}</th>
                  <th>{t("policies.name")}</th>
                  <th>{t("revisions.author")}</th>
                  <th>{t("revisions.message")}</th>
                  <th>{t("revisions.tests")}</th>
                  <th>{t("revisions.impact")}</th>
                </tr>
              </thead>
              <tbody>
                {pending.map((record) => (
                  <tr key={record.ref} data-ref={record.ref}>
                    <td data-label={t("revisions.ref")}>
                      <a href={href(["policies", record.policy, "revisions", String(record.number)])}>
                        <code>{record.ref}</code>
                      </a>{" "}
                      <StateBadge record={record} />
                    </td>
                    <td data-label={t("policies.name")}>{titles.get(record.policy)}</td>
                    <td data-label={t("revisions.author")}>
                      {record.author}
                      <div class="muted">{formatTime(record.created_at)}</div>
                    </td>
                    <td class="message" data-label={t("revisions.message")}>
                      {record.message}
                    </td>
                    <td data-label={t("revisions.tests")}>
                      <TestsCell record={record} />
                    </td>
                    <td data-label={t("revisions.impact")}>
                      <ImpactCell record={record} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <Section title={t("audit.title")} id="audit">
        <AuditTable entries={audit} withPolicy />
      </Section>
    </>
  );
}
