"""A project on disk: the policies folder, its rulebook index and data sets.

    policies/rulebook.tsv          every rulebook ID with its title
    policies/<id>.yaml             one policy per file (id = file name)
    policies/<id>.tests.yaml       its test cases
    policies/data/*.yaml|json      default content of reference data sets

`load_project` compiles every policy and loads every data set it declares,
collecting all problems of all files before failing, so `kimari validate`
shows everything at once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy, DatasetSpec, kind_word
from engine.core.errors import (
    Diagnostic,
    InputError,
    Location,
    PolicyError,
    UsageError,
    sort_diagnostics,
)
from engine.core.i18n import Msg, os_reason
from engine.core.jsonvalue import quoted
from engine.lang.check import Root
from engine.project.kinds import compile_any
from engine.project.names import name_clashes
from engine.source.data import Dataset
from engine.source.yaml import (
    MAX_FILE_BYTES,
    Document,
    join_pointer,
    not_utf8,
    read_yaml_file,
)

RULEBOOK_FILE = "rulebook.tsv"
TESTS_SUFFIX = ".tests.yaml"
_RULEBOOK_LINE = re.compile(r"([A-Z]{2}-\d+(?:\.\d+)?)\t+(\S.*)")


def shown_path(path: Path) -> str:
    """A path as people read it in messages: relative to the working directory if possible."""
    try:  # not resolved: a symbolic link is shown by its own name
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))  # noqa: PTH100
    except ValueError:
        return str(path)


def load_rulebook(path: Path) -> dict[str, str]:
    """ID -> title from the rulebook index; PolicyError with file:line on a bad line.

    An index with no IDs (empty, or comments only) is read as it is: no ID is known, so
    every ref of every rule is an unknown_ref."""
    shown = shown_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            [
                Diagnostic(
                    "rulebook_missing",
                    Msg("cannot read the rulebook index: {reason}", reason=os_reason(exc)),
                    Location(shown, 1, 1),
                )
            ]
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # saved as Shift_JIS by a spreadsheet, say
        raise PolicyError([not_utf8(data, exc, shown)]) from None
    lines = text.removeprefix("\ufeff").splitlines()  # a spreadsheet's UTF-8 BOM
    ids: dict[str, str] = {}
    problems = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _RULEBOOK_LINE.fullmatch(line.rstrip())
        if match is None:
            problems.append(
                Diagnostic(
                    "rulebook_syntax",
                    Msg("expected 'ID<TAB>title' such as 'HO-4\\tNP credit NG'"),
                    Location(shown, number, 1),
                )
            )
        elif match.group(1) in ids:
            problems.append(
                Diagnostic(
                    "rulebook_duplicate",
                    Msg("ID {id} is listed twice", id=match.group(1)),
                    Location(shown, number, 1),
                )
            )
        else:
            ids[match.group(1)] = match.group(2)
    if problems:
        raise PolicyError(problems)
    return ids


def policy_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(TESTS_SUFFIX))


def case_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{TESTS_SUFFIX}"))


def read_document(path: Path) -> Document:
    return read_yaml_file(path, display=shown_path(path))


def compile_policy_file(path: Path, rulebook: Mapping[str, str] | None) -> CompiledPolicy:
    return compile_any(read_document(path), rulebook)


def _duplicate_keys(spec: DatasetSpec, entries: list[Any], positions: Any) -> list[Diagnostic]:
    """A diagnostic for each entry whose key value an earlier entry already has: the key
    names one entry in messages and in replacements through the API."""
    first: dict[Any, int] = {}
    found = []
    for i, entry in enumerate(entries):
        value = entry.get(spec.key) if isinstance(entry, dict) else None
        if value is None or isinstance(value, dict | list):
            continue
        seen = first.setdefault(value, i)
        if seen != i:
            pointer = f"/{i}/{spec.key}"
            found.append(
                Diagnostic(
                    "data_duplicate_key",
                    Msg(
                        "data set '{name}': entry {index} has the {key} {value} of entry {first}",
                        name=spec.name,
                        index=i,
                        key=spec.key,
                        value=quoted(value),
                        first=seen,
                    ),
                    positions.value(pointer) if positions else None,
                    pointer=pointer,
                )
            )
    return found


def _check_size(file: Path, spec: DatasetSpec) -> None:
    """A data file is read as YAML, with every value's place (for file:line errors): a big
    data set is put through the API instead, stored, and never parsed as YAML."""
    try:
        size = file.stat().st_size
    except OSError:
        return  # the read says why
    if size > MAX_FILE_BYTES:
        message = Msg(
            "data set '{name}': the file has {size} bytes, a data file at most {limit}; put a "
            "larger data set through the API (PUT /v1/data/{name}), which keeps its versions",
            name=spec.name,
            size=size,
            limit=MAX_FILE_BYTES,
        )
        where = Location(shown_path(file), 1, 1)
        raise PolicyError([Diagnostic("file_too_large", message, where)])


def load_dataset(
    spec: DatasetSpec,
    path: str | Path | None = None,
    entries: Any = None,
    *,
    source: str | None = None,
    unique: bool = True,
) -> Dataset:
    """Validate entries against the data set's entry schema and index them. `unique`: refuse
    two entries with the same `key` value (a version stored before that rule keeps serving)."""
    positions = None
    if entries is None:
        file = Path(path or spec.source_path or "")
        if not file.is_file():
            path, name = shown_path(file), spec.name
            message = (
                Msg("data set '{name}': {path} is a folder, not a data file", name=name, path=path)
                if file.is_dir()
                else Msg("data set '{name}': file {path} not found", name=name, path=path)
            )
            raise PolicyError([Diagnostic("data_source_missing", message, spec.location)])
        _check_size(file, spec)
        document = read_document(file)
        entries, positions = document.data, document.positions
        source = source or document.path
    if not isinstance(entries, list):
        where = Location(source or spec.name, 1, 1)
        raise PolicyError(
            [
                Diagnostic(
                    "data_invalid",
                    Msg("data set '{name}' must be a list of entries", name=spec.name),
                    where,
                )
            ]
        )
    # an entry that fails stays as None in its place: the duplicates are named by their own
    # index (they were counted among the valid ones only, one entry early per failure)
    normalised: list[Any] = []
    problems: list[Diagnostic] = []
    for i, entry in enumerate(entries):
        try:
            normalised.append(spec.validator.validate(entry, pointer=f"/{i}"))
        except InputError as exc:  # re-place each problem in the data file
            normalised.append(None)
            for d in exc.diagnostics:
                loc = positions.value(d.pointer or "") if positions else None
                problems.append(
                    Diagnostic(
                        d.code,
                        Msg("data set '{name}': {reason}", name=spec.name, reason=d.message),
                        loc,
                        pointer=d.pointer,
                        hint=d.hint,
                    )
                )
    if unique and spec.key is not None:
        problems.extend(_duplicate_keys(spec, normalised, positions))
    if problems:
        raise PolicyError(problems[:100])
    dataset = Dataset(spec.name, normalised, match=spec.match)
    for keys in spec.find_keys:
        dataset.prepare_find(keys)
    return dataset


@dataclass
class Project:
    folder: Path
    rulebook: dict[str, str]
    policies: dict[str, CompiledPolicy] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    # False when the index could not be read: refs are then not checked against the empty
    # `rulebook` (its own problems are reported); an index that lists no IDs is read.
    rulebook_read: bool = True

    def policy(self, policy_id: str) -> CompiledPolicy:
        from engine.core.errors import UsageError
        from engine.core.suggest import did_you_mean

        found = self.policies.get(policy_id)
        if found is None:
            raise UsageError(
                [
                    Diagnostic(
                        "unknown_policy",
                        Msg(
                            "no policy '{id}' in {folder}",
                            id=policy_id,
                            folder=shown_path(self.folder),
                        ),
                        hint=did_you_mean(policy_id, self.policies),
                    )
                ]
            )
        return found

    def data_for(self, policy: CompiledPolicy) -> dict[str, Dataset]:
        return {name: self.datasets[name] for name in policy.datasets if name in self.datasets}


def load_project(
    folder: str | Path = "policies", *, extra_roots: Mapping[str, Root] | None = None
) -> Project:
    """Compile every policy and load every data set; PolicyError lists every problem."""
    project, problems = load_project_partly(folder)
    if problems:
        raise PolicyError(sort_diagnostics(problems))
    return project


def load_project_partly(folder: str | Path = "policies") -> tuple[Project, list[Diagnostic]]:
    """The policies that compile and their data sets, and every problem found: what
    `kimari validate` needs to go on checking the test files of the policies that do."""
    root = Path(folder)
    problems: list[Diagnostic] = []
    # None: the index could not be read (its problems are reported), so refs are not
    # checked against it; {} is an index that lists no IDs, and then every ref is unknown.
    rulebook: dict[str, str] | None = None
    try:
        rulebook = load_rulebook(root / RULEBOOK_FILE)
    except PolicyError as exc:
        problems.extend(exc.diagnostics)
    project = Project(
        root, rulebook if rulebook is not None else {}, rulebook_read=rulebook is not None
    )
    for path in policy_files(root):
        try:
            policy = compile_policy_file(path, rulebook)
        except PolicyError as exc:
            problems.extend(exc.diagnostics)
            continue
        project.policies[policy.id] = policy
        project.warnings.extend(policy.warnings)
    clashes = name_clashes(project.policies)
    problems.extend(clashes.values())
    for pid in clashes:  # not a policy of this project until renamed
        del project.policies[pid]
    problems.extend(_load_datasets(project))
    return project, problems


def decision_policy(policy: CompiledPolicy, policy_id: str) -> CompiledPolicy:
    """`policy` if it is decided (`kimari decide`, `kimari batch`, api.decide_cli); UsageError
    not_a_decision_policy, as the service answers, if it is a flow."""
    if policy.kind == "decision":
        return policy
    raise UsageError(
        [
            Diagnostic(
                "not_a_decision_policy",
                Msg(
                    "policy '{id}' is a {kind}, not decided here",
                    id=policy_id,
                    kind=kind_word(policy.kind),
                ),
                hint=Msg("send its events with `kimari flow`"),
            )
        ]
    )


def load_policy(folder: str | Path, policy_id: str) -> Project:
    """One policy and its data sets (`kimari batch`, which decides with one policy only).

    Only `<id>.yaml` is compiled (a policy's id must equal its file name: the compiler
    refuses any other); other policies of the folder, broken or not, do not delay or stop
    the run. An id with no such file loads the whole project, whose `policy()` then names
    the ids there are.
    """
    root = Path(folder)
    path = root / f"{policy_id}.yaml"
    if Path(policy_id).name != policy_id or policy_id.startswith(".") or not path.is_file():
        return load_project(root)  # only a plain file name of this folder is taken
    rulebook = load_rulebook(root / RULEBOOK_FILE)
    policy = compile_policy_file(path, rulebook)
    project = Project(root, rulebook, {policy.id: policy}, warnings=list(policy.warnings))
    problems = _load_datasets(project)
    if problems:
        raise PolicyError(sort_diagnostics(problems))
    return project


def _load_datasets(project: Project) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    specs: dict[str, DatasetSpec] = {}
    for policy in project.policies.values():
        for name, spec in policy.datasets.items():
            first = specs.get(name)
            if first is not None and (
                first.schema_path != spec.schema_path or dict(first.match) != dict(spec.match)
            ):
                problems.append(
                    Diagnostic(
                        "data_conflict",
                        Msg(
                            "data set '{name}' is declared differently here and at {where}",
                            name=name,
                            where=str(first.location),
                        ),
                        spec.location,
                    )
                )
                continue
            if first is not None:
                continue
            specs[name] = _merged_spec(spec, project.policies.values())
    for name, spec in specs.items():
        if spec.source_path is None:
            project.datasets[name] = Dataset(name, [], match=spec.match)
            continue
        try:
            project.datasets[name] = load_dataset(spec)
        except PolicyError as exc:
            problems.extend(exc.diagnostics)
    return problems


def _merged_spec(spec: DatasetSpec, policies: Iterable[CompiledPolicy]) -> DatasetSpec:
    """One spec per data set, with the find() indexes every policy needs."""
    keys = set(spec.find_keys)
    for policy in policies:
        other = policy.datasets.get(spec.name)
        if other is not None:
            keys.update(other.find_keys)
    return dataclasses.replace(spec, find_keys=tuple(sorted(keys)))


__all__ = [
    "Project",
    "join_pointer",
    "load_dataset",
    "load_policy",
    "load_project",
    "load_project_partly",
    "load_rulebook",
]
