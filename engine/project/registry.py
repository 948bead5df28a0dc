"""What a worker serves: the last good revision of every policy, its data, and what was refused.

    files --scan (mtimes)--> changed? --compile each policy file--> PolicySet (background)
    PolicySet + data sets (files, or the versions PUT through the API) --> Snapshot (swap)

A Snapshot is immutable: a decision runs entirely on the snapshot it started with. The
reloader thread compiles and registers durable rulesets in the background; the worker's
deciding thread swaps the snapshot between decisions and then closes the revisions that
nothing serves any more. An edit that does not compile is refused per policy: that
policy keeps its last good revision, and its errors (file:line) are kept for
`GET /v1/policies/{id}` and sent as a reload event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy, DatasetSpec
from engine.core.errors import Diagnostic, EngineFault, PolicyError, sort_diagnostics
from engine.core.i18n import Msg
from engine.project.project import (
    RULEBOOK_FILE,
    compile_policy_file,
    load_dataset,
    load_rulebook,
    policy_files,
    shown_path,
)
from engine.source.data import Dataset

log = logging.getLogger("kimari.registry")

WATCHED_SUFFIXES = (".yaml", ".yml", ".json", ".tsv")
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class PolicyStatus:
    id: str
    path: str
    policy: CompiledPolicy | None  # the revision served (last good); None: none ever compiled
    errors: tuple[Diagnostic, ...] = ()  # why the file on disk is not served (empty: it is)
    loaded_at: float = 0.0
    refused_at: float | None = None

    @property
    def state(self) -> str:
        if not self.errors:
            return "valid"
        return "refused" if self.policy is not None else "invalid"


@dataclass(frozen=True)
class FileData:
    """The default content of a data set, read from its source file."""

    dataset: Dataset | None
    fingerprint: tuple[int, int] | None
    errors: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class PolicySet:
    """Everything compiled from the files, before the API's data versions are applied."""

    statuses: Mapping[str, PolicyStatus]
    specs: Mapping[str, DatasetSpec]
    file_data: Mapping[str, FileData]
    project_errors: tuple[Diagnostic, ...]
    fingerprint: Fingerprint

    @property
    def serving(self) -> dict[str, CompiledPolicy]:
        return {pid: s.policy for pid, s in self.statuses.items() if s.policy is not None}


@dataclass(frozen=True)
class DataInfo:
    name: str
    version: str
    source: str  # "file", "api" or "empty"
    count: int
    updated_at: int | None = None


@dataclass(frozen=True)
class Snapshot:
    generation: int
    policy_set: PolicySet
    datasets: Mapping[str, Dataset]
    data_info: Mapping[str, DataInfo]
    data_generation: int
    data_errors: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=dict)

    @property
    def policies(self) -> dict[str, CompiledPolicy]:
        return self.policy_set.serving

    def data_for(self, policy: CompiledPolicy) -> dict[str, Dataset]:
        return {n: self.datasets[n] for n in policy.datasets if n in self.datasets}


def fingerprint(folder: Path, extra: Iterable[str | Path] = ()) -> Fingerprint:
    """(path, mtime_ns, size) of every file an edit could touch: the policies folder, the
    sibling schemas/ folder, and each data set's schema and source file."""
    paths: set[Path] = set()
    for root in (folder, folder.parent / "schemas"):
        if root.is_dir():
            paths.update(p for p in root.rglob("*") if p.suffix in WATCHED_SUFFIXES)
    paths.update(Path(p) for p in extra)
    out = []
    for path in sorted(paths):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _deps(specs: Mapping[str, DatasetSpec]) -> list[str]:
    return [p for s in specs.values() for p in (s.schema_path, s.source_path) if p]


def compile_set(folder: Path, previous: PolicySet | None) -> PolicySet:
    """Compile every policy file; a file that fails keeps its previous revision."""
    stamp = time.time()
    before = previous.statuses if previous else {}
    statuses: dict[str, PolicyStatus] = {}
    project_errors: list[Diagnostic] = []
    rulebook: dict[str, str] | None = None
    try:
        rulebook = load_rulebook(folder / RULEBOOK_FILE)
    except PolicyError as exc:
        project_errors.extend(exc.diagnostics)
    for path in policy_files(folder):
        pid = path.stem
        old = before.get(pid)
        served = old.policy if old else None
        if rulebook is None:  # nothing can be checked against a broken rulebook: keep all
            errors = tuple(project_errors)
            statuses[pid] = PolicyStatus(pid, shown_path(path), served, errors, _at(old), stamp)
            continue
        try:
            policy = compile_policy_file(path, rulebook)
            policy.durable_handle()  # register and prime now, not during the first decision
        except (PolicyError, EngineFault) as exc:
            errors = tuple(sort_diagnostics(exc.diagnostics))
            refused = old.refused_at if old and old.errors == errors else stamp
            statuses[pid] = PolicyStatus(pid, shown_path(path), served, errors, _at(old), refused)
            continue
        statuses[pid] = PolicyStatus(pid, policy.path, policy, (), stamp)
    specs, conflicts = _merge_specs(statuses)
    for pid, problem in conflicts.items():
        old_status = statuses[pid]
        keep = before.get(pid)
        statuses[pid] = replace(
            old_status,
            policy=keep.policy if keep else None,
            errors=(problem,),
            refused_at=stamp,
        )
    previous_data = previous.file_data if previous else {}
    file_data = {name: _file_data(spec, previous_data.get(name)) for name, spec in specs.items()}
    return PolicySet(
        statuses,
        specs,
        file_data,
        tuple(project_errors),
        fingerprint(folder, _deps(specs)),
    )


def _at(status: PolicyStatus | None) -> float:
    return status.loaded_at if status else 0.0


def _merge_specs(
    statuses: Mapping[str, PolicyStatus],
) -> tuple[dict[str, DatasetSpec], dict[str, Diagnostic]]:
    """One spec per data set (the find() indexes of every policy that reads it); a policy
    that declares a data set differently from an earlier one is refused."""
    specs: dict[str, DatasetSpec] = {}
    keys: dict[str, set[tuple[str, ...]]] = {}
    conflicts: dict[str, Diagnostic] = {}
    for pid in sorted(statuses):
        policy = statuses[pid].policy
        if policy is None:
            continue
        for name, spec in policy.datasets.items():
            first = specs.get(name)
            if first is None:
                specs[name] = spec
                keys[name] = set(spec.find_keys)
            elif first.schema_path != spec.schema_path or dict(first.match) != dict(spec.match):
                conflicts[pid] = Diagnostic(
                    "data_conflict",
                    Msg(
                        "data set '{name}' is declared differently here and at {where}",
                        name=name,
                        where=str(first.location),
                    ),
                    spec.location,
                )
            else:
                keys[name].update(spec.find_keys)
    merged = {n: replace(s, find_keys=tuple(sorted(keys[n]))) for n, s in specs.items()}
    return merged, conflicts


def _file_data(spec: DatasetSpec, previous: FileData | None) -> FileData:
    if spec.source_path is None:
        return FileData(None, None)
    try:
        st = Path(spec.source_path).stat()
        stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    if previous is not None and stamp is not None and previous.fingerprint == stamp:
        dataset = previous.dataset
        if dataset is not None and _indexed_for(dataset, spec):
            return previous
    try:
        return FileData(load_dataset(spec), stamp)
    except PolicyError as exc:
        kept = previous.dataset if previous else None
        return FileData(kept, stamp, tuple(exc.diagnostics))


def _indexed_for(dataset: Dataset, spec: DatasetSpec) -> bool:
    for keys in spec.find_keys:
        dataset.prepare_find(keys)
    return dict(dataset.match) == dict(spec.match)


def build_dataset(spec: DatasetSpec, entries: list[Any], version: str | None = None) -> Dataset:
    """An indexed data set from entries already validated against `spec`."""
    dataset = Dataset(spec.name, entries, match=spec.match, version=version)
    for keys in spec.find_keys:
        dataset.prepare_find(keys)
    return dataset


def validate_entries(spec: DatasetSpec, entries: Any) -> Dataset:
    """Entries given through the API, checked against the data set's schema.

    PolicyError's diagnostics point into the request body: `/entries/3/phone`."""
    if not isinstance(entries, list):
        raise PolicyError(
            [Diagnostic("data_invalid", Msg("'entries' must be a list"), pointer="/entries")]
        )
    try:
        dataset = load_dataset(spec, entries=entries, source="request")
    except PolicyError as exc:
        raise PolicyError(
            [
                Diagnostic(d.code, d.message, pointer="/entries" + (d.pointer or ""), hint=d.hint)
                for d in exc.diagnostics
            ]
        ) from None
    return dataset


def apply_data(
    policy_set: PolicySet,
    current: Mapping[str, tuple[str, int]],
    load_version: Any,
    previous: Snapshot | None,
    generation: int,
    data_generation: int,
) -> Snapshot:
    """The snapshot for a policy set and the data versions the API made current.

    `current`: name -> (version, updated_at) from the store; `load_version(name, version)`
    returns the stored entries. A stored version that no longer validates (its schema
    changed) is not served: the file default is, and the error is reported."""
    datasets: dict[str, Dataset] = {}
    info: dict[str, DataInfo] = {}
    errors: dict[str, tuple[Diagnostic, ...]] = {}
    old = previous.datasets if previous else {}
    for name, spec in policy_set.specs.items():
        file_data = policy_set.file_data.get(name)
        if file_data is not None and file_data.errors:
            errors[name] = file_data.errors
        if name in current:
            version, updated = current[name]
            reused = old.get(name)
            if reused is not None and reused.version == version and _indexed_for(reused, spec):
                datasets[name] = reused
                info[name] = DataInfo(name, version, "api", len(reused), updated)
                continue
            stored = load_version(name, version)
            try:
                if stored is None:
                    raise PolicyError(
                        [
                            Diagnostic(
                                "data_missing", Msg("version {version} is gone", version=version)
                            )
                        ]
                    )
                dataset = load_dataset(spec, entries=stored, source=f"stored version {version}")
                datasets[name] = build_dataset(spec, list(dataset.entries), version)
                info[name] = DataInfo(name, version, "api", len(dataset), updated)
                continue
            except PolicyError as exc:
                errors[name] = tuple(exc.diagnostics[:20])
        if file_data is not None and file_data.dataset is not None:
            datasets[name] = file_data.dataset
            info[name] = DataInfo(name, file_data.dataset.version, "file", len(file_data.dataset))
        elif spec.source_path is None:
            empty = build_dataset(spec, [])
            datasets[name] = empty
            info[name] = DataInfo(name, empty.version, "empty", 0)
    return Snapshot(generation, policy_set, datasets, info, data_generation, errors)


def retired(old: Snapshot | None, new: Snapshot) -> list[CompiledPolicy]:
    """Revisions the old snapshot served that the new one does not: close them after the swap."""
    if old is None:
        return []
    keep = {id(p) for p in new.policies.values()}
    return [p for p in old.policies.values() if id(p) not in keep]


def reload_events(old: PolicySet | None, new: PolicySet) -> list[dict[str, Any]]:
    """What changed between two policy sets, for the metrics and the service log."""
    events = []
    before = old.statuses if old else {}
    for pid, status in new.statuses.items():
        prev = before.get(pid)
        prev_rev = prev.policy.revision if prev and prev.policy else None
        if status.errors and (prev is None or prev.errors != status.errors):
            events.append(
                {
                    "policy": pid,
                    "result": "refused",
                    "revision": prev_rev,
                    "errors": [d.to_dict() for d in status.errors],
                    "text": [d.render() for d in status.errors],
                }
            )
        elif not status.errors and status.policy and status.policy.revision != prev_rev:
            events.append(
                {
                    "policy": pid,
                    "result": "loaded",
                    "revision": status.policy.revision,
                    "previous": prev_rev,
                }
            )
    for pid in before:
        if pid not in new.statuses:
            events.append({"policy": pid, "result": "removed", "revision": None})
    return events
