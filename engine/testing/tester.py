"""Run the YAML test cases of a project and report what no test covers.

Which runner decides a case depends on its policy's kind; the table is written out
here (no registration by import side effect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from engine.core.errors import Diagnostic, Location, PolicyError
from engine.core.i18n import Msg
from engine.project.project import Project, case_files, shown_path
from engine.testing.cases import Case, CaseResult, TestReport, load_cases, run_decision_case
from engine.testing.flows import run_flow_case

CaseRunner = Callable[[Case, Project, str], CaseResult]
CASE_RUNNERS: dict[str, CaseRunner] = {
    "decision": run_decision_case,
    "flow": run_flow_case,
}


def run_case(case: Case, project: Project, backend: str = "durable") -> CaseResult:
    return CASE_RUNNERS[case.policy.kind](case, project, backend)


def run_tests(paths: Iterable[Path], project: Project, backend: str = "durable") -> TestReport:
    report = TestReport()
    files, report.problems = _expand(paths)
    for path in files:
        try:
            cases = load_cases(path, project)
        except PolicyError as exc:
            report.problems.extend(exc.diagnostics)
            continue
        for case in cases:
            try:
                report.results.append(run_case(case, project, backend))
            except PolicyError as exc:
                report.problems.extend(exc.diagnostics)
    _coverage(report, project, files)
    return report


def _expand(paths: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The test files to run: a folder's, a test file itself, or the test file beside a
    policy file (as people type it: `kimari test policies/x.yaml`). A policy without test
    cases, or a path that is neither, is a problem (exit 2), never a silent zero."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            files.extend(case_files(path))
        elif path.name.endswith(".tests.yaml"):
            files.append(path)
        elif path.suffix in (".yaml", ".yml"):
            stem = path.name.removesuffix(path.suffix)
            cases = path.with_name(f"{stem}.tests.yaml")
            if cases.is_file():
                files.append(cases)
            else:
                problems.append(
                    Diagnostic(
                        "no_test_cases",
                        Msg(
                            "policy '{id}' has no test cases: write them in {file} beside it",
                            id=stem,
                            file=cases.name,
                        ),
                        Location(shown_path(path), 1, 1),
                    )
                )
        else:
            problems.append(
                Diagnostic(
                    "not_a_test_file",
                    Msg(
                        "{path} is neither a policy, a test file (*.tests.yaml) nor a folder of "
                        "them",
                        path=shown_path(path),
                    ),
                )
            )
    return files, problems


def _coverage(report: TestReport, project: Project, files: list[Path]) -> None:
    tested = {r.policy_id for r in report.results}
    fired: dict[str, set[str]] = {}
    for r in report.results:
        fired.setdefault(r.policy_id, set()).update(r.fired)
    for policy_id in sorted(tested):
        rules = project.policies[policy_id].rules
        missing = [rule.id for rule in rules if rule.id not in fired.get(policy_id, set())]
        if missing:
            report.uncovered_rules[policy_id] = missing
    if not project.rulebook:
        return
    cited_by_rules = {ref for p in project.policies.values() for r in p.rules for ref in r.refs}
    cited_by_rules |= {ref for p in project.policies.values() for ref in p.extra.get("refs", ())}
    # A computed outcome (e.g. the effects of a hold, HO-2) implements a rule as much as a
    # rule does, so the refs declared on outcome fields count as citations too.
    cited_by_rules |= {
        ref for p in project.policies.values() for f in p.outcome.values() for ref in f.refs
    }
    cited_by_tests = {ref for r in report.results if r.passed for ref in r.refs}
    for r in report.results:
        if r.passed:
            by_id = project.policies[r.policy_id].rule_by_id
            cited_by_tests.update(
                ref for rule_id in r.fired if rule_id in by_id for ref in by_id[rule_id].refs
            )
    if tested == set(project.policies):
        report.ids_without_rule = [i for i in project.rulebook if i not in cited_by_rules]
        report.ids_without_test = [i for i in project.rulebook if i not in cited_by_tests]
        return
    # some policies only: the rulebook IDs their rules cite are theirs to cover
    theirs = {ref for pid in tested for r in project.policies[pid].rules for ref in r.refs}
    report.ids_without_test = [i for i in project.rulebook if i in theirs - cited_by_tests]
