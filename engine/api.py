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
from engine.flow.engine import Catalog, FlowEngine, flow_policy
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
    shown_path,
)
from engine.project.registry import ServedCatalog, Snapshot, published_snapshot
from engine.runtime.decision import Decision
from engine.runtime.evaluate import decide
from engine.store.backend import SQLITE, Backend, open_backend, parse_location
from engine.store.flows import FlowStore
from engine.store.sqlite import DEFAULT_PATH, MEMORY
from engine.testing.cases import TestReport, load_cases
from engine.testing.tester import run_tests as _run_tests


def load(folder: str | Path = "policies") -> Project:
    """Compile every policy of a folder; PolicyError lists every problem of every file."""
    return load_project(folder)


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def validate_paths(paths: Iterable[Path]) -> tuple[list[Diagnostic], list[Diagnostic], str]:
    """All problems (errors, warnings) of what `paths` name: a folder whole (its policies, test
    files and data), a policy file with the test file beside it, a test file. Each folder is
    read once; the problems of its other policies are not reported for a file named alone."""
    problems: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    counts = {"policies": 0, "tests": 0, "unchecked": 0}
    for folder, named in _selections(paths, problems).values():
        _validate_folder(folder, named, problems, warnings, counts)
    problems = [d for d in problems if d.severity is Severity.ERROR]
    summary = _validate_summary(counts["policies"], counts["tests"], counts["unchecked"])
    return sort_diagnostics(problems), sort_diagnostics(warnings), summary


def _selections(
    paths: Iterable[Path], problems: list[Diagnostic]
) -> dict[Path, tuple[Path, set[Path] | None]]:
    """resolved folder -> (the folder as given, the files named in it or None: all of it)."""
    out: dict[Path, tuple[Path, set[Path] | None]] = {}
    for path in paths:
        folder = _folder_of(path)
        given, named = out.get(folder.resolve(), (folder, set()))
        if path.is_dir() or named is None:
            out[folder.resolve()] = (given, None)
        elif _refused_file(path, problems):
            out.setdefault(folder.resolve(), (given, named))
        else:
            named.add(path)
            out[folder.resolve()] = (given, named)
    return {key: value for key, value in out.items() if value[1] != set()}


def _refused_file(path: Path, problems: list[Diagnostic]) -> bool:
    """A file named that is no policy and no test file: a data file, a `.yml`, a schema."""
    folder = path.parent
    data = (folder.parent / RULEBOOK_FILE).exists() and not (folder / RULEBOOK_FILE).exists()
    if path.suffix == ".yaml" and not data:
        return False
    message = (
        Msg(
            "{name} is a data file: it is checked with the policies that read it "
            "(kimari validate {folder})",
            name=str(path),
            folder=str(folder.parent),
        )
        if data and path.suffix in (".yaml", ".json")
        else Msg(
            "{name} is not a policy or a test file: kimari reads policies from *.yaml files "
            "beside the rulebook ({rulebook}), their cases from *{tests}",
            name=str(path),
            rulebook=RULEBOOK_FILE,
            tests=TESTS_SUFFIX,
        )
    )
    problems.append(Diagnostic("not_a_policy_file", message))
    return True


def _files_of(path: Path) -> set[Path]:
    """A policy file and the test file beside it, whichever of the two is named (a test file
    is read against its policy: that policy's problems are the test file's too)."""
    if path.name.endswith(TESTS_SUFFIX):
        policy = path.with_name(path.name.removesuffix(TESTS_SUFFIX) + ".yaml")
        return {path, policy} if policy.is_file() else {path}
    beside = path.with_name(path.stem + TESTS_SUFFIX)
    return {path, beside} if beside.is_file() else {path}


def _validate_folder(
    folder: Path,
    named: set[Path] | None,
    problems: list[Diagnostic],
    warnings: list[Diagnostic],
    counts: dict[str, int],
) -> None:
    project, found = load_project_partly(folder)
    every = _by_file([*policy_files(folder), *case_files(folder)])
    chosen = every if named is None else _by_file(f for path in named for f in _files_of(path))
    consulted = _consulted(project, folder, chosen)
    hidden = set(every) - set(chosen) - consulted
    if named is not None:
        read = {p.stem for p in [*chosen.values(), *consulted] if not p.name.endswith(TESTS_SUFFIX)}
        hidden |= _unread_data(project, read)
    for diagnostic in [*found, *project.warnings]:
        location = diagnostic.location
        if location is not None and Path(location.file).resolve() in hidden:
            continue  # another policy's, not asked about
        (problems if diagnostic.is_error else warnings).append(diagnostic)
    if named is None:
        warnings.extend(_ignored_files(folder))
    files = sorted(chosen.values())
    counts["policies"] += sum(not f.name.endswith(TESTS_SUFFIX) for f in files)
    broken = {f.stem for f in policy_files(folder)} - set(project.policies)
    for file in (f for f in files if f.name.endswith(TESTS_SUFFIX)):
        if file.name.removesuffix(TESTS_SUFFIX) in broken:
            counts["unchecked"] += 1  # read against its policy, once that compiles
            continue
        counts["tests"] += 1
        try:
            load_cases(file, project)
        except PolicyError as exc:
            problems.extend(exc.diagnostics)


def _by_file(paths: Iterable[Path]) -> dict[Path, Path]:
    """The paths by the file they name: one file named twice (`p/x.yaml`, `p/../p/x.yaml`,
    through a linked folder) is checked and counted once."""
    return {path.resolve(): path for path in paths}


def _consulted(project: Project, folder: Path, chosen: Mapping[Path, Path]) -> set[Path]:
    """The files of the decision policies the chosen flows consult: a flow's check is only
    as good as theirs (a broken one fails its `kimari test` and the service)."""
    from engine.flow.model import flow_of

    found: set[Path] = set()
    for path in chosen.values():
        policy = project.policies.get(path.stem)
        if policy is None or policy.kind != "flow" or path.name.endswith(TESTS_SUFFIX):
            continue
        for event in flow_of(policy).events.values():
            if event.decide is not None:
                found.add((folder / f"{event.decide.policy}.yaml").resolve())
    return found


def _unread_data(project: Project, stems: set[str]) -> set[Path]:
    """The content files of the data sets none of these policies reads (all of them are
    read when one of them does not compile: which it reads is not known)."""
    read: set[str] = set()
    for stem in stems:
        policy = project.policies.get(stem)
        if policy is None:
            return set()
        read.update(policy.datasets)
    return {
        Path(spec.source_path).resolve()
        for policy in project.policies.values()
        for name, spec in policy.datasets.items()
        if name not in read and spec.source_path is not None
    }


def _ignored_files(folder: Path) -> list[Diagnostic]:
    """`.yml` files beside the policies, which kimari never reads: a policy saved so would
    otherwise pass `kimari validate` and never be served."""
    return [
        Diagnostic(
            "ignored_file",
            Msg(
                "{name} is not read: policies are *.yaml files (rename it to {stem}.yaml)",
                name=shown_path(path),
                stem=path.stem,
            ),
            severity=Severity.WARNING,
        )
        for path in sorted(folder.glob("*.yml"))
    ]


def _validate_summary(policies: int, tests: int, unchecked: int) -> Msg:
    read = (
        plural(
            policies, Msg("{count} policy", count=policies), Msg("{count} policies", count=policies)
        ),
        plural(
            tests, Msg("{count} test file", count=tests), Msg("{count} test files", count=tests)
        ),
    )
    if unchecked:
        return Msg(
            "{policies}, {tests} ({unchecked} more not checked: their policies do not compile)",
            policies=read[0],
            tests=read[1],
            unchecked=unchecked,
        )
    return Msg("{policies}, {tests}", policies=read[0], tests=read[1])


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
    policy: str,
    policies_dir: Path,
    store_path: str | Path | Backend | None = None,
    *,
    reading: bool = False,
) -> tuple[FlowEngine, str]:
    """A FlowEngine over the store at `store_path` (a location, or a Backend the caller
    closes), and the policy id. It decides as `kimari serve` over that store does: with the
    store's published revisions and the data versions current there, once it has published
    anything (an edited file moves no entity before it is published); with the policies of
    `policies_dir` (or of the folder of a policy given as its .yaml file) while it has not,
    as `kimari serve --watch` would. `reading`: only to read entities (kimari history): a
    policy the store has not published is read by its file, so that entities it moved
    before anything was published stay readable."""
    policies_dir, policy = locate_policy(policy, policies_dir)
    location = store_path or DEFAULT_PATH
    served = _published(location)
    if served is not None and reading and policy not in served.policies:
        served = None
    if served is None:
        catalog: Catalog = load_project(policies_dir)
    else:
        file = policies_dir / f"{policy}.yaml"
        hint = Msg(
            "the store serves its published revisions: publish {path} first (kimari publish)",
            path=str(file),
        )
        catalog = ServedCatalog(lambda: served, hint if file.is_file() else None)
    flow_policy(catalog, policy)  # before a new store file is created
    return FlowEngine(catalog, FlowStore(location)), policy


def _published(location: str | Path | Backend) -> Snapshot | None:
    """What `kimari serve` would serve from the store at `location`; None if it has
    published nothing (or is not there yet)."""
    if isinstance(location, Backend):
        return published_snapshot(location)
    parsed = parse_location(location)
    if parsed.kind == SQLITE and (parsed.target == MEMORY or not Path(parsed.target).is_file()):
        return None
    backend = open_backend(parsed)
    try:
        return published_snapshot(backend)
    finally:
        backend.close()


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
