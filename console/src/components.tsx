// Small pieces every page uses: loading and error states, JSON, source links, tabs.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type Diagnostic, InputError, type Location, NetworkError, type Problem } from "./api";
import { t } from "./i18n";
import { href } from "./router";

/** Load `load()` again whenever `keys` change; its value, its error, and a reload. */
export function useLoad<T>(load: () => Promise<T>, keys: unknown[]) {
  const [state, setState] = useState<{ value?: T; error?: unknown; loading: boolean }>({
    loading: true,
  });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (value) => live && setState({ value, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...keys, round]);
  return { ...state, reload: () => setRound((r) => r + 1) };
}

/** An action that must not run twice at once (a save, an approval, a move): `busy` from
 * the click until its request settles, and a click meanwhile is ignored, so a double
 * click sends one request. The ref, not the state, guards: a second click can come
 * before the render that disables the button. */
export function useBusy() {
  const [busy, setBusy] = useState(false);
  const held = useRef(false);
  const run = async <T,>(action: () => Promise<T>): Promise<T | undefined> => {
    if (held.current) return undefined;
    held.current = true;
    setBusy(true);
    try {
      return await action();
    } finally {
      held.current = false;
      setBusy(false);
    }
  };
  return { busy, run };
}

export function Loading() {
  return (
    <p class="muted" role="status">
      {t("common.loading")}
    </p>
  );
}

/** What a problem is, in words: the console's for its code, else the service's title (in
 * the language asked for), else that the service refused; never the bare code. */
function headline(problem: Problem): string {
  const known = t("problem." + problem.code);
  if (!known.startsWith("problem.")) return known;
  return problem.title || t("error.service");
}

/** A failure in words, for one line: the service unreachable, its refusal's detail, a
 * mistake found in the browser, or (only for what nobody foresaw) the exception. */
export function describe(error: unknown): string {
  if (error instanceof NetworkError) return t("error.network");
  if (error instanceof ApiError) return error.problem.detail ?? headline(error.problem);
  if (error instanceof InputError) return error.message;
  return t("error.unexpected", { detail: error instanceof Error ? error.message : String(error) });
}

/** Whether `a` says what `b` says (the same words, or contained in them). */
function repeats(a: string | undefined, b: string | undefined): boolean {
  const norm = (text: string) => text.replace(/\s+/g, " ").trim();
  return !!a && !!b && norm(b).includes(norm(a));
}

/** An API error as a person reads it: the words for its code (or the service's title),
 * its detail, each error not already said by the detail, and the code beside them,
 * discreetly; a failure that is not the API's, in its own words. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!(error instanceof ApiError)) {
    const kind = error instanceof NetworkError ? "network" : error instanceof InputError ? "input" : "unexpected";
    return (
      <div class="error" role="alert" data-kind={kind} title={error instanceof NetworkError ? error.message : undefined}>
        {describe(error)}
      </div>
    );
  }
  const { problem } = error;
  const errors = problem.errors ?? [];
  // an error the detail already says is not said again; its code stays, discreetly
  const said = errors.filter((d) => !d.pointer && !d.location && repeats(d.message, problem.detail));
  const rest = errors.filter((d) => !said.includes(d));
  // the codes, discreetly, as the diagnostics show theirs
  const codes = [...new Set([problem.code, ...said.map((d) => d.code)])];
  return (
    <div class="error" role="alert" data-code={problem.code}>
      <strong>{headline(problem)}</strong>
      {problem.detail && <span class="detail"> {problem.detail}</span>}
      <code class="problem-code"> {codes.join(", ")}</code>
      {problem.hint && <div class="hint">{t("error.hint", { hint: problem.hint })}</div>}
      {rest.length > 0 && <Diagnostics items={rest} />}
    </div>
  );
}

export function Diagnostics({ items }: { items: Diagnostic[] }) {
  return (
    <ul class="diagnostics">
      {items.map((d, i) => (
        <li key={i}>
          {d.pointer && <code class="pointer">{d.pointer}</code>}
          {d.location && (
            <code class="pointer">
              {d.location.file}:{d.location.line}:{d.location.col}
            </code>
          )}{" "}
          <span class="code">{d.code}</span>: {d.message}
          {d.hint && <span class="hint"> ({d.hint})</span>}
        </li>
      ))}
    </ul>
  );
}

export function Json({ value, label }: { value: unknown; label?: string }) {
  return (
    <pre class="json" aria-label={label}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/** A value in one line, cut when long. */
export function short(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? "null";
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

/** A link to a line of a policy's source: `order-holds.yaml:316`. */
export function SourceLink({
  policy,
  location,
  onShow,
}: {
  policy: string;
  location: Location;
  onShow?: (line: number) => void;
}) {
  const name = location.file.split("/").pop();
  const text = `${name}:${location.line}`;
  if (onShow) {
    return (
      <a
        href={href(["policies", policy, "source"], { line: String(location.line) })}
        class="source-link"
        onClick={(event) => {
          event.preventDefault();
          onShow(location.line);
        }}
      >
        {text}
      </a>
    );
  }
  return (
    <a href={href(["policies", policy, "source"], { line: String(location.line) })} class="source-link">
      {text}
    </a>
  );
}

export function Refs({ refs }: { refs: string[] | undefined }) {
  if (!refs || refs.length === 0) return null;
  return (
    <span class="refs">
      {refs.map((ref) => (
        <span class="ref" key={ref}>
          {ref}
        </span>
      ))}
    </span>
  );
}

export function Tabs({
  tabs,
  active,
  onChange,
  label,
}: {
  tabs: { id: string; label: string }[];
  active: string;
  onChange: (id: string) => void;
  label: string;
}) {
  return (
    <div class="tabs" role="tablist" aria-label={label}>
      {tabs.map((tab) => (
        <button
          type="button"
          role="tab"
          key={tab.id}
          id={"tab-" + tab.id}
          aria-selected={tab.id === active}
          class={tab.id === active ? "active" : ""}
          onClick={() => onChange(tab.id)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" id={id} aria-labelledby={id ? id + "-title" : undefined}>
      <h2 id={id ? id + "-title" : undefined}>{title}</h2>
      {children}
    </section>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={"badge status-" + status}>{t("status." + status)}</span>;
}
