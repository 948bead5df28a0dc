"""The service's routes: ONE table that the front, the scope check, the worker and the
OpenAPI document all read.

    method  path                                     scope   answered by    worker operation
    GET     /healthz                                 -       front          -
    POST    /v1/decisions/{policy}                   decide  one worker     DECIDE
    PUT     /v1/data/{name}                          admin   one worker     PUT_DATA
    POST    /v1/reload                               admin   every worker   RELOAD
    POST    /v1/policies/{policy_id}/revisions/{number}:approve  publish  one worker  ...
    GET     /console/assets/{asset}                  -       front, files   -
    ...

A row is one operation: a method on a path, the token scope it needs, who answers it, the
frame operation (`ipc.Op`) a worker dispatches on, and its OpenAPI operationId and summary.
The front (http.py) matches a request's path and method here and checks the scope; a
worker (worker.py) keeps one handler per operation named here; openapi.py writes one
operation per row, once per policy or data set for the rows marked `each`.

Rows that differ only in the names of their path parameters share a path (GET
/v1/decisions/{decision_id} and POST /v1/decisions/{policy}): a request's path is matched
by the first such path in table order, so /v1/decisions/x:batch is the batch path, and a
method it does not offer is a 405 with `Allow`, not another route's 404.

The front imports this module, so it imports nothing that evaluates or compiles: only the
frame codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from engine.core.suggest import did_you_mean
from engine.service.ipc import Op

DECIDE = "decide"
ADMIN = "admin"
# Policy editors: drafts, diffs, impact, approval, rollback. Apart from `admin` (operators:
# data sets, reloads, flow imports), because those who change and approve rulebooks are not
# those who run the service, and a leaked operator's token must not publish rules.
PUBLISH = "publish"
SCOPES = (DECIDE, ADMIN, PUBLISH)


class By(StrEnum):
    FRONT = "front"  # the front answers alone: it must, when no worker is up (health)
    WORKER = "worker"  # forwarded to one worker, its answer relayed
    EVERY = "every worker"  # sent to every worker; the front combines their answers
    FILES = "front, from files"  # the console's built files (engine/console), no worker


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    # "/v1/flows/{policy}/{entity_id}": a parameter matches one non-empty segment, or with a
    # suffix ("{policy}:batch") what the segment holds before it (as it always did: maybe empty)
    path: str
    scope: str | None  # the token scope needed; None: no token
    op: Op | None  # what a worker dispatches on; None: the front answers
    # OpenAPI, camelCase; "{Policy}" and "{Name}" are filled in per policy or data set with
    # the id in CamelCase (decideOrderHolds): stable as long as the id is, whatever the title
    operation_id: str
    summary: str  # OpenAPI; also "{title}" (the policy's) and "{max_batch}"
    by: By = By.WORKER
    # documented once per decision policy, flow policy or data set, whose id fills the path's
    # first parameter; None: documented as the path template
    each: Literal["decision", "flow", "data"] | None = None
    flags: tuple[str, ...] = ()  # boolean query parameters ("?explain=true"), passed on
    query: tuple[str, ...] = ()  # text query parameters ("?policy=x"), passed on as given
    headers: Mapping[str, str] = field(default_factory=dict)  # header -> the worker's key
    actor: bool = False  # the body names an actor: the front passes the token's roles on
    # the worker records who did it (data replacements; every `publish` route, the
    # lifecycle's audit trail): the front passes the token's principal on
    audited: bool = False
    api: bool = True  # False: a page of the console, not an operation of the OpenAPI document
    params: tuple[str, ...] = field(init=False, repr=False, compare=False)  # names, in order
    pattern: str = field(init=False, repr=False, compare=False)  # a regex of the path

    def __post_init__(self) -> None:
        params, pattern = [], []
        for segment in self.path.split("/")[1:]:
            name, brace, suffix = segment[1:].partition("}")
            if not (segment.startswith("{") and brace):
                pattern.append(re.escape(segment))
                continue
            params.append(name)
            # with a suffix, whatever comes before it (even nothing, as it always was); a
            # revision number holds no ':', which starts an action (8:frobnicate is no
            # revision of the GET route, whose POST would be a 405: it is no path, a 404)
            value = "[^/:]" if name == "number" else "[^/]"
            pattern.append(f"({value}*){re.escape(suffix)}" if suffix else f"({value}+)")
        object.__setattr__(self, "params", tuple(params))
        object.__setattr__(self, "pattern", "/" + "/".join(pattern))
        if self.scope == PUBLISH:
            object.__setattr__(self, "audited", True)

    @property
    def takes_body(self) -> bool:
        return self.method in ("POST", "PUT")


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/decisions/{policy}:batch",
        DECIDE,
        Op.BATCH,
        "decide{Policy}Batch",
        "Decide up to {max_batch} cases with '{policy}'",
        each="decision",
    ),
    Route(
        "POST",
        "/v1/decisions/{policy}",
        DECIDE,
        Op.DECIDE,
        "decide{Policy}",
        "Decide with '{policy}' ({title})",
        each="decision",
        flags=("explain",),
        headers={"Idempotency-Key": "key"},
    ),
    Route(
        "GET",
        "/v1/decisions",
        ADMIN,  # every caller's facts at once (names, phones): not for a service's token
        Op.LIST_DECISIONS,
        "listDecisions",
        "The decision log, newest first, filtered and paged",
        query=("policy", "revision", "rule", "outcome", "since", "until", "limit", "cursor"),
    ),
    Route(
        "GET",
        "/v1/decisions/{decision_id}",
        DECIDE,
        Op.GET_DECISION,
        "getDecision",
        "A logged decision, with its explanation",
    ),
    Route(
        "POST",
        "/v1/flows/{policy}/{entity_id}/events",
        DECIDE,
        Op.FLOW_EVENT,
        "apply{Policy}Event",
        "Apply an event to an entity of '{policy}' ({title})",
        each="flow",
        actor=True,
    ),
    Route(
        "GET",
        "/v1/flows/{policy}/{entity_id}",
        DECIDE,
        Op.FLOW_ENTITY,
        "get{Policy}Entity",
        "Where an entity of '{policy}' stands",
        each="flow",
    ),
    Route(
        "PUT",
        "/v1/flows/{policy}/{entity_id}",
        ADMIN,
        Op.FLOW_IMPORT,
        "import{Policy}Entity",
        "Import an entity of '{policy}' under way elsewhere",
        each="flow",
        audited=True,  # the import's history row and audit entry name the principal
    ),
    Route(
        "GET",
        "/v1/flows/{policy}/{entity_id}/history",
        DECIDE,
        Op.FLOW_HISTORY,
        "get{Policy}History",
        "The moves of an entity of '{policy}'",
        each="flow",
        flags=("refusals",),
        query=("limit", "after"),  # a page of it (engine/service/flows.py)
    ),
    Route(
        "GET",
        "/v1/data",
        DECIDE,
        Op.LIST_DATA,
        "listData",
        "The reference data sets: version, source, the policies that read them",
    ),
    Route(
        "GET",
        "/v1/data/{name}",
        DECIDE,
        Op.GET_DATA,
        "get{Name}Data",
        "Read the reference data set '{name}'",
        each="data",
    ),
    Route(
        "PUT",
        "/v1/data/{name}",
        ADMIN,
        Op.PUT_DATA,
        "put{Name}Data",
        "Replace the reference data set '{name}'",
        each="data",
        audited=True,
        headers={"If-Match": "if_match"},  # the version read (its ETag): else 412
    ),
    Route(
        "GET",
        "/v1/data/{name}/versions",
        DECIDE,
        Op.DATA_VERSIONS,
        "get{Name}DataVersions",
        "The versions of '{name}' the store keeps, newest first",
        each="data",
        query=("limit", "before", "changes_before"),  # pages of each list
    ),
    Route(
        "DELETE",
        "/v1/data/{name}",
        ADMIN,
        Op.DELETE_DATA,
        "reset{Name}Data",
        "Serve the file default of '{name}' again",
        each="data",
        audited=True,
        headers={"If-Match": "if_match"},
    ),
    Route("GET", "/v1/policies", DECIDE, Op.POLICIES, "listPolicies", "The policies served"),
    # -- the policy lifecycle (engine/service/lifecycle.py); the suffixed paths come first
    Route(
        "POST",
        "/v1/policies/{policy_id}/revisions/{number}:submit",
        PUBLISH,
        Op.SUBMIT_REVISION,
        "submitRevision",
        "Submit a draft for approval: tests and impact run as a job",
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/revisions/{number}:approve",
        PUBLISH,
        Op.APPROVE_REVISION,
        "approveRevision",
        "Approve a pending revision (not its author): it is published",
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/revisions/{number}:reject",
        PUBLISH,
        Op.REJECT_REVISION,
        "rejectRevision",
        "Reject a draft or a pending revision",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/revisions/{number}",
        PUBLISH,
        Op.REVISION,
        "getRevision",
        "A revision: its record, source, tests and impact",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/revisions",
        PUBLISH,
        Op.REVISIONS,
        "listRevisions",
        "A policy's revisions: state, author, approver, tests and impact",
        query=("limit", "before"),
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/revisions",
        PUBLISH,
        Op.CREATE_REVISION,
        "createRevision",
        "Store a draft, or submit a revision for approval (a job)",
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/validate",
        PUBLISH,
        Op.VALIDATE_DRAFT,
        "validateDraft",
        "Validate a policy's YAML text (and its tests) as a draft: diagnostics at line:col",
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/tests",
        PUBLISH,
        Op.TEST_DRAFT,
        "testDraft",
        "Run the YAML test cases against a policy's text (a job)",
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/rollback",
        PUBLISH,
        Op.ROLLBACK,
        "rollbackPolicy",
        "Publish an earlier published revision again",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/diff",
        PUBLISH,
        Op.DIFF,
        "diffRevisions",
        "The semantic diff of two revisions, with the text diff",
        query=("from", "to"),
    ),
    Route(
        "POST",
        "/v1/policies/{policy_id}/impact",
        PUBLISH,
        Op.IMPACT,
        "startImpact",
        "Replay logged decisions against a draft (a job)",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/audit",
        PUBLISH,
        Op.AUDIT,
        "getPolicyAudit",
        "The audit trail of a policy",
        query=("limit", "before"),
    ),
    Route(
        "GET",
        "/v1/audit",
        PUBLISH,
        Op.AUDIT_ALL,
        "getAudit",
        "The audit trail of every policy",
        query=("policy", "limit", "before"),
    ),
    Route("POST", "/v1/jobs/{job_id}:cancel", PUBLISH, Op.CANCEL_JOB, "cancelJob", "Cancel a job"),
    Route("GET", "/v1/jobs/{job_id}", PUBLISH, Op.JOB, "getJob", "A job: progress and report"),
    Route("GET", "/v1/jobs", PUBLISH, Op.JOBS, "listJobs", "Recent jobs", query=("policy",)),
    Route(
        "GET",
        "/v1/policies/{policy_id}",
        DECIDE,
        Op.POLICY,
        "getPolicy",
        "A policy: revision, rules, settings, facts schema, status",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/source",
        DECIDE,
        Op.POLICY_SOURCE,
        "getPolicySource",
        "The YAML text of the revision served",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/examples",
        DECIDE,
        Op.POLICY_EXAMPLES,
        "getPolicyExamples",
        "Inputs to try a policy with: its YAML test cases and its files in examples/",
    ),
    Route(
        "GET",
        "/v1/policies/{policy_id}/stats",
        DECIDE,
        Op.POLICY_STATS,
        "getPolicyStats",
        "Decisions of a policy per day and outcome, counted from the log",
        query=("days",),
    ),
    Route(
        "POST",
        "/v1/reload",
        ADMIN,
        Op.RELOAD,
        "reload",
        "Check the policy files now (they are also polled); the policies served after",
        by=By.EVERY,
    ),
    Route(
        "GET",
        "/openapi.json",
        DECIDE,
        Op.OPENAPI,
        "openapi",
        "This document: one path per policy and data set, with their schemas",
    ),
    Route("GET", "/metrics", DECIDE, Op.STATS, "metrics", "Prometheus metrics", by=By.EVERY),
    # who the token is (principal, scopes, roles it may claim): the console adapts to it
    Route(
        "GET",
        "/v1/whoami",
        DECIDE,
        None,
        "whoami",
        "This token's principal, scopes and the roles its actors may claim",
        by=By.FRONT,
    ),
    Route("GET", "/healthz", None, None, "healthz", "The front process is alive", by=By.FRONT),
    Route("GET", "/readyz", None, None, "readyz", "A worker is ready to decide", by=By.FRONT),
    # the editors' console (engine/console): pages and assets with no token, since a browser
    # fetches them before the page can ask for one; everything they show comes from the API
    Route("GET", "/", None, None, "root", "Redirects to /console/", by=By.FILES, api=False),
    Route("GET", "/console", None, None, "console", "The console", by=By.FILES, api=False),
    Route(
        "GET",
        "/console/assets/{asset}",
        None,
        None,
        "console-asset",
        "A built asset of the console (content-hashed name)",
        by=By.FILES,
        api=False,
    ),
    Route("GET", "/docs", None, None, "docs", "The API documentation", by=By.FILES, api=False),
)


class NoRoute(Exception):
    """No route has this path."""


class NoMethod(Exception):
    """The path exists, but not with this method."""

    def __init__(self, allowed: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(allowed)))
        self.allowed = allowed


def _paths(routes: tuple[Route, ...]) -> list[dict[str, Route]]:
    """The routes by path (the same regex: parameter names aside), in table order."""
    paths: dict[str, dict[str, Route]] = {}
    for route in routes:
        methods = paths.setdefault(route.pattern, {})
        if route.method in methods:
            raise ValueError(f"two routes for {route.method} {route.path}")
        methods[route.method] = route
    return list(paths.values())


def _matcher(paths: list[dict[str, Route]]) -> tuple[re.Pattern[str], dict[int, dict[str, Route]]]:
    """One regex for every path, each alternative in a group of its own, in table order: the
    first that matches wins, and `lastindex` (an outer group closes last) says which it was."""
    by_group: dict[int, dict[str, Route]] = {}
    group = 1
    for methods in paths:
        by_group[group] = methods
        group += 1 + len(next(iter(methods.values())).params)
    alternatives = (f"({next(iter(m.values())).pattern})" for m in paths)
    return re.compile("|".join(alternatives)), by_group


_MATCHER, _BY_GROUP = _matcher(_paths(ROUTES))


# (method, path) -> what _match found: a service is asked the same few paths again and
# again, and the one regex of every route costs ~3 µs a request to run (0.24 µs from here).
# Emptied when full: paths that carry ids (a decision's, an entity's) must not grow it.
_FOUND: dict[tuple[str, str], tuple[Route, dict[str, str]]] = {}
FOUND_MAX = 1024
PATH_KEPT_MAX = 512


def find(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route of `method` on `path`, and the path's parameters (the caller's own dict).
    NoRoute, NoMethod."""
    if len(path) > PATH_KEPT_MAX:  # a client chooses its paths' size: not kept
        return _match(method, path)
    key = (method, path)
    found = _FOUND.get(key)
    if found is None:
        found = _match(method, path)
        if len(_FOUND) >= FOUND_MAX:
            _FOUND.clear()
        _FOUND[key] = found
    return found[0], dict(found[1])


def _match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    if len(path) > 1 and path[-1] == "/":
        path = path[:-1]  # one trailing slash is forgiven
    found = _MATCHER.fullmatch(path)  # ASGI paths are decoded: '%2F' is a '/' here
    if found is None:
        raise NoRoute(path)
    group = found.lastindex
    assert group is not None
    methods = _BY_GROUP[group]
    route = methods.get(method)
    if route is None:
        raise NoMethod(frozenset(methods))
    values = found.groups()[group : group + len(route.params)]
    return route, dict(zip(route.params, values, strict=True))


def suggest(path: str, raw_path: bytes | None = None) -> str | None:
    """A hint such as "did you mean '/healthz'?" for a path no route has: each route's path,
    its parameters filled with the request's own segments where the counts agree.
    `raw_path`: the path as sent, before its %-escapes were decoded."""
    if raw_path is not None and b"%2f" in raw_path.lower():
        # an escaped '/' was part of a segment: split at it, the request's segments are not
        # the values it sent ('/v1/policies/a%2Fb' is no '/v1/policies/a/diff' misspelt)
        return None
    segments = path.rstrip("/").split("/")
    if "." in segments or ".." in segments:
        return None  # no route has them, and any route "filled" with them misleads
    candidates = set()
    for route in ROUTES:
        parts = route.path.split("/")
        if len(parts) == len(segments):
            pairs = zip(parts, segments, strict=True)
            parts = [_filled(part, given) for part, given in pairs]
        candidates.add("/".join(parts))
    return did_you_mean(path, candidates - {path})


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _filled(part: str, given: str) -> str:
    """A route's segment with the request's own value for its parameter: `{number}:approve`
    with `8:frobnicate` is `8:approve`."""
    if _is_param(part):
        return given
    _, brace, suffix = part[1:].partition("}")
    if part.startswith("{") and brace and suffix:
        return given.partition(suffix[0])[0] + suffix
    return part


def worker_ops() -> frozenset[Op]:
    """The operations a worker must handle: the routes', and the front's own POLL and
    DATA_SYNC."""
    return frozenset(r.op for r in ROUTES if r.op is not None) | {Op.POLL, Op.DATA_SYNC}
