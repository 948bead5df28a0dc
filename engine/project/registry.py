"""What a worker serves: a revision of every policy, its data, and what was refused.

Two sources of what is served, one per way of running the service:

    store (kimari serve): the published revisions, compiled from the sources the store
      keeps; a publication bumps the store's 'policies' generation, which the reloader
      polls -> compile_published -> PolicySet
    files (kimari serve --watch, a one-person sandbox): the policy files as saved
      files --fingerprint (mtimes)--> changed? --compile what changed--> PolicySet

    PolicySet + data sets (the revision's defaults, or the versions PUT through the API)
      --> Snapshot (swapped in whole between two groups of decisions)

A Snapshot is immutable: a decision runs entirely on the snapshot it started with, so
every worker serves one revision per policy at a time. The reloader thread compiles and
registers durable rulesets in the background; the worker's deciding thread swaps the
snapshot between decisions and then closes the revisions nothing serves any more.

Files: the fingerprint is taken BEFORE compiling, so an edit saved during a compile is
seen by the next check (and compiled then); only the files whose inputs changed are
compiled again. An edit that does not compile is refused per policy: the policy keeps its
last good revision (on a restart, the last one it served, from the store), and every
refused save (told apart by its file's mtime and size) is kept for
`GET /v1/policies/{id}` and sent as a reload event, which the front logs and counts.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy, DatasetSpec
from engine.core.errors import (
    Diagnostic,
    EngineFault,
    PolicyError,
    UsageError,
    sort_diagnostics,
)
from engine.core.i18n import Msg
from engine.core.jsonvalue import format_datetime
from engine.core.suggest import did_you_mean
from engine.project.names import name_clashes
from engine.project.project import (
    RULEBOOK_FILE,
    compile_policy_file,
    load_dataset,
    load_rulebook,
    policy_files,
    shown_path,
)
from engine.source.data import Dataset
from engine.store.backend import Backend
from engine.store.revisions import RevisionStore, newest_data_versions
from engine.store.versions import Store

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
    publication: int | None = None  # store: the publication served
    number: int | None = None  # store: its revision record's number
    # files: (path, mtime_ns, size) of what the served revision was compiled from, to
    # compile a policy again only when one of them changed; None: compile on any change
    inputs: Fingerprint | None = None
    refused_stamp: tuple[int, int] | None = None  # files: which save was refused
    origin: str = "file"  # "file", "store" (published), "last served" (a restart's fallback)

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
    pending: Mapping[str, int] = field(default_factory=dict)  # store: newest pending number
    mode: str = "files"  # "files" (--watch) or "store"

    @functools.cached_property
    def serving(self) -> dict[str, CompiledPolicy]:
        """The revision served per policy (made once: every request looks its policy up)."""
        return {pid: s.policy for pid, s in self.statuses.items() if s.policy is not None}


@dataclass(frozen=True)
class DataInfo:
    name: str
    version: str
    source: str  # "file", "api" or "empty"
    count: int
    updated_at: int | None = None
    # the version put through the API that the store makes current, when it is not served
    # (it no longer fits the entry schema): this one, the default, is served in its place
    unfit: str | None = None


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

    @functools.cached_property
    def served(self) -> dict[str, dict[str, Any]]:
        """What each decision's `policy` names besides id and revision: the publication
        served (store), and `unserved`: a newer revision that is not served, because its
        file was refused (files) or it waits for approval (store)."""
        out: dict[str, dict[str, Any]] = {}
        for pid, status in self.policy_set.statuses.items():
            info: dict[str, Any] = {}
            if status.publication is not None:
                info["publication"] = status.publication
            if status.errors and status.policy is not None:
                since = status.refused_at
                info["unserved"] = {
                    "state": "refused",
                    "since": format_datetime(datetime.fromtimestamp(since, UTC)) if since else None,
                    "errors": sum(d.is_error for d in status.errors),
                }
            pending = self.policy_set.pending.get(pid)
            if pending is not None:
                info["unserved"] = {"state": "pending", "revision": f"{pid}@{pending}"}
            if info:
                out[pid] = info
        return out


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


def deps(specs: Mapping[str, DatasetSpec]) -> list[str]:
    """The data sets' schema and source files: an edit of them is an edit too."""
    return [p for s in specs.values() for p in (s.schema_path, s.source_path) if p]


Fallback = Callable[[str], CompiledPolicy | None]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _inputs(path: Path, policy: CompiledPolicy, seen: Mapping[str, tuple[int, int]]) -> Fingerprint:
    """(path, mtime_ns, size) of the policy file and of each schema file it read, as they
    were before the compile began (a file outside the fingerprint: as unknown)."""
    files = policy.source.files if policy.source else {}
    names = [path.resolve(), *((path.parent / name).resolve() for name in files)]
    return tuple((str(file), *seen.get(str(file), (-1, -1))) for file in names)


def _unchanged(old: PolicyStatus | None, path: Path, rulebook_same: bool) -> bool:
    if old is None or old.errors or old.policy is None or old.inputs is None:
        return False
    if not rulebook_same:
        return False
    return all(_stamp(Path(p)) == (m, s) for p, m, s in old.inputs)


def compile_set(
    folder: Path,
    previous: PolicySet | None,
    *,
    seen: Fingerprint | None = None,
    fallback: Fallback | None = None,
) -> PolicySet:
    """Compile the policy files that changed; a file that fails keeps its previous revision
    (or, with none yet, `fallback(policy_id)`: the last revision served before a restart).

    `seen`: the fingerprint taken before this compile began (else taken now, first): the
    set carries it, so a save made while compiling differs from it and is compiled next."""
    seen = (
        seen if seen is not None else fingerprint(folder, deps(previous.specs if previous else {}))
    )
    stamp = time.time()
    before = previous.statuses if previous else {}
    statuses: dict[str, PolicyStatus] = {}
    project_errors: list[Diagnostic] = []
    rulebook: dict[str, str] | None = None
    rulebook_path = folder / RULEBOOK_FILE
    try:
        rulebook = load_rulebook(rulebook_path)
    except PolicyError as exc:
        project_errors.extend(exc.diagnostics)
    rulebook_same = previous is not None and _rulebook_stamp(previous) == _stamp(rulebook_path)
    before_compile = {str(Path(p).resolve()): (m, size) for p, m, size in seen}
    for path in policy_files(folder):
        pid = path.stem
        old = before.get(pid)
        served = old.policy if old else None
        if rulebook is None:  # nothing can be checked against a broken rulebook: keep all
            errors = tuple(project_errors)
            statuses[pid] = PolicyStatus(pid, shown_path(path), served, errors, _at(old), stamp)
            continue
        if _unchanged(old, path, rulebook_same):
            assert old is not None
            statuses[pid] = old
            continue
        file_stamp = _stamp(path)
        try:
            policy = compile_policy_file(path, rulebook)
            policy.durable_handle()  # register and prime now, not during the first decision
        except (PolicyError, EngineFault) as exc:
            if old is not None and _stamp(path) != file_stamp:
                # saved again while it compiled: these errors may be of either save, and a
                # refusal reported under the wrong stamp is reported twice; the fingerprint
                # taken before this compile has moved, so the next turn compiles it as it is
                statuses[pid] = old
                continue
            errors = tuple(sort_diagnostics(exc.diagnostics))
            same = old is not None and old.errors == errors and old.refused_stamp == file_stamp
            refused = old.refused_at if same and old else stamp
            origin = old.origin if old else "file"
            if served is None and fallback is not None:
                served = fallback(pid)
                origin = "last served" if served is not None else origin
            statuses[pid] = PolicyStatus(
                pid,
                shown_path(path),
                served,
                errors,
                _at(old),
                refused,
                refused_stamp=file_stamp,
                origin=origin,
            )
            continue
        statuses[pid] = PolicyStatus(
            pid, policy.path, policy, (), stamp, inputs=_inputs(path, policy, before_compile)
        )
    specs, conflicts = _merge_specs(statuses)
    conflicts.update(_clashes(statuses, before))
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
    known = {str(p) for p, _, _ in seen}
    missing = [p for p in deps(specs) if str(p) not in known]
    if missing:  # data files first read now: their state before this compile is unknown
        seen = tuple(sorted((*seen, *((p, -1, -1) for p in missing))))
    return PolicySet(
        statuses,
        specs,
        file_data,
        tuple(project_errors),
        (*seen, ("rulebook", *(_stamp(rulebook_path) or (-1, -1)))),
    )


def _rulebook_stamp(policy_set: PolicySet) -> tuple[int, int] | None:
    for item in policy_set.fingerprint:
        if item[0] == "rulebook":
            return None if item[1] == -1 else (item[1], item[2])
    return None


def compile_published(
    store: Store, revisions: RevisionStore, previous: PolicySet | None
) -> PolicySet:
    """The published revision of every policy, compiled from the store (those already
    compiled are kept); a published revision that does not compile here keeps the one
    served before, refused with its errors."""
    from engine.project.revisions import compile_stored

    generations = revisions.generations()
    published = revisions.published()
    before = previous.statuses if previous else {}
    stamp = time.time()
    statuses: dict[str, PolicyStatus] = {}
    read: list[tuple[int, Mapping[str, str]]] = []  # (publication, its data versions)
    for pid, publication in sorted(published.items()):
        old = before.get(pid)
        record = revisions.record(pid, publication.number)
        read.append((publication.id, record.data if record else {}))
        if (
            old is not None
            and old.policy is not None
            and old.policy.revision == publication.revision
        ):
            statuses[pid] = replace(
                old, publication=publication.id, number=publication.number, errors=()
            )
            continue
        try:
            policy = compile_stored(store, publication.revision)
            policy.durable_handle()
        except (PolicyError, EngineFault) as exc:
            served = old.policy if old else None
            path = old.path if old else pid
            errors = tuple(sort_diagnostics(exc.diagnostics))
            statuses[pid] = PolicyStatus(
                pid,
                path,
                served,
                errors,
                _at(old),
                stamp,
                publication=old.publication if old else None,
                number=old.number if old else None,
                origin="store",
            )
            continue
        statuses[pid] = PolicyStatus(
            pid,
            policy.path,
            policy,
            (),
            stamp,
            publication=publication.id,
            number=publication.number,
            origin="store",
        )
    specs, conflicts = _merge_specs(statuses)
    conflicts.update(_clashes(statuses, before))
    for pid, problem in conflicts.items():
        keep = before.get(pid)
        statuses[pid] = replace(
            statuses[pid],
            policy=keep.policy if keep else None,
            errors=(problem,),
            refused_at=stamp,
        )
    previous_data = previous.file_data if previous else {}
    data_versions = newest_data_versions(read)
    file_data = {}
    for name, spec in specs.items():
        version = data_versions.get(name)
        file_data[name] = _stored_data(store, spec, version, previous_data.get(name))
    pending = {pid: record.number for pid, record in revisions.pending().items()}
    generation = (
        ("policies", generations.get("policies", 0), 0),
        ("revisions", generations.get("revisions", 0), 0),
    )
    return PolicySet(statuses, specs, file_data, (), generation, pending, "store")


def store_generation(revisions: RevisionStore) -> Fingerprint:
    generations = revisions.generations()
    return (
        ("policies", generations.get("policies", 0), 0),
        ("revisions", generations.get("revisions", 0), 0),
    )


def _stored_data(
    store: Store, spec: DatasetSpec, version: str | None, previous: FileData | None
) -> FileData:
    """A published revision's default data set, from the store."""
    if version is None:
        return FileData(None, None)
    stamp = (0, 0)  # stored: its version says what it is
    if (
        previous is not None
        and previous.dataset is not None
        and previous.dataset.version == version
    ) and _indexed_for(previous.dataset, spec):
        return previous
    stored = store.data_version(spec.name, version)
    if stored is None:
        problem = Diagnostic(
            "data_missing",
            Msg("data set '{name}' version {version} is gone", name=spec.name, version=version),
        )
        return FileData(previous.dataset if previous else None, stamp, (problem,))
    try:
        return FileData(dataset_from_entries(spec, stored.entries, version), stamp)
    except PolicyError as exc:
        return FileData(previous.dataset if previous else None, stamp, tuple(exc.diagnostics[:20]))


def _at(status: PolicyStatus | None) -> float:
    return status.loaded_at if status else 0.0


def _clashes(
    statuses: Mapping[str, PolicyStatus], before: Mapping[str, PolicyStatus]
) -> dict[str, Diagnostic]:
    """Ids that generated clients cannot tell apart (engine/project/names.py); the one
    served before keeps being served."""
    served = {pid for pid, status in before.items() if status.policy is not None}
    return name_clashes({pid: s.policy for pid, s in statuses.items()}, served)


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


def dataset_from_entries(spec: DatasetSpec, entries: list[Any], version: str | None) -> Dataset:
    """A data set of `spec` from stored (or given) entries, validated and normalised as the
    service does when it serves them, under `version` (None: the entries' own)."""
    dataset = load_dataset(
        spec, entries=entries, source=f"stored version {version}", unique=version is None
    )
    return build_dataset(spec, list(dataset.entries), version or dataset.version)


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
    old_specs = previous.policy_set.specs if previous else {}
    for name, spec in policy_set.specs.items():
        file_data = policy_set.file_data.get(name)
        if file_data is not None and file_data.errors:
            errors[name] = file_data.errors
        unfit = None
        if name in current:
            version, updated = current[name]
            reused = old.get(name)
            # reused only if checked against this entry schema: a publication that tightened
            # it left the workers that had the version serving it, the others (restarted)
            # the file's default, the same request answered both ways
            prior = old_specs.get(name)
            same = prior is not None and prior.validator.schema == spec.validator.schema
            if (
                reused is not None
                and reused.version == version
                and same
                and _indexed_for(reused, spec)
            ):
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
                unfit = version
                errors[name] = tuple(exc.diagnostics[:20])
                log.warning(
                    "data set %s: the version %s made current through the API no longer fits "
                    "its entry schema and is not served (the default is): %s",
                    name,
                    version,
                    exc.diagnostics[0].render("en") if exc.diagnostics else "",
                )
        if file_data is not None and file_data.dataset is not None:
            datasets[name] = file_data.dataset
            count = len(file_data.dataset)
            info[name] = DataInfo(name, file_data.dataset.version, "file", count, unfit=unfit)
        elif spec.source_path is None:
            empty = build_dataset(spec, [])
            datasets[name] = empty
            info[name] = DataInfo(name, empty.version, "empty", 0, unfit=unfit)
    return Snapshot(generation, policy_set, datasets, info, data_generation, errors)


def retired(old: Snapshot | None, new: Snapshot) -> list[CompiledPolicy]:
    """Revisions the old snapshot served that the new one does not: close them after the swap."""
    if old is None:
        return []
    keep = {id(p) for p in new.policies.values()}
    return [p for p in old.policies.values() if id(p) not in keep]


def reload_events(old: PolicySet | None, new: PolicySet) -> list[dict[str, Any]]:
    """What changed between two policy sets, for the metrics and the service log: every
    refused save (a new file stamp or new errors), every revision or publication loaded."""
    events = []
    before = old.statuses if old else {}
    for pid, status in new.statuses.items():
        prev = before.get(pid)
        prev_rev = prev.policy.revision if prev and prev.policy else None
        if status.errors and (
            prev is None
            or prev.errors != status.errors
            or prev.refused_stamp != status.refused_stamp
        ):
            events.append(
                {
                    "policy": pid,
                    "result": "refused",
                    "revision": status.policy.revision if status.policy else None,
                    "origin": status.origin,
                    "stamp": list(status.refused_stamp) if status.refused_stamp else None,
                    "errors": [d.to_dict() for d in status.errors],
                    "text": [d.render() for d in status.errors],
                }
            )
        elif (
            not status.errors
            and status.policy
            and (
                status.policy.revision != prev_rev
                or (prev is not None and prev.publication != status.publication)
            )
        ):
            events.append(
                {
                    "policy": pid,
                    "result": "loaded",
                    "revision": status.policy.revision,
                    "previous": prev_rev,
                    "publication": status.publication,
                    # files: which save was loaded (every worker loads the same one)
                    "stamp": list(status.inputs[0][1:]) if status.inputs else None,
                }
            )
    for pid in before:
        if pid not in new.statuses:
            events.append({"policy": pid, "result": "removed", "revision": None})
    return events


def published_snapshot(backend: Backend) -> Snapshot | None:
    """What a worker of `kimari serve` over this store serves: the published revision of
    every policy and the data versions made current through the API; None for a store that
    has published nothing (created by a command, or served with --watch). Reads only: a
    store without the lifecycle's tables is not given them."""
    with backend.read() as session:
        if "publications" not in backend.tables(session):
            return None
    store, revisions = Store(backend), RevisionStore(backend)
    if not revisions.published():
        return None
    policy_set = compile_published(store, revisions, None)
    return apply_data(
        policy_set,
        store.current_data(),
        store.version_entries,
        None,
        1,
        store.fresh_data_generation(),
    )


class ServedCatalog:
    """A FlowEngine's Catalog over what is served: the flow policies and data sets of
    `snapshot()`, read at each call (a worker's current snapshot: a hot reload applies to
    the next event)."""

    def __init__(self, snapshot: Callable[[], Snapshot], hint: Msg | None = None) -> None:
        self._snapshot = snapshot
        self._hint = hint  # for a policy that is not served: how it would be

    def policy(self, policy_id: str) -> CompiledPolicy:
        policies = self._snapshot().policies
        found = policies.get(policy_id)
        if found is None:
            raise UsageError(
                [
                    Diagnostic(
                        "unknown_policy",
                        Msg("no policy '{id}'", id=policy_id),
                        hint=self._hint or did_you_mean(policy_id, policies),
                    )
                ]
            )
        return found

    def data_for(self, policy: CompiledPolicy) -> dict[str, Dataset]:
        return self._snapshot().data_for(policy)
