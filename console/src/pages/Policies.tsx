// The policies served, and one policy: its rules, settings, data sets, facts fields, and
// its decisions per day.
import { get } from "../api";
import { DailyChart } from "../chart";
import { Diagnostics, ErrorBox, Loading, Refs, Section, SourceLink, StatusBadge, short, useLoad } from "../components";
import { pick, t } from "../i18n";
import { href } from "../router";
import { may, whoami } from "../me";
import type { JsonSchema, PolicyDoc, PolicySummary } from "../types";

export function PolicyList() {
  const list = useLoad(() => get<{ policies: PolicySummary[] }>("/v1/policies"), []);
  if (list.loading && !list.value) return <Loading />;
  if (list.error) return <ErrorBox error={list.error} />;
  return (
    <>
      <h1>{t("policies.title")}</h1>
      <div class="table-scroll">
        <table class="list" id="policy-list">
          <thead>
            <tr>
              <th>{t("policies.id")}</th>
              <th>{t("policies.name")}</th>
              <th>{t("policies.kind")}</th>
              <th>{t("policies.revision")}</th>
              <th>{t("policies.status")}</th>
              <th>{t("policies.waiting")}</th>
              <th>{t("policies.errors")}</th>
              <th>{t("policies.warnings")}</th>
            </tr>
          </thead>
          <tbody>
            {list.value!.policies.map((p) => (
              <tr key={p.id} data-policy={p.id}>
                <td>
                  <a href={href(["policies", p.id])}>
                    <code>{p.id}</code>
                  </a>
                </td>
                <td>{pick(p.title)}</td>
                <td>{p.kind ? t("kind." + p.kind) : "-"}</td>
                <td>
                  <code>{p.revision ?? "-"}</code>
                  {p.publication ? <div class="muted">{t("policies.publication", { publication: p.publication })}</div> : null}
                </td>
                <td>
                  <StatusBadge status={p.status} />
                </td>
                <td class="waiting">
                  {p.unserved ? (
                    <a href={href(["policies", p.id, "revisions"])}>
                      {t("revision.state_" + p.unserved.state).startsWith("revision.") ? p.unserved.state : t("revision.state_" + p.unserved.state)}{" "}
                      <code>{p.unserved.revision}</code>
                    </a>
                  ) : (
                    ""
                  )}
                </td>
                <td class="number">{p.errors}</td>
                <td class="number">{p.warnings}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function loadPolicy(id: string): Promise<PolicyDoc> {
  return get<PolicyDoc>(`/v1/policies/${encodeURIComponent(id)}`);
}

export function PolicyPage({ id }: { id: string }) {
  const doc = useLoad(() => loadPolicy(id), [id]);
  const me = useLoad(whoami, []);
  if (doc.loading && !doc.value) return <Loading />;
  if (doc.error) return <ErrorBox error={doc.error} />;
  const policy = doc.value!;
  return (
    <>
      <h1>
        {pick(policy.title) || policy.id} <code class="muted">{policy.id}</code>
      </h1>
      <p class="meta">
        <StatusBadge status={policy.status} /> {policy.kind && t("kind." + policy.kind)} ·{" "}
        {t("policies.revision")} <code>{policy.revision ?? "-"}</code> · <code>{policy.path}</code>
        {policy.hit_policy && (
          <>
            {" "}
            · {t("policy.hit_policy")} <code>{policy.hit_policy}</code>
          </>
        )}
      </p>
      <nav class="actions" aria-label={t("policy.actions")}>
        {policy.kind === "decision" && (
          <a class="button primary" href={href(["policies", id, "try"])}>
            {t("policy.try")}
          </a>
        )}
        {policy.kind === "flow" && (
          <a class="button primary" href={href(["flows", id])}>
            {t("policy.open_flow")}
          </a>
        )}
        {policy.kind === "decision" && (
          <a class="button" href={href(["log"], { policy: id })}>
            {t("policy.log")}
          </a>
        )}
        <a class="button" href={href(["policies", id, "source"])}>
          {t("policy.source")}
        </a>
        {may(me.value, "publish") && (
          <>
            <a class="button" id="edit-draft" href={href(["policies", id, "edit"])}>
              {t("policy.edit")}
            </a>
            <a class="button" id="open-revisions" href={href(["policies", id, "revisions"])}>
              {t("policy.revisions")}
            </a>
          </>
        )}
      </nav>
      {policy.errors.length > 0 && (
        <div class="error" role="alert">
          <strong>{t("policy.refused_edit")}</strong>
          <Diagnostics items={policy.errors} />
        </div>
      )}
      {policy.kind === "decision" && (
        <Section title={t("policy.daily")} id="daily">
          <DailyChart policy={id} />
        </Section>
      )}
      {policy.rules && (
        <Section title={t(policy.kind === "flow" ? "policy.transitions" : "policy.rules", { count: policy.rules.length })} id="rules">
          <div class="table-scroll">
            <table class="rules" id="rule-list">
              <thead>
                <tr>
                  <th>{t("explain.rule")}</th>
                  <th>{t("explain.refs")}</th>
                  <th>{t("policy.conditions")}</th>
                  <th>{t("policy.reason")}</th>
                </tr>
              </thead>
              <tbody>
                {policy.rules.map((rule) => (
                  <tr key={rule.id} data-rule={rule.id}>
                    <td>
                      <code>{rule.id}</code>
                      <div class="muted">{pick(rule.label)}</div>
                      <SourceLink policy={id} location={rule.location} />
                    </td>
                    <td>
                      <Refs refs={rule.refs} />
                    </td>
                    <td>
                      <ul class="conditions">
                        {rule.conditions.map((c, i) => (
                          <li key={i}>
                            <code class="condition">{c.text}</code>{" "}
                            <SourceLink policy={id} location={c.location} />
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>
                      {rule.reason && (
                        <>
                          <code>{rule.reason.code}</code>
                          <div lang="ja">{rule.reason.message.ja}</div>
                          {rule.reason.message.en && (
                            <div lang="en" class="muted">
                              {rule.reason.message.en}
                            </div>
                          )}
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
      {policy.settings && Object.keys(policy.settings).length > 0 && (
        <Section title={t("policy.settings")} id="settings">
          <div class="table-scroll">
            <table>
              <thead>
                <tr>
                  <th>{t("explain.name")}</th>
                  <th>{t("policy.meaning")}</th>
                  <th>{t("policy.type")}</th>
                  <th>{t("policy.default")}</th>
                  <th>{t("policy.choices")}</th>
                  <th>{t("explain.refs")}</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(policy.settings).map(([name, s]) => (
                  <tr key={name}>
                    <td>
                      <code>{name}</code>
                    </td>
                    <td>{pick(s.label)}</td>
                    <td>{s.type}</td>
                    <td>
                      <code>{short(s.default)}</code>
                    </td>
                    <td>{s.enum ? s.enum.map(String).join(", ") : range(s.minimum, s.maximum)}</td>
                    <td>
                      <Refs refs={s.refs} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
      {policy.data && Object.keys(policy.data).length > 0 && (
        <Section title={t("policy.data")} id="data-read">
          <div class="table-scroll">
            <table>
              <thead>
                <tr>
                  <th>{t("explain.name")}</th>
                  <th>{t("data.version")}</th>
                  <th>{t("data.source")}</th>
                  <th>{t("data.count")}</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(policy.data).map(([name, info]) => (
                  <tr key={name}>
                    <td>
                      <a href={href(["data", name])}>
                        <code>{name}</code>
                      </a>
                    </td>
                    <td>
                      <code>{info?.version ?? "-"}</code>
                    </td>
                    <td>{info ? t("data.source_" + info.source) : "-"}</td>
                    <td class="number">{info?.count ?? 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
      {policy.facts_schema && (
        <Section title={t("policy.facts")} id="facts-fields">
          <div class="table-scroll">
            <table>
              <thead>
                <tr>
                  <th>{t("policy.field")}</th>
                  <th>{t("policy.type")}</th>
                  <th>{t("form.required")}</th>
                  <th>{t("policy.description")}</th>
                </tr>
              </thead>
              <tbody>
                {fields(policy.facts_schema).map((f) => (
                  <tr key={f.path}>
                    <td>
                      <code>{f.path}</code>
                    </td>
                    <td>{f.type}</td>
                    <td>{f.required ? "✓" : ""}</td>
                    <td>{f.description}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
      {policy.derived && policy.derived.length > 0 && (
        <Section title={t("policy.derived")} id="derived">
          <div class="table-scroll">
            <table>
              <tbody>
                {policy.derived.map((d) => (
                  <tr key={d.name}>
                    <td>
                      <code>derived.{d.name}</code>
                      <div class="muted">{pick(d.label)}</div>
                    </td>
                    <td>
                      <code class="expr">{d.expression}</code>
                    </td>
                    <td>
                      <SourceLink policy={id} location={d.location} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
    </>
  );
}

function range(low: unknown, high: unknown): string {
  if (low === undefined && high === undefined) return "";
  return `${low ?? ""} - ${high ?? ""}`;
}

type FieldRow = { path: string; type: string; required: boolean; description: string };

/** Every field of a facts schema, flattened: `order.customer.name`. */
export function fields(schema: JsonSchema): FieldRow[] {
  const out: FieldRow[] = [];
  const walk = (node: JsonSchema, path: string, required: boolean, depth: number) => {
    let resolved = node;
    if (node.$ref) resolved = schema.$defs?.[node.$ref.replace(/^#\/\$defs\//, "")] ?? node;
    const type = Array.isArray(resolved.type) ? resolved.type.join(" | ") : resolved.type ?? (resolved.enum ? "enum" : "");
    if (path) {
      out.push({
        path,
        type: resolved.format ? `${type} (${resolved.format})` : resolved.enum ? `${type}: ${resolved.enum.map(String).join(", ")}` : type,
        required,
        description: resolved.description ?? "",
      });
    }
    if (resolved.properties && depth < 8) {
      const needed = new Set(resolved.required ?? []);
      for (const [key, child] of Object.entries(resolved.properties)) {
        walk(child, path ? `${path}.${key}` : key, needed.has(key), depth + 1);
      }
    }
  };
  walk(schema, "", true, 0);
  return out;
}
