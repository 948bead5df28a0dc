"""Frames between the HTTP front and its engine workers (a Unix socket pair per worker).

    frame = length:u32 | id:u32 | code:u16 | meta_length:u32 | meta (orjson) | body (bytes)

`length` counts everything after itself. A request's `code` is the operation (`Op`, below
100), a reply's is the HTTP status (100 to 599); replies carry the request's `id` (0: an
event the worker sends on its own: ready, reload). Bodies travel as the client sent them:
the front never parses JSON on the decision path, the worker does.

A reader refuses a frame longer than MAX_FRAME (ValueError): past it, the stream is taken
for garbage, and the front takes its worker for dead (a retriable 503, a restart). So no
reply may be longer: `encode` sends, in place of a reply longer than MAX_ANSWER, a 500
problem `answer_too_large` (`retriable: false`: the same request gets the same answer)
that names the size and the limit. The worker lives on; the client is told to ask for
less (a history is paged: engine/service/flows.py). MAX_ANSWER is MAX_FRAME, but for the
tests, which lower it (KIMARI_TEST_MAX_ANSWER, with KIMARI_TEST_FAULTS=1) so that an
answer past it needs no quarter of a gigabyte.
"""

from __future__ import annotations

import logging
import os
import struct
from enum import IntEnum
from typing import Any

import orjson

from engine.core.i18n import Msg
from engine.service.problems import Response, problem

log = logging.getLogger("kimari.service")

HEADER = struct.Struct("<IIHI")
LENGTH = struct.Struct("<I")
MAX_FRAME = 256 * 1024 * 1024
EVENT_ID = 0
FIRST_STATUS = 100  # codes from here on are HTTP statuses: a frame with one is a reply


def _max_answer() -> int:
    lowered = os.environ.get("KIMARI_TEST_MAX_ANSWER", "")
    if os.environ.get("KIMARI_TEST_FAULTS") == "1" and lowered.isdigit():
        return min(int(lowered), MAX_FRAME)
    return MAX_FRAME


MAX_ANSWER = _max_answer()


class Op(IntEnum):
    """A worker operation: the route table (engine/service/routes.py) names the one each
    route is sent as, and the worker keeps one handler per operation."""

    DECIDE = 1
    BATCH = 2
    GET_DECISION = 3
    POLICIES = 4
    POLICY = 5
    GET_DATA = 6
    PUT_DATA = 7
    OPENAPI = 8
    RELOAD = 9
    STATS = 10
    DELETE_DATA = 11
    FLOW_EVENT = 12
    FLOW_ENTITY = 13
    FLOW_HISTORY = 14
    FLOW_IMPORT = 15
    LIST_DECISIONS = 16
    LIST_DATA = 17
    POLICY_SOURCE = 18
    POLICY_EXAMPLES = 19
    POLICY_STATS = 20
    DATA_VERSIONS = 21
    # the front's own, on no route: look at the store or the files now (another worker
    # has just served a new revision; engine/service/http.py)
    POLL = 22
    # the front's own, after a data set was replaced or reset through one worker: answer
    # once the data sets the store has now are served (engine/service/worker.py)
    DATA_SYNC = 23
    # the policy lifecycle (engine/service/lifecycle.py); numbered apart from the others
    REVISIONS = 40
    CREATE_REVISION = 41
    REVISION = 42
    SUBMIT_REVISION = 43
    APPROVE_REVISION = 44
    REJECT_REVISION = 45
    ROLLBACK = 46
    DIFF = 47
    IMPACT = 48
    JOBS = 49
    JOB = 50
    CANCEL_JOB = 51
    AUDIT = 52
    AUDIT_ALL = 53
    VALIDATE_DRAFT = 54
    TEST_DRAFT = 55


# a worker answers these on its data thread, beside its decisions (engine/service/
# data_builds.py); they may take long (a data set of 450,000 entries to check and index),
# so the front waits `data_timeout` for them, not `request_timeout`
DATA_OPS = frozenset({Op.PUT_DATA, Op.DELETE_DATA, Op.DATA_SYNC})


class Event(IntEnum):
    READY = 1
    RELOAD = 2


def encode(frame_id: int, code: int, meta: Any = None, body: bytes = b"") -> bytes:
    meta_bytes = b"" if meta is None else orjson.dumps(meta)
    length = HEADER.size - LENGTH.size + len(meta_bytes) + len(body)
    if length > MAX_ANSWER and code >= FIRST_STATUS and frame_id != EVENT_ID:
        return _too_large(frame_id, length)
    return HEADER.pack(length, frame_id, code, len(meta_bytes)) + meta_bytes + body


def _too_large(frame_id: int, length: int) -> bytes:
    """The reply sent in place of one too long for a frame: a problem, in the language in
    effect (the worker answers in the request's where it can: engine/service/flows.py)."""
    log.warning("an answer of %d bytes, over %d, was sent as answer_too_large", length, MAX_ANSWER)
    status, headers, body = answer_too_large(
        Msg(
            "the answer is {size} bytes, more than the {limit} bytes an answer may be; it "
            "was not sent: ask for less",
            size=length,
            limit=MAX_ANSWER,
        )
    )
    meta = {"h": [[k.decode(), v.decode()] for k, v in headers], "c": "answer_too_large"}
    return encode(frame_id, status, meta, body)


def answer_too_large(detail: str, **extra: Any) -> Response:
    """The problem of an answer longer than MAX_ANSWER: a 500, not retriable (the same
    request would get the same answer), naming the limit."""
    return problem(500, "answer_too_large", detail, limit=MAX_ANSWER, retriable=False, **extra)


class FrameReader:
    """Splits a byte stream into (id, code, meta, body) frames; feed it what recv returned."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, Any, bytes]]:
        buffer = self._buffer
        buffer += data
        frames = []
        offset = 0
        size = len(buffer)
        while size - offset >= HEADER.size:
            length, frame_id, code, meta_length = HEADER.unpack_from(buffer, offset)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes is too large")
            end = offset + LENGTH.size + length
            if end > size:
                break
            start = offset + HEADER.size
            meta = orjson.loads(buffer[start : start + meta_length]) if meta_length else None
            frames.append((frame_id, code, meta, bytes(buffer[start + meta_length : end])))
            offset = end
        if offset:
            del buffer[:offset]
        return frames
