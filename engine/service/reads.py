"""Read-only operations over the log, the policies and the data sets: what the editors'
console shows, available to any client with the scope the route table names.

    GET /v1/decisions?policy=&revision=&rule=&outcome=&since=&until=&limit=&cursor=   (admin)
    GET /v1/policies/{id}/stats?days=      decisions per day and outcome, from the log
    GET /v1/policies/{id}/examples         YAML test cases and examples/ files, as inputs
    GET /v1/policies/{id}/source           the YAML text of the revision served
    GET /v1/data                           every data set: version, source, readers
    GET /v1/data/{name}/versions           the versions of one the store keeps

A worker owns one `Reads` next to its `Service` and calls it from the deciding thread,
which owns the log's read connection. Query parameters arrive as the client wrote them
(text); a bad one is a 422 `query_invalid` that names it.

The log listing needs `admin`: it hands out every caller's facts (names, phones, mail
addresses) in bulk, while a `decide` token is what each calling service holds. A service
reads back its own decisions by id (GET /v1/decisions/{id}); counts per day carry no facts
and need only `decide`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy, kind_word
from engine.core.i18n import Msg, message_of
from engine.core.jsonvalue import INT_MAX, INT_MIN, quoted
from engine.core.suggest import did_you_mean
from engine.lang.calendar import instant_ms
from engine.project.registry import Snapshot
from engine.service.decisions import POLICY_ID, headline, json_response
from engine.service.problems import RequestProblem, Response, problem
from engine.store.decisions import DecisionLog, OutcomeIs
from engine.store.versions import Store, UnknownVersion
from engine.testing.examples import policy_examples

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
LISTED = 100  # data versions and changes on a page unless ?limit= says otherwise
MAX_DAYS = 366
DEFAULT_DAYS = 14
JST = timezone(timedelta(hours=9))  # the days of the stats are days in Japan
_INTEGER = re.compile(r"-?[0-9]{1,19}")  # up to 64 bits: the range is checked after int()
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TEXT = re.compile(r"[^\x00-\x1f]{1,128}")


class Reads:
    def __init__(
        self, snapshot: Callable[[], Snapshot], decision_log: DecisionLog, folder: Path
    ) -> None:
        self.snapshot = snapshot
        self.log = decision_log
        self.folder = folder

    # -- the decision log --------------------------------------------------------------
    def list_decisions(self, query: Mapping[str, Any]) -> Response:
        try:
            limit = integer_parameter(query, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT) or DEFAULT_LIMIT
            outcome = query.get("outcome")
            rows = self.log.query(
                policy=_optional(query, "policy", POLICY_ID),
                revision=_optional(query, "revision", _TEXT),
                rule=_optional(query, "rule", _TEXT),
                outcome=_outcome(outcome) if outcome is not None else None,
                since_ms=_instant(query, "since"),
                until_ms=_instant(query, "until"),
                before_seq=integer_parameter(query, "cursor", 1, 2**62, None),
                limit=limit,
            )
        except RequestProblem as exc:
            return exc.response
        items = [
            {
                "decision_id": row["decision_id"],
                "policy": _logged_policy(row),
                "at": row["at"],
                "logged_at": row["logged_at"],
                "outcome": row["outcome"],
                "fired": row["fired"],
                "latency_us": row["latency_us"],
            }
            for row in rows
        ]
        # a full page may have a next one: its cursor is this page's last (oldest) row
        cursor = str(rows[-1]["seq"]) if rows and len(rows) == limit else None
        return json_response(200, {"decisions": items, "next_cursor": cursor})

    def policy_stats(self, policy_id: str, query: Mapping[str, Any]) -> Response:
        try:
            policy = self._policy(policy_id)
            days = integer_parameter(query, "days", 1, MAX_DAYS, DEFAULT_DAYS) or DEFAULT_DAYS
        except RequestProblem as exc:
            return exc.response
        field = headline(policy)
        today = datetime.now(JST).date()
        first = today - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=JST)
        offset_ms = 9 * 3600 * 1000
        counts: dict[str, dict[str, int]] = {}
        labels: list[str] = []
        for day, value, n in self.log.daily(policy.id, field, _ms(since), offset_ms):
            label = _label(policy, field, value)
            if label not in labels:
                labels.append(label)
            shown = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
            counts.setdefault(shown, {})[label] = counts.get(shown, {}).get(label, 0) + n
        series = [
            {"day": d.isoformat(), "counts": counts.get(d.isoformat(), {})}
            for d in (first + timedelta(days=i) for i in range(days))
        ]
        body = {
            "policy": {"id": policy.id, "revision": policy.revision},
            "field": field,
            "days": days,
            "timezone": "+09:00",
            "outcomes": sorted(labels),
            "series": series,
        }
        return json_response(200, body)

    # -- policies ----------------------------------------------------------------------
    def policy_source(self, policy_id: str) -> Response:
        try:
            policy = self._policy(policy_id, decisions_only=False)
        except RequestProblem as exc:
            return exc.response
        if policy.source is None:
            return problem(
                404, "source_unavailable", Msg("no source kept for '{id}'", id=policy_id)
            )
        body = {
            "id": policy.id,
            "revision": policy.revision,
            "path": policy.path,
            "text": policy.source.text,
        }
        return json_response(200, body)

    def policy_examples(self, policy_id: str) -> Response:
        try:
            policy = self._policy(policy_id, decisions_only=False)
        except RequestProblem as exc:
            return exc.response
        body = {"policy": {"id": policy.id, "kind": policy.kind}}
        body.update(policy_examples(policy, self.folder))
        return json_response(200, body)

    def list_data(self) -> Response:
        snapshot = self.snapshot()
        readers: dict[str, list[str]] = {}
        for pid, policy in sorted(snapshot.policies.items()):
            for name in policy.datasets:
                readers.setdefault(name, []).append(pid)
        out = []
        for name, spec in sorted(snapshot.policy_set.specs.items()):
            info = snapshot.data_info.get(name)
            out.append(
                {
                    "name": name,
                    **({"label": spec.label.to_dict()} if spec.label else {}),
                    "version": info.version if info else None,
                    "source": info.source if info else None,
                    "count": info.count if info else 0,
                    "updated_at": info.updated_at if info else None,
                    "file": spec.source_path,
                    "schema": spec.schema_path,
                    "key": spec.key,
                    "policies": readers.get(name, []),
                    "errors": len(snapshot.data_errors.get(name, ())),
                }
            )
        return json_response(200, {"data": out})

    def data_versions(self, name: str, store: Store, query: Mapping[str, Any]) -> Response:
        """The versions of a data set the store keeps (the file defaults it served, the
        replacements put through the API), newest first; which one is served; and who
        replaced it or served its file again, and when."""
        snapshot = self.snapshot()
        if name not in snapshot.policy_set.specs:
            hint = did_you_mean(name, snapshot.policy_set.specs)
            message = Msg("no data set '{name}'", name=name)
            return problem(404, "unknown_data_set", message, hint=hint)
        info = snapshot.data_info.get(name)
        current = info.version if info else None
        try:
            limit = integer_parameter(query, "limit", 1, MAX_LIMIT, LISTED) or LISTED
            changes_before = integer_parameter(query, "changes_before", 1, 2**62, None)
            before = query.get("before")
            try:
                kept = store.data_versions(name, limit + 1, before)
            except UnknownVersion:
                reason = Msg("no version {version} of this data set is kept", version=before)
                raise _invalid("before", reason) from None
        except RequestProblem as exc:
            return exc.response
        versions = [
            {
                "version": version,
                "source": source,
                "created_at": created,
                "count": count,
                "current": version == current,
            }
            for version, source, created, count in kept[:limit]
        ]
        changes = store.data_changes(name, limit + 1, changes_before)
        return json_response(
            200,
            {
                "name": name,
                "current": current,
                "versions": versions,
                "next_before": versions[-1]["version"] if len(kept) > limit else None,
                "changes": [change.to_dict() for change in changes[:limit]],
                "next_changes_before": changes[limit - 1].number if len(changes) > limit else None,
            },
        )

    def _policy(self, policy_id: str, *, decisions_only: bool = True) -> CompiledPolicy:
        snapshot = self.snapshot()
        known = POLICY_ID.fullmatch(policy_id) is not None
        status = snapshot.policy_set.statuses.get(policy_id) if known else None
        if status is None:
            hint = did_you_mean(policy_id, snapshot.policy_set.statuses)
            raise RequestProblem(
                problem(404, "unknown_policy", Msg("no policy '{id}'", id=policy_id), hint=hint)
            )
        if status.policy is None:
            raise RequestProblem(
                problem(
                    404,
                    "no_revision",
                    Msg(
                        "policy '{id}' has no valid revision; see GET /v1/policies/{id}",
                        id=policy_id,
                    ),
                )
            )
        if decisions_only and status.policy.kind != "decision":
            raise RequestProblem(
                problem(
                    404,
                    "not_a_decision_policy",
                    Msg(
                        "policy '{id}' is a {kind}: it logs no decisions",
                        id=policy_id,
                        kind=kind_word(status.policy.kind),
                    ),
                )
            )
        return status.policy


def _invalid(name: str, message: str) -> RequestProblem:
    return RequestProblem(
        problem(
            422,
            "query_invalid",
            Msg("query parameter '{name}': {reason}", name=name, reason=message),
            parameter=name,
        )
    )


def policy_parameter(query: Mapping[str, Any]) -> str | None:
    """`?policy=`: a policy id or nothing; anything else (a NUL, which PostgreSQL's text
    refuses) a 422 naming it, on every store alike."""
    return _optional(query, "policy", POLICY_ID)


def _optional(query: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = query.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _invalid(name, Msg("{value} is not valid here", value=quoted(str(value)[:60])))
    return value


def integer_parameter(
    query: Mapping[str, Any], name: str, low: int, high: int, default: int | None
) -> int | None:
    """A query parameter written as an integer from `low` to `high` (ASCII digits: str's
    isdigit() also says yes to '²'), or `default` when absent; else a 422 naming it."""
    value = query.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
        raise _invalid(name, Msg("expected an integer from {low} to {high}", low=low, high=high))
    return int(value)


def _instant(query: Mapping[str, Any], name: str) -> int | None:
    """Milliseconds since the epoch, as every `since`/`until` reads them: '30d' ago, a date
    (its start in Japan) or an RFC 3339 date-time."""
    value = query.get(name)
    if value is None:
        return None
    try:
        return instant_ms(str(value), time.time())
    except ValueError as exc:
        raise _invalid(name, message_of(exc)) from None


def _outcome(value: Any) -> OutcomeIs:
    """`field=value`: true, false, null, an integer, "quoted text" or plain text."""
    field, equals, text = str(value).partition("=")
    if not equals or not _FIELD.fullmatch(field) or len(text) > 128:
        raise _invalid("outcome", Msg("expected field=value, such as held=true"))
    if "\x00" in text:  # no outcome holds it, and PostgreSQL's text cannot carry it
        raise _invalid("outcome", Msg("a value holds no NUL character"))
    parsed: Any
    if text in ("true", "false", "null"):
        parsed = {"true": True, "false": False, "null": None}[text]
    elif _INTEGER.fullmatch(text) and INT_MIN <= int(text) <= INT_MAX:
        parsed = int(text)  # as the engine's integers: 64 bits; past them a text, never equal
    elif len(text) >= 2 and text[0] == text[-1] == '"':
        parsed = text[1:-1]
    else:
        parsed = text
    return OutcomeIs(field, parsed)


def _label(policy: CompiledPolicy, field: str | None, value: Any) -> str:
    """The label the metrics use: `held=true`; `decided` without a headline field."""
    if field is None:
        return "decided"
    if policy.outcome[field].type.kind == "boolean" and value in (0, 1):
        value = bool(value)
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
    return f"{field}={shown}"


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch; OverflowError for an instant before year 1 in UTC."""
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _logged_policy(row: Mapping[str, Any]) -> dict[str, Any]:
    """The policy a logged decision names: id and revision, and the publication that served
    it when there was one (as GET /v1/decisions/{id} and the decision itself say)."""
    policy = {"id": row["policy_id"], "revision": row["revision"]}
    logged = row["response"].get("policy") if isinstance(row["response"], dict) else None
    if isinstance(logged, dict) and logged.get("publication") is not None:
        policy["publication"] = logged["publication"]
    return policy
