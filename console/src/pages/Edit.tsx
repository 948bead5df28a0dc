// The draft editor: a policy's YAML (and its test cases) in CodeMirror, validated as one
// types (POST /v1/policies/{id}/validate, debounced: markers at line:col), its tests run
// on demand (a job), then saved as a draft revision, which has a diff against the
// published revision and an impact report (a job with a progress bar), and is submitted
// for approval (a job: the tests and the impact over the service's window, then pending).
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, call, get, type Diagnostic } from "../api";
import { Diagnostics, ErrorBox, Loading, Section, Tabs, useBusy, useLoad } from "../components";
import { DiffView } from "../diff";
import type { Editor, Marker } from "../editor";
import { formatTime, lang, pick, t } from "../i18n";
import { entitiesOf, ImpactView } from "../impact";
import { type Followed, JobProgress, useJob } from "../jobs";
import { may, whoami } from "../me";
import { href } from "../router";
import type { Diff, ImpactReport, RevisionDetail, RevisionList, RevisionRecord, TestsReport, Validation } from "../types";
import { loadPolicy } from "./Policies";

const VALIDATE_AFTER_MS = 400;
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 30000;

type Texts = { source: string; tests: string | null };
type Submitted = { revision: RevisionRecord; publication: { publication: number } | null };
type Saved = Texts & { record: RevisionRecord; submitted?: Submitted };
// an impact measured of a saved draft: which draft (its number and revision) and over which
// window, and its job as last seen (done, or still running when the editor was left)
type Measured = { draft: number; revision: string; since: string };
type Kept = { texts: Texts; saved: Saved | null; diff: Diff | null; impact: (Measured & { job: Followed<ImpactReport> }) | null };

// edits survive moving to another page of the console, and so does their saved draft (its
// diff, its impact, its submission): not a reload, but while any editor holds unsaved
// changes, leaving or reloading the page asks first
const kept = new Map<string, Kept>();
const unsaved = new Set<string>();

function askBeforeLeaving(event: BeforeUnloadEvent): void {
  event.preventDefault();
  event.returnValue = ""; // the browser's own question; older browsers need returnValue
}

/** Whether the editor of `key` holds changes not saved yet: the page asks before it is
 * unloaded while any does (moving between the console's pages unloads nothing). */
function markUnsaved(key: string, yes: boolean): void {
  const before = unsaved.size;
  if (yes) unsaved.add(key);
  else unsaved.delete(key);
  if (before === 0 && unsaved.size > 0) window.addEventListener("beforeunload", askBeforeLeaving);
  if (before > 0 && unsaved.size === 0) window.removeEventListener("beforeunload", askBeforeLeaving);
}

/** The impact kept with the saved draft, if it is of that very draft (number and revision). */
function keptImpact(kept: Kept | undefined): Kept["impact"] {
  const { saved, impact } = kept ?? {};
  return saved && impact && impact.draft === saved.record.number && impact.revision === saved.record.revision ? impact : null;
}

/** How long to wait before validating again after the n-th failure in a row (1, 2, ...). */
function retryDelay(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, failures - 1));
}

/** A validation answer that will not change by asking again: the service refused the
 * request itself (4xx). No answer, or a server error (5xx), is asked again. */
function refusal(error: unknown): boolean {
  return error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429;
}

export function EditPage({ id, from }: { id: string; from: string | null }) {
  const loaded = useLoad(async () => {
    const [me, doc, list] = await Promise.all([
      whoami(),
      loadPolicy(id),
      get<RevisionList>(`/v1/policies/${encodeURIComponent(id)}/revisions`),
    ]);
    const number = from ? Number(from) : list.published?.number;
    if (!number) throw new Error(t("edit.nothing_published"));
    const base = await get<RevisionDetail>(`/v1/policies/${encodeURIComponent(id)}/revisions/${number}`);
    return { me, doc, list, base };
  }, [id, from]);
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const { me, doc, list, base } = loaded.value!;
  return (
    <>
      <h1>
        {t("edit.title")}: {pick(doc.title) || id} <code class="muted">{id}</code>
      </h1>
      <p class="meta">
        {t("edit.based_on")} <code id="base-ref">{base.ref}</code> ({t("revision.state_" + base.state)},{" "}
        <code>{base.revision}</code>) · {t("revisions.approvals_required", { count: list.approvals_required })} ·{" "}
        <a href={href(["policies", id, "revisions"])}>{t("edit.revisions")}</a> ·{" "}
        <a href={href(["policies", id])}>{t("try.back")}</a>
      </p>
      {!may(me, "publish") && <p class="error">{t("edit.needs_publish")}</p>}
      <Editing key={base.ref} policy={id} base={base} />
    </>
  );
}

function Editing({ policy, base }: { policy: string; base: RevisionDetail }) {
  const key = `${policy}@${base.number}`;
  const original: Texts = { source: base.source ?? "", tests: base.tests_source };
  const [texts, setTexts] = useState<Texts>(() => kept.get(key)?.texts ?? original);
  const [round, setRound] = useState(0); // a new round re-creates the editors (discard)
  const [tab, setTab] = useState<"policy" | "tests">("policy");
  const [module, setModule] = useState<typeof import("../editor") | null>(null);
  const [loadFailure, setLoadFailure] = useState<unknown>(null);
  const editors = useRef<Record<string, Editor | null>>({ policy: null, tests: null });
  const [cursor, setCursor] = useState({ line: 1, col: 1 });
  const [checked, setChecked] = useState<{ texts: Texts; result: Validation } | null>(null);
  // the last validation that got no answer (or a refusal), for the texts it was about
  const [checkFailure, setCheckFailure] = useState<{ texts: Texts; error: unknown; failures: number } | null>(null);
  const [attempt, setAttempt] = useState(0); // a new attempt validates the same texts again
  const failures = useRef(0); // validations in a row that got no answer
  const [message, setMessage] = useState("");
  const [saved, setSaved] = useState<Saved | null>(() => kept.get(key)?.saved ?? null);
  const [saveFailure, setSaveFailure] = useState<unknown>(null);
  const [diff, setDiff] = useState<Diff | null>(() => kept.get(key)?.diff ?? null);
  const saving = useBusy();
  const [discarding, setDiscarding] = useState(false); // asking before the edit is thrown away
  const [restored] = useState(() => keptImpact(kept.get(key)));
  const [since, setSince] = useState(restored?.since ?? "30d");
  const [measured, setMeasured] = useState<Measured | null>(restored);
  const tests = useJob<{ revision: string; tests: TestsReport }>();
  const impact = useJob<ImpactReport>(restored?.job);
  const submit = useJob<Submitted>();

  useEffect(() => {
    import("../editor").then(setModule, setLoadFailure);
  }, []);
  useEffect(() => {
    kept.set(key, { texts, saved, diff, impact: measured && impact.job && { ...measured, job: impact.job } });
  }, [texts, saved, diff, measured, impact.job]);

  // validate what is typed, once typing pauses; only the latest answer is shown (and again
  // in another language: the messages come back in the console's)
  const language = lang();
  useEffect(() => {
    let live = true;
    const timer = setTimeout(async () => {
      try {
        const body: Record<string, unknown> = { source: texts.source };
        if (texts.tests !== null) body.tests = texts.tests;
        const result = await call<Validation>("POST", `/v1/policies/${encodeURIComponent(policy)}/validate`, body);
        if (live) {
          failures.current = 0;
          setChecked({ texts, result });
          setCheckFailure(null);
        }
      } catch (error) {
        if (!live) return;
        if (!refusal(error)) failures.current += 1;
        setCheckFailure({ texts, error, failures: failures.current });
      }
    }, VALIDATE_AFTER_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [texts.source, texts.tests, attempt, language]);

  const same = (a: Texts, b: Texts) => a.source === b.source && a.tests === b.tests;
  const current = checked && same(checked.texts, texts);
  // the validation of these texts got no answer (retried by itself), or was refused
  const failed = !current && checkFailure !== null && same(checkFailure.texts, texts) ? checkFailure : null;
  const unreachable = failed !== null && !refusal(failed.error);
  const revalidate = () => setAttempt((n) => n + 1);
  useEffect(() => {
    if (!unreachable) return;
    const timer = setTimeout(revalidate, retryDelay(failed!.failures));
    window.addEventListener("online", revalidate);
    return () => {
      clearTimeout(timer);
      window.removeEventListener("online", revalidate);
    };
  }, [failed, unreachable]);
  const policyFile = base.path ?? `${policy}.yaml`;
  const testsFile = `${policy}.tests.yaml`;
  const all: Diagnostic[] = checked ? [...checked.result.errors, ...checked.result.warnings, ...checked.result.tests.errors] : [];
  const inFile = (d: Diagnostic, file: string) => d.location?.file === file;
  useEffect(() => {
    if (!current || !checked) return;
    const markers = (file: string): Marker[] =>
      all
        .filter((d) => inFile(d, file))
        .map((d) => ({
          line: d.location!.line,
          col: d.location!.col,
          severity: checked.result.warnings.includes(d) ? "warning" : "error",
          message: `${d.code}: ${d.message}${d.hint ? ` (${d.hint})` : ""}`,
        }));
    editors.current.policy?.setMarkers(markers(policyFile));
    editors.current.tests?.setMarkers(markers(testsFile));
  }, [checked, module, round]);

  const goTo = (file: string, line: number, col = 1) => {
    const which = file === testsFile ? "tests" : "policy";
    setTab(which);
    setTimeout(() => editors.current[which]?.goTo(line, col), 0);
  };
  const dirty = !saved || saved.source !== texts.source || saved.tests !== texts.tests;
  const holdsUnsaved = !same(texts, saved ?? original);
  useEffect(() => markUnsaved(key, holdsUnsaved), [holdsUnsaved]);
  // leaving the editor for another page of the console keeps the edit (and the question)
  const valid = current && checked!.result.valid;
  // the impact shown is of the draft saved now (an earlier draft's is not its impact)
  const ofSaved = !!saved && measured?.draft === saved.record.number && measured.revision === saved.record.revision;
  const body = () => {
    const out: Record<string, unknown> = { source: texts.source };
    if (texts.tests !== null) out.tests = texts.tests;
    return out;
  };

  const saveDraft = () =>
    saving.run(async () => {
      setSaveFailure(null);
      setDiff(null);
      impact.reset();
      submit.reset();
      try {
        const record = await call<RevisionRecord>("POST", `/v1/policies/${encodeURIComponent(policy)}/revisions`, {
          ...body(),
          message,
          state: "draft",
        });
        setSaved({ ...texts, record });
        setDiff(await get<Diff>(`/v1/policies/${encodeURIComponent(policy)}/diff?from=published&to=${record.number}`));
      } catch (error) {
        setSaveFailure(error);
      }
    });

  const discard = () => {
    kept.delete(key);
    setTexts(original);
    setSaved(null);
    setDiff(null);
    impact.reset();
    setDiscarding(false);
    setRound((r) => r + 1);
  };
  // nothing to lose (the text as it came, nothing saved): no question
  const pristine = !saved && same(texts, original);

  const submitDraft = async (record: RevisionRecord) => {
    const job = await submit.start(`/v1/policies/${encodeURIComponent(policy)}/revisions/${record.number}:submit`, undefined);
    // kept with the draft: coming back, it is not offered for submission again
    if (job?.state === "done" && job.report) setSaved((old) => old && { ...old, record: job.report!.revision, submitted: job.report! });
  };

  return (
    <>
      <Section title={t("edit.source")} id="editor-section">
        <Tabs
          label={t("edit.files")}
          active={tab}
          onChange={(value) => setTab(value as "policy" | "tests")}
          tabs={[
            { id: "policy", label: t("edit.tab_policy", { file: policyFile.split("/").pop()! }) },
            { id: "tests", label: t("edit.tab_tests", { file: testsFile }) },
          ]}
        />
        {loadFailure !== null && <ErrorBox error={loadFailure} />}
        {!module && loadFailure === null && <Loading />}
        {module && (
          <div key={round}>
            <CodeEditor
              module={module}
              id="policy-editor"
              hidden={tab !== "policy"}
              text={texts.source}
              schema={module.SCHEMAS.policy}
              label={t("edit.policy_label", { file: policyFile })}
              onReady={(editor) => (editors.current.policy = editor)}
              onChange={(source) => setTexts((old) => ({ ...old, source }))}
              onCursor={(line, col) => setCursor({ line, col })}
            />
            <CodeEditor
              module={module}
              id="tests-editor"
              hidden={tab !== "tests"}
              text={texts.tests ?? ""}
              schema={module.SCHEMAS.tests}
              label={t("edit.tests_label", { file: testsFile })}
              onReady={(editor) => (editors.current.tests = editor)}
              onChange={(value) => setTexts((old) => ({ ...old, tests: value }))}
              onCursor={(line, col) => setCursor({ line, col })}
            />
          </div>
        )}
        <p class="editor-status">
          <span id="cursor">{t("edit.cursor", cursor)}</span> ·{" "}
          <span
            id="validation"
            role="status"
            data-state={current ? (valid ? "valid" : "invalid") : failed ? (unreachable ? "unreachable" : "refused") : "checking"}
          >
            {current
              ? valid
                ? t("edit.valid", { revision: checked!.result.revision ?? "" })
                : t("edit.invalid", { count: all.length - checked!.result.warnings.length })
              : failed
                ? unreachable
                  ? failed.error instanceof ApiError
                    ? t("edit.server_failed", { status: failed.error.status })
                    : t("edit.unreachable")
                  : t("edit.refused")
                : t("edit.checking")}
          </span>
          {unreachable && (
            <>
              {" "}
              <button type="button" id="revalidate" onClick={revalidate}>
                {t("edit.revalidate")}
              </button>
            </>
          )}
          {current && checked!.result.warnings.length > 0 && (
            <span class="muted"> · {t("edit.warnings", { count: checked!.result.warnings.length })}</span>
          )}
        </p>
        {failed && !unreachable && <ErrorBox error={failed.error} />}
        {current && all.length > 0 && (
          <ul class="diagnostics" id="diagnostics">
            {all.map((d, i) => (
              <li key={i} data-line={d.location?.line} data-file={d.location?.file} data-code={d.code}>
                {d.location ? (
                  <button type="button" class="link" onClick={() => goTo(d.location!.file, d.location!.line, d.location!.col)}>
                    {d.location.file.split("/").pop()}:{d.location.line}:{d.location.col}
                  </button>
                ) : (
                  d.pointer && <code class="pointer">{d.pointer}</code>
                )}{" "}
                <span class="code">{d.code}</span>: {d.message}
                {d.hint && <span class="hint"> ({d.hint})</span>}
              </li>
            ))}
          </ul>
        )}
        <div class="actions">
          <button type="button" id="run-tests" disabled={tests.running} onClick={() => tests.start(`/v1/policies/${encodeURIComponent(policy)}/tests`, body())}>
            {t("edit.run_tests")}
          </button>
          <button type="button" id="discard" disabled={discarding} onClick={() => (pristine ? discard() : setDiscarding(true))}>
            {t("edit.discard")}
          </button>
        </div>
        {discarding && (
          <div class="confirm" role="alertdialog" aria-labelledby="discard-ask" id="discard-confirm">
            <span id="discard-ask">{t("edit.discard_ask")}</span>{" "}
            <button type="button" class="danger" id="discard-yes" onClick={discard}>
              {t("edit.discard_yes")}
            </button>{" "}
            <button type="button" id="discard-no" onClick={() => setDiscarding(false)}>
              {t("edit.discard_no")}
            </button>
          </div>
        )}
        <JobProgress job={tests.job} id="tests-job" />
        {tests.failure !== null && <ErrorBox error={tests.failure} />}
        {tests.job?.state === "done" && tests.job.report && <TestsView report={tests.job.report.tests} onLine={(line) => goTo(testsFile, line)} />}
      </Section>

      <Section title={t("edit.save_title")} id="save">
        <div class="field">
          <label for="draft-message">{t("edit.message")}</label>
          <input id="draft-message" value={message} placeholder={t("edit.message_placeholder")} onInput={(e) => setMessage((e.target as HTMLInputElement).value)} />
        </div>
        <div class="actions">
          <button type="button" class="primary" id="save-draft" disabled={!valid || !dirty || saving.busy} onClick={saveDraft}>
            {t("edit.save_draft")}
          </button>
          {!valid && <span class="muted">{t(current || (failed && !unreachable) ? "edit.fix_first" : "edit.check_first")}</span>}
        </div>
        {saveFailure !== null && <ErrorBox error={saveFailure} />}
        {saved && (
          <p class="ok" id="saved" data-number={saved.record.number}>
            {t("edit.saved", { ref: saved.record.ref, revision: saved.record.revision })}
            {dirty && <span class="warn"> {t("edit.changed_since")}</span>}
          </p>
        )}
      </Section>

      {saved && (
        <>
          <Section title={t("edit.diff_title")} id="diff">
            {diff ? <DiffView diff={diff} /> : <Loading />}
          </Section>
          <Section title={t("edit.impact_title")} id="impact">
            <form
              class="inline-form"
              aria-label={t("edit.impact_title")}
              onSubmit={(e) => {
                e.preventDefault();
                setMeasured({ draft: saved.record.number, revision: saved.record.revision, since });
                impact.start(`/v1/policies/${encodeURIComponent(policy)}/impact`, { draft: saved.record.number, since });
              }}
            >
              <label for="impact-since">{t("edit.since")}</label>
              <select id="impact-since" value={since} onChange={(e) => setSince((e.target as HTMLSelectElement).value)}>
                {["1d", "7d", "30d", "90d"].map((value) => (
                  <option key={value} value={value}>
                    {t("edit.since_" + value)}
                  </option>
                ))}
              </select>
              <button type="submit" id="run-impact" disabled={impact.running}>
                {t("edit.run_impact")}
              </button>
            </form>
            <JobProgress job={ofSaved ? impact.job : null} id="impact-job" />
            {impact.failure !== null && <ErrorBox error={impact.failure} />}
            {ofSaved && impact.job?.state === "done" && impact.job.report && (
              <>
                {/* still the saved draft's impact, but no longer the text's: said, not hidden */}
                {dirty && (
                  <p class="warn" role="status" id="impact-stale">
                    {t("edit.impact_stale", { ref: saved.record.ref })}
                  </p>
                )}
                <ImpactView report={impact.job.report} stale={dirty} />
              </>
            )}
          </Section>
          <Section title={t("edit.submit_title")} id="submit">
            <p class="muted">{t("edit.submit_help")}</p>
            <button
              type="button"
              class="primary"
              id="submit-draft"
              disabled={dirty || submit.running || saved.record.state !== "draft"}
              onClick={() => submitDraft(saved.record)}
            >
              {t("edit.submit")}
            </button>
            <JobProgress job={submit.job} id="submit-job" />
            {submit.failure !== null && <ErrorBox error={submit.failure} />}
            {saved.submitted && <SubmittedNote policy={policy} submitted={saved.submitted} />}
          </Section>
        </>
      )}
      <p class="muted">{t("edit.base_time", { time: formatTime(base.created_at), author: base.author })}</p>
    </>
  );
}

function SubmittedNote({ policy, submitted }: { policy: string; submitted: Submitted }) {
  const { revision, publication } = submitted;
  // no approval required, but it strands stored entities: published once acknowledged
  const stranded = entitiesOf(revision.impact)?.stranded ?? 0;
  const waiting = stranded > 0 ? t("edit.pending_stranded", { ref: revision.ref, count: stranded }) : t("edit.pending", { ref: revision.ref });
  return (
    <p class="ok" id="submitted" data-state={revision.state}>
      {publication ? t("edit.published", { ref: revision.ref, publication: publication.publication }) : waiting}{" "}
      <a href={href(["policies", policy, "revisions", String(revision.number)])}>{t("edit.open_revision")}</a>
    </p>
  );
}

function CodeEditor({
  module,
  id,
  hidden,
  text,
  schema,
  label,
  onReady,
  onChange,
  onCursor,
}: {
  module: typeof import("../editor");
  id: string;
  hidden: boolean;
  text: string;
  schema: unknown;
  label: string;
  onReady: (editor: Editor | null) => void;
  onChange: (text: string) => void;
  onCursor: (line: number, col: number) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const editor = module.createEditor(box.current!, {
      text,
      schema,
      label,
      phrases: phrases(),
      onChange,
      onCursor,
    });
    onReady(editor);
    return () => {
      onReady(null);
      editor.destroy();
    };
  }, []);
  return <div ref={box} id={id} class="code-editor" hidden={hidden} />;
}

/** CodeMirror's own words (search panel, lint) in the console's language. */
function phrases(): Record<string, string> {
  const names: Record<string, string> = {
    Find: "cm.find",
    Replace: "cm.replace",
    next: "cm.next",
    previous: "cm.previous",
    all: "cm.all",
    "match case": "cm.match_case",
    regexp: "cm.regexp",
    "by word": "cm.by_word",
    replace: "cm.replace_one",
    "replace all": "cm.replace_all",
    close: "cm.close",
    "Go to line": "cm.goto_line",
    go: "cm.go",
    Diagnostics: "cm.diagnostics",
    "No diagnostics": "cm.no_diagnostics",
  };
  return Object.fromEntries(Object.entries(names).map(([phrase, key]) => [phrase, t(key)]));
}

export function TestsView({ report, onLine }: { report: TestsReport; onLine?: (line: number) => void }) {
  return (
    <div class="tests-report" id="tests-report" data-failed={report.failed} data-passed={report.passed}>
      <p class={report.failed || report.errors ? "warn" : "ok"}>
        {t("tests.summary", { passed: report.passed, cases: report.cases, failed: report.failed, errors: report.errors })}
      </p>
      {report.note && <p class="muted">{report.note}</p>}
      {(report.failures ?? []).length > 0 && (
        <ul class="diagnostics" id="test-failures">
          {report.failures!.map((f, i) => (
            <li key={i} data-line={f.line}>
              {onLine ? (
                <button type="button" class="link" onClick={() => onLine(f.line)}>
                  {f.file}:{f.line}
                </button>
              ) : (
                <code class="pointer">
                  {f.file}:{f.line}
                </code>
              )}{" "}
              <strong>{f.name}</strong>
              <ul>
                {f.failures.map((text, j) => (
                  <li key={j}>
                    <code class="expr">{text}</code>
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
      )}
      {(report.problems ?? []).length > 0 && <Diagnostics items={report.problems!.map((p) => ({ code: "test_problem", message: p }))} />}
      {(report.uncovered_rules ?? []).length > 0 && (
        <p class="muted">
          {t("tests.uncovered")} <code>{report.uncovered_rules!.join(", ")}</code>
        </p>
      )}
    </div>
  );
}
