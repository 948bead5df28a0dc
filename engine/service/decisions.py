"""The service's operations over the engine's Python API, independent of HTTP and processes.

Each operation takes the request's parts (policy id, raw JSON body, idempotency key) and
returns either a finished `Response` (status, headers, body) or a `Pending` decision that
must be written to the decision log before its response may be sent. A worker process
(`engine/service/worker.py`) owns one `Service` and calls it from one thread only.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.compile.model import CompiledPolicy, kind_word
from engine.core.errors import (
    Diagnostic,
    EngineFault,
    EvaluationError,
    InputError,
    PolicyError,
)
from engine.core.i18n import Msg
from engine.core.jsonvalue import dumps, format_datetime, loads_exact, to_json_value
from engine.core.suggest import did_you_mean
from engine.project.registry import Snapshot, build_dataset, validate_entries
from engine.project.revisions import RevisionCache, explain_logged
from engine.runtime.decision import Decision, new_decision_id
from engine.runtime.evaluate import decide
from engine.service.envelopes import (
    DATA_REQUEST,
    DECISION_ID,
    DECISION_REQUEST,
    UTF8_BOM,
    parse_body,
)
from engine.service.problems import (
    DECISION,
    RequestProblem,
    Response,
    Subject,
    from_diagnostics,
    from_error,
    problem,
)
from engine.store.decisions import DecisionLog, Entry, Logged
from engine.store.versions import Expected, Store, VersionMoved

JSON = b"application/json"
POLICY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
DATA_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")


@dataclass(slots=True)
class Pending:
    """A decision made but not yet acknowledged: log `entries`, then send `response`."""

    entries: list[Entry]
    response: Response
    meta: dict[str, Any] = field(default_factory=dict)
    # batch only: per entry, where its result sits in the batch response
    batch_results: list[dict[str, Any]] | None = None
    lang: str = "en"  # the request's language, for an answer made once it is logged


def json_response(
    status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    body = dumps(value)
    return status, [(b"content-type", JSON), *(headers or [])], body


def request_hash(policy_id: str, request: dict[str, Any]) -> str:
    canonical = {k: v for k, v in request.items() if k != "decision_id"}
    raw = dumps([policy_id, canonical], sort_keys=True)
    return hashlib.sha256(raw).hexdigest()


def headline(policy: CompiledPolicy) -> str | None:
    """The outcome field that labels decisions in the metrics: the first boolean or enum."""
    for name, spec in policy.outcome.items():
        if spec.type.kind == "boolean" or spec.type.enum:
            return name
    return None


class Service:
    def __init__(
        self, snapshot: Snapshot, decision_log: DecisionLog, store: Store, *, max_batch: int
    ) -> None:
        self.snapshot = snapshot
        self.log = decision_log
        self.store = store
        self.revisions = RevisionCache(store)
        self.max_batch = max_batch
        self._headlines: dict[int, str | None] = {}
        self.on_data_change: Callable[[], None] | None = None

    # -- helpers -----------------------------------------------------------------------
    def _policy(self, policy_id: str) -> CompiledPolicy:
        snapshot = self.snapshot
        policy = snapshot.policies.get(policy_id) if POLICY_ID.fullmatch(policy_id) else None
        if policy is not None and policy.kind == "decision":
            return policy
        if policy is not None:
            raise RequestProblem(
                problem(
                    404,
                    "not_a_decision_policy",
                    Msg(
                        "policy '{id}' is a {kind}, not decided here",
                        id=policy_id,
                        kind=kind_word(policy.kind),
                    ),
                )
            )
        status = snapshot.policy_set.statuses.get(policy_id)
        if status is not None:  # the file exists but no revision of it ever compiled
            raise RequestProblem(
                problem(
                    503,
                    "policy_unavailable",
                    Msg(
                        "policy '{id}' has no valid revision; see GET /v1/policies/{id}",
                        id=policy_id,
                    ),
                    errors=status.errors,
                    headers=[(b"retry-after", b"5")],
                )
            )
        hint = did_you_mean(policy_id, snapshot.policy_set.statuses)
        raise RequestProblem(problem(404, "unknown_policy", _no_policy(policy_id), hint=hint))

    def _label(self, policy: CompiledPolicy, outcome: dict[str, Any]) -> str:
        key = id(policy)
        if key not in self._headlines:
            if len(self._headlines) > 256:  # revisions come and go with reloads
                self._headlines.clear()
            self._headlines[key] = headline(policy)
        name = self._headlines[key]
        if name is None:
            return "decided"
        value = outcome.get(name)
        if value is None or isinstance(value, bool):  # as JSON writes them, as the log's filter
            return f"{name}={orjson.dumps(value).decode()}"
        return f"{name}={value}"

    def _decide_one(
        self,
        policy: CompiledPolicy,
        request: dict[str, Any],
        raw: str,
        key: str | None,
        explain: bool,
    ) -> tuple[Entry, Decision]:
        """Decide; raises InputError, EvaluationError, EngineFault (the caller maps them)."""
        started = time.perf_counter()
        decision = decide(
            policy,
            request["facts"],
            at=request.get("at"),
            settings=request.get("settings"),
            data=self.snapshot.data_for(policy),
            explain=explain,
            decision_id=key or new_decision_id(),
        )
        decision.served = self.snapshot.served.get(policy.id)  # publication; newer, unserved
        at = format_datetime(decision.at)
        outcome = dumps(decision.outcome)
        response = decision.to_json(at, outcome)  # the outcome serialised once, for both
        latency = int((time.perf_counter() - started) * 1e6)
        entry = Entry(
            decision_id=decision.decision_id,
            policy_id=policy.id,
            revision=policy.revision,
            at=at,
            logged_at=int(time.time() * 1000),
            latency_us=latency,
            request_hash=request_hash(policy.id, request) if key else None,
            request=raw,
            outcome=outcome.decode(),
            fired=orjson.dumps(decision.fired).decode(),
            response=response,
            keyed=key is not None,
        )
        return entry, decision

    # -- operations --------------------------------------------------------------------
    def decide(
        self, policy_id: str, body: bytes, key: str | None, explain: bool
    ) -> Response | Pending:
        try:
            policy = self._policy(policy_id)
            request = DECISION_REQUEST.read(body)
            given = request.get("decision_id")
            if key is not None and given is not None and key != given:
                return problem(
                    422,
                    "idempotency_key_mismatch",
                    Msg("the Idempotency-Key header and 'decision_id' differ"),
                    errors=[
                        Diagnostic(
                            "idempotency_key_mismatch",
                            Msg("differs from the header"),
                            pointer="/decision_id",
                        )
                    ],
                )
            if key is not None and not DECISION_ID.fullmatch(key):
                return problem(
                    422,
                    "idempotency_key_invalid",
                    Msg(
                        "Idempotency-Key must be 1-128 letters, digits or . _ : -, "
                        "the first a letter or digit"
                    ),
                )
            key = key or given
            if key is not None:
                replayed = self._replay(policy.id, key, request)
                if replayed is not None:
                    return replayed
            try:
                # logged as read: without the byte order mark parse_body read past
                raw = body.removeprefix(UTF8_BOM).decode()
                entry, decided = self._decide_one(policy, request, raw, key, explain)
            except (InputError, EvaluationError, EngineFault) as exc:
                return from_error(exc, DECISION)
        except RequestProblem as exc:
            return exc.response
        meta = {"p": policy.id, "o": self._label(policy, decided.outcome)}
        response = (200, [(b"content-type", JSON)], entry.response)
        return Pending([entry], response, meta)

    def _replay(self, policy_id: str, key: str, request: dict[str, Any]) -> Response | None:
        logged = self.log.logged(key)
        if logged is None:
            return None
        return self.replayed(key, request_hash(policy_id, request), *logged)

    @staticmethod
    def replayed(key: str, wanted: str | None, existing: str | None, response: bytes) -> Response:
        if wanted is not None and wanted == existing:
            return 200, [(b"content-type", JSON), (b"idempotent-replayed", b"true")], response
        return problem(
            409,
            "idempotency_conflict",
            Msg("decision id '{id}' was already used for a different request", id=key),
        )

    def batch(self, policy_id: str, body: bytes) -> Response | Pending:
        try:
            policy = self._policy(policy_id)
            request = parse_body(body)
        except RequestProblem as exc:
            return exc.response
        items = request.get("items") if isinstance(request, dict) else None
        extra = [k for k in request if k != "items"] if isinstance(request, dict) else []
        if not isinstance(items, list) or extra:
            pointer = f"/{extra[0]}" if extra else "/items"
            return problem(
                422,
                "request_invalid",
                Msg('a batch is {{"items": [decision request, ...]}}'),
                errors=[
                    Diagnostic(
                        "request_invalid", Msg("expected only 'items', a list"), pointer=pointer
                    )
                ],
            )
        if len(items) > self.max_batch:
            return problem(
                413,
                "batch_too_large",
                Msg(
                    "a batch holds at most {limit} items; this one has {count}",
                    limit=self.max_batch,
                    count=len(items),
                ),
                max_batch=self.max_batch,
            )
        results: list[dict[str, Any]] = []
        entries: list[Entry] = []
        labels: list[str] = []
        for i, item in enumerate(items):
            problems = DECISION_REQUEST.check(item, f"/items/{i}")
            if problems:
                results.append(_item_problem(422, problems))
                continue
            key = item.get("decision_id")
            if key is not None:
                replayed = self._replay(policy.id, key, item)
                if replayed is not None:
                    results.append(_result(replayed))
                    continue
            try:
                entry, decided = self._decide_one(policy, item, dumps(item).decode(), key, False)
            except (InputError, EvaluationError, EngineFault) as exc:
                status, _, raw = from_error(exc, DECISION)
                results.append({"status": status, "problem": _repoint(orjson.loads(raw), i)})
                continue
            body = loads_exact(entry.response)
            results.append({"status": 200, "decision": body, "_entry": len(entries)})
            entries.append(entry)
            labels.append(self._label(policy, decided.outcome))
        meta = {"p": policy.id, "o": labels, "n": len(items)}  # labels: one per entry
        return Pending(entries, (200, [(b"content-type", JSON)], b""), meta, results)

    def finish(self, pending: Pending, logged: list[Logged]) -> Response:
        """The response of a pending decision once the log said what became of its entries."""
        if pending.batch_results is None:
            entry, result = pending.entries[0], logged[0]
            if result.written:
                return pending.response
            pending.meta = {}  # a replay or a conflict: no decision counted, as before deciding
            assert result.existing_response is not None
            return self.replayed(
                entry.decision_id,
                entry.request_hash,
                result.existing_hash,
                result.existing_response,
            )
        # the metrics count the decisions logged as new, each by its label (one per entry)
        pending.meta["o"] = [
            label
            for label, result in zip(pending.meta["o"], logged, strict=False)
            if result.written
        ]
        results = []
        for item in pending.batch_results:
            index = item.pop("_entry", None)
            if index is not None and not logged[index].written:
                entry, result = pending.entries[index], logged[index]
                assert result.existing_response is not None
                item = _result(
                    self.replayed(
                        entry.decision_id,
                        entry.request_hash,
                        result.existing_hash,
                        result.existing_response,
                    )
                )
            results.append(item)
        body = dumps({"policy": pending.meta["p"], "results": results})
        return 200, [(b"content-type", JSON)], body

    def get_decision(self, decision_id: str) -> Response:
        if not DECISION_ID.fullmatch(decision_id):
            return problem(404, "unknown_decision", Msg("no such decision"))
        row = self.log.get(decision_id)
        if row is None:
            return problem(
                404,
                "unknown_decision",
                Msg("no decision '{id}' in the log nor in a flow's history", id=decision_id),
            )
        body = row["response"]
        body["logged_at"] = row["logged_at"]
        body["request"] = row["request"]
        if "explanation" not in body:
            body.update(self._explain(row))
        return json_response(200, body)

    def _explain(self, row: dict[str, Any]) -> dict[str, Any]:
        snapshot = self.snapshot
        loaded = snapshot.policies.get(row["policy_id"])
        return explain_logged(row, self.revisions, loaded=loaded, served=snapshot.datasets)

    def list_policies(self) -> Response:
        out = []
        snapshot = self.snapshot
        for pid, status in sorted(snapshot.policy_set.statuses.items()):
            policy = status.policy
            # the file on disk: the diagnostics that refused it, else the served revision's
            found = status.errors or (policy.warnings if policy else ())
            errors = sum(1 for d in found if d.is_error)
            out.append(
                {
                    "id": pid,
                    "kind": policy.kind if policy else None,
                    "title": policy.title.to_dict() if policy else None,
                    "revision": policy.revision if policy else None,
                    "status": status.state,
                    "errors": errors,
                    "warnings": len(found) - errors,
                    **snapshot.served.get(pid, {}),
                }
            )
        return json_response(200, {"served_from": self._served_from(), "policies": out})

    def _served_from(self) -> str:
        """'store' (the published revisions) or 'files' (kimari serve --watch)."""
        return self.snapshot.policy_set.mode

    def get_policy(self, policy_id: str) -> Response:
        from engine.service.openapi import policy_document

        status = (
            self.snapshot.policy_set.statuses.get(policy_id)
            if POLICY_ID.fullmatch(policy_id)
            else None
        )
        if status is None:
            hint = did_you_mean(policy_id, self.snapshot.policy_set.statuses)
            return problem(404, "unknown_policy", _no_policy(policy_id), hint=hint)
        document = policy_document(status, self.snapshot)
        document.update(self.snapshot.served.get(policy_id, {}))
        document["served_from"] = self._served_from()
        document["origin"] = status.origin
        if status.number is not None:
            document["revision_number"] = status.number
        return json_response(200, document)

    def get_data(self, name: str) -> Response:
        snapshot = self.snapshot
        if not DATA_NAME.fullmatch(name) or name not in snapshot.policy_set.specs:
            hint = did_you_mean(name, snapshot.policy_set.specs)
            return problem(404, "unknown_data_set", _no_data_set(name), hint=hint)
        info = snapshot.data_info.get(name)
        dataset = snapshot.datasets.get(name)
        return json_response(
            200,
            {
                "name": name,
                "version": info.version if info else None,
                "source": info.source if info else None,
                "updated_at": info.updated_at if info else None,
                "count": len(dataset) if dataset is not None else 0,
                "errors": [d.to_dict() for d in snapshot.data_errors.get(name, ())],
                "entries": to_json_value(list(dataset.entries)) if dataset is not None else [],
            },
            _etag(info.version if info else None),
        )

    def put_data(
        self, name: str, body: bytes, principal: str = "anonymous", if_match: str | None = None
    ) -> Response:
        snapshot = self.snapshot
        spec = snapshot.policy_set.specs.get(name) if DATA_NAME.fullmatch(name) else None
        if spec is None:
            hint = did_you_mean(name, snapshot.policy_set.specs)
            return problem(404, "unknown_data_set", _no_data_set(name), hint=hint)
        try:
            expected = self._expected(name, if_match)
            request = DATA_REQUEST.read(body)  # an unknown key is named at its own pointer
        except RequestProblem as exc:
            return exc.response
        try:
            dataset = validate_entries(spec, request["entries"])
        except PolicyError as exc:  # a data file's error, but these entries are the request
            invalid = Subject(
                Msg("entries do not match the schema of '{name}'", name=name),
                input_code="data_invalid",
            )
            return from_error(InputError(exc.diagnostics), invalid)
        entries = request["entries"]
        if not entries and request.get("allow_empty") is not True:
            return _refused_empty(name)
        try:
            generation = self.store.put_data(name, dataset.version, entries, principal, expected)
        except VersionMoved as exc:
            return _moved(name, exc.current)
        if self.on_data_change is not None:
            self.on_data_change()
        return json_response(
            200,
            {
                "name": name,
                "version": dataset.version,
                "count": len(dataset),
                "generation": generation,
            },
            _etag(dataset.version),
        )

    def reset_data(
        self, name: str, principal: str = "anonymous", if_match: str | None = None
    ) -> Response:
        """Forget the versions PUT through the API: serve the file default again."""
        spec = self.snapshot.policy_set.specs.get(name) if DATA_NAME.fullmatch(name) else None
        if spec is None:
            hint = did_you_mean(name, self.snapshot.policy_set.specs)
            return problem(404, "unknown_data_set", _no_data_set(name), hint=hint)
        try:
            self.store.reset_data(name, principal, self._expected(name, if_match))
        except RequestProblem as exc:
            return exc.response
        except VersionMoved as exc:
            return _moved(name, exc.current)
        if self.on_data_change is not None:
            self.on_data_change()
        return self.get_data(name)

    def _expected(self, name: str, if_match: str | None) -> Expected | None:
        """The versions an If-Match lets a change be made on (None: no If-Match)."""
        if if_match is None:
            return None
        versions = _entity_tags(if_match)
        policy_set = self.snapshot.policy_set
        file_data, spec = policy_set.file_data.get(name), policy_set.specs[name]
        if file_data is not None and file_data.dataset is not None:
            default: str | None = file_data.dataset.version
        elif spec.source_path is None:  # no file: served empty until a version is put
            default = build_dataset(spec, []).version
        else:
            default = None
        info = self.snapshot.data_info.get(name)
        return Expected(versions, default, info.unfit if info else None)


def _no_policy(policy_id: str) -> Msg:
    return Msg("no policy '{id}'", id=policy_id)


def _no_data_set(name: str) -> Msg:
    return Msg("no data set '{name}'", name=name)


def _etag(version: str | None) -> list[tuple[bytes, bytes]]:
    """The version served, as the entity tag a change's If-Match names."""
    return [(b"etag", f'"{version}"'.encode())] if version else []


ENTITY_TAG = re.compile(r'\s*(\*|(W/)?"([^"]*)")\s*')


def _entity_tags(value: str) -> frozenset[str]:
    """The versions of an If-Match: `"v1", "v2"` or `*`. A weak tag (W/"v1") names no
    version: If-Match compares strongly (RFC 9110)."""
    tags = set()
    for part in value.split(","):
        found = ENTITY_TAG.fullmatch(part)
        if found is None:
            detail = Msg(
                "If-Match must be * or entity tags in double quotes, such as "
                'the ETag of GET /v1/data/{{name}}: "{example}"',
                example="6f1c2a9e0b7d4c31",
            )
            raise RequestProblem(problem(400, "if_match_invalid", detail))
        if found[1] == "*":
            tags.add("*")
        elif not found[2]:
            tags.add(found[3])
    return frozenset(tags)


def _refused_empty(name: str) -> Response:
    reason = Msg("no entries: every policy reading '{name}' would find nothing in it", name=name)
    hint = Msg(
        'send "allow_empty": true with it to empty the set on purpose; DELETE '
        "/v1/data/{name} serves the file default again",
        name=name,
    )
    return problem(
        422,
        "data_empty",
        Msg("the replacement of data set '{name}' is empty", name=name),
        errors=[Diagnostic("data_empty", reason, pointer="/entries", hint=hint)],
    )


def _moved(name: str, current: str | None) -> Response:
    detail = Msg(
        "data set '{name}' is at version {current} now, not the one If-Match names: read it "
        "again and make the change on it",
        name=name,
        current=current or "-",
    )
    return problem(412, "version_moved", detail, current=current, headers=_etag(current))


def _result(response: Response) -> dict[str, Any]:
    status, _, raw = response
    return {"status": status, ("decision" if status == 200 else "problem"): orjson.loads(raw)}


def _item_problem(status: int, problems: list[Diagnostic]) -> dict[str, Any]:
    detail = Msg("this item is not a valid decision request")
    _, _, raw = from_diagnostics(status, problems, detail)
    return {"status": status, "problem": orjson.loads(raw)}


def _repoint(body: dict[str, Any], index: int) -> dict[str, Any]:
    for error in body.get("errors", []):
        if "pointer" in error:
            error["pointer"] = f"/items/{index}{error['pointer']}"
    return body
