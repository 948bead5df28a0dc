"""A revision to look at: from a file being edited, from text sent over HTTP, or from the store.

Every lifecycle step (diff, impact, submit, approve) works on `Candidate`s: the compiled
policy (never registered with durable_rules here: a diff needs none), the text and
schema files it was compiled from, the data sets it reads by default, its test cases,
and, when it is one, its revision record. `resolve` reads what people type:

    published           the revision the service serves (its newest publication)
    3, order-holds@3    revision record number 3 of the policy
    1391dc49735bec1c    a content hash (any revision the store kept, even one never
                        recorded: those served by `kimari serve --watch`), or a prefix
    policies/x.yaml     a policy file (a draft being edited)
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy, DatasetSpec, PolicySource
from engine.core.errors import Diagnostic, Location, PolicyError, UsageError
from engine.core.i18n import Msg, os_reason
from engine.core.jsonvalue import escape_pointer_token, quoted
from engine.core.suggest import did_you_mean
from engine.project.kinds import compile_any
from engine.project.project import (
    RULEBOOK_FILE,
    TESTS_SUFFIX,
    Project,
    compile_policy_file,
    load_dataset,
    load_rulebook,
    shown_path,
)
from engine.project.registry import dataset_from_entries
from engine.source.data import Dataset
from engine.source.yaml import parse_yaml
from engine.store.revisions import RevisionRecord, RevisionStore, newest_data_versions
from engine.store.versions import Store

HASH = re.compile(r"[0-9a-f]{6,16}")
NUMBER = re.compile(r"(?:(?P<policy>[a-z0-9][a-z0-9-]*)@)?(?P<number>[0-9]{1,9})")
# A consulted decision policy as a flow's tests decide it: compiled, with its data sets
Consulted = Mapping[str, tuple[CompiledPolicy, Mapping[str, Dataset]]]


def is_dir(path: Path) -> bool:
    """Whether `path` is a folder; False where is_file would be (never an internal error)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """Whether `path` is a file; False for what names no file the system could open (a
    name too long, a NUL character, a folder it may not look into): a ref typed on the
    command line is never an internal error."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


@dataclass
class Candidate:
    policy: CompiledPolicy
    source: PolicySource
    label: str  # how reports name it: a path, "order-holds@3", ...
    data: dict[str, Dataset] = field(default_factory=dict)  # its default data sets
    tests_source: str | None = None
    tests_path: Path | None = None  # the tests' own file, when it came from a folder
    record: RevisionRecord | None = None

    @property
    def id(self) -> str:
        return self.policy.id

    @property
    def revision(self) -> str:
        return self.policy.revision

    @property
    def data_versions(self) -> dict[str, str]:
        return {name: ds.version for name, ds in sorted(self.data.items())}


def _rulebook_near(folder: Path) -> dict[str, str] | None:
    path = folder / RULEBOOK_FILE
    return load_rulebook(path) if is_file(path) else None


def from_path(path: Path, policy_id: str | None = None) -> Candidate:
    """A policy file as it is now, with its folder's rulebook, data files and test cases."""
    if not is_file(path):
        raise UsageError(
            [Diagnostic("unknown_policy", Msg("no policy file {path}", path=shown_path(path)))]
        )
    policy = compile_policy_file(path, _rulebook_near(path.parent))
    if policy_id is not None and policy.id != policy_id:
        raise UsageError(
            [
                Diagnostic(
                    "policy_mismatch",
                    Msg(
                        "{path} is policy '{found}', not '{wanted}'",
                        path=shown_path(path),
                        found=policy.id,
                        wanted=policy_id,
                    ),
                )
            ]
        )
    assert policy.source is not None
    data = {}
    for name, spec in policy.datasets.items():
        data[name] = load_dataset(spec) if spec.source_path else Dataset(name, [], match=spec.match)
    tests = path.parent / f"{policy.id}{TESTS_SUFFIX}"
    tests_source = _read_tests(tests) if is_file(tests) else None
    return Candidate(
        policy,
        policy.source,
        shown_path(path),
        data,
        tests_source,
        tests if tests_source is not None else None,
    )


def _read_tests(path: Path) -> str:
    """The text of a test file beside a policy; file_unreadable (exit 2) when it cannot be
    read as UTF-8 (a permission, a byte that is no UTF-8), never an internal error."""
    where = Location(shown_path(path), 1, 1)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        message = Msg("cannot read file: {reason}", reason=os_reason(exc))
        raise UsageError([Diagnostic("file_unreadable", message, where)]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        reason = Msg(
            "not UTF-8: byte 0x{byte:02x} at line {line} column {column}",
            byte=raw[exc.start],
            line=line,
            column=column,
        )
        message = Msg("cannot read file: {reason}", reason=reason)
        at = Location(shown_path(path), line, column)
        raise UsageError([Diagnostic("file_unreadable", message, at)]) from None


def from_text(
    policy_id: str,
    text: str,
    *,
    files: Mapping[str, str] | None,
    base: Candidate | None,
    tests_source: str | None,
    path: str | None = None,
    consulted: Mapping[str, bytes] | None = None,
) -> Candidate:
    """A policy sent as text (HTTP): the schema files it names come from `files` or, when
    not given, from the revision it is based on; so are its data defaults and tests.
    `consulted`: the files of the policies a flow consults as they are published
    (published_texts), over the base's copies (`files` still has the last word)."""
    shown = path or (base.policy.path if base else f"{policy_id}.yaml")
    given = dict(base.source.files) if base else {}
    given.update(consulted or {})
    given.update({name: body.encode("utf-8") for name, body in (files or {}).items()})
    document = parse_yaml(text, shown)
    policy = compile_any(document, None, given)
    if policy.id != policy_id:
        raise PolicyError(
            [
                Diagnostic(
                    "policy_mismatch",
                    Msg(
                        "the text is policy '{found}', not '{wanted}'",
                        found=policy.id,
                        wanted=policy_id,
                    ),
                    document.positions.value("/id"),
                )
            ]
        )
    assert policy.source is not None
    unread = [_unread(name, policy.source.files) for name in files or {}]
    if any(unread):
        raise PolicyError([d for d in unread if d is not None])
    data = {}
    for name, spec in policy.datasets.items():
        inherited = base.data.get(name) if base else None
        data[name] = (
            dataset_from_entries(spec, list(inherited.entries), inherited.version)
            if inherited is not None
            else Dataset(name, [], match=spec.match)
        )
    tests = tests_source if tests_source is not None else (base.tests_source if base else None)
    return Candidate(policy, policy.source, f"{policy_id} (draft)", data, tests)


def consulted_in(text: str, policy_id: str) -> list[str]:
    """The policies a flow's text consults (`flow.events.*.decide.policy`), read before it
    is compiled (a text that does not parse, or is no flow, consults none: its compile
    says what is wrong)."""
    try:
        data = parse_yaml(text, f"{policy_id}.yaml").data
    except PolicyError:
        return []
    flow = data.get("flow") if isinstance(data, dict) and data.get("kind") == "flow" else None
    events = flow.get("events") if isinstance(flow, dict) else None
    found = set()
    for event in events.values() if isinstance(events, dict) else ():
        decide = event.get("decide") if isinstance(event, dict) else None
        consulted = decide.get("policy") if isinstance(decide, dict) else None
        if isinstance(consulted, str) and consulted != policy_id:
            found.add(consulted)
    return sorted(found)


def published_texts(
    store: Store, revisions: RevisionStore, policy_ids: list[str]
) -> dict[str, bytes]:
    """`<id>.yaml` -> the text of the published revision of each policy (those published),
    as a flow that consults them reads them (engine/flow/consult.py)."""
    from engine.flow.consult import POLICY_SUFFIX

    out = {}
    for policy_id in policy_ids:
        publication = revisions.publication_of(policy_id)
        stored = store.stored_revision(publication.revision) if publication else None
        if stored is not None:
            out[policy_id + POLICY_SUFFIX] = stored.source.text.encode("utf-8")
    return out


def _unread(name: str, read: Mapping[str, bytes]) -> Diagnostic | None:
    """A file sent under a name the policy does not read (it would be dropped unseen: a
    misspelt or mis-rooted name leaves the policy with the file it had)."""
    if name in read:
        return None
    listed = ", ".join(quoted(n) for n in read)
    return Diagnostic(
        "unknown_file",
        Msg("not a file this policy reads"),
        pointer=f"/files/{escape_pointer_token(name)}",
        hint=did_you_mean(name, read)
        or (Msg("it reads {names}", names=listed) if read else Msg("it reads no file")),
    )


def compile_hash(store: Store, revision: str) -> tuple[CompiledPolicy, str]:
    """The policy of a content hash kept by the store, compiled (not registered)."""
    from engine.project.revisions import compile_stored

    policy = compile_stored(store, revision)
    return policy, policy.path


def from_record(store: Store, record: RevisionRecord, label: str | None = None) -> Candidate:
    policy, _ = compile_hash(store, record.revision)
    assert policy.source is not None
    data = stored_data(store, policy.datasets, record.data)
    return Candidate(
        policy, policy.source, label or record.ref, data, record.tests_source, None, record
    )


def stored_data(
    store: Store, specs: Mapping[str, DatasetSpec], versions: Mapping[str, str]
) -> dict[str, Dataset]:
    """The data sets of `specs` at `versions`, from the store (empty when unknown)."""
    out = {}
    for name, spec in specs.items():
        version = versions.get(name)
        stored = store.data_version(name, version) if version else None
        if stored is None:
            out[name] = Dataset(name, [], match=spec.match)
        else:
            out[name] = dataset_from_entries(spec, stored.entries, version)
    return out


def consulted_ids(policy: CompiledPolicy) -> list[str]:
    """The decision policies the events of a flow consult (engine/flow/consult.py); none for
    a decision policy."""
    if policy.kind != "flow":
        return []
    from engine.flow.model import flow_of

    events = flow_of(policy).events.values()
    return sorted({e.decide.policy for e in events if e.decide is not None})


def consulted_as_tested(
    store: Store, revisions: RevisionStore, policy: CompiledPolicy, instead: Consulted | None = None
) -> Consulted:
    """The decision policies a flow consults, as its test cases run at a submission: each
    one's published revision (what the flow will consult once published), with the default
    data that revision was published with, the data its own cases run with. Not a version
    made current through the API: test cases are written against the data shipped with the
    policies, and a live blacklist (services replace it) would fail them, refusing every
    submission until it was set back. One never published, or whose published revision
    cannot be compiled here, is left out: the event that consults it fails in the tests, as
    it would when served (consulted_policy_missing). `instead`: policies given in place of
    their published revisions (a candidate, as flows_tested checks it)."""
    out: dict[str, tuple[CompiledPolicy, Mapping[str, Dataset]]] = {}
    defaults: dict[str, str] | None = None
    for policy_id in consulted_ids(policy):
        if instead is not None and policy_id in instead:
            out[policy_id] = instead[policy_id]
            continue
        publication = revisions.publication_of(policy_id)
        if publication is None or policy_id == policy.id:
            continue
        try:
            consulted, _ = compile_hash(store, publication.revision)
        except PolicyError:
            continue
        if consulted.kind != "decision":
            continue
        if defaults is None:
            defaults = published_defaults(revisions)
        out[policy_id] = (consulted, default_data(store, consulted.datasets, defaults))
    return out


@dataclass
class FlowTests:
    """A published flow that consults a decision policy candidate, and its test cases run
    with the candidate as the policy its events consult (flows_tested)."""

    flow: Candidate  # its published revision, compiled against the text it was published with
    summary: dict[str, Any]  # as run_tests reports it
    problems: list[Diagnostic]

    @property
    def failed(self) -> bool:
        return bool(self.summary["failed"] or self.summary["errors"])

    def brief(self) -> dict[str, Any]:
        """What a revision's tests keep of it: which flow, which revision, the counts."""
        assert self.flow.record is not None
        return {
            "policy": self.flow.id,
            "ref": self.flow.record.ref,
            "revision": self.flow.revision,
            **{k: self.summary[k] for k in ("cases", "passed", "failed", "errors")},
        }


def consulting_flows(store: Store, revisions: RevisionStore, policy_id: str) -> list[Candidate]:
    """The published flows whose events consult `policy_id`, each as its published revision
    (compiled against the text of `policy_id` it was published with, so its answer schema is
    that text's outcome). Found by reading each published text (consulted_in, parsed once per
    text in a process); only those that consult it are compiled. One whose published revision
    cannot be compiled here is left out: the service does not serve it either."""
    out = []
    for flow_id, publication in sorted(revisions.published().items()):
        if flow_id == policy_id:
            continue
        stored = store.stored_revision(publication.revision)
        if stored is None or policy_id not in consulted_in(stored.source.text, flow_id):
            continue
        record = revisions.record(flow_id, publication.number)
        if record is None:
            continue
        try:
            flow = from_record(store, record)
        except PolicyError:
            continue
        if policy_id in consulted_ids(flow.policy):
            out.append(flow)
    return out


def flows_tested(
    store: Store, revisions: RevisionStore, candidate: Candidate, backend: str = "durable"
) -> list[FlowTests]:
    """The test cases of every published flow that consults `candidate` (a decision policy),
    run with the candidate as the policy its events consult, with its own data (as its own
    cases run), and every other policy they consult as consulted_as_tested gives it. A flow was
    compiled against an older text of the candidate: an answer lacking an outcome field that
    text had fails its events (decision_answer_invalid), as it would once the candidate is
    served. None for a flow candidate (flows consult decision policies only). `backend`:
    "python" in a long-lived process (durable_rules never unregisters a ruleset)."""
    if candidate.policy.kind != "decision":
        return []
    flows = consulting_flows(store, revisions, candidate.id)
    if not flows:
        return []
    given = {candidate.id: (candidate.policy, candidate.data)}  # as its own cases run
    out = []
    for flow in flows:
        consulted = consulted_as_tested(store, revisions, flow.policy, given)
        summary, problems = tested(flow, consulted, shown=_tests_beside(flow), backend=backend)
        out.append(FlowTests(flow, summary, problems))
    return out


def _tests_beside(candidate: Candidate) -> str:
    """The name a stored revision's cases are reported under: where `kimari test` shows
    them, `<id>.tests.yaml` beside the path its policy was published from
    (policies/order-hold-status.tests.yaml), when that file holds the same cases (their
    lines are then its lines); else `<id>.tests.yaml`, as a text's cases are named."""
    name = f"{candidate.id}{TESTS_SUFFIX}"
    beside = Path(candidate.policy.path).with_name(name)
    try:
        same = beside.read_text(encoding="utf-8") == candidate.tests_source
    except (OSError, ValueError):  # no such file here (another machine), unreadable
        same = False
    return str(beside) if same else name


def published_defaults(revisions: RevisionStore) -> dict[str, str]:
    """The default version of each data set as the service serves it: that of the newest
    publication (of any policy) whose revision reads it (engine/project/registry.py,
    compile_published)."""
    return newest_data_versions(
        (publication.id, record.data if record else {})
        for policy_id, publication in revisions.published().items()
        for record in [revisions.record(policy_id, publication.number)]
    )


def default_data(
    store: Store, specs: Mapping[str, DatasetSpec], defaults: Mapping[str, str]
) -> dict[str, Dataset]:
    """The data sets of `specs` in their published default versions (published_defaults),
    empty where there is none or it no longer fits its schema."""
    out = {}
    for name, spec in specs.items():
        stored = store.data_version(name, defaults[name]) if name in defaults else None
        try:
            if stored is not None:
                out[name] = dataset_from_entries(spec, stored.entries, defaults[name])
                continue
        except PolicyError:
            pass
        out[name] = Dataset(name, [], match=spec.match)
    return out


def known_record(revisions: RevisionStore, policy_id: str, number: int) -> RevisionRecord:
    """Revision `number` of `policy_id`; UsageError (404 over HTTP) if there is none."""
    found = revisions.record(policy_id, number)
    if found is None:
        raise UsageError(
            [
                Diagnostic(
                    "unknown_revision",
                    Msg(
                        "policy '{policy}' has no revision {number}",
                        policy=policy_id,
                        number=number,
                    ),
                )
            ]
        )
    return found


def resolve(
    store: Store,
    revisions: RevisionStore,
    policy_id: str,
    ref: str,
    *,
    files: bool = False,
) -> Candidate:
    """What `ref` names for `policy_id`; UsageError (404 over HTTP) when nothing. `files`:
    whether a ref may be a policy file."""
    ref = ref.strip()
    if ref == "published":
        current = revisions.publication_of(policy_id)
        if current is None:
            raise UsageError(
                [
                    Diagnostic(
                        "nothing_published",
                        Msg(
                            "policy '{policy}' has no published revision in the store",
                            policy=policy_id,
                        ),
                        hint=Msg("`kimari serve` publishes the policies folder on its first start"),
                    )
                ]
            )
        record = revisions.record(policy_id, current.number)
        assert record is not None
        return from_record(store, record, Msg("published ({ref})", ref=record.ref))
    numbered = NUMBER.fullmatch(ref)
    if numbered:
        if numbered.group("policy") not in (None, policy_id):
            raise UsageError(
                [
                    Diagnostic(
                        "unknown_revision",
                        Msg("{ref} is not a revision of '{policy}'", ref=ref, policy=policy_id),
                    )
                ]
            )
        number = int(numbered["number"])
        record = revisions.record(policy_id, number)
        if HASH.fullmatch(ref) and (ref[0] == "0" or record is None):
            # six digits or more that number no revision (none is shown with a leading zero):
            # a hash's prefix may be all digits
            found = _by_content(store, revisions, policy_id, ref)
            if found is not None:
                return found
        if record is None:
            record = known_record(revisions, policy_id, number)  # the 404's words
        return from_record(store, record)
    if HASH.fullmatch(ref):
        found = _by_content(store, revisions, policy_id, ref)
        if found is not None:
            return found
    if files and "\x00" not in ref:  # no file has a NUL in its name
        path = Path(ref)
        if path.suffix in (".yaml", ".yml") or is_file(path):
            return from_path(path, policy_id)
    known = [r.ref for r in revisions.records(policy_id, limit=20)]
    raise UsageError(
        [
            Diagnostic(
                "unknown_revision",
                Msg(
                    "'{ref}' names no revision of '{policy}' and no policy file",
                    ref=ref,
                    policy=policy_id,
                ),
                hint=did_you_mean(ref, known)
                or Msg("give published, a number, a content hash or (on the command line) a file"),
            )
        ]
    )


def _by_content(
    store: Store, revisions: RevisionStore, policy_id: str, prefix: str
) -> Candidate | None:
    """The revision whose content hash starts with `prefix`: its newest record, or the
    stored text alone (with the published revision's data); None if no hash does."""
    revision = store.find_revision(policy_id, prefix)
    if revision is None:
        return None
    records = revisions.records_by_hash(policy_id, revision)
    if records:
        return from_record(store, records[0], revision)
    policy, _ = compile_hash(store, revision)
    assert policy.source is not None
    current = revisions.publication_of(policy_id)
    defaults = {}
    if current is not None:
        published = revisions.record(policy_id, current.number)
        defaults = dict(published.data) if published else {}
    data = stored_data(store, policy.datasets, defaults)
    return Candidate(policy, policy.source, revision, data)


Locate = Callable[[str], Location | None]  # a pointer into a data file's entries -> where


def read_entries(path: Path, spec: DatasetSpec) -> tuple[list[Any], Locate]:
    """The entries of a data file: YAML or JSON (a list), JSON Lines, or CSV with a header
    row (texts converted to the numbers and booleans the entry schema asks for); and where
    in the file a pointer into them is (/3/phone: the line of the fourth entry)."""
    import csv

    shown = shown_path(path)

    def unreadable(reason: str, where: Location | None = None) -> UsageError:
        message = Msg("{path}: {reason}", path=shown, reason=reason)
        return UsageError([Diagnostic("file_unreadable", message, where)])

    if not is_file(path):
        raise unreadable(Msg("a folder, not a data file") if is_dir(path) else Msg("no such file"))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            # utf-8-sig: Excel's "CSV UTF-8" begins with a byte order mark, not in the header
            with path.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, [])
                rows, lines = [], []
                for cells in reader:
                    if not cells:
                        continue  # a blank line
                    if len(cells) != len(header):  # a cell lost or one too many: never guess
                        counts = Msg(
                            "{count} values, the header has {names}",
                            count=len(cells),
                            names=len(header),
                        )
                        raise unreadable(counts, Location(shown, reader.line_num))
                    rows.append(dict(zip(header, cells, strict=True)))
                    lines.append(reader.line_num)
        except UnicodeDecodeError as exc:
            reason = Msg("not UTF-8: {reason} (save it as UTF-8)", reason=str(exc))
            raise unreadable(reason) from None
        except (OSError, csv.Error) as exc:
            raise unreadable(str(exc)) from None
        types = {
            name: prop.get("type")
            for name, prop in (spec.validator.schema.get("properties") or {}).items()
            if isinstance(prop, dict)
        }
        return [_typed_row(row, types) for row in rows], _by_line(shown, lines)
    if suffix in (".jsonl", ".ndjson"):
        return _json_lines(path, shown, unreadable)
    from engine.project.project import read_document

    document = read_document(path)  # PolicyError with file:line:col
    if not isinstance(document.data, list):
        raise unreadable(Msg("a data file holds a list of entries"))
    return list(document.data), document.positions.value


def _json_lines(
    path: Path, shown: str, unreadable: Callable[[str, Location], UsageError]
) -> tuple[list[Any], Locate]:
    """The entries of a JSON Lines file, each from its line (blank lines skipped)."""
    import codecs

    import orjson

    try:
        raw = path.read_bytes()
        numbered = list(enumerate(raw.removeprefix(codecs.BOM_UTF8).splitlines(), start=1))
    except OSError as exc:
        raise unreadable(str(exc), Location(shown, 1)) from None
    entries, lines = [], []
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            entries.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:  # its own line and column say 1 and where
            raise unreadable(exc.msg, Location(shown, number, exc.colno)) from None
        lines.append(number)
    return entries, _by_line(shown, lines)


def _by_line(shown: str, lines: list[int]) -> Locate:
    """Where a pointer into entries read one a line is: the line of its entry."""

    def locate(pointer: str) -> Location | None:
        first = pointer.split("/")[1] if pointer.count("/") else ""
        if not first.isdecimal() or int(first) >= len(lines):
            return None
        return Location(shown, lines[int(first)])

    return locate


def _typed_row(row: Mapping[str, str], types: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, text in row.items():
        if name is None or text is None or text == "":
            continue
        kind = types.get(name)
        try:
            if kind == "integer":
                out[name] = int(text)
            elif kind == "number":
                from decimal import Decimal

                out[name] = Decimal(text)
            elif kind == "boolean" and text.lower() in ("true", "false"):
                out[name] = text.lower() == "true"
            else:
                out[name] = text
        except ValueError:
            out[name] = text  # the schema check says what is wrong, and where
    return out


def run_tests(candidate: Candidate, consulted: Consulted | None = None) -> dict[str, Any]:
    """The candidate's YAML test cases run against it: a summary to attach to a revision."""
    return tested(candidate, consulted)[0]


def tested(
    candidate: Candidate,
    consulted: Consulted | None = None,
    *,
    shown: str | None = None,
    backend: str = "durable",
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """run_tests' summary, and the problems of its test file (yaml_syntax, an unknown
    policy, ...) as diagnostics located in `<id>.tests.yaml` (the summary renders them).
    `consulted`: the decision policies a flow's events consult (consulted_as_tested), decided
    beside it as the service would. `shown`: the name of a stored revision's test file in
    what is reported (default `<id>.tests.yaml`)."""
    from engine.testing.tester import run_tests as run_cases

    if candidate.tests_source is None:
        return {"cases": 0, "passed": 0, "failed": 0, "errors": 0, "note": "no test cases"}, []
    project = _tests_project(candidate, consulted)
    with tempfile.TemporaryDirectory(prefix="kimari-tests-") as folder:
        path = candidate.tests_path
        if path is None:
            path = Path(folder) / f"{candidate.id}{TESTS_SUFFIX}"
            path.write_text(candidate.tests_source, encoding="utf-8")
        report = run_cases([path], project, backend)
        if candidate.tests_path is not None:
            shown = shown_path(path)
        elif shown is None:
            shown = f"{candidate.id}{TESTS_SUFFIX}"
        written = {str(path), shown_path(path)} if candidate.tests_path is None else set()
        problems = [_located_in(d, written, shown) for d in report.problems[:20]]
        failures = [
            {
                "file": shown,
                "line": r.location.line,
                "col": r.location.col,
                "name": r.name,
                "failures": r.failures,
            }
            for r in report.failed
        ]
        summary = {
            "cases": len(report.results),
            "passed": sum(r.passed for r in report.results),
            "failed": len(report.failed),
            "errors": len(report.problems),
            "file": shown,
            "failures": failures[:20],
            "problems": [d.render() for d in problems],
            "uncovered_rules": report.uncovered_rules.get(candidate.id, []),
        }
        return summary, problems


def _tests_project(candidate: Candidate, consulted: Consulted | None = None) -> Project:
    """The candidate alone, and the decision policies it consults with their data sets (a
    data set of the candidate's own name is the candidate's: the service serves one per
    name)."""
    policies = {candidate.id: candidate.policy}
    datasets = dict(candidate.data)
    for policy_id, (policy, data) in (consulted or {}).items():
        if policy_id == candidate.id:
            continue
        policies[policy_id] = policy
        for name, dataset in data.items():
            datasets.setdefault(name, dataset)
    return Project(
        Path(candidate.policy.path).parent,
        {},
        policies=policies,
        datasets=datasets,
        rulebook_read=False,  # a candidate carries no rulebook index to check refs by
    )


def _located_in(found: Diagnostic, written: set[str], shown: str) -> Diagnostic:
    """A diagnostic of the tests' temporary file, located in the file its caller knows."""
    if found.location is None or found.location.file not in written:
        return found
    return dataclasses.replace(found, location=dataclasses.replace(found.location, file=shown))


def check_tests(candidate: Candidate) -> list[Diagnostic]:
    """The problems of the candidate's test cases as `kimari validate` reports them (their
    schema, the policy they name, their references), located in `<id>.tests.yaml`; none
    when it has no tests. The cases are loaded, not run."""
    from engine.testing.cases import load_cases

    if candidate.tests_source is None:
        return []
    project = _tests_project(candidate)
    shown = f"{candidate.id}{TESTS_SUFFIX}"
    with tempfile.TemporaryDirectory(prefix="kimari-tests-") as folder:
        path = Path(folder) / shown
        path.write_text(candidate.tests_source, encoding="utf-8")
        written = {str(path), shown_path(path)}
        try:
            load_cases(path, project)
        except PolicyError as exc:
            return [_located_in(found, written, shown) for found in exc.diagnostics]
    return []
