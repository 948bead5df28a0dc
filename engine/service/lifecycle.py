"""The lifecycle's HTTP operations over the Python API (engine/lifecycle), for one worker.

    GET  /v1/policies/{id}/revisions                 its revision records, newest first, a
                                                      page at a time (?limit=, ?before=N)
    POST /v1/policies/{id}/revisions                 {"source", "files"?, "tests"?,
                                                      "message"?, "state"?}: a draft (201)
                                                      or a submission as a job (202)
    GET  /v1/policies/{id}/revisions/{n}             one record, with its source
    POST /v1/policies/{id}/revisions/{n}:submit      a draft for approval (202, a job);
                                                      {"message"?} for the audit trail
    POST /v1/policies/{id}/revisions/{n}:approve     publish it (another principal)
    POST /v1/policies/{id}/revisions/{n}:reject
    POST /v1/policies/{id}/rollback                  {"to": ref}: publish it again
    GET  /v1/policies/{id}/diff?from=&to=            the semantic diff and the text diff
    POST /v1/policies/{id}/impact                    a replay of the log as a job (202)
    POST /v1/policies/{id}/validate                  {"source", "files"?, "tests"?}: the
                                                      diagnostics a draft of it would get
    POST /v1/policies/{id}/tests                     ... its YAML test cases run (a job)
    GET  /v1/policies/{id}/audit, /v1/audit          the audit trail
    GET  /v1/jobs, /v1/jobs/{id}; POST /v1/jobs/{id}:cancel

Each takes the principal the front authenticated (`meta["principal"]`), which the records
and the audit trail keep. Steps that take long (a submission runs the tests and replays
the window of the log; an impact replays what it is asked to) run as jobs in processes of
their own (engine/lifecycle/jobs.py), so this worker keeps deciding meanwhile; the rest
are single store transactions. A revision is named by its number; a ref (`from`, `to`,
`draft`, `against`) may also be `published` or a content hash, never a server path.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from engine.core.errors import Diagnostic, DraftInvalid, KimariError, PolicyError, UsageError
from engine.core.i18n import Msg, language, message_of, translated
from engine.core.jsonvalue import escape_pointer_token
from engine.core.suggest import did_you_mean
from engine.lifecycle import jobs
from engine.lifecycle.candidates import HASH, NUMBER, Candidate, check_tests
from engine.lifecycle.workflow import (
    LISTED,
    MAX_LISTED,
    Lifecycle,
    Rules,
    StrandsEntities,
    check_overrides,
    draft_from_text,
    state_word,
)
from engine.service.envelopes import Envelope, Key, parse_body
from engine.service.problems import RequestProblem, Response, from_error, problem
from engine.service.problems import Subject as _Subject
from engine.service.reads import integer_parameter, policy_parameter
from engine.source.yaml import join_pointer

LIFECYCLE = _Subject(
    invalid=Msg("the request is not valid"),
    unusable=Msg("the revision could not be used"),
)
JOB_ID = re.compile(r"[0-9a-f]{8,40}")
POLICY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
REVISION_NUMBER = re.compile(r"[0-9]{1,18}")
MAX_AUDIT = 500  # entries on one page of the audit trail (as OpenAPI says of `limit`)


def _strands(exc: StrandsEntities) -> Response:
    """409 strands_entities, with what the console needs to ask again: how many now, where."""
    [diagnostic] = exc.diagnostics
    return problem(
        409,
        "strands_entities",
        diagnostic.message,
        hint=diagnostic.hint,
        stranded=exc.count,
        states=exc.states,
    )


_STRANDS_COUNT = Msg("how many stored entities the approval or rollback strands: 0 or more")


def _acknowledged(request: dict[str, Any]) -> int | None:
    """An approval's or a rollback's `acknowledge_stranded`: a count, 0 or more (true is
    not 1 here, though JSON's readers say it is an int)."""
    acknowledged = request.get("acknowledge_stranded")
    if acknowledged is not None and (isinstance(acknowledged, bool) or acknowledged < 0):
        raise RequestProblem(
            problem(
                422,
                "request_invalid",
                Msg("the request is invalid"),
                errors=[
                    Diagnostic("request_invalid", _STRANDS_COUNT, pointer="/acknowledge_stranded")
                ],
            )
        )
    return acknowledged


def _json(status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    """A lifecycle answer: its texts made with Msg (a diff's side labels, a report's
    messages) in the request's language, as a problem's are."""
    from engine.service.decisions import json_response

    return json_response(status, translated(value), headers)


def since_ms(text: str | None, name: str) -> int | None:
    """Milliseconds since the epoch from '30d', '12h', '15m', '45s' ago, or an RFC 3339 time;
    UsageError (pointer /NAME) for anything else, or for a duration reaching before year 1.
    The CLI's `--since`/`--until` of `kimari impact`; over HTTP see `_window`."""
    if text is None or text == "":
        return None
    from engine.lang.calendar import instant_ms

    try:
        return instant_ms(str(text), time.time())  # refuses a duration before year 1 too
    except ValueError as exc:
        message = Msg("{name}: {reason}", name=name, reason=message_of(exc))
        raise UsageError([Diagnostic("usage", message, pointer=f"/{name}")]) from None


_TEXT = Key(accepts=str, code="request_invalid", message=Msg("a text"))
# approve, reject: an optional message; an unknown key is named, not ignored
MESSAGE_REQUEST = Envelope(
    {"message": _TEXT},
    detail=Msg("the request is invalid"),
    code="request_invalid",
    missing="required",
    not_object="request_invalid",
)
_ACKNOWLEDGED = Key(accepts=int, code="request_invalid", message=_STRANDS_COUNT)
# approve: a message, and how many stored entities the approver accepts stranding
APPROVE_REQUEST = Envelope(
    {"message": _TEXT, "acknowledge_stranded": _ACKNOWLEDGED},
    detail=Msg("the request is invalid"),
    code="request_invalid",
    missing="required",
    not_object="request_invalid",
)
# rollback: the revision, a message, and the strands accepted as at an approval
ROLLBACK_REQUEST = Envelope(
    {"to": Key(required=True), "message": _TEXT, "acknowledge_stranded": _ACKNOWLEDGED},
    detail=Msg("the request is invalid"),
    code="request_invalid",
    missing="required",
    not_object="request_invalid",
)


def _window(request: dict[str, Any], name: str) -> int | None:
    """`since`/`until` of a request body as since_ms reads it; else a 422 pointing at it
    (a UsageError would be a 404: what was asked for is not there)."""
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"/{name}", Msg("not a text"), Msg("'{name}' must be a text", name=name))
    try:
        return since_ms(value, name)
    except UsageError as exc:
        reason = exc.diagnostics[0].message
        raise RequestProblem(
            problem(
                422,
                "request_invalid",
                reason,
                errors=[Diagnostic("request_invalid", reason, pointer=f"/{name}")],
            )
        ) from None


def _is_ref(text: str) -> bool:
    """published, a number, POLICY@N or a hash; no paths."""
    return text == "published" or bool(NUMBER.fullmatch(text) or HASH.fullmatch(text))


def _ref(value: Any, name: str) -> str:
    """A revision ref from a request's body (`_is_ref`), or a 422 pointing at it."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    if _is_ref(text):
        return text
    raise RequestProblem(
        problem(
            422,
            "request_invalid",
            Msg("'{name}' must be 'published', a revision number or a content hash", name=name),
            errors=[Diagnostic("request_invalid", Msg("not a revision"), pointer=f"/{name}")],
        )
    )


def no_nul(request: dict[str, Any]) -> dict[str, Any]:
    """The body, unless a text in it holds a NUL character: the lifecycle stores its texts
    (messages, sources, tests) as they are, and PostgreSQL's text cannot hold one (a 500
    there, stored on SQLite): a 422 at its place on every store."""
    pointer = _nul_at(request, "")
    if pointer is None:
        return request
    reason = Msg("a text holds a NUL character (U+0000)")
    raise _invalid(pointer, reason)


def _nul_at(value: Any, pointer: str) -> str | None:
    if isinstance(value, str):
        return pointer if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        place = join_pointer(pointer, key)
        if isinstance(key, str) and "\x00" in key:
            return place
        found = _nul_at(item, place)
        if found is not None:
            return found
    return None


def _query_ref(query: Mapping[str, Any], name: str) -> str | None:
    """A revision ref from the query (None: not given), or a 422 query_invalid naming it:
    a query has no body for a pointer to point into."""
    value = query.get(name)
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else ""
    if _is_ref(text):
        return text
    reason = Msg("expected 'published', a revision number or a content hash")
    detail = Msg("query parameter '{name}': {reason}", name=name, reason=reason)
    raise RequestProblem(problem(422, "query_invalid", detail, parameter=name))


def _under(diagnostic: Diagnostic, prefix: str) -> Diagnostic:
    """A diagnostic whose pointer is relative to a part of the request, made absolute."""
    if diagnostic.pointer is None:
        return diagnostic
    return dataclasses.replace(diagnostic, pointer=prefix + diagnostic.pointer)


IMPACT_KEYS = frozenset(
    {"draft", "against", "since", "until", "data", "sample", "max_changed", "list"}
)
# the lowest count of each, as the CLI's options take them (--sample 0 replays nothing)
COUNTS = {"sample": 1, "max_changed": 0, "list": 0}
MAX_COUNT = 2**63 - 1  # what the store's JSON and SQL integers hold


def _invalid(pointer: str, reason: str, detail: str | None = None) -> RequestProblem:
    """A 422 request_invalid naming the part of the body that is wrong."""
    return RequestProblem(
        problem(
            422,
            "request_invalid",
            detail or reason,
            errors=[Diagnostic("request_invalid", reason, pointer=pointer)],
        )
    )


def _count(request: dict[str, Any], name: str, low: int) -> int | None:
    """A count of an impact request (absent or null: None); true is no count, nor 1."""
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_COUNT:
        reason = Msg("expected an integer from {low} to {high}", low=low, high=MAX_COUNT)
        detail = Msg("'{key}' must be a count", key=name)
        raise _invalid(f"/{name}", reason, detail)
    return value


def _data_shape(data: Any) -> dict[str, list[Any]]:
    """`data` of an impact request: a data set's name -> its entries."""
    if data is None:
        return {}
    detail = Msg("'data' maps a data set to its entries")
    if not isinstance(data, dict):
        raise _invalid("/data", Msg("an object of data set -> entries"), detail)
    for name, entries in data.items():
        if not isinstance(entries, list):
            pointer = f"/data/{escape_pointer_token(name)}"
            raise _invalid(pointer, Msg("a list of entries"), detail)
    return data


def _check_data(candidate: Candidate, data: dict[str, list[Any]]) -> None:
    """Each new data set must be one the policy reads, with entries its schema takes; else
    a 422 pointing into this request (/data/NAME/3/phone): the mistake is in the body."""
    for name, entries in data.items():
        pointer = f"/data/{escape_pointer_token(name)}"
        if name not in candidate.policy.datasets:
            reason = Msg(
                "policy '{policy}' reads no data set '{name}'", policy=candidate.id, name=name
            )
            raise RequestProblem(
                problem(
                    422,
                    "request_invalid",
                    reason,
                    errors=[
                        Diagnostic(
                            "unknown_data_set",
                            reason,
                            pointer=pointer,
                            hint=did_you_mean(name, candidate.policy.datasets),
                        )
                    ],
                )
            )
        try:
            check_overrides(candidate, {name: entries})
        except PolicyError as exc:
            raise RequestProblem(
                problem(
                    422,
                    "data_invalid",
                    Msg("the new data does not match its schema"),
                    errors=[_under(d, pointer) for d in exc.diagnostics],
                )
            ) from None


class LifecycleService:
    def __init__(
        self, store: str, rules: Rules, stores: tuple[Any, Any], known: Callable[[], Any]
    ) -> None:
        """`stores`: the worker's (Store, RevisionStore), shared with its other threads
        (this one runs on its lifecycle thread)."""
        self.lifecycle = Lifecycle(store, rules, stores=stores)
        self.rules = rules
        self.known = known  # () -> the ids of the policies served (for 404s and hints)

    def close(self) -> None:
        self.lifecycle.close()

    # -- helpers -----------------------------------------------------------------------
    def _run(self, call: Callable[[], Response]) -> Response:
        try:
            return call()
        except RequestProblem as exc:
            return exc.response
        except KimariError as exc:
            return from_error(exc, LIFECYCLE)

    def _policy(self, policy_id: str) -> str:
        known = set(self.known()) | set(self.lifecycle.revisions.policy_ids())
        if not POLICY_ID.fullmatch(policy_id) or policy_id not in known:
            raise RequestProblem(
                problem(
                    404,
                    "unknown_policy",
                    Msg("no policy '{id}'", id=policy_id),
                    hint=did_you_mean(policy_id, known),
                )
            )
        return policy_id

    @staticmethod
    def _number(text: str) -> int:
        if not REVISION_NUMBER.fullmatch(text):  # ASCII, and within SQL's integers
            message = Msg("no revision '{number}'", number=text)
            raise RequestProblem(problem(404, "unknown_revision", message))
        return int(text)

    @staticmethod
    def _body(body: bytes, required: bool = True) -> dict[str, Any]:
        if not body and not required:
            return {}
        value = parse_body(body)
        if not isinstance(value, dict):  # pointed at the body, as every other route does
            message = Msg("the body must be an object")
            errors = [Diagnostic("type_mismatch", message, pointer="")]
            raise RequestProblem(problem(422, "request_invalid", message, errors=errors))
        return no_nul(value)

    def _rules_params(self) -> dict[str, Any]:
        rules = self.rules
        return {
            "approvals_required": rules.approvals_required,
            "impact_days": rules.impact_days,
            "impact_sample": rules.impact_sample,
            "workers": rules.workers,
        }

    # -- operations ----------------------------------------------------------------------
    def revisions(self, meta: dict[str, Any], _body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            limit = integer_parameter(meta, "limit", 1, MAX_LISTED, LISTED) or LISTED
            before = integer_parameter(meta, "before", 1, 2**62, None)
            return _json(200, self.lifecycle.listing(policy_id, limit, before))

        return self._run(call)

    def revision(self, meta: dict[str, Any], _body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            return _json(200, self.lifecycle.detail(policy_id, self._number(meta["number"])))

        return self._run(call)

    def create(self, meta: dict[str, Any], body: bytes) -> Response:
        """A draft (201), or a submission (202 with the job that tests, replays, records)."""

        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            request = self._body(body)
            source = request.get("source")
            state = request.get("state", "pending")
            problems = []
            if not isinstance(source, str) or not source.strip():
                problems.append(("/source", Msg("the policy's YAML text")))
            if state not in ("draft", "pending"):
                problems.append(("/state", Msg("'draft' or 'pending'")))
            for key in ("message", "tests"):
                if request.get(key) is not None and not isinstance(request[key], str):
                    problems.append((f"/{key}", Msg("a text")))
            files = request.get("files")
            if files is not None and not (
                isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
            ):
                problems.append(("/files", Msg("an object of file name -> text")))
            extra = set(request) - {"source", "files", "tests", "message", "state"}
            problems.extend((f"/{k}", Msg("not a key of a revision")) for k in sorted(extra))
            if problems:
                return problem(
                    422,
                    "request_invalid",
                    Msg("a revision is {{source, files?, tests?, message?, state?}}"),
                    errors=[Diagnostic("request_invalid", m, pointer=p) for p, m in problems],
                )
            message = request.get("message") or ""
            candidate = self._draft_text(policy_id, source, files, request.get("tests"))
            principal = meta.get("principal", "anonymous")
            if state == "draft":
                record = self.lifecycle.draft(candidate, principal, message)
                location = f"/v1/policies/{policy_id}/revisions/{record.number}"
                return _json(201, record.to_dict(), [(b"location", location.encode())])
            params = {
                "source": source,
                "files": files,
                "tests": request.get("tests"),
                "message": message,
                "rules": self._rules_params(),
            }
            return self._job("submit", policy_id, principal, params)

        return self._run(call)

    def _draft_text(
        self, policy_id: str, source: str, files: dict[str, str] | None, tests: str | None
    ) -> Candidate:
        """draft_from_text; a file sent that the policy does not read is a mistake in the
        request (422 at /files/NAME), not in the policy."""
        try:
            return draft_from_text(self.lifecycle, policy_id, source, files=files, tests=tests)
        except DraftInvalid as exc:
            unread = [d for d in exc.diagnostics if d.code == "unknown_file"]
            if not unread:
                raise
            raise RequestProblem(
                problem(422, "request_invalid", unread[0].message, errors=unread)
            ) from None

    def _job(self, kind: str, policy_id: str, principal: str, params: dict[str, Any]) -> Response:
        # its report is written once, by its own process: in the language of this request
        params = {**params, "lang": language()}
        job = jobs.start(self.lifecycle.revisions, kind, policy_id, principal, params)
        location = f"/v1/jobs/{job.id}"
        return _json(202, job.to_dict(), [(b"location", location.encode())])

    def submit(self, meta: dict[str, Any], body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            number = self._number(meta["number"])
            said = self._message(body)  # the submitter's, kept in the audit trail
            record = self.lifecycle.record(policy_id, number)
            if record.state != "draft":
                message = Msg(
                    "{ref} is {state}, not a draft", ref=record.ref, state=state_word(record.state)
                )
                return problem(409, "not_a_draft", message)
            self.lifecycle.check_base(record)  # 409 stale_base: drafted from an older one
            params = {"draft": record.number, "message": said, "rules": self._rules_params()}
            return self._job("submit", policy_id, meta.get("principal", "anonymous"), params)

        return self._run(call)

    def approve(self, meta: dict[str, Any], body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            number = self._number(meta["number"])
            request = no_nul(APPROVE_REQUEST.read(body)) if body else {}
            acknowledged = _acknowledged(request)
            principal = meta.get("principal", "anonymous")
            try:
                publication = self.lifecycle.approve(
                    policy_id, number, principal, request.get("message") or "", acknowledged
                )
            except StrandsEntities as exc:
                return _strands(exc)
            record = self.lifecycle.record(policy_id, number)
            return _json(200, {"publication": publication.to_dict(), "revision": record.to_dict()})

        return self._run(call)

    def _message(self, body: bytes) -> str:
        """The `message` of an approval or a rejection (an empty body: none)."""
        if not body:
            return ""
        return no_nul(MESSAGE_REQUEST.read(body)).get("message") or ""

    def reject(self, meta: dict[str, Any], body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            record = self.lifecycle.reject(
                policy_id,
                self._number(meta["number"]),
                meta.get("principal", "anonymous"),
                self._message(body),
            )
            return _json(200, record.to_dict())

        return self._run(call)

    def rollback(self, meta: dict[str, Any], body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            request = no_nul(ROLLBACK_REQUEST.read(body))  # its shape first: nothing looked up
            target = _ref(request["to"], "to")
            message = request.get("message") or ""
            acknowledged = _acknowledged(request)
            principal = meta.get("principal", "anonymous")
            try:
                publication = self.lifecycle.rollback(
                    policy_id, target, principal, str(message), acknowledged
                )
            except StrandsEntities as exc:
                return _strands(exc)
            return _json(200, publication.to_dict())

        return self._run(call)

    def diff(self, meta: dict[str, Any], _body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            old = _query_ref(meta, "from") or "published"
            new = _query_ref(meta, "to")
            if new is None:
                waiting = self.lifecycle.revisions.records(policy_id, ("pending", "draft"), 1)
                if not waiting:
                    return problem(
                        422,
                        "query_invalid",
                        Msg("give ?to= (no draft or pending revision to compare with)"),
                        parameter="to",
                    )
                new = str(waiting[0].number)
            return _json(200, self.lifecycle.diff(policy_id, old, new))

        return self._run(call)

    def impact(self, meta: dict[str, Any], body: bytes) -> Response:
        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            request = self._body(body, required=False)
            extra = sorted(set(request) - IMPACT_KEYS)
            if extra:
                return problem(
                    422,
                    "request_invalid",
                    Msg(
                        "unknown key '{key}' (keys: {keys})",
                        key=extra[0],
                        keys=", ".join(sorted(IMPACT_KEYS)),
                    ),
                    errors=[
                        Diagnostic("request_invalid", Msg("unknown key"), pointer=f"/{extra[0]}")
                    ],
                )
            draft = request.get("draft")
            against = _ref(request.get("against") or "published", "against")
            since, until = _window(request, "since"), _window(request, "until")
            if since is not None and until is not None and since > until:
                reason = Msg("'until' is before 'since': the window holds no decision")
                raise _invalid("/until", Msg("before 'since'"), reason)
            data = _data_shape(request.get("data"))
            counts = {name: _count(request, name, low) for name, low in COUNTS.items()}
            before = self.lifecycle.resolve(policy_id, against)
            after = (
                self.lifecycle.resolve(policy_id, _ref(draft, "draft"))
                if draft is not None
                else before
            )
            if draft is None and not data:
                message = Msg("give a 'draft', new 'data', or both")
                return problem(422, "request_invalid", message)
            _check_data(after, data)
            params = {
                "draft": _ref(draft, "draft") if draft is not None else None,
                "against": against,
                "since_ms": since,
                "until_ms": until,
                "data": data,
                **counts,
                "list": 100 if counts["list"] is None else counts["list"],
                "rules": self._rules_params(),
            }
            return self._job("impact", policy_id, meta.get("principal", "anonymous"), params)

        return self._run(call)

    # -- the editor's checks: a text not stored, checked as a draft of it would be -------
    def _text(self, body: bytes, *, blank: bool = False) -> dict[str, Any]:
        """`{"source", "files"?, "tests"?}` checked: a text that is not stored. `blank`: an
        empty or blank source is a text too (an editor that cleared its buffer), whose
        diagnostics say so, instead of a request refused."""
        request = self._body(body)
        problems = []
        source = request.get("source")
        if not isinstance(source, str) or not (blank or source.strip()):
            problems.append(("/source", Msg("the policy's YAML text")))
        if request.get("tests") is not None and not isinstance(request["tests"], str):
            problems.append(("/tests", Msg("a text")))
        files = request.get("files")
        if files is not None and not (
            isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
        ):
            problems.append(("/files", Msg("an object of file name -> text")))
        extra = set(request) - {"source", "files", "tests"}
        problems.extend((f"/{k}", Msg("not a key of a draft's text")) for k in sorted(extra))
        if problems:
            raise RequestProblem(
                problem(
                    422,
                    "request_invalid",
                    Msg("a draft's text is {{source, files?, tests?}}"),
                    errors=[Diagnostic("request_invalid", m, pointer=p) for p, m in problems],
                )
            )
        return request

    def validate(self, meta: dict[str, Any], body: bytes) -> Response:
        """The diagnostics of a text as a draft of it would get them (the compile stages of
        `kimari validate`, schema files and data from the published revision), and of its
        test cases; 200 either way: an editor asks this as it types. Nothing is stored and
        nothing is registered with durable_rules."""

        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            request = self._text(body, blank=True)
            tests = request.get("tests")
            try:
                candidate = self._draft_text(
                    policy_id, request["source"], request.get("files"), tests
                )
            except DraftInvalid as exc:
                found = exc.diagnostics
                return _json(
                    200,
                    {
                        "policy": policy_id,
                        "valid": False,
                        "revision": None,
                        "errors": [d.to_dict() for d in found if d.is_error],
                        "warnings": [d.to_dict() for d in found if not d.is_error],
                        "tests": {"checked": False, "errors": []},
                    },
                )
            tests_errors = check_tests(candidate) if tests is not None else []
            return _json(
                200,
                {
                    "policy": policy_id,
                    "valid": not tests_errors,
                    "revision": candidate.revision,
                    "errors": [],
                    "warnings": [d.to_dict() for d in candidate.policy.warnings],
                    "tests": {
                        "checked": tests is not None,
                        "errors": [d.to_dict() for d in tests_errors],
                    },
                },
            )

        return self._run(call)

    def run_tests(self, meta: dict[str, Any], body: bytes) -> Response:
        """A text's YAML test cases run as a job (durable_rules registers what it compiles,
        so a draft is never compiled into this worker's engine): 202 and the job."""

        def call() -> Response:
            policy_id = self._policy(meta["policy_id"])
            request = self._text(body)
            params = {
                "source": request["source"],
                "files": request.get("files"),
                "tests": request.get("tests"),
            }
            return self._job("tests", policy_id, meta.get("principal", "anonymous"), params)

        return self._run(call)

    def jobs(self, meta: dict[str, Any], _body: bytes) -> Response:
        def call() -> Response:
            listed = self.lifecycle.revisions.jobs(policy_parameter(meta), limit=50)
            return _json(200, {"jobs": [self._brief(j.to_dict()) for j in listed]})

        return self._run(call)

    @staticmethod
    def _brief(job: dict[str, Any]) -> dict[str, Any]:
        job.pop("report", None)
        job.pop("params", None)
        return job

    def job(self, meta: dict[str, Any], _body: bytes) -> Response:
        found = (
            self.lifecycle.revisions.job(meta["job_id"])
            if JOB_ID.fullmatch(meta["job_id"])
            else None
        )
        if found is None:
            return problem(404, "unknown_job", Msg("no job '{id}'", id=meta["job_id"]))
        out = found.to_dict()
        texts = ("data", "source", "tests", "files")  # what was sent; the report says the rest
        out["params"] = {k: v for k, v in out["params"].items() if k not in texts}
        return _json(200, out)

    def cancel(self, meta: dict[str, Any], _body: bytes) -> Response:
        job_id = meta["job_id"]
        found = (
            self.lifecycle.revisions.cancel_job(job_id, meta.get("principal", "anonymous"))
            if JOB_ID.fullmatch(job_id)
            else None
        )
        if found is None:
            return problem(404, "unknown_job", Msg("no job '{id}'", id=job_id))
        return _json(202 if not found.finished else 200, self._brief(found.to_dict()))

    def audit(self, meta: dict[str, Any], _body: bytes) -> Response:
        def call() -> Response:
            policy_id = meta.get("policy_id") or policy_parameter(meta)
            if meta.get("policy_id"):
                self._policy(policy_id)
            limit = integer_parameter(meta, "limit", 1, MAX_AUDIT, 100) or 100
            before = integer_parameter(meta, "before", 1, 2**62, None)
            entries = self.lifecycle.revisions.audit(policy_id, limit, before)
            return _json(200, {"entries": [e.to_dict() for e in entries]})

        return self._run(call)


# -- OpenAPI components of these operations (engine/service/openapi.py adds them) ----------
def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_TEXT: dict[str, Any] = {"type": "string"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_MS: dict[str, Any] = {"type": "integer", "description": "milliseconds since the epoch"}
_REVISION_REF: dict[str, Any] = {
    "type": ["integer", "string"],
    "description": "a revision: its number, 'published', or a content hash",
}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _maybe(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# what an approval or a rollback answers under --watch, where the files stay served
_WATCH_NOTE: dict[str, Any] = {
    "served": {"type": "boolean", "description": "false under --watch: recorded, not served"},
    "served_from": {"enum": ["files"]},
    "note": {"type": "string"},
}


_REVISION = {
    "policy": _TEXT,
    "number": {"type": "integer", "minimum": 1},
    "ref": {"type": "string", "description": "policy@number"},
    "revision": {"type": "string", "description": "the content hash decisions name"},
    "state": {"enum": ["draft", "pending", "published", "retired", "rejected"]},
    "base": _maybe({"type": "integer"}),
    "author": _TEXT,
    "created_at": _MS,
    "message": _TEXT,
    "data": {"type": "object", "additionalProperties": _TEXT},
    "tests": _maybe({"type": "object", "description": "cases, passed, failed, errors, ..."}),
    "impact": _maybe({"type": "object", "description": "the replay's counts at submission"}),
    "approver": _maybe(_TEXT),
    "approved_at": _maybe(_MS),
}
SCHEMAS: dict[str, Any] = {
    "Revision": _object(
        {
            **_REVISION,
            "publications": {"type": "array", "items": {"type": "integer"}},
            "stale": {
                "type": "boolean",
                "description": "a draft or pending revision no longer based on the published one",
            },
        },
        ["policy", "number", "ref", "revision", "state", "author", "created_at"],
    ),
    "RevisionDetail": _object(
        {
            **_REVISION,
            "source": _maybe(_TEXT),
            "files": {"type": "object", "additionalProperties": _TEXT},
            "tests_source": _maybe(_TEXT),
            "path": _maybe(_TEXT),
            "publications": {"type": "array", "items": _component("Publication")},
        },
        ["policy", "number", "revision", "state"],
    ),
    "RevisionList": _object(
        {
            "policy": _TEXT,
            "published": _maybe(_component("Publication")),
            "published_revision": {
                "anyOf": [_component("Revision"), {"type": "null"}],
                "description": "the published revision's record, on this page or not",
            },
            "approvals_required": {"type": "integer", "enum": [0, 1]},
            "revisions": {"type": "array", "items": _component("Revision")},
            "next_before": {
                "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
                "description": "?before= of the next page of older revisions (null: none)",
            },
        },
        ["policy", "revisions"],
    ),
    "Publication": _object(
        {
            "publication": {"type": "integer", "description": "the id decisions name"},
            "policy": _TEXT,
            "number": {"type": "integer"},
            "revision": _TEXT,
            "kind": {"enum": ["bootstrap", "approval", "direct", "rollback"]},
            "principal": _TEXT,
            "published_at": _MS,
            "message": _TEXT,
            **_WATCH_NOTE,
        },
        ["publication", "policy", "number", "revision", "kind", "principal"],
    ),
    "Approval": _object(
        {
            "publication": _component("Publication"),
            "revision": _component("Revision"),
            **_WATCH_NOTE,
        },
        ["publication", "revision"],
    ),
    "Job": _object(
        {
            "id": _TEXT,
            "kind": {"enum": ["impact", "submit", "tests"]},
            "policy": _TEXT,
            "state": {"enum": ["running", "done", "failed", "cancelled"]},
            "principal": _TEXT,
            "created_at": _MS,
            "started_at": _maybe(_MS),
            "finished_at": _maybe(_MS),
            "progress": _object({"done": _COUNT, "total": _maybe(_COUNT)}),
            "params": {"type": "object"},
            "cancel_requested": {"type": "boolean"},
            "report": _maybe(
                {"type": "object", "description": "the impact report, or the revision submitted"}
            ),
            "error": {"description": "why it failed: a problem's code and errors"},
        },
        ["id", "kind", "policy", "state", "progress"],
    ),
    "JobList": _object({"jobs": {"type": "array", "items": _component("Job")}}, ["jobs"]),
    "Diff": _object(
        {
            "policy": _TEXT,
            "from": _maybe({"type": "object"}),
            "to": _maybe({"type": "object"}),
            "identical": {"type": "boolean"},
            "changes": {
                "type": "object",
                "description": "per section (policy, rules, settings, derived, outcome, data, "
                "facts, flow): added, removed, changed",
            },
            "text": {"type": "string", "description": "the unified diff"},
        },
        ["policy", "identical", "changes", "text"],
    ),
    "AuditTrail": _object(
        {
            "entries": {
                "type": "array",
                "items": _object(
                    {
                        "seq": {"type": "integer"},
                        "at": _MS,
                        "principal": _TEXT,
                        "action": _TEXT,
                        "policy": _TEXT,
                        "number": _maybe({"type": "integer"}),
                        "detail": {"type": "object"},
                    }
                ),
            }
        },
        ["entries"],
    ),
    "RevisionRequest": {
        **_object(
            {
                "source": {"type": "string", "minLength": 1, "description": "the YAML text"},
                "files": {"type": "object", "additionalProperties": _TEXT},
                "tests": {"type": "string", "description": "its *.tests.yaml text"},
                "message": _TEXT,
                "state": {"enum": ["draft", "pending"], "default": "pending"},
            },
            ["source"],
        ),
        "additionalProperties": False,
    },
    "DraftText": {
        **_object(
            {
                "source": {"type": "string", "minLength": 1, "description": "the YAML text"},
                "files": {"type": "object", "additionalProperties": _TEXT},
                "tests": {"type": "string", "description": "its *.tests.yaml text"},
            },
            ["source"],
        ),
        "additionalProperties": False,
    },
    "Validation": _object(
        {
            "policy": _TEXT,
            "valid": {"type": "boolean", "description": "no error in the text nor its tests"},
            "revision": _maybe({"type": "string", "description": "its content hash"}),
            "errors": {"type": "array", "items": _component("Diagnostic")},
            "warnings": {"type": "array", "items": _component("Diagnostic")},
            "tests": _object(
                {
                    "checked": {"type": "boolean", "description": "tests were sent and read"},
                    "errors": {"type": "array", "items": _component("Diagnostic")},
                },
                ["checked", "errors"],
            ),
        },
        ["policy", "valid", "errors", "warnings", "tests"],
    ),
    "MessageRequest": {**_object({"message": _TEXT}), "additionalProperties": False},
    "ApprovalRequest": {
        **_object(
            {
                "message": _TEXT,
                "acknowledge_stranded": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "a flow revision that strands stored entities (their state "
                    "removed or abolished) is published only if this is at least how many it "
                    "strands at the approval: else 409 strands_entities, with `stranded` and "
                    "`states`",
                },
            }
        ),
        "additionalProperties": False,
    },
    "RollbackRequest": {
        **_object(
            {
                "to": _REVISION_REF,
                "message": _TEXT,
                "acknowledge_stranded": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "a flow's earlier revision that lacks states stored "
                    "entities stand in now is published again only if this is at least how "
                    "many: else 409 strands_entities, with `stranded` and `states`",
                },
            },
            ["to"],
        ),
        "additionalProperties": False,
    },
    "ImpactRequest": {
        **_object(
            {
                "draft": _REVISION_REF,
                "against": _REVISION_REF,
                "since": {
                    "type": "string",
                    "description": "30d, 12h, a date (its start in Japan) or an RFC 3339 time",
                },
                "until": _TEXT,
                "data": {"type": "object", "additionalProperties": {"type": "array"}},
                "sample": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                "max_changed": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                "list": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT, "default": 100},
            }
        ),
        "additionalProperties": False,
    },
}
