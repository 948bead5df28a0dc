"""Decide a file of requests (JSON Lines) across processes, in order, with progress.

Each input line is a request like the HTTP body: `{"facts": {...}, "at": "...",
"settings": {...}}`. Each output line is the decision (as the API returns it)
or, for a line that cannot be decided, `{"line": N, "errors": [...]}` with the
JSON pointers of the problems. Output order is input order.

durable_rules is used by one thread per process, so a batch scales with
processes: each worker loads the project itself (a durable ruleset cannot
cross a fork) and decides chunks of lines.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from engine.cli import inputs
from engine.core.errors import Diagnostic, EngineFault, KimariError, UsageError
from engine.core.i18n import Msg, language, os_reason, translate
from engine.core.jsonvalue import TooDeep, TooLong, has_long_number, loads_request, why_not_json
from engine.core.pools import (
    STUCK_SECONDS,
    PoolWatch,
    WorkerStopped,
    hold_tasks,
    ignore_sigint,
    sigint_held,
    stop_pool,
)

CHUNK = 256

_worker: dict[str, Any] = {}


@dataclass
class BatchSummary:
    total: int = 0
    decided: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


def _fork_init(holders: Any) -> None:
    """A forked worker's first steps (it inherits the policy: `run_batch`)."""
    ignore_sigint()
    hold_tasks(holders)


def _init(
    holders: Any, folder: str, policy_id: str, backend: str, at: str | None, lang: str
) -> None:
    """A spawned worker loads the policy itself (a forked one inherits it: `run_batch`)."""
    from engine.project.project import load_policy

    ignore_sigint()
    hold_tasks(holders)
    project = load_policy(folder, policy_id)
    policy = project.policy(policy_id)
    data = project.data_for(policy)
    _worker.update(policy=policy, data=data, backend=backend, at=at, lang=lang)


def _forkable() -> bool:
    """Fork the workers when this process has no other thread (a thread holding a lock at
    the fork would leave it held in the child): they then inherit the compiled policy and
    its data instead of importing and compiling them again (a durable ruleset is registered
    in each child on first use; the parent never registers one)."""

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _decide_line(number: int, line: bytes) -> bytes:
    from engine.cli.inputs import line_duplicate
    from engine.runtime.evaluate import decide
    from engine.service.envelopes import DECISION_REQUEST

    long_number = has_long_number(line)
    try:
        request = loads_request(line, long_number)  # exact numbers, as the service reads them
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit exceeded"):  # orjson's own limit, 1024
            deep = TooDeep(None, f"column {exc.colno}")
            return _error(number, [deep.diagnostic()])
        return _error(number, [_not_json(line, exc)])
    except (TooDeep, TooLong) as exc:
        return _error(number, [exc.diagnostic()])
    duplicate = line_duplicate(line, request, long_number)  # refused, as the service does
    if duplicate is not None:
        return _error(number, [duplicate])
    # the envelope as the service checks a body: an object, 'facts', no unknown key, and
    # 'at', 'settings', 'decision_id' of the right type, each refused at its pointer
    problems = DECISION_REQUEST.check(request)
    if problems:
        return _error(number, problems)
    at = request.get("at")  # null is absent, as over HTTP; any other `at` is this line's
    try:
        decision = decide(
            _worker["policy"],
            request["facts"],
            at=_worker["at"] if at is None else at,
            settings=request.get("settings"),
            data=_worker["data"],
            backend=_worker["backend"],
            decision_id=request.get("decision_id"),
        )
    except KimariError as exc:
        return _error(number, exc.diagnostics)
    return decision.to_json()


def _not_json(line: bytes, exc: orjson.JSONDecodeError) -> Diagnostic:
    """Why a line is not JSON, at its column (the line's number is the answer's `line`): for
    a byte that is not UTF-8 its own place, which orjson gives as column 1 whatever it is."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        column = len(line[: bad.start].decode("utf-8")) + 1
        reason = Msg(
            "byte 0x{byte:02x} at column {column} is not UTF-8", byte=line[bad.start], column=column
        )
        return Diagnostic("json_invalid", Msg("invalid JSON: {reason}", reason=reason))
    # orjson reads the line's own newline: a line cut short ends "at line 2, column 1"
    column = exc.colno if exc.lineno == 1 else len(line.decode("utf-8").rstrip("\r\n")) + 1
    what: str = exc.msg
    said = why_not_json(line.rstrip(b"\r\n"))
    if said is not None:  # in words a message translates, at Python's column
        what, column = said[0], said[2]
    where = Msg("column {column}", column=column)
    reason = Msg("{what} at {where}", what=what, where=where)
    return Diagnostic("json_invalid", Msg("invalid JSON: {reason}", reason=reason))


def _error(number: int, diagnostics: list[Diagnostic]) -> bytes:
    # in the language of the command (a spawned process has its own context: passed to _init)
    lang = _worker.get("lang")
    return orjson.dumps({"line": number, "errors": [d.to_dict(lang) for d in diagnostics]})


def _decide_chunk(chunk: list[tuple[int, bytes]]) -> list[bytes]:
    return [_decide_line(number, line) for number, line in chunk]


def _chunks(lines: IO[bytes]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for number, line in enumerate(lines, start=1):
        if number == 1:  # Windows editors save one; kimari decide reads such a file too
            line = line.removeprefix(inputs.UTF8_BOM)
        if line.strip():
            chunk.append((number, line))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Progress:
    """A one-line progress report on stderr: count, rate, time left."""

    def __init__(self, total: int | None, enabled: bool, noun: str = "decided") -> None:
        self.total, self.enabled, self.noun = total, enabled, noun
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, *, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last < 0.2):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        if self.total:
            left = (self.total - done) / rate if rate else 0
            width = 30
            filled = int(width * done / self.total)
            bar = "#" * filled + "." * (width - filled)
            text = translate(
                Msg(
                    "[{bar}] {done:,}/{total:,} {rate:,.0f}/s {left:,.0f}s left",
                    bar=bar,
                    done=done,
                    total=self.total,
                    rate=rate,
                    left=left,
                )
            )
        elif self.noun == "replayed":
            text = translate(Msg("{done:,} replayed, {rate:,.0f}/s", done=done, rate=rate))
        else:
            text = translate(Msg("{done:,} decided, {rate:,.0f}/s", done=done, rate=rate))
        sys.stderr.write("\r" + text + ("\n" if final else ""))
        sys.stderr.flush()


def run_batch(
    folder: Path,
    policy_id: str,
    source: IO[bytes],
    sink: IO[bytes],
    *,
    workers: int | None = None,
    backend: str = "durable",
    at: str | None = None,
    progress: bool = False,
) -> BatchSummary:
    """Decide every line of `source` into `sink`, in worker processes that each hold the
    policy (loaded once here and inherited by forked workers, or loaded by each)."""
    from engine.project.project import decision_policy, load_policy

    started = time.perf_counter()
    project = load_policy(folder, policy_id)  # fails fast, in this process, on a bad policy
    policy = decision_policy(project.policy(policy_id), policy_id)  # not a flow
    total = _count_lines(source)
    summary = BatchSummary()
    bar = Progress(total, progress)
    count = workers or os.cpu_count() or 1
    settings = {"backend": backend, "at": at, "lang": language()}
    pool: Any = None
    try:
        # Ctrl-C: the workers ignore it; this process stops them (bounded) and the
        # KeyboardInterrupt goes on up, with every line written so far whole in `sink`
        with sigint_held():
            if _forkable():
                _worker.update(policy=policy, data=project.data_for(policy), **settings)
                watch = PoolWatch.start(multiprocessing.get_context("fork"), count, _fork_init)
            else:
                arguments = (str(folder), policy_id, *settings.values())
                spawn = multiprocessing.get_context("spawn")
                watch = PoolWatch.start(spawn, count, _init, arguments)
            pool = watch.pool
        _decide_all(watch, count, source, sink, summary, bar)
    except WorkerStopped as stopped:
        stop_pool(pool, STUCK_SECONDS)
        pool = None
        raise _stopped(stopped) from None
    finally:
        if pool is not None:
            stop_pool(pool)
        _worker.clear()
    summary.decided = summary.total - summary.failed
    summary.seconds = time.perf_counter() - started
    bar.update(summary.total, final=True)
    return summary


_END = object()  # the reader's last item: the input is read to its end


def _decide_all(
    watch: PoolWatch,
    count: int,
    source: IO[bytes],
    sink: IO[bytes],
    summary: BatchSummary,
    bar: Progress,
) -> None:
    """A thread of its own reads the input (a pool thread waiting on a pipe that stays silent
    would keep the pool from stopping; this thread waiting on it would hold back what is
    decided); this one hands each chunk to the pool, at most two per worker in flight, and
    writes the decisions back in order, each chunk's as soon as it and those before it are
    decided, whatever the input does meanwhile."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
    reader = _own_reader(source)
    owned = reader is not source
    threading.Thread(
        target=_read, args=(reader, chunks, owned), name="batch-input", daemon=True
    ).start()
    in_flight: deque[tuple[int, Any]] = deque()  # (the chunk's first line, its result)
    done = False
    while True:
        while in_flight and in_flight[0][1].ready():
            _write(watch.taken(in_flight.popleft()[1]), sink, summary, bar)
        if done and not in_flight:
            return
        if done or len(in_flight) >= 2 * count:
            try:  # nothing more to hand out now: the oldest chunk's turn
                watch.wait([result for _, result in in_flight])
            except WorkerStopped as stopped:
                while in_flight and in_flight[0][1].ready():  # decided before the lost one
                    _write(watch.taken(in_flight.popleft()[1]), sink, summary, bar)
                if in_flight:  # (a stuck pool that moved after all has lost nothing)
                    stopped.first_line = in_flight[0][0]
                    raise
            continue
        try:
            item = chunks.get(timeout=0.05) if in_flight else chunks.get()
        except queue.Empty:
            continue  # the input is slow: write what got decided meanwhile
        if item is _END:
            done = True
        elif isinstance(item, OSError):
            reason = Msg("cannot read the input: {reason}", reason=os_reason(item))
            raise UsageError([Diagnostic("file_unreadable", reason)])
        else:
            in_flight.append((item[0][0], watch.submit(_decide_chunk, item)))


def _stopped(stopped: WorkerStopped) -> EngineFault:
    """A worker ended mid-run: the output holds every line before the first one lost, whole
    and in order; none from it on (a later chunk may have been decided, not written)."""
    message = Msg(
        "a worker process stopped ({reason}): the lines before line {line} are decided in the "
        "output, none from it on",
        reason=stopped.reason(),
        line=stopped.first_line,
    )
    hint = Msg(
        "`tail -n +{line}` of the input gives the lines still to decide", line=stopped.first_line
    )
    return EngineFault([Diagnostic("worker_stopped", message, hint=hint)])


def _own_reader(source: IO[bytes]) -> IO[bytes]:
    """A reader of the input's file of its own, at the same place: the reading thread may
    still wait in it when an interrupted run exits, and Python aborts at exit on a standard
    stream another thread holds (`_enter_buffered_busy`). In-memory input: itself."""
    try:
        descriptor = source.fileno()
    except (OSError, ValueError, AttributeError):
        return source
    own = os.fdopen(os.dup(descriptor), "rb")  # closed by _read once read
    with contextlib.suppress(OSError, ValueError):  # a pipe has no place to go back to
        own.seek(source.tell())
    return own


def _read(source: IO[bytes], chunks: queue.Queue[Any], owned: bool) -> None:
    try:
        for chunk in _chunks(source):
            chunks.put(chunk)
    except OSError as exc:  # the input broke (a closed terminal): said as such, not as output
        chunks.put(exc)
        return
    finally:
        if owned:
            with contextlib.suppress(OSError):
                source.close()
    chunks.put(_END)


def _write(results: list[bytes], sink: IO[bytes], summary: BatchSummary, bar: Progress) -> None:
    for result in results:
        sink.write(result + b"\n")
        summary.total += 1
        if result.startswith(b'{"line":'):
            summary.failed += 1
    bar.update(summary.total)


def _count_lines(source: IO[bytes]) -> int | None:
    """Lines in a seekable file (for the progress bar); None for a pipe."""
    try:
        position = source.tell()
        total = sum(1 for line in source if line.strip())
        source.seek(position)
        return total
    except (OSError, ValueError):
        return None
