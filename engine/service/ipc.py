"""Frames between the HTTP front and its engine workers (a Unix socket pair per worker).

    frame = length:u32 | id:u32 | code:u16 | meta_length:u32 | meta (orjson) | body (bytes)

`length` counts everything after itself. A request's `code` is the operation (`Op`), a
reply's is the HTTP status; replies carry the request's `id` (0: an event the worker
sends on its own: ready, reload). Bodies travel as the client sent them: the front never
parses JSON on the decision path, the worker does.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import orjson

HEADER = struct.Struct("<IIHI")
LENGTH = struct.Struct("<I")
MAX_FRAME = 256 * 1024 * 1024
EVENT_ID = 0


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


class Event(IntEnum):
    READY = 1
    RELOAD = 2


def encode(frame_id: int, code: int, meta: Any = None, body: bytes = b"") -> bytes:
    meta_bytes = b"" if meta is None else orjson.dumps(meta)
    length = HEADER.size - LENGTH.size + len(meta_bytes) + len(body)
    return HEADER.pack(length, frame_id, code, len(meta_bytes)) + meta_bytes + body


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
