"""A worker reads the front's stream a turn at a time (at most 64 chunks, then it decides):
every byte it reads is fed to the frame reader. One read past the last chunk fed was lost,
and every frame after it was read shifted: a large data set's body hung, came back as
`json_invalid` with bytes of another request, or as a frame of 809,054,242 bytes that
killed the worker (503 worker_crashed for every decision it held)."""

from __future__ import annotations

import types
from collections import deque

import pytest

from engine.service import ipc
from engine.service.worker import READ_TURN, Worker


class Arrived:
    """A socket with `data` arrived, handed out `chunk` bytes a recv, as a busy front's
    stream is (a turn then ends at READ_TURN chunks, not at an empty socket)."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk, self.at = data, chunk, 0

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.left:
            if flags:
                raise BlockingIOError
            return b""  # the front closed it
        end = min(len(self.data), self.at + min(size, self.chunk))
        out, self.at = self.data[self.at : end], end
        return out


@pytest.mark.parametrize(("chunk", "count"), [(1, 12), (7, 20), (100, 60), (4096, 150)])
def test_a_stream_longer_than_a_turn_arrives_whole_frame_after_frame(
    chunk: int, count: int
) -> None:
    bodies = [bytes([65 + i % 26]) * (50 + 37 * i) for i in range(count)]
    sent = [ipc.encode(i + 1, ipc.Op.PUT_DATA, {"n": i}, b) for i, b in enumerate(bodies)]
    stream = b"".join(sent)
    assert len(stream) > READ_TURN * chunk  # more than one turn
    sock = Arrived(stream, chunk)
    reader, frames = ipc.FrameReader(), deque()
    fake = types.SimpleNamespace(sock=sock)
    turns = 0
    while sock.left:
        assert Worker._read(fake, reader, frames)  # type: ignore[arg-type]
        turns += 1
    assert [(f[0], f[2], f[3]) for f in frames] == [
        (i + 1, {"n": i}, b) for i, b in enumerate(bodies)
    ]
    assert turns == -(-len(stream) // (READ_TURN * chunk))  # every turn a full one
    assert not Worker._read(fake, reader, deque())  # then the end of the stream
