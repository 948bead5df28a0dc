"""The one door to durable_rules: every call into its C engine goes through here.

durable_rules 2.0.28 (2020, unmaintained) matches fast but crashes or lies when used
carelessly (shared/DESIGN.md). Only this module imports it, so its rules hold in one place:

- We call the C extension `durable_rules_engine` directly, never `durable.engine.Host`:
  Host starts timer threads that call `dispatch()` into the C engine concurrently with
  our calls - the thread-unsafety that segfaults the process - and its Python action
  machinery costs ~20 µs per decision, more than the match itself.
- One process-wide lock serialises every C call; scale with processes, not threads.
- A ruleset is registered under a fresh name (`prefix#n`) from a copy, primed at once
  with a message that fires a private rule, and deleted on unregister; its handle is
  bound to the process and adapter that made it.
- A ruleset has at most one live sid. REUSE keeps one primed sid and retracts each
  decision's fact; FRESH creates and deletes a sid per decision (~10 µs per rule to
  create). Any failure mid-decision throws the sid away: nothing leaks into later ones.
- Each condition is wrapped in `$and` with "no `$s` property": durable asserts a hidden
  state fact `{"sid", "id": "sid-<sid>", "$s": 1}` into every new sid, and absence tests
  (`$nex`) would fire on it - on every FRESH decision, never in REUSE: modes would differ.
- Each comparison with another field (`{"$m": key}`) first requires that field: durable
  compares with a missing one by reading uninitialised stack memory (fires at random).
- An `$or` fires its rule once per branch that holds; a rule is reported once.
- One condition per rule: a join would keep a message waiting in the session for a
  partner from a later decision.
- durable walks its alpha network with a fixed stack of 64 nodes (error 303 past it):
  more than 64 condition alternatives holding at once for one message fail, whatever
  the rule count. A policy's rules are therefore split into several C rulesets of at
  most CHUNK_ALTERNATIVES alternatives each (an `$or` counts its branches), decided one
  after the other; in FIRST mode in priority order, stopping at the first that fires.
- Every durable error becomes an `EngineFault` with a stable code; a failing action
  (`on_fire`) is never reported as success.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import durable_rules_engine as _dre
import orjson

from engine.core.errors import Diagnostic, EngineFault, EvaluationError, KimariError
from engine.core.i18n import Msg

# DESIGN.md: ~200 simple rules fail at decision time (error 303); 150 work. 303 really means
# >64 conditions true at once for one message (see _STACK_HINT): chunking prevents it.
MAX_RULES = 150
CHUNK_ALTERNATIVES = 60  # measured: 64 alternatives all true work, 65 fail with error 303
# rete.h MAX_SEQUENCE_EXPRESSIONS = 32: a rule's beta node holds at most 31 expression
# slots, or creating the ruleset fails with error 113 (see expression_slots).
MAX_EXPRESSION_SLOTS = 31
MAX_PRIORITY = 65535  # "pri" is parsed into an unsigned short: -1 would silently mean 65535
PRIME_RULE = "__kimari_prime__"
RESERVED_PREFIX = "__kimari"
_PRIME_KEY = "__kimari_prime"
_STATE_GUARD: dict[str, Any] = {"$nex": {"$s": 1}}
_OnFire = Callable[[str], None] | None
_STACK_HINT = (
    "error 303 means more than 64 conditions matched one message at once (durable's "
    "MAX_STACK_SIZE), whatever the rule count: make conditions more exclusive or split"
)


class Mode(StrEnum):
    COLLECT = "collect"  # facts: every matching rule fires, by priority then definition order
    FIRST = "first"  # events with "pri": only the highest-priority match fires


class Sessions(StrEnum):
    REUSE = "reuse"  # one primed sid per ruleset, each decision's fact retracted (cheap)
    FRESH = "fresh"  # a new sid per decision, deleted after it (cost grows with rule count)


# for the decision's path: an enum member read from its class costs ~90 ns, a global ~10
_COLLECT = Mode.COLLECT
_FRESH = Sessions.FRESH


@dataclass(eq=False)
class _Ruleset:
    """Mutable per-ruleset bookkeeping; changed only while holding the lock."""

    c_handle: int
    pid: int
    owner: DurableAdapter
    names: frozenset[str]
    sid: str | None = None  # the live sid in REUSE mode; None: (re)prime before deciding
    alive: bool = True


@dataclass(frozen=True)
class RulesetHandle:
    name: str  # the unique durable ruleset name actually registered (chunks add ".n")
    mode: Mode
    rule_names: tuple[str, ...]
    _parts: tuple[_Ruleset, ...] = field(repr=False, compare=False)
    # what a message key stands for (the policy's field name), for the messages people read
    key_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def _rs(self) -> _Ruleset:
        """The first C ruleset (the only one unless the rules needed chunking)."""
        return self._parts[0]


class _Serialised:
    """Holds the process-wide lock for a whole call. The lock is re-entrant only so that a
    call made from inside on_fire (same thread, action open) is refused instead of hanging."""

    lock = threading.RLock()
    busy = False

    def __enter__(self) -> None:
        self.lock.acquire()
        if _Serialised.busy:
            self.lock.release()
            raise _fault("reentrant_call", "the durable adapter was called from inside on_fire")
        _Serialised.busy = True

    def __exit__(self, *exc: object) -> None:
        _Serialised.busy = False
        self.lock.release()


def _after_fork_in_child() -> None:
    """A forked child gets a free lock and its own adapter; the parent's handles are foreign."""
    global _pid, _adapter
    _Serialised.lock, _Serialised.busy, _pid, _adapter = threading.RLock(), False, os.getpid(), None


_serialised = _Serialised()
_serial = itertools.count(1)  # ruleset names, sids and fact ids: unique within the process
_pid = os.getpid()
_adapter: DurableAdapter | None = None
# Hold the lock across fork() so that no C call is half done in the child's copy of memory.
os.register_at_fork(
    before=lambda: _Serialised.lock.acquire(),
    after_in_parent=lambda: _Serialised.lock.release(),
    after_in_child=_after_fork_in_child,
)


def _fault(code: str, message: str, hint: str | None = None) -> EngineFault:
    return EngineFault([Diagnostic(code, message, hint=hint)])


def _unsendable(
    message: Mapping[str, Any], exc: Exception, key_names: Mapping[str, str]
) -> KimariError:
    """Why a message cannot go to durable_rules. A number it cannot hold (an integer past 64
    bits, a number past a double: computed from the facts, as facts are bounded) is the
    request's to change: an EvaluationError, answered 422. Anything else is a fault."""
    too_big = [
        key
        for key, value in message.items()
        if isinstance(value, Decimal) or (type(value) is int and not -(2**63) <= value < 2**64)
    ]
    if not too_big:
        return _fault("message_invalid", f"message cannot be serialised: {exc}")
    names = ", ".join(sorted(key_names.get(key, key) for key in too_big))
    return EvaluationError(
        [
            Diagnostic(
                "value_out_of_range",
                Msg(
                    "{names}: too large for the rule engine to compare (integers must fit 64 "
                    "bits, numbers a double)",
                    names=names,
                ),
            )
        ]
    )


def _quietly(fn: Callable[..., object], *args: object) -> None:
    """Cleanup on a path that already fails (e.g. "sid not found"): report the first error."""
    with contextlib.suppress(Exception):
        fn(*args)


def _plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists: durable mutates what it gets, orjson wants dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def _refs(operand: Any) -> list[str]:
    """Fields that an operand reads from the message (`{"$m": key}`, also inside arithmetic)."""
    if not isinstance(operand, dict):
        return []
    if isinstance(operand.get("$m"), str):
        return [operand["$m"]]
    return [ref for value in operand.values() for ref in _refs(value)]


def _safe(cond: dict[str, Any]) -> dict[str, Any]:
    """Makes each comparison with `{"$m": key}` require that key first. durable compares with
    a missing field by reading an uninitialised stack variable: such a rule fires or not at
    random (seen: REUSE and FRESH disagreeing on the same message, run to run)."""
    parts: list[dict[str, Any]] = []
    for key, value in cond.items():
        if key in ("$and", "$or") and isinstance(value, list):
            parts.append({key: [_safe(c) if isinstance(c, dict) else c for c in value]})
            continue
        refs = list(dict.fromkeys(_refs(value)))
        parts.append(
            {"$and": [*({"$ex": {r: 1}} for r in refs), {key: value}]} if refs else {key: value}
        )
    return parts[0] if len(parts) == 1 else {"$and": parts}


def alternatives(cond: Any) -> int:
    """How many alternatives durable makes of a condition: `$or` adds, `$and` multiplies."""
    if not isinstance(cond, dict):
        return 1
    if isinstance(cond.get("$or"), list):
        return sum(alternatives(c) for c in cond["$or"])
    if isinstance(cond.get("$and"), list):
        product = 1
        for c in cond["$and"]:
            product *= alternatives(c)
        return product
    return 1


def _chunks(rules: dict[str, Any], mode: Mode) -> list[dict[str, Any]]:
    """Rules in decision order, cut into groups that durable's 64-node stack can match."""
    order = list(rules.items())
    if mode is Mode.FIRST:
        order.sort(key=lambda item: item[1].get("pri", 0) if isinstance(item[1], dict) else 0)
    chunks: list[dict[str, Any]] = [{}]
    used = 0
    for name, rule in order:
        conds = rule.get("all") if isinstance(rule, dict) else None
        first = conds[0] if isinstance(conds, list) and conds and isinstance(conds[0], dict) else {}
        count = sum(alternatives(c) for c in first.values())
        if count > CHUNK_ALTERNATIVES:
            raise _fault(
                "rule_shape",
                f"rule {name!r} expands to {count} alternatives; durable "
                f"matches at most {CHUNK_ALTERNATIVES} at once",
                _STACK_HINT,
            )
        if used + count > CHUNK_ALTERNATIVES and chunks[-1]:
            chunks.append({})
            used = 0
        chunks[-1][name] = rule
        used += count
    return chunks


def expression_slots(cond: Mapping[str, Any]) -> int:
    """Slots a condition takes in its rule's beta node, once guarded as _compile guards it.

    durable appends two slots (open, end) per `$and`/`$or`; comparisons, also with
    other fields or arithmetic, take none (measured). More than MAX_EXPRESSION_SLOTS
    fails with error 113 when the ruleset is created: at most 15 `$and`/`$or` per rule.
    """
    return _slots({"$and": [_STATE_GUARD, _safe(dict(cond))]})


def _slots(cond: Any) -> int:
    if not isinstance(cond, dict):
        return 0
    count = 0
    for key, value in cond.items():
        if key in ("$and", "$or") and isinstance(value, list):
            count += 2 + sum(_slots(c) for c in value)
    return count


def _compile(rules: Mapping[str, Mapping[str, Any]], mode: Mode) -> str:
    """Checks the caller's rules; returns the guarded definition as durable's JSON text."""
    prime: dict[str, Any] = {"all": [{"m": {"$ex": {_PRIME_KEY: 1}}}]}
    if mode is Mode.FIRST:
        prime["pri"] = 0  # equal priorities keep definition order: the prime rule comes first
    definition: dict[str, Any] = {PRIME_RULE: prime}
    for name, rule in rules.items():
        # durable prints rule names raw into its JSON results: no quotes, escapes or controls
        plain = isinstance(name, str) and name.isprintable() and not {'"', "\\"} & set(name)
        if not plain or not name or name.startswith(RESERVED_PREFIX):
            raise _fault("rule_name", f"rule name {name!r} is reserved or not plain text")
        conds = rule.get("all") if isinstance(rule, dict) else None
        if not (
            isinstance(conds, list)
            and len(conds) == 1
            and isinstance(conds[0], dict)
            and len(conds[0]) == 1
            and isinstance(next(iter(conds[0].values())), dict)
            and set(rule) <= {"all", "pri"}
        ):
            shape = "{'all': [{alias: condition}], 'pri'?: n}"
            raise _fault("rule_shape", f"rule {name!r} must have the shape {shape}")
        pri = rule.get("pri", -1 if mode is Mode.FIRST else 0)
        if type(pri) is not int or not 0 <= pri <= MAX_PRIORITY:
            raise _fault("bad_priority", f"rule {name!r}: 'pri' must be an int 0..{MAX_PRIORITY}")
        ((alias, cond),) = conds[0].items()
        slots = expression_slots(cond)
        if slots > MAX_EXPRESSION_SLOTS:
            raise _fault(
                "rule_shape",
                f"rule {name!r} needs {slots} expression slots; durable "
                f"allows {MAX_EXPRESSION_SLOTS} per rule (error 113)",
            )
        rule["all"] = [{alias: {"$and": [_STATE_GUARD, _safe(cond)]}}]
        definition[name] = rule
    try:
        return orjson.dumps(definition).decode()
    except orjson.JSONEncodeError as exc:
        raise _fault("rule_shape", f"rules cannot be serialised: {exc}") from exc


class DurableAdapter:
    """Registers rulesets and decides messages; safe to call from many threads."""

    def __init__(self, sessions: Sessions = Sessions.REUSE) -> None:
        self.sessions = Sessions(sessions)
        self._live = 0

    @property
    def live_rulesets(self) -> int:
        return self._live

    def register(
        self,
        name_prefix: str,
        rules: Mapping[str, Mapping[str, Any]],
        *,
        mode: Mode,
        key_names: Mapping[str, str] | None = None,
    ) -> RulesetHandle:
        mode = Mode(mode)
        if len(rules) > MAX_RULES:
            hint = "durable_rules is proven only up to this size: split the policy"
            raise _fault("rule_limit", f"{len(rules)} rules; one ruleset holds {MAX_RULES}", hint)
        plain = _plain(rules)
        texts = [_compile(chunk, mode) for chunk in _chunks(plain, mode)]  # before any C call
        with _serialised:
            name = f"{name_prefix}#{next(_serial)}"
            parts: list[_Ruleset] = []
            try:
                for index, text in enumerate(texts):
                    part_name = name if len(texts) == 1 else f"{name}.{index}"
                    try:
                        c_handle = _dre.create_ruleset(part_name, text)
                    except Exception as exc:
                        raise _backend_fault(exc, f"creating {part_name!r}") from exc
                    names = frozenset(orjson.loads(text)) - {PRIME_RULE}
                    parts.append(_Ruleset(c_handle, _pid, self, names))
                    self._prime(parts[-1], mode, part_name)
            except BaseException:
                for rs in parts:
                    rs.alive = False
                    if rs.sid is not None:
                        _quietly(_dre.delete_state, rs.c_handle, rs.sid)
                    _quietly(_dre.delete_ruleset, rs.c_handle)
                raise
            self._live += 1
            return RulesetHandle(name, mode, tuple(rules), tuple(parts), dict(key_names or {}))

    def unregister(self, handle: RulesetHandle) -> None:
        """Deletes the live sids, then the rulesets; a second call does nothing."""
        self._own(handle)
        with _serialised:
            if not handle._rs.alive:
                return
            self._live -= 1
            failure: Exception | None = None
            for rs in handle._parts:
                rs.alive = False
                if rs.sid is not None:
                    _quietly(_dre.delete_state, rs.c_handle, rs.sid)
                    rs.sid = None
                try:
                    _dre.delete_ruleset(rs.c_handle)
                except Exception as exc:
                    failure = failure or exc
            if failure is not None:
                raise _backend_fault(failure, f"deleting {handle.name!r}") from failure

    def evaluate(
        self,
        handle: RulesetHandle,
        message: Mapping[str, Any],
        *,
        on_fire: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Names of the rules that fired for `message`, each once (an `$or` fires its rule
        once per alternative that holds: `_drain` reports it once), in firing order (chunk
        by chunk; a rule is in one chunk)."""
        parts = handle._parts
        first = parts[0]
        if first.pid != _pid or first.owner is not self:
            self._own(handle)
        if "sid" in message or "id" in message or _PRIME_KEY in message or "$s" in message:
            raise _fault("reserved_key", "a message must not carry 'sid', 'id', '$s', '__kimari*'")
        # _Serialised spelt out: its __enter__/__exit__ are two Python calls per decision
        # (~0.4 µs); the lock is read at each call, a forked child replaces it
        with _Serialised.lock:
            if _Serialised.busy:
                raise _fault("reentrant_call", "the durable adapter was called from inside on_fire")
            _Serialised.busy = True
            try:
                if not first.alive:
                    raise _fault("ruleset_gone", f"ruleset {handle.name!r} was unregistered")
                if len(parts) == 1:
                    return self._decide(handle, 0, first, message, on_fire)
                fired: list[str] = []
                for index, rs in enumerate(parts):
                    fired.extend(self._decide(handle, index, rs, message, on_fire))
                    if fired and handle.mode is Mode.FIRST:
                        break
                return fired
            finally:
                _Serialised.busy = False

    def _own(self, handle: RulesetHandle) -> _Ruleset:
        rs = handle._parts[0]
        if rs.pid != _pid or rs.owner is not self:
            where = f"process {rs.pid}" if rs.pid != _pid else "another adapter"
            raise _fault("foreign_handle", f"ruleset {handle.name!r} belongs to {where}")
        return rs

    def _decide(
        self,
        handle: RulesetHandle,
        index: int,
        rs: _Ruleset,
        message: Mapping[str, Any],
        on_fire: _OnFire,
    ) -> list[str]:
        """One C ruleset's pass over the message; the caller holds the lock."""
        collect = handle.mode is _COLLECT
        fresh = self.sessions is _FRESH
        if fresh:
            sid = str(next(_serial))
        else:
            sid = rs.sid or self._prime(rs, handle.mode, _part_name(handle, index))
        mid = next(_serial)
        try:
            text = orjson.dumps({**message, "sid": sid, "id": mid}).decode()
        except orjson.JSONEncodeError as exc:
            raise _unsendable(message, exc, handle.key_names) from exc
        ok = False
        try:
            code, state = (_dre.assert_fact if collect else _dre.assert_event)(rs.c_handle, text)
            if code == 2:
                raise _fault("message_observed", f"durable saw this message id before: {text}")
            if code not in (0, 1):
                raise _fault("backend_error", f"durable answered code {code} to {text}")
            fired = _drain(rs, state, on_fire) if code == 0 else []
            if collect and not fresh:
                # durable finds the fact to retract by sid and id alone (events.c,
                # handleMessageCore: getMessage(sid, mid)); the rest of the text would only be
                # parsed again: 0.7 µs of a ~5 µs pass on cancellation-fees
                _dre.retract_fact(rs.c_handle, f'{{"sid":"{sid}","id":{mid}}}')
            if fresh:
                _dre.delete_state(rs.c_handle, sid)
            ok = True
            return fired
        except EngineFault:
            raise
        except MemoryError as exc:
            raise _fault("session_limit", f"durable ran out of sessions: {exc!r}") from exc
        except Exception as exc:
            where = _part_name(handle, index)
            raise _backend_fault(exc, f"deciding on {where!r}") from exc
        finally:
            if not ok:  # throw the sid away: no half-retracted fact may meet a later decision
                _quietly(_dre.delete_state, rs.c_handle, sid)
                if rs.sid == sid:
                    rs.sid = None

    def _prime(self, rs: _Ruleset, mode: Mode, name: str) -> str:
        """Fires the private rule in a new sid, which then is the live sid (REUSE) or deleted."""
        collect = mode is Mode.COLLECT
        sid = str(next(_serial))
        text = orjson.dumps({_PRIME_KEY: 1, "sid": sid, "id": next(_serial)}).decode()
        primed = False
        try:
            code, state = (_dre.assert_fact if collect else _dre.assert_event)(rs.c_handle, text)
            fired = _drain(rs, state, None) if code == 0 else []  # caller rules may fire too
            if collect:
                _dre.retract_fact(rs.c_handle, text)
            if PRIME_RULE not in fired:
                raise _fault("prime_failed", f"priming {name!r} fired {fired} (code {code})")
            if self.sessions is Sessions.FRESH:
                _dre.delete_state(rs.c_handle, sid)
            else:
                rs.sid = sid
            primed = True
            return sid
        except EngineFault:
            raise
        except Exception as exc:
            raise _fault("prime_failed", f"priming {name!r} failed: {exc}") from exc
        finally:
            if not primed:
                _quietly(_dre.delete_state, rs.c_handle, sid)

    def _session_messages(self, handle: RulesetHandle) -> tuple[list[Any], list[Any]]:
        """(facts, events) held by the live sids: lets tests prove nothing was left behind."""
        self._own(handle)
        facts: list[Any] = []
        events: list[Any] = []
        with _serialised:
            for rs in handle._parts:
                if rs.sid is None or not rs.alive:
                    continue
                facts.extend(orjson.loads(_dre.get_facts(rs.c_handle, rs.sid)))
                events.extend(orjson.loads(_dre.get_events(rs.c_handle, rs.sid)))
        return facts, events


def _part_name(handle: RulesetHandle, index: int) -> str:
    """The name durable knows a C ruleset by: the handle's, with ".n" once it is chunked."""
    return handle.name if len(handle._parts) == 1 else f"{handle.name}.{index}"


def _drain(rs: _Ruleset, state: int, on_fire: _OnFire) -> list[str]:
    """Runs every pending action of the sid; on_fire sees each one while it is open."""
    fired: list[str] = []
    started = _dre.start_action_for_state(rs.c_handle, state)
    payload = started[1] if started else None
    while payload is not None:
        name = payload[2 : payload.find('"', 2)]  # '{"<rule>":{"m":{...}}}'
        if name not in rs.names:  # the prime rule, or a format we did not expect
            name = next(iter(orjson.loads(payload)))
        if name in fired:  # an `$or` fires its rule once per branch that holds: report it once
            payload = _dre.complete_and_start_action(rs.c_handle, state)
            continue
        fired.append(name)
        if on_fire is not None and name != PRIME_RULE:
            try:
                on_fire(name)
            except BaseException as exc:
                _quietly(_dre.abandon_action, rs.c_handle, state)
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt & co. stay what they are
                raise _fault("action_failed", f"action of rule {name!r} failed: {exc!r}") from exc
        payload = _dre.complete_and_start_action(rs.c_handle, state)
    return fired


def _backend_fault(exc: Exception, doing: str) -> EngineFault:
    text = str(exc) or type(exc).__name__
    hint = _STACK_HINT if text.endswith("error code: 303") else None
    return _fault("backend_error", f"durable_rules failed {doing}: {text}", hint)


def get_adapter() -> DurableAdapter:
    """The one adapter of this process; a forked child gets its own."""
    global _adapter
    if _pid != os.getpid():  # forked without the at-fork hooks running
        _after_fork_in_child()
    adapter = _adapter
    if adapter is not None:  # every decision asks: no lock once it exists
        return adapter
    with _serialised:
        if _adapter is None:
            _adapter = DurableAdapter()
        return _adapter
