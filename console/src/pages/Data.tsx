// Reference data sets: where each comes from, its current version, its entries and the
// versions the store keeps; a replacement checked first (the impact of the new data on
// recent decisions of every decision policy that reads it: POST /v1/policies/{id}/impact
// with `data`, a job each, nothing applied), then applied (PUT /v1/data/{name}). The
// service validates it both times; errors are shown with their JSON pointers.
import { useMemo, useState } from "preact/hooks";
import { ApiError, call, get, InputError, token } from "../api";
import { parseJson } from "../jsontext";
import { ImpactView } from "../impact";
import { runJob, useLive } from "../jobs";
import { JobProgress } from "../jobs";
import { may, whoami } from "../me";
import { Diagnostics, ErrorBox, Loading, Section, short, useBusy, useLoad } from "../components";
import { formatTime, pick, t } from "../i18n";
import { href } from "../router";
import type { DataSet, DataSummary, DataVersions, ImpactReport, Job, PolicySummary, Whoami } from "../types";

export function DataList() {
  const list = useLoad(() => get<{ data: DataSummary[] }>("/v1/data"), []);
  if (list.loading && !list.value) return <Loading />;
  if (list.error) return <ErrorBox error={list.error} />;
  return (
    <>
      <h1>{t("data.title")}</h1>
      <div class="table-scroll">
        <table class="list" id="data-list">
          <thead>
            <tr>
              <th>{t("explain.name")}</th>
              <th>{t("policy.meaning")}</th>
              <th>{t("data.version")}</th>
              <th>{t("data.source")}</th>
              <th>{t("data.count")}</th>
              <th>{t("data.read_by")}</th>
            </tr>
          </thead>
          <tbody>
            {list.value!.data.map((d) => (
              <tr key={d.name} data-name={d.name}>
                <td>
                  <a href={href(["data", d.name])}>
                    <code>{d.name}</code>
                  </a>
                </td>
                <td>{pick(d.label)}</td>
                <td>
                  <code>{d.version ?? "-"}</code>
                </td>
                <td>{d.source ? t("data.source_" + d.source) : "-"}</td>
                <td class="number">{d.count}</td>
                <td>{d.policies.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function DataPage({ name }: { name: string }) {
  const loaded = useLoad(
    () =>
      Promise.all([
        get<DataSet>(`/v1/data/${encodeURIComponent(name)}`),
        get<{ data: DataSummary[] }>("/v1/data"),
        get<DataVersions>(`/v1/data/${encodeURIComponent(name)}/versions`),
        get<{ policies: PolicySummary[] }>("/v1/policies"),
        whoami(),
      ]),
    [name],
  );
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const [set, all, versions, policies, me] = loaded.value!;
  const kinds = new Map(policies.policies.map((p) => [p.id, p.kind]));
  const summary = all.data.find((d) => d.name === name);
  const columns = [...new Set(set.entries.flatMap((entry) => Object.keys(entry)))];
  return (
    <>
      <h1>
        {pick(summary?.label) || name} <code class="muted">{name}</code>
      </h1>
      <p>
        <a href={href(["data"])}>{t("data.back")}</a>
      </p>
      <Section title={t("data.where")} id="data-origin">
        <div class="table-scroll">
          <table class="kv">
            <tbody>
              <tr>
                <th scope="row">{t("data.version")}</th>
                <td>
                  <code id="data-version">{set.version ?? "-"}</code>
                </td>
              </tr>
              <tr>
                <th scope="row">{t("data.source")}</th>
                <td id="data-source">{set.source ? t("data.source_" + set.source) : "-"}</td>
              </tr>
              {set.source === "file" && summary?.file && (
                <tr>
                  <th scope="row">{t("data.file")}</th>
                  <td>
                    <code>{summary.file}</code>
                  </td>
                </tr>
              )}
              {set.updated_at && (
                <tr>
                  <th scope="row">{t("data.updated_at")}</th>
                  <td>{formatTime(set.updated_at)}</td>
                </tr>
              )}
              <tr>
                <th scope="row">{t("data.schema")}</th>
                <td>
                  <code>{summary?.schema}</code>
                </td>
              </tr>
              <tr>
                <th scope="row">{t("data.read_by")}</th>
                <td>
                  {summary?.policies.map((p) => (
                    <a key={p} href={href(["policies", p])}>
                      <code>{p}</code>{" "}
                    </a>
                  ))}
                </td>
              </tr>
            </tbody>
          </table>
        </div>
        {set.errors.length > 0 && <Diagnostics items={set.errors} />}
      </Section>
      <Section title={t("data.entries", { count: set.count })} id="entries">
        <div class="scroll">
          <table id="entries-table">
            <thead>
              <tr>
                <th>#</th>
                {columns.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {set.entries.slice(0, 500).map((entry, i) => (
                <tr key={i}>
                  <td class="number">{i}</td>
                  {columns.map((c) => (
                    <td key={c}>{entry[c] === undefined ? "" : typeof entry[c] === "string" ? String(entry[c]) : short(entry[c])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {set.entries.length > 500 && <p class="muted">{t("data.first", { count: 500 })}</p>}
      </Section>
      <History key={`${versions.current}-${versions.changes[0]?.number ?? 0}`} name={name} first={versions} />
      <Section title={t("data.replace")} id="replace">
        <Upload
          name={name}
          version={set.version}
          entries={set.entries}
          readers={(summary?.policies ?? []).filter((p) => kinds.get(p) === "decision")}
          me={me}
          onDone={loaded.reload}
        />
      </Section>
    </>
  );
}

/** The versions the store keeps and the changes made, the newest 100 of each first; earlier
 * pages a click away (GET /v1/data/{name}/versions?before= / ?changes_before=). */
function History({ name, first }: { name: string; first: DataVersions }) {
  const [versions, setVersions] = useState(first.versions);
  const [nextBefore, setNextBefore] = useState(first.next_before);
  const [changes, setChanges] = useState(first.changes);
  const [nextChanges, setNextChanges] = useState(first.next_changes_before);
  const [failure, setFailure] = useState<unknown>(null);
  const loading = useBusy();
  const path = `/v1/data/${encodeURIComponent(name)}/versions`;
  const more = (query: string, add: (page: DataVersions) => void) =>
    loading.run(async () => {
      setFailure(null);
      try {
        add(await get<DataVersions>(`${path}?${query}`));
      } catch (error) {
        setFailure(error);
      }
    });
  return (
    <>
      <Section title={t("data.history")} id="history">
        <div class="table-scroll">
          <table id="versions-table">
            <thead>
              <tr>
                <th>{t("data.version")}</th>
                <th>{t("data.source")}</th>
                <th>{t("data.first_stored")}</th>
                <th>{t("data.count")}</th>
                <th>{t("data.served")}</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.version} data-version={v.version} data-current={v.current} class={v.current ? "current" : ""}>
                  <td>
                    <code>{v.version}</code>
                  </td>
                  <td>{t("data.source_" + v.source)}</td>
                  <td>{formatTime(v.created_at)}</td>
                  <td class="number">{v.count}</td>
                  <td>{v.current ? "✓ " + t("data.current") : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {nextBefore && (
          <button
            type="button"
            id="more-versions"
            disabled={loading.busy}
            onClick={() =>
              more(`before=${encodeURIComponent(nextBefore)}`, (page) => {
                setVersions((shown) => [...shown, ...page.versions]);
                setNextBefore(page.next_before);
              })
            }
          >
            {t("data.more_versions")}
          </button>
        )}
      </Section>
      <Section title={t("data.changes")} id="changes">
        {changes.length === 0 ? (
          <p class="muted" id="no-changes">
            {t("data.no_changes")}
          </p>
        ) : (
          <div class="table-scroll">
            <table id="changes-table">
              <thead>
                <tr>
                  <th>{t("data.change_at")}</th>
                  <th>{t("data.change_action")}</th>
                  <th>{t("data.version")}</th>
                  <th>{t("data.change_by")}</th>
                </tr>
              </thead>
              <tbody>
                {changes.map((c) => (
                  <tr key={c.number} data-action={c.action} data-number={c.number}>
                    <td>{formatTime(c.at)}</td>
                    <td>{t("data.action_" + c.action)}</td>
                    <td>{c.version ? <code>{c.version}</code> : "-"}</td>
                    <td class="principal">{c.principal}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {nextChanges !== null && (
          <button
            type="button"
            id="more-changes"
            disabled={loading.busy}
            onClick={() =>
              more(`changes_before=${nextChanges}`, (page) => {
                setChanges((shown) => [...shown, ...page.changes]);
                setNextChanges(page.next_changes_before);
              })
            }
          >
            {t("data.more_changes")}
          </button>
        )}
        {failure !== null && <ErrorBox error={failure} />}
      </Section>
    </>
  );
}

type Checked = { text: string; jobs: Record<string, Job<ImpactReport>> };
type Replacement = { entries: unknown[]; allow_empty?: boolean };

/** The body of a replacement (PUT /v1/data/{name}: {"entries": [...]}) from the text
 * typed, a bare list being its entries; a JSON mistake (its line and column) or another
 * shape is refused here, in words, before anything is sent. */
/** Whether the text is a replacement with no entries (a text that is no replacement is
 * refused by `replacement` when sent, in words). A long text is not parsed at every key
 * typed for this: one with no entries is short, or it is sent without allow_empty and the
 * service refuses it (data_empty). */
function emptied(text: string): boolean {
  if (text.length > 4096) return false;
  try {
    return replacement(text).entries.length === 0;
  } catch {
    return false;
  }
}

function replacement(text: string): Replacement {
  const parsed = parseJson(text);
  if (Array.isArray(parsed)) return { entries: parsed };
  if (parsed === null || typeof parsed !== "object") throw new InputError(t("data.shape"));
  const object = parsed as Record<string, unknown>;
  if (!("entries" in object)) throw new InputError(t("data.shape_missing"));
  const extra = Object.keys(object).filter((key) => key !== "entries");
  if (extra.length) throw new InputError(t("data.shape_extra", { keys: extra.join(", ") }));
  if (!Array.isArray(object.entries)) throw new InputError(t("data.shape_entries", { found: short(object.entries) }));
  return { entries: object.entries };
}

function Upload({
  name,
  version,
  entries,
  readers,
  me,
  onDone,
}: {
  name: string;
  version: string | null;
  entries: unknown[];
  readers: string[];
  me: Whoami;
  onDone: () => void;
}) {
  const [text, setText] = useState(() => JSON.stringify({ entries }, null, 2));
  const [since, setSince] = useState("30d");
  const [failure, setFailure] = useState<unknown>(null);
  const checking = useBusy(); // a double click checks once, and replaces once
  const uploading = useBusy();
  const [checked, setChecked] = useState<Checked | null>(null);
  const [done, setDone] = useState<{ version: string; count: number } | null>(null);
  const live = useLive();
  // no entries at all empties the set for every policy reading it (an export that found
  // nothing, a file picked by mistake): sent only once that is ticked, for this very text
  const empty = useMemo(() => emptied(text), [text]);
  const [tickedFor, setTickedFor] = useState<string | null>(null); // the text ticked
  const emptyTicked = tickedFor === text;
  const edit = (value: string) => {
    setText(value);
    setTickedFor(null); // another text, even the same one typed again: asked again
  };
  const emptyOk = !empty || emptyTicked;
  const problem = failure instanceof ApiError ? failure.problem : null;
  const measurable = may(me, "publish") && readers.length > 0;
  // every reader replayed to its end for this very text (not one left out by a failure)
  const ready = !measurable || (checked?.text === text && readers.every((policy) => checked.jobs[policy]?.state === "done"));

  const check = () =>
    checking.run(async () => {
      setFailure(null);
      setDone(null);
      let parsed: Replacement;
      try {
        parsed = replacement(text);
      } catch (error) {
        setFailure(error);
        return;
      }
      const jobs: Record<string, Job<ImpactReport>> = {};
      const sent = text;
      try {
        // one replay per decision policy that reads the data set, one after the other
        for (const policy of readers) {
          await runJob<ImpactReport>(
            `/v1/policies/${encodeURIComponent(policy)}/impact`,
            { data: { [name]: parsed.entries }, since },
            (job) => {
              jobs[policy] = job;
              if (live()) setChecked({ text: sent, jobs: { ...jobs } });
            },
            live,
          );
        }
      } catch (error) {
        // the impact names the entries by their place in its request (/data/NAME/3/phone);
        // here they are the entries typed above (/entries/3/phone), as a replacement's are
        if (error instanceof ApiError && error.problem.errors) {
          const prefix = `/data/${name}/`;
          for (const d of error.problem.errors) {
            if (d.pointer?.startsWith(prefix)) d.pointer = "/entries/" + d.pointer.slice(prefix.length);
          }
        }
        // a job that could not be followed to its end is not left shown as running
        for (const [policy, job] of Object.entries(jobs)) if (job.state === "running") delete jobs[policy];
        if (live()) {
          setChecked({ text: sent, jobs: { ...jobs } });
          setFailure(error);
        }
      }
    });

  return (
    <form
      aria-label={t("data.replace")}
      onSubmit={(event) => {
        event.preventDefault();
        uploading.run(async () => {
          setFailure(null);
          setDone(null);
          try {
            // the same entries the check replayed, read from the same text
            const body = replacement(text);
            // ticked for this text; else the service refuses it (data_empty), and says so
            if (body.entries.length === 0 && emptyTicked) body.allow_empty = true;
            // made only on the version this page shows: a change someone made since is not
            // overwritten unseen (412 version_moved: reload, then change that)
            const onVersion: Record<string, string> = version ? { "If-Match": `"${version}"` } : {};
            const path = `/v1/data/${encodeURIComponent(name)}`;
            setDone(await call<{ version: string; count: number }>("PUT", path, body, token(), onVersion));
            setChecked(null);
            onDone();
          } catch (error) {
            setFailure(error);
          }
        });
      }}
    >
      <p class="muted">{t("data.replace_help")}</p>
      <div class="field">
        <label for="data-file">{t("data.file_input")}</label>
        <input
          id="data-file"
          type="file"
          accept=".json,application/json"
          onChange={async (e) => {
            const file = (e.target as HTMLInputElement).files?.[0];
            if (file) edit(await file.text());
          }}
        />
      </div>
      <div class="field">
        <label for="data-text">{t("data.json")}</label>
        <textarea id="data-text" class="raw" rows={14} spellcheck={false} value={text} onInput={(e) => edit((e.target as HTMLTextAreaElement).value)} />
      </div>
      {measurable ? (
        <div class="inline-form">
          <label for="data-since">{t("edit.since")}</label>
          <select id="data-since" value={since} onChange={(e) => setSince((e.target as HTMLSelectElement).value)}>
            {["1d", "7d", "30d", "90d"].map((value) => (
              <option key={value} value={value}>
                {t("edit.since_" + value)}
              </option>
            ))}
          </select>
          <button type="button" id="check-impact" disabled={checking.busy || uploading.busy} onClick={check}>
            {t("data.check_impact", { policies: readers.join(", ") })}
          </button>
        </div>
      ) : (
        <p class="muted" id="no-impact">
          {readers.length === 0 ? t("data.no_readers") : t("data.impact_needs_publish")}
        </p>
      )}
      {checked &&
        Object.entries(checked.jobs).map(([policy, job]) => (
          <div key={policy} class="data-impact" data-policy={policy}>
            <h3>
              {t("data.impact_of", { policy })}
              {checked.text !== text && <span class="warn"> {t("data.changed_since_check")}</span>}
            </h3>
            <JobProgress job={job} id={"impact-job-" + policy} />
            {job.state === "done" && job.report && <ImpactView report={job.report} />}
          </div>
        ))}
      {empty && (
        <div class="error" role="alert" id="data-empty">
          <strong>{t("data.empty_warning", { name })}</strong>
          <label class="acknowledge">
            <input type="checkbox" id="data-empty-ack" checked={emptyTicked} onChange={(e) => setTickedFor((e.target as HTMLInputElement).checked ? text : null)} />{" "}
            {t("data.empty_ack")}
          </label>
        </div>
      )}
      <div class="submit-row">
        <button type="submit" class="primary" id="upload" disabled={!ready || !emptyOk || checking.busy || uploading.busy}>
          {t("data.upload")}
        </button>{" "}
        {!ready && <span class="muted">{t("data.check_first")}</span>}
      </div>
      {done && (
        <p class="ok" role="status">
          {t("data.replaced", { version: done.version, count: done.count })}
        </p>
      )}
      {problem?.status === 403 ? <div class="error" role="alert">{t("data.needs_admin")}</div> : failure !== null && <ErrorBox error={failure} />}
    </form>
  );
}
