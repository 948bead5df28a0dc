"""Impact: what a draft would change, by replaying real decisions through both revisions.

    rows (the decision log of a policy, or a JSON Lines file)
      --chunks--> processes (each compiled both revisions once)
          per row: decide(before) and decide(after) with the row's facts, settings and
                   `at`, each with the data-set versions the logged decision used
          --> a Tally of the chunk (counts, transitions, a few examples)
      --merge--> the report

Both sides decide through the one pipeline (runtime.evaluate.decide), with the data sets
the live decision read (their versions are in the log, their entries in the store), so
a difference between them is the draft's doing, never a data set updated since.
`--data NAME=FILE` is the other question: the same revision, with a new data set on the
`after` side only ("which orders would the new blacklist hold?").

Per row: `changed` (the outcome differs), `rules_only` (the same outcome by other rules),
`reasons_only` (the same outcome by the same rules, but other reasons: a code, a message or
an action worded otherwise, what a customer or an operator reads), `unchanged`, `invalid`
(the facts no longer pass the draft's facts schema: reported with their pointer, not a
crash), or `failed` (either side raised; with the error). A row logged by the `before`
revision itself is also checked against what was logged: `not_reproduced` counts the rows
where deciding again did not give the logged answer (it should be 0).

A flow logs no decision: what a revision of it changes is its entities in the store. Its
report adds `entities` (`flow_entities`): those in a state the draft no longer has or makes
abolished (stranded: no event can move them), those in states whose allowed events change,
and, on a bounded number of them, the stored facts the draft's entity schema refuses.

Streaming: the parent sends ranges of the log's sequence numbers (or chunks of lines of
a file, a few in flight at a time); each process reads its rows itself and sends back a
Tally whose size is bounded (capped tables, the first few examples), so memory does not
grow with the log. Examples are kept by sequence number, so the report does not depend on
the order in which chunks finish.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from engine.compile.model import CompiledPolicy, PolicySource
from engine.core.errors import Diagnostic, EngineFault, InputError, KimariError, UsageError
from engine.core.i18n import Msg, os_reason
from engine.core.jsonvalue import TooLong, dumps, loads_exact, loads_logged, to_json_value
from engine.core.pools import (
    STUCK_SECONDS,
    PoolWatch,
    WorkerStopped,
    hold_tasks,
    ignore_sigint,
    sigint_held,
    stop_pool,
)
from engine.flow.model import FlowSpec, flow_of
from engine.project.kinds import compile_any
from engine.project.registry import dataset_from_entries
from engine.runtime.decision import Decision
from engine.runtime.evaluate import decide
from engine.source.data import Dataset
from engine.source.yaml import parse_yaml

CHUNK_SEQS = 4096  # log sequence numbers per task
CHUNK_LINES = 2048  # file lines per task
MAX_TRANSITIONS = 200  # distinct (from, to) pairs kept per outcome field
MAX_KINDS = 100  # distinct invalid/failed kinds kept
IDS_PER_KIND = 5
REASON_FIELDS_HIDDEN = ("rule", "refs")  # a reason's fields no one reads as its wording
ENTITY_IDS = 5  # entity ids named per state, or per kind of refused facts
FACTS_CHECKED = 2000  # stored facts validated against the draft's entity schema, at most
FACTS_PAGE = 500  # entities read at a time while they are
Progress = Callable[[int, int | None], bool]  # (done, total) -> True: stop


@dataclass(frozen=True)
class Side:
    """One revision to replay on, as every process receives it (picklable)."""

    label: str
    policy_id: str
    revision: str
    path: str
    source: PolicySource
    defaults: Mapping[str, str] = field(default_factory=dict)  # data set -> version
    inline: Mapping[str, tuple[str, list[Any]]] = field(default_factory=dict)  # name -> (v, e)
    overrides: Mapping[str, tuple[str, list[Any]]] = field(default_factory=dict)  # --data
    number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "revision": self.revision}
        if self.number is not None:
            out["number"] = self.number
        if self.overrides:
            out["data"] = {name: label for name, (label, _) in self.overrides.items()}
        return out


@dataclass(frozen=True)
class Plan:
    """What to replay: the log of a policy (a window of it) or a file; which rows."""

    policy_id: str
    store: str | None = None  # the store: the log and the data versions
    since_ms: int | None = None
    until_ms: int | None = None
    file: str | None = None  # JSON Lines instead of the log
    sample: int | None = None  # about this many rows, spread over the window
    backend: str = "durable"
    list_limit: int = 100  # changed decisions listed in the report
    explain: int = 3  # of which this many with both explanations side by side


@dataclass
class Row:
    seq: int
    decision_id: str
    revision: str | None
    at: str | None
    facts: Any
    settings: Any
    versions: Mapping[str, str]
    logged_outcome: str | None = None
    logged_fired: list[str] | None = None


# -- the tally of a chunk, merged into the report ------------------------------------------
@dataclass
class Tally:
    scanned: int = 0
    replayed: int = 0
    changed: int = 0
    unchanged: int = 0
    rules_only: int = 0
    reasons_only: int = 0
    invalid: int = 0
    failed: int = 0
    not_reproduced: int = 0
    transitions: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    reason_rules: Counter[str] = field(default_factory=Counter)  # rule -> decisions
    newly_fire: Counter[str] = field(default_factory=Counter)
    stop_firing: Counter[str] = field(default_factory=Counter)
    invalid_kinds: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    failed_kinds: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    changes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    reason_changes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    examples: list[tuple[int, Row]] = field(default_factory=list)
    not_reproduced_ids: list[str] = field(default_factory=list)

    def merge(self, other: Tally, list_limit: int, explain: int) -> None:
        for name in (
            "scanned",
            "replayed",
            "changed",
            "unchanged",
            "rules_only",
            "reasons_only",
            "invalid",
            "failed",
            "not_reproduced",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reason_rules.update(other.reason_rules)
        for name, counts in other.transitions.items():
            mine = self.transitions.setdefault(name, Counter())
            for pair, n in counts.items():
                _count(mine, pair, n)
        self.newly_fire.update(other.newly_fire)
        self.stop_firing.update(other.stop_firing)
        for mine, theirs in (
            (self.invalid_kinds, other.invalid_kinds),
            (self.failed_kinds, other.failed_kinds),
        ):
            for key, (n, ids) in theirs.items():
                _kind(mine, key, ids, n)
        self.changes = sorted(self.changes + other.changes, key=lambda c: c[0])[:list_limit]
        self.reason_changes = sorted(
            self.reason_changes + other.reason_changes, key=lambda c: c[0]
        )[:list_limit]
        self.examples = sorted(self.examples + other.examples, key=lambda e: e[0])[:explain]
        self.not_reproduced_ids = (self.not_reproduced_ids + other.not_reproduced_ids)[:20]


def _count(counts: Counter[tuple[str, str]], pair: tuple[str, str], n: int = 1) -> None:
    if pair in counts or len(counts) < MAX_TRANSITIONS:
        counts[pair] += n
    else:
        counts[("(other)", "(other)")] += n


def _kind(kinds: dict[tuple[str, str, str], list[Any]], key: Any, ids: list[str], n: int) -> None:
    found = kinds.get(key)
    if found is None:
        if len(kinds) >= MAX_KINDS:
            key = ("(other)", "", "")
            found = kinds.setdefault(key, [0, []])
        else:
            found = kinds[key] = [0, []]
    found[0] += n
    found[1] = (found[1] + ids)[:IDS_PER_KIND]


# -- one process: both revisions compiled once ----------------------------------------------
class Replayer:
    def __init__(
        self,
        side: Side,
        store: str | None,
        backend: str,
        swaps: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.side = side
        self.backend = backend
        # data set -> (the published default, this side's): a decision logged with the
        # default it replaced is decided with this side's (default_swaps)
        self.swaps = dict(swaps or {})
        document = parse_yaml(side.source.text, side.path)
        self.policy: CompiledPolicy = compile_any(document, None, side.source.files)
        if backend == "durable":
            self.policy.durable_handle()
        self._store_path = store
        self._store: Any = None
        self._cache: OrderedDict[tuple[str, str], Dataset] = OrderedDict()
        self._overrides = {
            name: dataset_from_entries(self.policy.datasets[name], entries, None)
            for name, (_, entries) in side.overrides.items()
            if name in self.policy.datasets
        }

    def close(self) -> None:
        self.policy.close()
        if self._store is not None:
            self._store.close()

    def _stored(self, name: str, version: str) -> Dataset:
        key = (name, version)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        spec = self.policy.datasets[name]
        inline = self.side.inline.get(name)
        if inline is not None and inline[0] == version:
            dataset = dataset_from_entries(spec, inline[1], version)
        else:
            stored = self._open().data_version(name, version) if self._store_path else None
            if stored is None:
                raise KimariError(
                    [
                        Diagnostic(
                            "data_version_unavailable",
                            Msg(
                                "data set '{name}' version {version} is not in the store",
                                name=name,
                                version=version,
                            ),
                        )
                    ]
                )
            dataset = dataset_from_entries(spec, stored.entries, version)
        self._cache[key] = dataset
        while len(self._cache) > 32:
            self._cache.popitem(last=False)
        return dataset

    def _open(self) -> Any:
        if self._store is None:
            from engine.store.versions import Store

            assert self._store_path is not None
            self._store = Store(self._store_path)
        return self._store

    def data_for(self, versions: Mapping[str, str]) -> dict[str, Dataset]:
        data = {}
        for name in self.policy.datasets:
            override = self._overrides.get(name)
            if override is not None:
                data[name] = override
                continue
            version = versions.get(name) or self.side.defaults.get(name)
            swap = self.swaps.get(name)
            if swap is not None and version == swap[0]:
                version = swap[1]
            if version is None:
                spec = self.policy.datasets[name]
                data[name] = Dataset(name, [], match=spec.match)
            else:
                data[name] = self._stored(name, version)
        return data

    def decide(self, row: Row, *, explain: bool = False, backend: str | None = None) -> Decision:
        return decide(
            self.policy,
            row.facts,
            at=row.at,
            settings=row.settings,
            data=self.data_for(row.versions),
            backend=backend or self.backend,
            explain=explain,
            decision_id=row.decision_id,
        )


_state: dict[str, Any] = {}


def _init(before: Side, after: Side, plan: Plan) -> None:
    _state["before"] = Replayer(before, plan.store, plan.backend)
    _state["after"] = Replayer(after, plan.store, plan.backend, default_swaps(before, after))
    _state["plan"] = plan


def default_swaps(before: Side, after: Side) -> dict[str, tuple[str, str]]:
    """The data sets whose file default the after side changes: name -> (before's, after's).
    A decision logged with before's default would be served after's once after is
    published (a version put through the API stays current over either default): it is
    replayed with it. Without this, a revision whose only change is its default data
    showed 0 decisions changed, whatever the new data held."""
    out = {}
    for name, version in after.defaults.items():
        was = before.defaults.get(name)
        if was is not None and was != version and name not in after.overrides:
            out[name] = (was, version)
    return out


def _pool_init(holders: Any, before: Side, after: Side, plan: Plan) -> None:
    """A pool's process: Ctrl-C is the parent's, its tasks claimed in `holders`
    (engine/core/pools.py), then its replayers."""
    ignore_sigint()
    hold_tasks(holders)
    _init(before, after, plan)


def _close_state() -> None:
    for key in ("before", "after"):
        replayer = _state.pop(key, None)
        if replayer is not None:
            replayer.close()
    log = _state.pop("log", None)
    if log is not None:
        log.close()


# -- rows ----------------------------------------------------------------------------------
def _selected(decision_id: str, stride: int) -> bool:
    return stride <= 1 or zlib.crc32(decision_id.encode()) % stride == 0


def _log_rows(task: tuple[Any, ...]) -> Iterator[Row | None]:
    _, lo, hi, stride = task
    plan: Plan = _state["plan"]
    log = _state.get("log")
    if log is None:
        from engine.store.decisions import DecisionLog

        assert plan.store is not None
        log = _state["log"] = DecisionLog(plan.store)
    for seq, decision_id, revision, at, request, outcome, fired, response in log.replay_rows(
        plan.policy_id, plan.since_ms, plan.until_ms, lo, hi
    ):
        if not _selected(decision_id, stride):
            yield None
            continue
        parsed = loads_logged(request)  # its numbers as the live decision read them
        body = orjson.loads(response)
        yield Row(
            seq,
            decision_id,
            revision,
            at,
            parsed.get("facts"),
            parsed.get("settings"),
            body.get("data") or {},
            outcome,
            orjson.loads(fired),
        )


def row_of_line(number: int, line: bytes) -> Row:
    """A line of a file: a logged decision (`kimari log --format jsonl`), or a request like
    the HTTP body ({"facts", "at", "settings"}), replayed with each side's default data."""
    try:
        item = loads_logged(line)  # a logged request's numbers as its decision read them
    except orjson.JSONDecodeError as exc:
        raise InputError(
            [
                Diagnostic(
                    "json_invalid",
                    Msg("line {line}: invalid JSON: {reason}", line=number, reason=str(exc)),
                )
            ]
        ) from None
    except TooLong as exc:
        found = exc.diagnostic()
        reason = Msg("line {line}: {reason}", line=number, reason=found.message)
        raise InputError([Diagnostic(found.code, reason, pointer=found.pointer)]) from None
    if not isinstance(item, dict):
        raise InputError(
            [Diagnostic("request_invalid", Msg("line {line}: not a JSON object", line=number))]
        )
    decision_id = str(item.get("decision_id") or f"line-{number}")
    if isinstance(item.get("request"), dict):  # a logged decision
        request, response = item["request"], item.get("response") or {}
        outcome = item.get("outcome")
        return Row(
            number,
            decision_id,
            item.get("revision"),
            item.get("at"),
            request.get("facts"),
            request.get("settings"),
            response.get("data") or {},
            dumps(outcome).decode() if outcome is not None else None,
            item.get("fired"),
        )
    return Row(
        number, decision_id, None, item.get("at"), item.get("facts"), item.get("settings"), {}
    )


def _line_rows(task: tuple[Any, ...]) -> Iterator[Row | None]:
    _, lines, stride = task
    for number, line in lines:
        decision_id = f"line-{number}"
        if not _selected(decision_id, stride):
            yield None
            continue
        try:
            yield row_of_line(number, line)
        except InputError as exc:
            yield Row(number, decision_id, None, None, _Unreadable(exc), None, {})


class _Unreadable:
    def __init__(self, error: InputError) -> None:
        self.error = error


# -- one chunk -----------------------------------------------------------------------------
def _error_key(exc: KimariError) -> tuple[str, str, str]:
    first = exc.diagnostics[0] if exc.diagnostics else None
    code = first.code if first else exc.default_code
    return code, (first.pointer or "") if first else "", first.message if first else str(exc)


def _outcome_changes(before: Decision, after: Decision) -> dict[str, Any]:
    old, new = to_json_value(before.outcome), to_json_value(after.outcome)
    fields = [*old, *(k for k in new if k not in old)]
    return {
        name: (old.get(name, "(absent)"), new.get(name, "(absent)"))
        for name in fields
        if old.get(name, "(absent)") != new.get(name, "(absent)")
    }


def replay_chunk(task: tuple[Any, ...]) -> Tally:
    plan: Plan = _state["plan"]
    before: Replayer = _state["before"]
    after: Replayer = _state["after"]
    tally = Tally()
    rows = _log_rows(task) if task[0] == "log" else _line_rows(task)
    for row in rows:
        tally.scanned += 1
        if row is not None:  # None: scanned, but not in the sample
            _replay(row, before, after, tally, plan)
    return tally


def _replay(row: Row, before: Replayer, after: Replayer, tally: Tally, plan: Plan) -> None:
    tally.replayed += 1
    if isinstance(row.facts, _Unreadable):
        tally.failed += 1
        _kind(tally.failed_kinds, ("input", *_error_key(row.facts.error)), [row.decision_id], 1)
        return
    old = new = None
    try:
        old = before.decide(row)
    except KimariError as exc:
        old_error = exc
    except Exception as exc:  # a bug must not end the replay; it is reported
        old_error = KimariError(f"{type(exc).__name__}: {exc}", code="internal_error")
    try:
        new = after.decide(row)
    except InputError as exc:
        if old is not None:
            tally.invalid += 1
            _kind(tally.invalid_kinds, _error_key(exc), [row.decision_id], 1)
            return
        new_error: KimariError = exc
    except KimariError as exc:
        new_error = exc
    except Exception as exc:
        new_error = KimariError(f"{type(exc).__name__}: {exc}", code="internal_error")
    if old is None or new is None:
        tally.failed += 1
        which = "both" if old is None and new is None else ("before" if old is None else "after")
        error = old_error if old is None else new_error
        _kind(tally.failed_kinds, (which, *_error_key(error)), [row.decision_id], 1)
        return
    _check_reproduced(row, before, old, tally)
    same_outcome = dumps(old.outcome) == dumps(new.outcome)
    if same_outcome and old.fired == new.fired:
        differ = reason_changes(old.reasons, new.reasons)
        if not differ:
            tally.unchanged += 1
            return
        tally.reasons_only += 1
        tally.reason_rules.update({item["rule"] for item in differ})
        if len(tally.reason_changes) < plan.list_limit:
            said = {"decision_id": row.decision_id, "at": to_json_value(old.at), "reasons": differ}
            tally.reason_changes.append((row.seq, said))
        return
    for rule in new.fired:
        if rule not in old.fired:
            tally.newly_fire[rule] += 1
    for rule in old.fired:
        if rule not in new.fired:
            tally.stop_firing[rule] += 1
    if same_outcome:
        tally.rules_only += 1
        return
    tally.changed += 1
    fields = _outcome_changes(old, new)
    for name, (a, b) in fields.items():
        _count(tally.transitions.setdefault(name, Counter()), (_short(a), _short(b)))
    if len(tally.changes) < plan.list_limit:
        tally.changes.append(
            (
                row.seq,
                {
                    "decision_id": row.decision_id,
                    "at": to_json_value(old.at),
                    "before": {k: a for k, (a, _) in fields.items()},
                    "after": {k: b for k, (_, b) in fields.items()},
                    "fired": {"before": old.fired, "after": new.fired},
                },
            )
        )
    if len(tally.examples) < plan.explain:
        tally.examples.append((row.seq, row))


def reason_changes(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The reasons of two decisions that read otherwise, each as {rule, before, after}
    (None: the side gives no such reason); [] when they read the same. Reasons are paired
    by their rule (and their order among that rule's); `rule` and `refs` are no wording."""

    def keyed(reasons: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
        out: dict[tuple[str, int], dict[str, Any]] = {}
        seen: Counter[str] = Counter()
        for reason in reasons:
            rule = str(reason.get("rule", ""))
            shown = {k: v for k, v in reason.items() if k not in REASON_FIELDS_HIDDEN}
            out[(rule, seen[rule])] = to_json_value(shown)
            seen[rule] += 1
        return out

    if dumps(old) == dumps(new):  # the usual case, at the cost of two serialisations
        return []
    before, after = keyed(old), keyed(new)
    out = []
    for key in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(key), after.get(key)
        if dumps(a) != dumps(b):
            out.append({"rule": key[0], "before": a, "after": b})
    return out


def _check_reproduced(row: Row, before: Replayer, old: Decision, tally: Tally) -> None:
    """A row logged by the `before` revision, replayed on its own data, must come out as
    logged (decisions are reproducible); one that does not is counted and named."""
    if row.revision != before.side.revision or row.logged_outcome is None:
        return
    if before.side.overrides:
        return
    if dumps(old.outcome).decode() != row.logged_outcome or (
        row.logged_fired is not None and old.fired != row.logged_fired
    ):
        tally.not_reproduced += 1
        if len(tally.not_reproduced_ids) < 20:
            tally.not_reproduced_ids.append(row.decision_id)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


# -- the run ---------------------------------------------------------------------------------
def _log_tasks(plan: Plan) -> tuple[int, Iterator[tuple[Any, ...]]]:
    from engine.store.decisions import DecisionLog

    if plan.store is None or not _exists(plan.store):
        raise UsageError(
            [Diagnostic("store_missing", Msg("no decision log at {path}", path=plan.store))]
        )
    log = DecisionLog(plan.store)
    try:
        lo, hi, total = log.replay_span(plan.policy_id, plan.since_ms, plan.until_ms)
    finally:
        log.close()
    stride = _stride(total, plan.sample)

    def tasks() -> Iterator[tuple[Any, ...]]:
        if total == 0:
            return
        for start in range(lo, hi + 1, CHUNK_SEQS):
            yield ("log", start, min(start + CHUNK_SEQS, hi + 1), stride)

    return total, tasks()


def _exists(store: str) -> bool:
    """Whether the store is there (a SQLite file; a PostgreSQL server says so when asked)."""
    from engine.store.backend import SQLITE, parse_location

    location = parse_location(store)
    return location.kind != SQLITE or Path(location.target).is_file()


def _stride(total: int, sample: int | None) -> int:
    if not sample or sample >= total:
        return 1
    return max(1, round(total / sample))


def _file_tasks(plan: Plan, source: IO[bytes]) -> tuple[int | None, Iterator[tuple[Any, ...]]]:
    total: int | None
    try:
        position = source.tell()
        total = sum(1 for line in source if line.strip())
        source.seek(position)
    except (OSError, ValueError):
        total = None
    stride = _stride(total or 0, plan.sample) if total else 1

    def tasks() -> Iterator[tuple[Any, ...]]:
        chunk: list[tuple[int, bytes]] = []
        for number, line in enumerate(source, start=1):
            if line.strip():
                chunk.append((number, line))
            if len(chunk) == CHUNK_LINES:
                yield ("lines", chunk, stride)
                chunk = []
        if chunk:
            yield ("lines", chunk, stride)

    return total, tasks()


def run(
    before: Side,
    after: Side,
    plan: Plan,
    *,
    workers: int | None = None,
    on_progress: Progress | None = None,
    max_changed: int | None = None,
) -> dict[str, Any]:
    """Replay and report. `on_progress(done, total)` may return True to stop (cancelled)."""
    started = time.perf_counter()
    source: IO[bytes] | None = None
    if plan.file == "-":  # `kimari log --format jsonl | kimari impact --from -`
        total, tasks = _file_tasks(plan, sys.stdin.buffer)
    elif plan.file is not None:
        try:
            source = Path(plan.file).open("rb")  # noqa: SIM115  # closed below
        except OSError as exc:
            raise UsageError(
                [
                    Diagnostic(
                        "file_unreadable",
                        Msg("cannot read {path}: {reason}", path=plan.file, reason=os_reason(exc)),
                    )
                ]
            ) from None
        total, tasks = _file_tasks(plan, source)
    else:
        total, tasks = _log_tasks(plan)
    tally = Tally()
    cancelled = False
    try:
        count = workers or os.cpu_count() or 1
        small = total is not None and total <= CHUNK_SEQS
        if count <= 1 or small:
            cancelled = _run_here(before, after, plan, tasks, tally, total, on_progress)
        else:
            cancelled = _run_pool(before, after, plan, tasks, tally, total, on_progress, count)
        samples = _explain(before, after, plan, tally)
        stored = entities(before, after, plan)
    finally:
        if source is not None:
            source.close()
    seconds = time.perf_counter() - started
    out = report(before, after, plan, tally, seconds, cancelled, max_changed, samples)
    if stored is not None:
        out["entities"] = stored
    return out


def _run_here(
    before: Side,
    after: Side,
    plan: Plan,
    tasks: Iterator[tuple[Any, ...]],
    tally: Tally,
    total: int | None,
    on_progress: Progress | None,
) -> bool:
    _init(before, after, plan)
    try:
        for task in tasks:
            tally.merge(replay_chunk(task), plan.list_limit, plan.explain)
            if on_progress is not None and on_progress(tally.scanned, total):
                return True
    finally:
        _close_state()
    return False


def _run_pool(
    before: Side,
    after: Side,
    plan: Plan,
    tasks: Iterator[tuple[Any, ...]],
    tally: Tally,
    total: int | None,
    on_progress: Progress | None,
    count: int,
) -> bool:
    """Chunks across `count` processes, at most two per process in flight (the file's lines
    are read as the chunks go, not all at once)."""
    context = multiprocessing.get_context("spawn")
    pool: Any = None
    in_flight: list[Any] = []
    cancelled = False
    try:
        # Ctrl-C: the processes ignore it; this one stops them (bounded) and the
        # KeyboardInterrupt goes on up
        with sigint_held():
            watch = PoolWatch.start(context, count, _pool_init, (before, after, plan))
            pool = watch.pool
        for task in tasks:
            in_flight.append(watch.submit(replay_chunk, task))
            while len(in_flight) >= 2 * count:
                cancelled = _collect(in_flight, watch, tally, plan, total, on_progress)
                if cancelled:
                    return True
        while in_flight:
            cancelled = _collect(in_flight, watch, tally, plan, total, on_progress)
            if cancelled:
                return True
        pool.close()
    except WorkerStopped as stopped:
        stop_pool(pool, STUCK_SECONDS)
        pool = None
        message = Msg(
            "a replay process stopped ({reason}): nothing is reported", reason=stopped.reason()
        )
        raise EngineFault([Diagnostic("worker_stopped", message)]) from None
    finally:
        if pool is not None:
            stop_pool(pool)
    return False


def _collect(
    in_flight: list[Any],
    watch: PoolWatch,
    tally: Tally,
    plan: Plan,
    total: int | None,
    on_progress: Progress | None,
) -> bool:
    """Wait for the first chunk that is finished (any of them), merge it."""
    while True:
        for index, result in enumerate(in_flight):
            if result.ready():
                in_flight.pop(index)
                tally.merge(watch.taken(result), plan.list_limit, plan.explain)
                return on_progress is not None and on_progress(tally.scanned, total)
        watch.wait(in_flight)  # WorkerStopped: a chunk that would never come


def _explain(before: Side, after: Side, plan: Plan, tally: Tally) -> list[dict[str, Any]]:
    """The first changed decisions decided again with explanations, both sides."""
    if not tally.examples:
        return []
    _init(before, after, plan)
    try:
        out = []
        for _, row in tally.examples:
            item: dict[str, Any] = {"decision_id": row.decision_id, "at": row.at}
            for name in ("before", "after"):
                try:
                    decision = _state[name].decide(row, explain=True)
                    item[name] = {
                        "outcome": to_json_value(decision.outcome),
                        "fired": decision.fired,
                        "reasons": to_json_value(decision.reasons),
                        "explanation": decision.explanation,
                    }
                except KimariError as exc:
                    item[name] = {"error": [d.to_dict() for d in exc.diagnostics]}
            out.append(item)
        return out
    finally:
        _close_state()


def report(
    before: Side,
    after: Side,
    plan: Plan,
    tally: Tally,
    seconds: float,
    cancelled: bool,
    max_changed: int | None,
    samples: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    source: dict[str, Any] = (
        {"file": plan.file}
        if plan.file
        else {"log": plan.policy_id, "since_ms": plan.since_ms, "until_ms": plan.until_ms}
    )
    if plan.sample:
        source["sample"] = plan.sample
    swaps = default_swaps(before, after)
    return {
        "policy": plan.policy_id,
        "before": before.to_dict(),
        "after": after.to_dict(),
        "data_defaults": [
            {"name": name, "from": was, "to": now} for name, (was, now) in sorted(swaps.items())
        ],
        "source": source,
        "scanned": tally.scanned,
        "replayed": tally.replayed,
        "changed": tally.changed,
        "unchanged": tally.unchanged,
        "rules_only": tally.rules_only,
        "reasons_only": tally.reasons_only,
        "invalid": tally.invalid,
        "failed": tally.failed,
        "not_reproduced": tally.not_reproduced,
        "not_reproduced_ids": tally.not_reproduced_ids,
        "transitions": {
            name: [
                {"from": a, "to": b, "count": n}
                for (a, b), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            ]
            for name, counts in sorted(tally.transitions.items())
        },
        "rules": {
            "newly_fire": dict(tally.newly_fire.most_common()),
            "stop_firing": dict(tally.stop_firing.most_common()),
        },
        "invalid_facts": _kinds(tally.invalid_kinds, ("code", "pointer", "message")),
        "failures": _kinds(tally.failed_kinds, ("side", "code", "pointer", "message")),
        "changes": [change for _, change in tally.changes],
        "changes_listed": len(tally.changes),
        "reason_rules": dict(tally.reason_rules.most_common()),
        "reason_changes": [change for _, change in tally.reason_changes],
        "samples": list(samples),
        "seconds": round(seconds, 2),
        "rate": round(tally.replayed / seconds) if seconds else 0,
        "cancelled": cancelled,
        "max_changed": max_changed,
        "over_limit": max_changed is not None and tally.changed > max_changed,
    }


def _kinds(kinds: Mapping[tuple[Any, ...], list[Any]], names: Sequence[str]) -> list[Any]:
    out = []
    for key, (n, ids) in sorted(kinds.items(), key=lambda item: -item[1][0]):
        values = dict(zip(names, key, strict=False))
        out.append({**values, "count": n, "decisions": ids})
    return out


SUMMARY_REASONS = 5  # decisions whose reasons read otherwise, kept with a revision


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a revision keeps of an impact report: the counts, the largest transitions, the
    first decisions whose reasons read otherwise and, for a flow, its stored entities."""
    out = {
        "before": result["before"],
        "source": result["source"],
        **{
            key: result[key]
            for key in (
                "replayed",
                "changed",
                "unchanged",
                "rules_only",
                "reasons_only",
                "invalid",
                "failed",
            )
        },
        "transitions": {name: pairs[:5] for name, pairs in result["transitions"].items()},
        "rules": result["rules"],
        "reason_rules": result["reason_rules"],
        "reason_changes": result["reason_changes"][:SUMMARY_REASONS],
    }
    if "entities" in result:
        out["entities"] = result["entities"]
    if result.get("data_defaults"):
        out["data_defaults"] = result["data_defaults"]
    return out


# -- a flow: the stored entities a revision would strand or change -------------------------
def flow_spec(side: Side) -> FlowSpec | None:
    """The flow of a side, None when it is no flow (compiled here: the replay's processes
    are gone, and a decision policy is never compiled for this)."""
    document = parse_yaml(side.source.text, side.path)
    if not isinstance(document.data, dict) or document.data.get("kind") != "flow":
        return None
    policy = compile_any(document, None, side.source.files)
    try:
        return flow_of(policy)
    finally:
        policy.close()


def entities(before: Side, after: Side, plan: Plan) -> dict[str, Any] | None:
    """For a flow (either side), what the store's entities of the policy would meet under
    `after` that they do not under `before`; None for a decision policy.

    `stranded`: in a state `after` does not declare (every event: stored_state_unknown) or
    makes abolished (no transition leaves one); `events_changed`: in a state both declare
    whose allowed events differ (a state made final among them); `facts`: stored facts that
    `after`'s entity schema refuses and `before`'s accepts (every event:
    stored_facts_invalid), on at most FACTS_CHECKED entities of the states it keeps, and
    only when the schema changed. Each with counts and the first entity ids."""
    old, new = flow_spec(before), flow_spec(after)
    if old is None and new is None:
        return None
    old_states = old.states if old is not None else {}
    new_states = new.states if new is not None else {}
    out: dict[str, Any] = {
        "total": 0,
        "stranded": 0,
        "removed_states": [],
        "abolished_states": [],
        "events_changed": [],
        "facts": {"schema_changed": False, "checked": 0, "of": 0, "refused": 0, "kinds": []},
    }
    schema_changed = new is not None and (old is None or old.entity.schema != new.entity.schema)
    out["facts"]["schema_changed"] = schema_changed
    store = _entity_store(plan)
    try:
        counts = store.counts(plan.policy_id) if store is not None else {}
        out["total"] = sum(counts.values())

        def item(state: str, **more: Any) -> dict[str, Any]:
            count = counts.get(state, 0)
            ids = store.ids(plan.policy_id, state) if store is not None and count else []
            return {"state": state, "count": count, "entities": ids, **more}

        for state in sorted(counts):
            if state not in new_states:
                if state in old_states:  # not stranded already: the draft's doing
                    out["removed_states"].append(item(state))
            elif new_states[state].abolished and not (
                state in old_states and old_states[state].abolished
            ):
                out["abolished_states"].append(item(state))
        if old is not None and new is not None:
            for state in new_states:
                if state not in old_states or new_states[state].abolished:
                    continue
                was, now = old.allowed_events(state), new.allowed_events(state)
                if was != now:
                    removed = [e for e in was if e not in now]
                    added = [e for e in now if e not in was]
                    out["events_changed"].append(item(state, removed=removed, added=added))
        kept = [s for s in counts if s in new_states and not new_states[s].abolished]
        out["facts"]["of"] = sum(counts[s] for s in kept)
        if schema_changed and store is not None and kept:
            assert new is not None
            _check_facts(store, plan.policy_id, kept, old, new, out["facts"])
    finally:
        if store is not None:
            store.close()
    out["stranded"] = sum(i["count"] for i in out["removed_states"] + out["abolished_states"])
    return out


def _check_facts(
    store: _EntityReader,
    policy_id: str,
    states: Sequence[str],
    old: FlowSpec | None,
    new: FlowSpec,
    facts: dict[str, Any],
) -> None:
    """Validate the stored facts of the first FACTS_CHECKED entities (by id) of `states`:
    those `new` refuses and `old` accepted, counted by their first problem."""
    kinds: dict[tuple[str, str, str], list[Any]] = {}
    checked = refused = 0
    for entity_id, stored in store.facts(policy_id, states, FACTS_CHECKED):
        checked += 1
        try:
            new.entity.validate(stored, pointer="/entity")
            continue
        except InputError as exc:
            key = _error_key(exc)
        if old is not None:
            try:
                old.entity.validate(stored, pointer="/entity")
            except InputError:
                continue  # refused already: not the draft's doing
        refused += 1
        _kind(kinds, key, [entity_id], 1)
    facts["checked"], facts["refused"] = checked, refused
    listed = _kinds(kinds, ("code", "pointer", "message"))
    facts["kinds"] = [
        {**{k: v for k, v in kind.items() if k != "decisions"}, "entities": kind["decisions"]}
        for kind in listed
    ]


class _EntityReader:
    """The flow_entities rows of a store, read only (nothing is migrated or locked)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def close(self) -> None:
        self.backend.close()

    def counts(self, policy_id: str) -> dict[str, int]:
        with self.backend.read() as session:
            if "flow_entities" not in self.backend.tables(session):
                return {}
            rows = session.execute(
                "SELECT state, COUNT(*) FROM flow_entities WHERE policy_id = ? GROUP BY state",
                (policy_id,),
            ).fetchall()
        return {str(state): int(n) for state, n in rows}

    def ids(self, policy_id: str, state: str) -> list[str]:
        with self.backend.read() as session:
            rows = session.execute(
                "SELECT entity_id FROM flow_entities WHERE policy_id = ? AND state = ? "
                "ORDER BY entity_id LIMIT ?",
                (policy_id, state, ENTITY_IDS),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def facts(self, policy_id: str, states: Sequence[str], limit: int) -> Iterator[tuple[str, Any]]:
        """(entity id, stored facts) of the first `limit` entities of `states`, by id."""
        marks = ", ".join("?" for _ in states)
        after, left = "", limit
        while left > 0:
            with self.backend.read() as session:
                rows = session.execute(
                    "SELECT entity_id, facts FROM flow_entities WHERE policy_id = ? "
                    f"AND state IN ({marks}) AND entity_id > ? ORDER BY entity_id LIMIT ?",
                    (policy_id, *states, after, min(left, FACTS_PAGE)),
                ).fetchall()
            for entity_id, text in rows:
                yield str(entity_id), loads_exact(text)
            if len(rows) < min(left, FACTS_PAGE):
                return
            left -= len(rows)
            after = str(rows[-1][0])


def _entity_store(plan: Plan) -> _EntityReader | None:
    """The store's entities, read only; None when there is no store to read."""
    if plan.store is None or not _exists(plan.store):
        return None
    from engine.store.backend import open_backend

    return _EntityReader(open_backend(plan.store, readonly=True))
