// Try a decision: facts from a form built from the policy's facts schema (or as raw JSON),
// prefilled from the policy's YAML test cases, its examples/ files, or a logged decision;
// the answer with its explanation, each line link showing the policy source beside it.
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, get } from "../api";
import { describe, ErrorBox, Loading, Section, Tabs, short, useLoad } from "../components";
import { parseJson, readNumber, stringify } from "../jsontext";
import { DecisionView } from "../explain";
import { FactsForm, errorsByPointer } from "../factsform";
import { pick, t } from "../i18n";
import { href } from "../router";
import { SourceView } from "../source";
import type { Decision, DecisionRequest, Example, Examples, PolicyDoc, Setting } from "../types";
import { loadPolicy } from "./Policies";

type Loaded = { policy: PolicyDoc; examples: Examples; from?: Decision };

async function load(id: string, from: string | null): Promise<Loaded> {
  const [policy, examples, logged] = await Promise.all([
    loadPolicy(id),
    get<Examples>(`/v1/policies/${encodeURIComponent(id)}/examples`),
    from ? get<Decision>(`/v1/decisions/${encodeURIComponent(from)}`) : Promise.resolve(undefined),
  ]);
  return { policy, examples, from: logged };
}

function firstRequest(loaded: Loaded): { request: DecisionRequest; source: string } {
  if (loaded.from?.request) {
    const r = loaded.from.request;
    return { request: { facts: r.facts ?? {}, at: r.at, settings: r.settings }, source: "log" };
  }
  const first = loaded.examples.files[0] ?? loaded.examples.cases[0];
  return first ? { request: fromExample(first), source: exampleKey(loaded.examples, first) } : { request: { facts: {} }, source: "" };
}

function fromExample(example: Example): DecisionRequest {
  return { facts: structuredClone(example.facts ?? {}), at: example.at, settings: example.settings };
}

function exampleKey(examples: Examples, example: Example): string {
  const file = examples.files.indexOf(example);
  return file >= 0 ? "file-" + file : "case-" + examples.cases.indexOf(example);
}

export function TryPage({ id, from }: { id: string; from: string | null }) {
  const loaded = useLoad(() => load(id, from), [id, from]);
  if (loaded.loading && !loaded.value) return <Loading />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  return <TryForm key={id + (from ?? "")} id={id} loaded={loaded.value!} />;
}

function TryForm({ id, loaded }: { id: string; loaded: Loaded }) {
  const { policy, examples } = loaded;
  const initial = firstRequest(loaded);
  const [request, setRequest] = useState<DecisionRequest>(initial.request);
  const [chosen, setChosen] = useState(initial.source);
  const [tab, setTab] = useState("form");
  const [raw, setRaw] = useState("");
  const [rawError, setRawError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [decision, setDecision] = useState<Decision | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [line, setLine] = useState<number | undefined>(undefined);

  useEffect(() => {
    if (tab === "json") setRaw(stringify(request, 2));
  }, [tab]);

  const choose = (key: string) => {
    setChosen(key);
    const [kind, index] = key.split("-");
    const example = kind === "file" ? examples.files[Number(index)] : examples.cases[Number(index)];
    if (example) {
      setRequest(fromExample(example));
      if (tab === "json") setRaw(stringify(fromExample(example), 2));
    }
  };

  const switchTab = (next: string) => {
    if (next === "form" && tab === "json") {
      try {
        setRequest(parseJson(raw) as DecisionRequest);
        setRawError(null);
      } catch (error) {
        setRawError(describe(error));
        return;
      }
    }
    setTab(next);
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    let body: unknown = request;
    if (tab === "json") {
      body = raw; // sent as written: the service says what is wrong with it
    }
    setBusy(true);
    setFailure(null);
    try {
      setDecision(await call<Decision>("POST", `/v1/decisions/${encodeURIComponent(id)}?explain=true`, body));
    } catch (error) {
      setDecision(null);
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  const problem = failure instanceof ApiError ? failure.problem : null;
  const errors = errorsByPointer(problem?.errors);
  const chosenExample = chosen.startsWith("case-") ? examples.cases[Number(chosen.slice(5))] : undefined;
  return (
    <>
      <h1>
        {t("try.title")}: {pick(policy.title)} <code class="muted">{id}</code>
      </h1>
      <p>
        <a href={href(["policies", id])}>{t("try.back")}</a>
        {loaded.from && (
          <span class="muted">
            {" "}
            · {t("try.from_log", { id: loaded.from.decision_id })}
          </span>
        )}
      </p>
      <div class="try-layout">
        <form class="card try-form" onSubmit={submit} aria-label={t("try.form")}>
          <div class="field">
            <label for="example">{t("try.example")}</label>
            <select id="example" value={chosen} onChange={(e) => choose((e.target as HTMLSelectElement).value)}>
              {chosen === "log" && <option value="log">{t("try.from_log_option")}</option>}
              {chosen === "" && <option value="">-</option>}
              {examples.files.map((example, i) => (
                <option key={"file-" + i} value={"file-" + i}>
                  {example.name}
                </option>
              ))}
              {examples.cases.length > 0 && (
                <optgroup label={t("try.cases")}>
                  {examples.cases.map((example, i) => (
                    <option key={"case-" + i} value={"case-" + i}>
                      {example.name}
                    </option>
                  ))}
                </optgroup>
              )}
            </select>
            {chosenExample?.own_data && (
              <small class="muted">{t("try.own_data", { names: chosenExample.own_data.join(", ") })}</small>
            )}
            {chosenExample?.expect !== undefined && (
              <small class="muted">
                {t("try.expect")} <code>{short(chosenExample.expect)}</code>
              </small>
            )}
          </div>
          <Tabs
            label={t("try.input")}
            active={tab}
            onChange={switchTab}
            tabs={[
              { id: "form", label: t("try.tab_form") },
              { id: "json", label: t("try.tab_json") },
            ]}
          />
          {tab === "form" ? (
            <div role="tabpanel" aria-labelledby="tab-form">
              <div class="field">
                <label for="field-at">
                  at <span class="type">date-time</span>
                </label>
                <input
                  id="field-at"
                  type="text"
                  placeholder={t("try.at_placeholder")}
                  value={request.at ?? ""}
                  onInput={(e) => setRequest({ ...request, at: (e.target as HTMLInputElement).value || undefined })}
                  aria-invalid={errors["/at"] ? "true" : undefined}
                />
                {errors["/at"] && <span class="field-error">{errors["/at"]}</span>}
              </div>
              <fieldset class="object">
                <legend>facts</legend>
                {policy.facts_schema && (
                  <FactsForm
                    schema={policy.facts_schema}
                    value={request.facts}
                    errors={errors}
                    onChange={(facts) => setRequest({ ...request, facts: facts ?? {} })}
                  />
                )}
              </fieldset>
              {policy.settings && Object.keys(policy.settings).length > 0 && (
                <fieldset class="object">
                  <legend>{t("policy.settings")}</legend>
                  {Object.entries(policy.settings).map(([name, setting]) => (
                    <SettingInput
                      key={name}
                      name={name}
                      setting={setting}
                      value={request.settings?.[name]}
                      error={errors["/settings/" + name]}
                      onChange={(value) => {
                        const settings = { ...(request.settings ?? {}) };
                        if (value === undefined) delete settings[name];
                        else settings[name] = value;
                        setRequest({ ...request, settings: Object.keys(settings).length ? settings : undefined });
                      }}
                    />
                  ))}
                </fieldset>
              )}
            </div>
          ) : (
            <div role="tabpanel" aria-labelledby="tab-json" class="field">
              <label for="raw-request">{t("try.raw_label")}</label>
              <textarea
                id="raw-request"
                class="raw"
                rows={24}
                spellcheck={false}
                value={raw}
                onInput={(e) => setRaw((e.target as HTMLTextAreaElement).value)}
              />
              {rawError && <span class="field-error">{rawError}</span>}
            </div>
          )}
          <div class="submit-row">
            <button type="submit" class="primary" id="decide" disabled={busy}>
              {busy ? t("try.deciding") : t("try.decide")}
            </button>
          </div>
        </form>
        <div class="try-result" aria-live="polite">
          {failure !== null && <ErrorBox error={failure} />}
          {decision && (
            <>
              <h2>{t("try.result")}</h2>
              <p>
                <a href={href(["log", decision.decision_id])}>{t("try.open_logged")}</a>
              </p>
              <DecisionView decision={decision} onShowLine={setLine} />
              <Section title={t("source.heading")} id="source">
                <SourceView policy={id} line={line} />
              </Section>
            </>
          )}
        </div>
      </div>
    </>
  );
}

function SettingInput({
  name,
  setting,
  value,
  error,
  onChange,
}: {
  name: string;
  setting: Setting;
  value: unknown;
  error?: string;
  onChange: (value: unknown) => void;
}) {
  const id = "setting-" + name;
  const label = (
    <label for={id}>
      {name} <span class="muted">{pick(setting.label)}</span>
    </label>
  );
  const fallback = t("try.default", { value: short(setting.default) });
  if (setting.enum || setting.type === "boolean") {
    const options = setting.enum ?? [true, false];
    return (
      <div class="field">
        {label}
        <select
          id={id}
          value={value === undefined ? "" : JSON.stringify(value)}
          onChange={(e) => {
            const text = (e.target as HTMLSelectElement).value;
            onChange(text === "" ? undefined : JSON.parse(text));
          }}
        >
          <option value="">{fallback}</option>
          {options.map((option) => (
            <option key={JSON.stringify(option)} value={JSON.stringify(option)}>
              {String(option)}
            </option>
          ))}
        </select>
        {error && <span class="field-error">{error}</span>}
      </div>
    );
  }
  const numeric = setting.type === "integer" || setting.type === "number";
  const shown = (numeric && typeof value === "string" ? readNumber(value, setting.type === "integer").error : undefined) ?? error;
  return (
    <div class="field">
      {label}
      <input
        id={id}
        type="text"
        aria-invalid={shown ? "true" : undefined}
        placeholder={fallback}
        value={value === undefined ? "" : String(value)}
        onChange={(e) => {
          const text = (e.target as HTMLInputElement).value.trim();
          if (text === "") onChange(undefined);
          else if (numeric) {
            const read = readNumber(text, setting.type === "integer");
            onChange(read.error === undefined ? read.value : text);
          } else onChange(text);
        }}
      />
      {shown && <span class="field-error">{shown}</span>}
    </div>
  );
}
