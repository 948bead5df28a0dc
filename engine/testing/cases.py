"""Policy test cases written in YAML (`policies/<id>.tests.yaml`).

Each case gives facts (deep-merged over the file's defaults), `at`,
settings and data overrides, and what it expects: outcome fields, the rules
that apply, reasons, or an input error with its JSON pointer. Cases run on
the durable backend with the explanation on, which also runs the reference
evaluator and fails the case if the two disagree. A failed case reports a
diff, and for an expected rule that did not apply, the condition that was
false and the values it read.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy
from engine.core.errors import Diagnostic, InputError, KimariError, Location, PolicyError
from engine.core.i18n import Msg, Rendered
from engine.core.jsonvalue import quoted, shown, to_json_value
from engine.core.suggest import did_you_mean
from engine.lang.calendar import parse_datetime
from engine.project.project import Project, load_dataset, read_document
from engine.runtime.decision import Decision
from engine.runtime.evaluate import decide, resolve_at, resolve_settings
from engine.source.data import Dataset
from engine.source.schema import project_schema, validate_document
from engine.source.yaml import Document, join_pointer


@dataclass
class CaseResult:
    file: str
    name: str
    location: Location
    refs: list[str]
    passed: bool
    failures: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    policy_id: str = ""

    @property
    def title(self) -> str:
        return f"{self.policy_id}: {self.name}"


@dataclass
class TestReport:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    uncovered_rules: dict[str, list[str]] = field(default_factory=dict)
    ids_without_rule: list[str] = field(default_factory=list)
    ids_without_test: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


@dataclass
class Case:
    file: str
    index: int
    name: str
    location: Location
    refs: list[str]
    spec: dict[str, Any]
    policy: CompiledPolicy
    document: Document


def deep_merge(base: Any, override: Any) -> Any:
    """Override wins; mappings merge key by key; a null in the override removes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = deep_merge(base.get(key), value)
    return merged


def load_cases(path: Path, project: Project) -> list[Case]:
    document = read_document(path)
    problems = validate_document(document, project_schema("tests.schema.json"))
    if problems:
        raise PolicyError(problems)
    data = document.data
    policy_id = data["policy"]
    if policy_id not in project.policies:
        raise PolicyError(
            [
                Diagnostic(
                    "unknown_policy",
                    Msg("no policy '{id}' to test", id=policy_id),
                    document.positions.value("/policy"),
                    hint=did_you_mean(policy_id, project.policies),
                )
            ]
        )
    policy = project.policies[policy_id]
    defaults = data.get("defaults", {})
    cases = []
    for index, spec in enumerate(data["cases"]):
        pointer = join_pointer("/cases", index)
        merged = {
            key: deep_merge(defaults.get(key), spec.get(key)) if key in spec else defaults.get(key)
            for key in ("at", "settings", "data", "facts", "entity")
        }
        if "actor" in spec or "actor" in defaults:  # flow cases: replaced whole, never merged
            merged["actor"] = spec.get("actor", defaults.get("actor"))
        merged.update({k: v for k, v in spec.items() if k not in merged})
        cases.append(
            Case(
                document.path,
                index,
                spec["name"],
                document.positions.value(pointer),
                list(spec.get("refs", [])),
                merged,
                policy,
                document,
            )
        )
    _check_cases(cases, project)
    return cases


def _check_cases(cases: list[Case], project: Project) -> None:
    """Every name a case gives must be one its policy has, and every `at`, setting value and
    data entry must be one it accepts: a misspelt rule, outcome field, setting, data set or
    reason code, an `at` without offset or an entry with an unknown field is reported here,
    at its place in the test file, by `kimari validate` as well as `kimari test`, not as a
    failing or erroring case."""
    problems: list[Diagnostic] = _repeated_names(cases)
    data_read: set[str] = set()
    for case in cases:
        problems += _bad_values(case, data_read)
        problems += _unknown_refs(case, project)
        problems += _unknown_rules(case)
        if case.policy.kind == "flow":
            problems += _unknown_flow_names(case) + _unknown_step_inputs(case)
        if case.policy.kind != "decision":
            continue
        if "error" not in case.spec.get("expect", {}):  # else it may test that refusal
            problems += _unknown_inputs(case, case.spec)
        problems += _unknown_expectations(case)
    if problems:
        # a name given once in `defaults` is checked with every case that inherits it: once
        raise PolicyError(list(dict.fromkeys(problems)))


def _unknown_refs(case: Case, project: Project) -> list[Diagnostic]:
    if not project.rulebook_read:
        return []  # the index's own problems are reported; every ref would look unknown
    return [
        Diagnostic(
            "unknown_ref",
            Msg("'{ref}' is not an ID of the rulebook index", ref=ref),
            case.document.positions.value(f"/cases/{case.index}/refs/{i}"),
            hint=did_you_mean(ref, project.rulebook),
        )
        for i, ref in enumerate(case.refs)
        if ref not in project.rulebook
    ]


def _repeated_names(cases: list[Case]) -> list[Diagnostic]:
    """A case named like one before it: a report line, `--case` and a failure could not say
    which of the two they mean."""
    first: dict[str, Case] = {}
    problems = []
    for case in cases:
        earlier = first.setdefault(case.name, case)
        if earlier is not case:
            problems.append(
                Diagnostic(
                    "duplicate_case_name",
                    Msg(
                        "a case named '{name}' is already at line {line}",
                        name=case.name,
                        line=earlier.location.line,
                    ),
                    case.document.positions.value(f"/cases/{case.index}/name"),
                )
            )
    return problems


def _unknown_rules(case: Case) -> list[Diagnostic]:
    rule_ids = {r.id for r in case.policy.rules}
    expect = case.spec.get("expect", {})
    problems = [
        Diagnostic(
            "unknown_rule",
            Msg("policy '{policy}' has no rule '{id}'", policy=case.policy.id, id=rule_id),
            case.document.positions.value(f"/cases/{case.index}/expect/{key}/{i}"),
            hint=did_you_mean(rule_id, rule_ids),
        )
        for key in ("fired", "not_fired")
        for i, rule_id in enumerate(expect.get(key, []))
        if rule_id not in rule_ids
    ]
    fired = set(expect.get("fired", []))
    problems += [
        Diagnostic(
            "contradictory_expectation",
            Msg("rule '{id}' is expected both to fire and not to fire", id=rule_id),
            case.document.positions.value(f"/cases/{case.index}/expect/not_fired/{i}"),
        )
        for i, rule_id in enumerate(expect.get("not_fired", []))
        if rule_id in fired
    ]
    return problems


def _unknown_flow_names(case: Case) -> list[Diagnostic]:
    """States, event types, transitions and action codes a flow case names that its flow
    does not have (a step that expects an error may send an unknown event on purpose)."""
    from engine.flow.model import flow_of

    flow = flow_of(case.policy)
    transitions = flow.transition_by_id
    actions = {a.code for t in flow.transitions for a in t.actions}
    base, problems = f"/cases/{case.index}", []

    def check(name: Any, known: Any, pointer: str, what: Msg) -> None:
        if isinstance(name, str) and name not in known:
            hint = did_you_mean(name, known)
            message = Msg(
                "{what} '{name}' is not in policy '{policy}'",
                what=what,
                name=name,
                policy=case.policy.id,
            )
            problems.append(
                Diagnostic(
                    "unknown_name", message, case.document.positions.value(pointer), hint=hint
                )
            )

    entity = case.spec.get("entity") or {}
    check(entity.get("state"), flow.states, _entity_state_pointer(case), Msg("state"))
    for i, step in enumerate(case.spec.get("steps") or []):
        at, expect = f"{base}/steps/{i}", step.get("expect") or {}
        if "error" not in expect:
            check(
                (step.get("event") or {}).get("type"), flow.events, f"{at}/event/type", Msg("event")
            )
        check(expect.get("state"), flow.states, f"{at}/expect/state", Msg("state"))
        check(expect.get("transition"), transitions, f"{at}/expect/transition", Msg("transition"))
        for j, code in enumerate(expect.get("actions") or []):
            check(code, actions, f"{at}/expect/actions/{j}", Msg("action"))
    return problems


def _entity_state_pointer(case: Case) -> str:
    own = f"/cases/{case.index}/entity/state"
    return own if case.document.positions.has(own) else "/defaults/entity/state"


def _unknown_step_inputs(case: Case) -> list[Diagnostic]:
    """A flow case's settings and data sets by a name its flow does not have: the case's
    own (or its defaults'), which every step uses, and each step's own settings. A step that
    expects an error may give an unknown one to test its refusal."""
    steps = case.spec.get("steps") or []
    expects_error = ["error" in (step.get("expect") or {}) for step in steps]
    problems = [] if any(expects_error) else _unknown_inputs(case, case.spec)
    for i, step in enumerate(steps):
        if not expects_error[i]:
            problems += _unknown_inputs(case, {"settings": step.get("settings")}, "steps", i)
    return problems


def _unknown_inputs(case: Case, given: Mapping[str, Any], *within: str | int) -> list[Diagnostic]:
    """Settings and data sets `given` (the case, the file's defaults or a step at `within`)
    by a name the policy does not have."""
    policy, problems = case.policy, []
    for name in given.get("settings") or {}:
        if name not in policy.settings:
            problems.append(
                Diagnostic(
                    "unknown_setting",
                    Msg("policy '{policy}' has no setting '{name}'", policy=policy.id, name=name),
                    _given_key(case, *within, "settings", name),
                    hint=did_you_mean(name, policy.settings),
                )
            )
    for name in given.get("data") or {}:
        if name not in policy.datasets:
            problems.append(
                Diagnostic(
                    "unknown_data_set",
                    Msg(
                        "policy '{policy}' reads no data set '{name}'", policy=policy.id, name=name
                    ),
                    _given_key(case, *within, "data", name),
                    hint=did_you_mean(name, policy.datasets),
                )
            )
    return problems


def _given_key(case: Case, *path: str | int) -> Location:
    """The key at `path` of the case, or of the defaults' when the case has none."""
    return case.document.positions.key(_given_pointer(case, *path))


def _given_pointer(case: Case, *path: str | int) -> str:
    """Where the case gives the value at `path` (`at`, `settings/x`): its own, if it has one,
    else the defaults' it inherits."""
    own, inherited = f"/cases/{case.index}", "/defaults"
    for token in path:
        own, inherited = join_pointer(own, token), join_pointer(inherited, token)
    return own if case.document.positions.has(own) else inherited


def _bad_values(case: Case, data_read: set[str]) -> list[Diagnostic]:
    """The problems of the case's `at`, setting values and data entries, each where the
    test file gives it (`decide` would report them at a pointer of its request, once per
    case that inherits them from the defaults). A case or step that expects an error may
    give a bad value to test its refusal."""
    if "error" in case.spec.get("expect", {}):
        return []
    problems = _bad_inputs(case, case.spec)
    for i, step in enumerate(case.spec.get("steps") or []):
        if "error" not in (step.get("expect") or {}):
            problems += _bad_inputs(case, step, "steps", i)
    for name, entries in (case.spec.get("data") or {}).items():
        spec, pointer = case.policy.datasets.get(name), _given_pointer(case, "data", name)
        # an unknown data set is reported by name; those of the defaults are read once, not
        # once per case (which tripled the time to read exemption-claims' 90 cases)
        if spec is None or pointer in data_read:
            continue
        data_read.add(pointer)
        try:
            load_dataset(spec, entries=entries, source=case.file)
        except PolicyError as exc:
            problems += _placed(case, exc, pointer)
    return problems


def _bad_inputs(case: Case, given: Mapping[str, Any], *within: str | int) -> list[Diagnostic]:
    """The problems of the `at` and the setting values of the case, or of its step at
    `within`."""
    problems = []
    if given.get("at") is not None:
        try:
            resolve_at(given["at"])
        except InputError as exc:
            problems += _placed(case, exc, _given_pointer(case, *within, "at"), "/at")
    for name, value in (given.get("settings") or {}).items():
        if name in case.policy.settings:  # an unknown one is reported by name
            try:
                resolve_settings(case.policy, {name: value})
            except InputError as exc:
                pointer = _given_pointer(case, *within, "settings", name)
                problems += _placed(case, exc, pointer, f"/settings/{name}")
    return problems


def _placed(case: Case, exc: KimariError, pointer: str, given_as: str = "") -> list[Diagnostic]:
    """`exc`'s problems with a value of the case, placed at `pointer` in its test file: their
    own pointers lead into the value from `given_as`, where a request holds it."""
    placed = []
    for d in exc.diagnostics:
        at = pointer + (d.pointer or "").removeprefix(given_as)
        location = case.document.positions.value(at)
        placed.append(Diagnostic(d.code, d.message, location, pointer=at, hint=d.hint))
    return placed


def _unknown_expectations(case: Case) -> list[Diagnostic]:
    """Outcome fields and reason codes `expect` names that the policy can never answer."""
    policy, problems = case.policy, []
    expect = case.spec.get("expect", {})
    base = f"/cases/{case.index}/expect"
    for name in expect.get("outcome", {}):
        if name not in policy.outcome:
            problems.append(
                Diagnostic(
                    "unknown_outcome_field",
                    Msg(
                        "policy '{policy}' has no outcome field '{name}'",
                        policy=policy.id,
                        name=name,
                    ),
                    case.document.positions.key(join_pointer(f"{base}/outcome", name)),
                    hint=did_you_mean(name, policy.outcome),
                )
            )
    codes = {r.reason.code for r in policy.rules if r.reason is not None}
    for i, wanted in enumerate(expect.get("reasons", [])):
        code = wanted.get("code") if isinstance(wanted, Mapping) else None
        if isinstance(code, str) and code not in codes:
            problems.append(
                Diagnostic(
                    "unknown_reason_code",
                    Msg(
                        "no rule of policy '{policy}' gives the reason '{code}'",
                        policy=policy.id,
                        code=code,
                    ),
                    case.document.positions.value(f"{base}/reasons/{i}/code"),
                    hint=did_you_mean(code, codes),
                )
            )
    return problems


def case_data(case: Case, project: Project) -> dict[str, Dataset]:
    datasets = project.data_for(case.policy)
    for name, entries in (case.spec.get("data") or {}).items():
        spec = case.policy.datasets.get(name)
        if spec is None:
            raise PolicyError(
                [
                    Diagnostic(
                        "unknown_data_set",
                        Msg(
                            "policy '{policy}' reads no data set '{name}'",
                            policy=case.policy.id,
                            name=name,
                        ),
                        case.location,
                    )
                ]
            )
        datasets[name] = load_dataset(spec, entries=entries, source=case.file)
    return datasets


def decide_case(
    case: Case, project: Project, *, backend: str = "durable", explain: bool = False
) -> Decision:
    """Decide a decision-policy case as written: its facts, `at`, settings and data."""
    return decide(
        case.policy,
        case.spec.get("facts") or {},
        at=case.spec.get("at"),
        settings=case.spec.get("settings"),
        data=case_data(case, project),
        backend=backend,
        explain=explain,
    )


def run_decision_case(case: Case, project: Project, backend: str = "durable") -> CaseResult:
    """Decide a case of a decision policy and compare what came out with `expect`."""
    result = CaseResult(
        case.file, case.name, case.location, case.refs, True, policy_id=case.policy.id
    )
    expect = case.spec.get("expect", {})
    try:
        decision = decide_case(case, project, backend=backend, explain=True)
    except KimariError as exc:
        compare_error(result, expect, exc)
        return result
    if "error" in expect:
        result.failures.append(
            Msg(
                "expected error {code}, but the policy decided: fired {fired}",
                code=expect["error"].get("code"),
                fired=quoted(decision.fired),
            )
        )
    result.fired = decision.fired
    body = decision.to_dict()
    _compare_outcome(result, expect.get("outcome", {}), body["outcome"])
    _compare_fired(result, expect, decision.fired, body.get("explanation") or {})
    _compare_reasons(result, expect.get("reasons", []), body["reasons"])
    result.passed = not result.failures
    return result


def compare_error(result: CaseResult, expect: Mapping[str, Any], exc: KimariError) -> None:
    wanted = expect.get("error")
    first = exc.diagnostics[0] if exc.diagnostics else None
    if wanted is None:
        result.failures.append(Msg("unexpected error:\n      {errors}", errors=_rendered(exc)))
    else:
        codes = {d.code for d in exc.diagnostics}
        pointers = {d.pointer for d in exc.diagnostics}
        if wanted["code"] not in codes and wanted["code"] != exc.default_code:
            result.failures.append(
                Msg(
                    "expected error {wanted}, got {code}: {errors}",
                    wanted=wanted["code"],
                    code=first.code if first else exc.default_code,
                    errors=_rendered(exc, "\n"),
                )
            )
        if "pointer" in wanted and wanted["pointer"] not in pointers:
            result.failures.append(
                Msg(
                    "expected an error at {wanted}, got errors at {pointers}",
                    wanted=wanted["pointer"],
                    pointers=quoted(sorted(p for p in pointers if p)),
                )
            )
    result.passed = not result.failures


def _rendered(exc: KimariError, indent: str = "\n      ") -> Rendered:
    """The error's diagnostics, one per line, each in the language the report is shown in."""
    return Rendered(lambda lang: indent.join(d.render(lang) for d in exc.diagnostics) or str(exc))


def same_value(expected: Any, actual: Any) -> bool:
    expected = to_json_value(expected)
    if expected == actual:
        return True
    if isinstance(expected, str) and isinstance(actual, str):
        try:
            return parse_datetime(expected) == parse_datetime(actual)
        except ValueError:
            return False
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and same_value(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(same_value, expected, actual))
    return False


def _compare_outcome(
    result: CaseResult, expected: Mapping[str, Any], actual: Mapping[str, Any]
) -> None:
    for key, value in expected.items():
        if key not in actual:
            result.failures.append(
                Msg(
                    "outcome.{key}: expected {value}, but the outcome has no "
                    "such field (fields: {fields})",
                    key=key,
                    value=quoted(value),
                    fields=", ".join(actual),
                )
            )
        elif not same_value(value, actual[key]):
            result.failures.append(
                Msg(
                    "outcome.{key}: expected {expected}, got {actual}",
                    key=key,
                    expected=quoted(to_json_value(value)),
                    actual=quoted(actual[key]),
                )
            )


def _compare_fired(
    result: CaseResult, expect: Mapping[str, Any], fired: list[str], explanation: Mapping[str, Any]
) -> None:
    verdicts = {r["rule"]: r for r in explanation.get("rules", [])}
    if "fired" in expect:
        wanted = set(expect["fired"])
        for rule_id in sorted(wanted - set(fired)):
            result.failures.append(
                Msg("rule {id} did not apply{why}", id=rule_id, why=_why(verdicts.get(rule_id)))
            )
        for rule_id in sorted(set(fired) - wanted):
            result.failures.append(Msg("rule {id} applied but was not expected", id=rule_id))
    for rule_id in expect.get("not_fired", []):
        if rule_id in fired:
            result.failures.append(Msg("rule {id} applied but was expected not to", id=rule_id))


def _why(verdict: Mapping[str, Any] | None) -> str:
    if not verdict:
        return ""
    if verdict.get("verdict") == "matched":
        return f": {verdict.get('note')}"
    failed = verdict.get("failed")
    if not failed:
        return ""
    loc = failed["location"]
    values = ", ".join(f"{k}={quoted(v)}" for k, v in failed["values"].items())
    where = f"{loc['file']}:{loc['line']}:{loc['col']}"
    if values:
        return Msg(
            ": {where}: `{condition}` is false ({values})",
            where=where,
            condition=failed["condition"],
            values=values,
        )
    return Msg(": {where}: `{condition}` is false", where=where, condition=failed["condition"])


def _compare_reasons(
    result: CaseResult, expected: list[Mapping[str, Any]], actual: list[Mapping[str, Any]]
) -> None:
    taken = _matching(expected, actual)
    remaining = [r for j, r in enumerate(actual) if j not in taken.values()]
    # compared once every exact match is taken, so none is shown as "the closest"
    for i, wanted in enumerate(expected):
        if i not in taken:
            result.failures.extend(_reason_mismatch(wanted, remaining, actual))


def _matching(expected: list[Mapping[str, Any]], actual: list[Mapping[str, Any]]) -> dict[int, int]:
    """As many expected reasons as can be, each paired with its own actual reason that has
    what it lists (expected index -> actual index). Taking the first that fits is not enough:
    `{code: X}` listed first would take the reason X that `{code: X, facts: …}` needs."""
    fits = [[j for j, r in enumerate(actual) if same_value(w, r)] for w in expected]
    owner: dict[int, int] = {}  # actual index -> expected index

    def place(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(expected)):
        place(i, set())
    return {i: j for j, i in owner.items()}


def _reason_mismatch(
    wanted: Mapping[str, Any], remaining: list[Mapping[str, Any]], actual: list[Mapping[str, Any]]
) -> list[str]:
    """Why no reason matched `wanted`: field by field against the closest reason left (one
    with its code, if it gives one), or the codes there were when none is left to compare."""
    codes = quoted([r.get("code") for r in actual])
    if "code" in wanted:
        code = wanted["code"]
        remaining = [r for r in remaining if same_value(code, r.get("code"))]
        if not remaining and any(same_value(code, r.get("code")) for r in actual):
            return [Msg("no other reason {code} (reasons: {codes})", code=code, codes=codes)]
        if not remaining:
            return [Msg("no reason {code} (reasons: {codes})", code=code, codes=codes)]
    if not remaining:
        shown_wanted = _in_full(to_json_value(dict(wanted)))
        return [
            Msg("no reason matches {wanted} (reasons: {codes})", wanted=shown_wanted, codes=codes)
        ]
    mismatches = [_field_mismatches(r.get("code"), wanted, r) for r in remaining]
    return min(mismatches, key=len)


def _field_mismatches(
    code: Any, expected: Mapping[str, Any], actual: Mapping[str, Any], path: str = ""
) -> list[str]:
    """Each listed field of `expected` that the reason `code` does not have as expected; a
    record field by field (`message.ja`), so that a long text is not hidden in its record."""
    found: list[str] = []
    for key, value in expected.items():
        name, got = f"{path}{key}", actual.get(key)
        if key not in actual:
            found.append(
                Msg(
                    "reason {code}: {field}: expected {expected}, but the reason has no "
                    "such field (fields: {fields})",
                    code=code,
                    field=name,
                    expected=_in_full(to_json_value(value)),
                    fields=", ".join(actual),
                )
            )
        elif isinstance(value, Mapping) and isinstance(got, Mapping):
            found += _field_mismatches(code, value, got, f"{name}.")
        elif not same_value(value, got):
            found.append(_value_mismatch(code, name, to_json_value(value), got))
    return found


# A text longer than this is hard to compare by eye: the first character that differs is
# pointed at too.
LONG_TEXT = 30


def _value_mismatch(code: Any, name: str, expected: Any, actual: Any) -> str:
    texts = isinstance(expected, str) and isinstance(actual, str)
    if not texts or max(len(expected), len(actual)) <= LONG_TEXT:
        return Msg(
            "reason {code}: {field}: expected {expected}, got {actual}",
            code=code,
            field=name,
            expected=_in_full(expected),
            actual=_in_full(actual),
        )
    pairs = enumerate(zip(expected, actual, strict=False))  # where one ends, they differ
    at = next((i for i, (e, a) in pairs if e != a), min(len(expected), len(actual)))
    return Msg(
        "reason {code}: {field}: expected {expected}, got {actual}\n"
        "      they differ from character {number}: expected {expected_part}, got {actual_part}",
        code=code,
        field=name,
        expected=_in_full(expected),
        actual=_in_full(actual),
        number=at + 1,
        expected_part=repr(_around(expected, at)),
        actual_part=repr(_around(actual, at)),
    )


def _around(text: str, at: int, width: int = 10) -> str:
    """A few characters either side of `at`, with an ellipsis where the text goes on."""
    start, end = max(0, at - width), at + width
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _in_full(value: Any) -> str:
    """A value as `quoted` shows it, never cut: a failed comparison must show what differs."""
    return repr(value) if isinstance(value, str) else shown(value, limit=sys.maxsize)
