"""HTTP/1.1 on the front's relay path (engine/service/protocol.py), through raw sockets:
what a request a worker answers keeps from uvicorn's cycle (keep-alive, pipelining,
HTTP/1.0, the body limit and timeout, Expect: 100-continue, a client that leaves) and that
both paths answer alike."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.service.server_process import DECIDE_TOKEN, Server, copy_project, running

AT = "2024-09-21T23:59:59+09:00"
NG = {"order": {"total": 15000, "sequence": 1, "payment": {"method": "np"}, "np": {"result": "ng"}}}
OK = {"order": {"total": 15000, "sequence": 2, "payment": {"method": "card"}}}
LIMIT = 4096
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("protocol")
    env = {"KIMARI_MAX_BODY_BYTES": str(LIMIT), "KIMARI_BODY_TIMEOUT": str(TIMEOUT)}
    srv = Server(copy_project(tmp), tmp / "var" / "kimari.sqlite3", workers=2, env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


def request(
    body: bytes,
    *,
    path: str = "/v1/decisions/np-check",
    version: str = "1.1",
    headers: tuple[str, ...] = (),
    length: int | None = None,
) -> bytes:
    head = [
        f"POST {path} HTTP/{version}",
        "Host: test",
        f"Authorization: Bearer {DECIDE_TOKEN}",
        "Content-Type: application/json",
        *headers,
    ]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def decision(facts: dict[str, object]) -> bytes:
    return orjson.dumps({"facts": facts, "at": AT})


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict[str, object]:
        return dict(orjson.loads(self.body))


class Reader:
    """Reads HTTP/1.1 answers with a Content-Length off one socket, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def answer(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            assert self._more(), f"connection closed before an answer: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers["content-length"])
        while len(self.buffer) < size:
            assert self._more(), "connection closed inside a body"
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return Answer(int(status_line.split()[1]), headers, body)

    def closed(self) -> bool:
        """The server closed the connection (EOF) with nothing more to read."""
        return not self._more() and not self.buffer


@pytest.fixture
def conn(server: Server) -> Iterator[tuple[socket.socket, Reader]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        yield sock, Reader(sock)


def test_keep_alive_answers_one_request_after_another_on_one_connection(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    for facts, fired in ((NG, True), (OK, False), (NG, True)):
        sock.sendall(request(decision(facts)))
        answer = reader.answer()
        assert answer.status == 200, answer.body
        assert answer.headers["content-type"] == "application/json"
        assert "date" in answer.headers and "connection" not in answer.headers
        assert bool(answer.json()["fired"]) is fired


def test_pipelined_requests_are_answered_in_the_order_sent(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    order = [NG, OK, OK, NG, OK, NG]
    sock.sendall(b"".join(request(decision(facts)) for facts in order))
    for facts in order:
        answer = reader.answer()
        assert answer.status == 200
        assert bool(answer.json()["fired"]) is (facts is NG)


def test_http_1_0_gets_its_answer_and_the_connection_closed(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    sock.sendall(request(decision(NG), version="1.0"))
    answer = reader.answer()
    assert answer.status == 200
    assert answer.headers["connection"] == "close"
    assert reader.closed()


def test_a_chunked_body_over_the_limit_is_413_and_the_connection_closed(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    chunk = b"x" * 1500
    head = request(b"", headers=("Transfer-Encoding: chunked", "Accept-Language: ja"))
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    sock.sendall(head + body)
    answer = reader.answer()
    assert answer.status == 413
    assert answer.json()["code"] == "body_too_large"
    assert answer.headers["content-language"] == "ja"  # the front's own problem, in Japanese
    assert reader.closed()


def test_a_chunked_body_under_the_limit_is_decided(conn: tuple[socket.socket, Reader]) -> None:
    sock, reader = conn
    body = decision(NG)
    head = request(b"", headers=("Transfer-Encoding: chunked",))
    halves = (body[:40], body[40:])
    sock.sendall(head + b"".join(b"%x\r\n%s\r\n" % (len(h), h) for h in halves) + b"0\r\n\r\n")
    answer = reader.answer()
    assert answer.status == 200
    assert answer.json()["fired"]


def test_a_body_shorter_than_its_content_length_is_408_after_the_body_timeout(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    body = decision(NG)
    began = time.monotonic()
    sock.sendall(request(body[:-5], length=len(body)))
    answer = reader.answer()
    waited = time.monotonic() - began
    assert answer.status == 408
    assert answer.json()["code"] == "body_timeout"
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 5
    assert reader.closed()


def test_a_body_that_keeps_arriving_slower_than_the_timeout_in_all_is_decided(
    conn: tuple[socket.socket, Reader],
) -> None:
    # the timeout is for a body that stopped: each piece re-arms it
    sock, reader = conn
    body = decision(NG)
    sock.sendall(request(b"", length=len(body)))
    pieces = [body[i : i + 20] for i in range(0, len(body), 20)]
    for piece in pieces[:4]:
        time.sleep(TIMEOUT * 0.4)
        sock.sendall(piece)
    sock.sendall(b"".join(pieces[4:]))
    answer = reader.answer()
    assert answer.status == 200, answer.body


def _timeouts(server: Server) -> int:
    with server.client() as client:
        text = client.get("/metrics").text
    wanted = 'kimari_http_errors_total{status="408",code="body_timeout"} '
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(wanted))


def test_a_client_that_leaves_inside_its_body_gets_no_408_counted(server: Server) -> None:
    before = _timeouts(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        body = decision(NG)
        sock.sendall(request(body[:-5], length=len(body)))  # and leaves inside the body
    time.sleep(TIMEOUT * 2)
    assert _timeouts(server) == before
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        body = decision(NG)
        sock.sendall(request(body[:-5], length=len(body)))
        assert Reader(sock).answer().status == 408  # one that stays is answered and counted
    assert _timeouts(server) == before + 1


def test_expect_100_continue_is_answered_by_the_asgi_path(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    body = decision(NG)
    sock.sendall(request(b"", length=len(body), headers=("Expect: 100-continue",)))
    interim = sock.recv(100)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    sock.sendall(body)
    answer = reader.answer()
    assert answer.status == 200
    assert answer.json()["fired"]


def test_both_paths_answer_the_same_request_alike(conn: tuple[socket.socket, Reader]) -> None:
    # '%2D' is a '-': the percent-encoded path takes uvicorn's path, the plain one the relay
    sock, reader = conn
    answers = []
    for path in ("/v1/decisions/np-check", "/v1/decisions/np%2Dcheck"):
        sock.sendall(request(decision(NG), path=path, headers=("Accept-Language: ja",)))
        answers.append(reader.answer())
    relayed, asgi = answers
    assert relayed.status == asgi.status == 200
    assert relayed.headers.keys() == asgi.headers.keys()
    strip = ("decision_id", "elapsed_us")
    same = [{k: v for k, v in a.json().items() if k not in strip} for a in answers]
    assert same[0] == same[1]


def test_problems_of_the_worker_keep_their_language_and_headers(
    conn: tuple[socket.socket, Reader],
) -> None:
    sock, reader = conn
    sock.sendall(request(b'{"facts": {}}', headers=("Accept-Language: ja",)))
    answer = reader.answer()
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["content-language"] == "ja"


def test_a_client_that_leaves_before_its_answer_does_not_stop_the_front(server: Server) -> None:
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request(decision(NG)))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        reader = Reader(sock)
        sock.sendall(request(decision(OK)))
        assert reader.answer().status == 200


def test_the_access_log_has_a_line_for_each_path(tmp_path: Path) -> None:
    # the relay writes uvicorn's line itself; a mistake there once left the client waiting
    with running(tmp_path, env={"KIMARI_ACCESS_LOG": "true"}) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            reader = Reader(sock)
            sock.sendall(request(decision(NG), path="/v1/decisions/np-check?explain=true"))
            assert reader.answer().status == 200
            sock.sendall(request(decision(OK), version="1.0"))
            assert reader.answer().status == 200
        with srv.client() as client:
            assert client.get("/healthz").status_code == 200
        wanted = (
            '"POST /v1/decisions/np-check?explain=true HTTP/1.1" 200',
            '"POST /v1/decisions/np-check HTTP/1.0" 200',
            '"GET /healthz HTTP/1.1" 200',
        )
        deadline = time.monotonic() + 10
        while not all(any(w in line for line in srv.lines) for w in wanted):  # on stdout
            assert time.monotonic() < deadline, srv.lines
            time.sleep(0.05)
