// A decision as a person checks it: outcome, reasons, then every rule with its verdict and,
// for a rule that did not apply, the first condition that was false, the values it read,
// and a link to its line in the policy's source.
import { Json, Refs, Section, SourceLink, short } from "./components";
import { pick, t } from "./i18n";
import type { Decision, RuleVerdict } from "./types";

export function DecisionView({
  decision,
  onShowLine,
}: {
  decision: Decision;
  onShowLine?: (line: number) => void;
}) {
  const policy = decision.policy.id;
  return (
    <div class="decision" data-decision-id={decision.decision_id}>
      <p class="meta">
        {t("decision.id")}: <code class="decision-id">{decision.decision_id}</code> ·{" "}
        {t("decision.revision")}: <code>{decision.policy.revision}</code> · {t("decision.at")}:{" "}
        <code>{decision.at}</code>
      </p>
      <Section title={t("decision.outcome")} id="outcome">
        <div class="table-scroll">
          <table class="kv">
            <tbody>
              {Object.entries(decision.outcome).map(([name, value]) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>
                    <code>{short(value)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <Section title={t("decision.reasons", { count: decision.reasons.length })} id="reasons">
        {decision.reasons.length === 0 ? (
          <p class="muted">{t("decision.no_reasons")}</p>
        ) : (
          <ul class="reasons">
            {decision.reasons.map((reason, i) => (
              <li key={i}>
                <code>{reason.code}</code> <Refs refs={reason.refs} />
                <div>{pick(reason.message)}</div>
                {reason.action && <div class="muted">{pick(reason.action)}</div>}
              </li>
            ))}
          </ul>
        )}
      </Section>
      {decision.explanation ? (
        <Section title={t("explain.title")} id="explanation">
          <RuleTable policy={policy} rules={decision.explanation.rules} onShowLine={onShowLine} />
          <details class="derived">
            <summary>{t("explain.derived", { count: decision.explanation.derived.length })}</summary>
            <div class="table-scroll">
              <table>
                <thead>
                  <tr>
                    <th>{t("explain.name")}</th>
                    <th>{t("explain.value")}</th>
                    <th>{t("explain.expression")}</th>
                    <th>{t("explain.line")}</th>
                  </tr>
                </thead>
                <tbody>
                  {decision.explanation.derived.map((d) => (
                    <tr key={d.name}>
                      <td>
                        <code>{d.name}</code>
                        <div class="muted">{pick(d.label)}</div>
                      </td>
                      <td>
                        <code>{short(d.value)}</code>
                      </td>
                      <td>
                        <code class="expr">{d.expression}</code>
                      </td>
                      <td>
                        <SourceLink policy={policy} location={d.location} onShow={onShowLine} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </Section>
      ) : (
        decision.explanation_unavailable !== undefined && (
          <Section title={t("explain.title")} id="explanation">
            <p class="muted">{t("explain.unavailable")}</p>
            <Json value={decision.explanation_unavailable} />
          </Section>
        )
      )}
    </div>
  );
}

export function RuleTable({
  policy,
  rules,
  onShowLine,
}: {
  policy: string;
  rules: RuleVerdict[];
  onShowLine?: (line: number) => void;
}) {
  return (
    <div class="table-scroll">
      <table class="rules explain-rules">
        <thead>
          <tr>
            <th>{t("explain.verdict")}</th>
            <th>{t("explain.rule")}</th>
            <th>{t("explain.refs")}</th>
            <th>{t("explain.why")}</th>
            <th>{t("explain.line")}</th>
          </tr>
        </thead>
        <tbody>
          {rules.map((rule) => (
            <tr key={rule.rule} class={"verdict-" + rule.verdict} data-rule={rule.rule}>
              <td>
                <span class={"badge verdict " + rule.verdict}>
                  {rule.verdict === "applied" ? "✓ " : rule.verdict === "failed" ? "✗ " : "~ "}
                  {t("verdict." + rule.verdict)}
                </span>
              </td>
              <td>
                <code>{rule.rule}</code>
                <div class="muted">{pick(rule.label)}</div>
              </td>
              <td>
                <Refs refs={rule.refs} />
              </td>
              <td>
                {rule.failed && (
                  <div class="failed">
                    <div>
                      {t("explain.false")} <code class="condition">{rule.failed.condition}</code>
                    </div>
                    {Object.entries(rule.failed.values).length > 0 && (
                      <div class="values">
                        {t("explain.read")}{" "}
                        {Object.entries(rule.failed.values).map(([name, value]) => (
                          <code key={name} class="value">
                            {name} = {short(value)}
                          </code>
                        ))}
                      </div>
                    )}
                    {rule.failed.error && <div class="field-error">{rule.failed.error}</div>}
                  </div>
                )}
                {rule.verdict === "matched" && <div class="muted">{t("explain.matched_note")}</div>}
              </td>
              <td>
                <SourceLink
                  policy={policy}
                  location={rule.failed ? rule.failed.location : rule.location}
                  onShow={onShowLine}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
