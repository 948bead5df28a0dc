// The semantic diff of two revisions (GET /v1/policies/{id}/diff): what changed in the
// policy's own terms (rules, settings, derived values, outcome, data, facts fields, flow),
// then the unified text diff with its lines coloured.
import { short } from "./components";
import { t } from "./i18n";
import type { Diff } from "./types";

type Change = { field: string; from?: unknown; to?: unknown; changes?: Change[] };
type Keyed = {
  added?: { id?: string; field?: string }[];
  removed?: { id?: string; field?: string }[];
  changed?: { id?: string; field?: string; fields?: Change[]; changes?: Change[] }[];
  order?: { from: string[]; to: string[] } | null;
};

/** A list changed in place (a rule's conditions) as its items that differ: when[1]: a → b. */
function itemwise(changes: Change[]): Change[] {
  return changes.flatMap((c) => {
    if (!Array.isArray(c.from) || !Array.isArray(c.to) || c.from.length !== c.to.length) return [c];
    const to = c.to;
    return c.from
      .map((item, i) => ({ field: `${c.field}[${i}]`, from: item, to: to[i] }))
      .filter((item) => JSON.stringify(item.from) !== JSON.stringify(item.to));
  });
}

function Fields({ items }: { items: Change[] }) {
  const text = (value: unknown) => (typeof value === "string" ? value : short(value));
  return (
    <ul class="diff-fields">
      {itemwise(items).map((c, i) => (
        <li key={i}>
          <code>{c.field}</code>: <code class="from">{text(c.from)}</code> → <code class="to">{text(c.to)}</code>
        </li>
      ))}
    </ul>
  );
}

function Section({ name, value }: { name: string; value: unknown }) {
  if (Array.isArray(value)) {
    // the policy's own fields: [{field, from, to}]
    return <Fields items={value as Change[]} />;
  }
  const keyed = value as Keyed & Record<string, unknown>;
  if (!("added" in keyed || "removed" in keyed || "changed" in keyed)) {
    // nested (flow: states, events, transitions) or {from, to}
    if ("from" in keyed && "to" in keyed) return <Fields items={[{ field: name, from: keyed.from, to: keyed.to }]} />;
    return (
      <div class="diff-nested">
        {Object.entries(keyed).map(([key, inner]) => (
          <div key={key}>
            <h4>{key}</h4>
            <Section name={key} value={inner} />
          </div>
        ))}
      </div>
    );
  }
  const name_of = (item: { id?: string; field?: string }) => item.id ?? item.field ?? "";
  return (
    <ul class="diff-items">
      {(keyed.added ?? []).map((item) => (
        <li key={"+" + name_of(item)} class="added">
          + <code>{name_of(item)}</code> <span class="muted">{t("diff.added")}</span>
        </li>
      ))}
      {(keyed.removed ?? []).map((item) => (
        <li key={"-" + name_of(item)} class="removed">
          − <code>{name_of(item)}</code> <span class="muted">{t("diff.removed")}</span>
        </li>
      ))}
      {(keyed.changed ?? []).map((item) => (
        <li key={"~" + name_of(item)} class="changed" data-changed={name_of(item)}>
          ~ <code>{name_of(item)}</code>
          <Fields items={item.fields ?? item.changes ?? []} />
        </li>
      ))}
      {keyed.order && (
        <li class="changed">
          ~ {t("diff.order")}: <code>{keyed.order.to.join(", ")}</code>
        </li>
      )}
    </ul>
  );
}

export function DiffView({ diff }: { diff: Diff }) {
  const sections = Object.entries(diff.changes);
  return (
    <div class="diff" data-identical={diff.identical}>
      <p class="meta">
        <code>{diff.from?.label ?? "-"}</code> [{diff.from?.revision ?? "-"}] → <code>{diff.to?.label ?? "-"}</code> [
        {diff.to?.revision ?? "-"}]
      </p>
      {diff.identical && <p class="muted">{t("diff.identical")}</p>}
      {sections.map(([name, value]) => (
        <div key={name} class="diff-section" data-section={name}>
          <h3>{t("diff.section_" + name).startsWith("diff.") ? name : t("diff.section_" + name)}</h3>
          <Section name={name} value={value} />
        </div>
      ))}
      {diff.text && (
        <details open={diff.text.split("\n").length < 60}>
          <summary>{t("diff.text")}</summary>
          <pre class="text-diff" aria-label={t("diff.text")}>
            {diff.text.split("\n").map((line, i) => (
              <span
                key={i}
                class={
                  line.startsWith("+++") || line.startsWith("---")
                    ? "file"
                    : line.startsWith("+")
                      ? "plus"
                      : line.startsWith("-")
                        ? "minus"
                        : line.startsWith("@@")
                          ? "hunk"
                          : ""
                }
              >
                {line + "\n"}
              </span>
            ))}
          </pre>
        </details>
      )}
    </div>
  );
}
