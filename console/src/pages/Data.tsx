// Reference data sets: where each comes from, its current version and entries; a
// replacement uploaded (PUT /v1/data/{name}), validated by the service, its errors shown
// with their JSON pointers.
import { useState } from "preact/hooks";
import { ApiError, call, get } from "../api";
import { Diagnostics, ErrorBox, Loading, Section, short, useLoad } from "../components";
import { formatTime, pick, t } from "../i18n";
import { href } from "../router";
import type { DataSet, DataSummary } from "../types";

export function DataList() {
  const list = useLoad(() => get<{ data: DataSummary[] }>("/v1/data"), []);
  if (list.loading && !list.value) return <Loading />;
  if (list.error) return <ErrorBox error={list.error} />;
  return (
    <>
      <h1>{t("data.title")}</h1>
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
    </>
  );
}

export function DataPage({ name }: { name: string }) {
  const loaded = useLoad(
    () => Promise.all([get<DataSet>(`/v1/data/${encodeURIComponent(name)}`), get<{ data: DataSummary[] }>("/v1/data")]),
    [name],
  );
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const [set, all] = loaded.value!;
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
      <Section title={t("data.replace")} id="replace">
        <Upload name={name} entries={set.entries} onDone={loaded.reload} />
      </Section>
    </>
  );
}

function Upload({ name, entries, onDone }: { name: string; entries: unknown[]; onDone: () => void }) {
  const [text, setText] = useState(() => JSON.stringify({ entries }, null, 2));
  const [failure, setFailure] = useState<unknown>(null);
  const [done, setDone] = useState<{ version: string; count: number } | null>(null);
  const problem = failure instanceof ApiError ? failure.problem : null;
  return (
    <form
      aria-label={t("data.replace")}
      onSubmit={async (event) => {
        event.preventDefault();
        setFailure(null);
        setDone(null);
        try {
          const body = text.trim().startsWith("[") ? `{"entries": ${text}}` : text;
          setDone(await call<{ version: string; count: number }>("PUT", `/v1/data/${encodeURIComponent(name)}`, body));
          onDone();
        } catch (error) {
          setFailure(error);
        }
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
            if (file) setText(await file.text());
          }}
        />
      </div>
      <div class="field">
        <label for="data-text">{t("data.json")}</label>
        <textarea id="data-text" class="raw" rows={14} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      </div>
      <div class="submit-row">
        <button type="submit" class="primary" id="upload">
          {t("data.upload")}
        </button>
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
