"""The Python API that the CLI and the HTTP service are thin shells over.

project = load("policies")                 # compile every policy, load data sets
policy = project.policy("order-holds")
decision = decide(policy, facts, at="2024-09-21T23:59:59+09:00",
                  data=project.data_for(policy))
decision.to_dict()                         # the JSON the service returns

The policy lifecycle (engine/lifecycle), over a store file:

with open_lifecycle("var/kimari.sqlite3") as lifecycle:
    draft = policy_file("cancellation-fees", Path("policies"))
    lifecycle.diff("cancellation-fees", "published", str(draft))     # semantic + text
    lifecycle.impact("cancellation-fees", draft=str(draft))          # replay the log
    record, publication = lifecycle.submit(lifecycle.resolve(...), "alice", "why")
    lifecycle.approve("cancellation-fees", record.number, "bob")
    lifecycle.rollback("cancellation-fees", "1", "bob", "back to 1")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.compile.stages import compile_document
from engine.core.errors import Diagnostic, PolicyError, Severity, UsageError, sort_diagnostics
from engine.core.i18n import Msg, plural
from engine.flow.engine import FlowEngine, flow_policy
from engine.lifecycle.workflow import Lifecycle, Rules
from engine.project.project import (
    RULEBOOK_FILE,
    TESTS_SUFFIX,
    Project,
    case_files,
    compile_policy_file,
    decision_policy,
    load_project,
    load_project_partly,
    load_rulebook,
    policy_files,
)
from engine.runtime.decision import Decision
from engine.runtime.evaluate import decide
from engine.store.flows import FlowStore
from engine.store.sqlite import DEFAULT_PATH
from engine.testing.cases import TestReport, load_cases
from engine.testing.tester import run_tests as _run_tests


def load(folder: str | Path = "policies") -> Project:
    """Compile every policy of a folder; PolicyError lists every problem of every file."""
    return load_project(folder)


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def validate_paths(paths: Iterable[Path]) -> tuple[list[Diagnostic], list[Diagnostic], str]:
    """All problems (errors, warnings) of the policies, test files and data under `paths`."""
    problems: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    policies = tests = unchecked = 0
    for path in paths:
        folder = _folder_of(path)
        project, found = load_project_partly(folder)
        problems.extend(d for d in found if d.is_error)
        warnings.extend(d for d in found if not d.is_error)
        warnings.extend(project.warnings)
        compiled = set(project.policies)
        broken = {p.stem for p in policy_files(folder)} - compiled
        policies += len(compiled) + len(broken)
        for file in case_files(folder) if path.is_dir() else _test_files_of(path):
            if file.name.removesuffix(TESTS_SUFFIX) in broken:
                unchecked += 1  # read against its policy, once that compiles
                continue
            tests += 1
            try:
                load_cases(file, project)
            except PolicyError as exc:
                problems.extend(exc.diagnostics)
    read = (
        plural(
            policies, Msg("{count} policy", count=policies), Msg("{count} policies", count=policies)
        ),
        plural(
            tests, Msg("{count} test file", count=tests), Msg("{count} test files", count=tests)
        ),
    )
    summary = Msg("{policies}, {tests}", policies=read[0], tests=read[1])
    if unchecked:
        summary = Msg(
            "{policies}, {tests} ({unchecked} more not checked: their policies do not compile)",
            policies=read[0],
            tests=read[1],
            unchecked=unchecked,
        )
    problems = [d for d in problems if d.severity is Severity.ERROR]
    return sort_diagnostics(problems), sort_diagnostics(warnings), summary


def _test_files_of(path: Path) -> list[Path]:
    """A test file named itself; a policy file, the test file beside it (if it has one)."""
    if path.name.endswith(TESTS_SUFFIX):
        return [path]
    beside = path.with_name(path.name.removesuffix(path.suffix) + TESTS_SUFFIX)
    return [beside] if path.suffix in (".yaml", ".yml") and beside.is_file() else []


def run_tests(paths: Iterable[Path], backend: str = "durable") -> TestReport:
    paths = list(paths)
    folders = {_folder_of(p) for p in paths}
    report = TestReport()
    for folder in sorted(folders):
        try:
            project = load_project(folder)
        except PolicyError as exc:
            report.problems.extend(exc.diagnostics)
            continue
        selected = [p for p in paths if _folder_of(p) == folder]
        partial = _run_tests(selected, project, backend)
        report.results.extend(partial.results)
        report.problems.extend(partial.problems)
        report.uncovered_rules.update(partial.uncovered_rules)
        report.ids_without_rule.extend(partial.ids_without_rule)
        report.ids_without_test.extend(partial.ids_without_test)
    return report


def locate_policy(policy: str, policies_dir: Path) -> tuple[Path, str]:
    """(folder, policy id) of a policy named by id (in `policies_dir`) or by its .yaml file."""
    if not policy.endswith((".yaml", ".yml")):
        return policies_dir, policy
    path = Path(policy)
    if not path.is_file():
        raise UsageError([Diagnostic("unknown_policy", Msg("no policy file {path}", path=policy))])
    return path.parent, path.name.rsplit(".", 1)[0]


def open_flow_engine(
    policy: str, policies_dir: Path, store_path: str | Path | None = None
) -> tuple[FlowEngine, str]:
    """A FlowEngine over the policies of `policies_dir` (or of the folder of a policy given
    as its .yaml file) and the store at `store_path`; and the policy id."""
    policies_dir, policy = locate_policy(policy, policies_dir)
    project = load_project(policies_dir)
    flow_policy(project, policy)  # before the store file is created
    return FlowEngine(project, FlowStore(store_path or DEFAULT_PATH)), policy


def open_lifecycle(
    store_path: str | Path = DEFAULT_PATH,
    *,
    approvals_required: int = 0,
    impact_days: float = 7.0,
    workers: int | None = None,
    files: bool = True,
) -> Lifecycle:
    """The lifecycle of the policies of a store (drafts, diff, impact, approval, rollback).
    `files`: refs may name policy files (the editor's machine); the store's own setting
    raises `approvals_required` if the service requires more."""
    from engine.store.backend import SQLITE, parse_location

    location = parse_location(store_path)
    if location.kind == SQLITE and not Path(location.target).is_file():
        raise UsageError(
            [
                Diagnostic(
                    "store_missing",
                    Msg("no store at {path}", path=str(location)),
                    hint=Msg("`kimari serve` creates it and publishes the policies folder"),
                )
            ]
        )
    rules = Rules(approvals_required=approvals_required, impact_days=impact_days, workers=workers)
    return Lifecycle(str(store_path), rules, files=files)


def policy_file(policy: str, policies_dir: Path) -> Path:
    """The file being edited for a policy id (or the file itself, if given)."""
    if policy.endswith((".yaml", ".yml")):
        return Path(policy)
    return policies_dir / f"{policy}.yaml"


def decide_cli(
    policy: str,
    facts: Any,
    *,
    policies_dir: Path,
    at: str | None,
    settings: Mapping[str, Any] | None,
    explain: bool,
    backend: str,
) -> Decision:
    """Decide with a policy named by id (in `policies_dir`) or by its file."""
    policies_dir, policy = locate_policy(policy, policies_dir)
    project = load_project(policies_dir)
    compiled = decision_policy(project.policy(policy), policy)  # a flow is not decided
    return decide(
        compiled,
        facts,
        at=at,
        settings=settings,
        data=project.data_for(compiled),
        explain=explain,
        backend=backend,
    )


__all__ = [
    "RULEBOOK_FILE",
    "Decision",
    "Lifecycle",
    "Project",
    "compile_document",
    "compile_policy_file",
    "decide",
    "load",
    "load_rulebook",
    "open_lifecycle",
    "policy_file",
    "run_tests",
    "validate_paths",
]
