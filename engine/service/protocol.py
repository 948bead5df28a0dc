"""The front's HTTP protocol: uvicorn's httptools protocol, with the requests a worker
answers relayed to it without an ASGI cycle.

Measured on 2 cores (docs/benchmarks.md), the front spent ~80-105 µs of CPU per decision,
most of it in uvicorn's request cycle and the ASGI layer (a task per request, the
receive/send messages, three writes per answer), not in kimari's routing. A request that
passes the checks below is answered here instead: the body is gathered from the parser's
callbacks, the frame goes to a worker, and the worker's reply is written in one piece when
it comes back, with no task in between. Every other request (the front's own routes, the
console's files, refusals, a pipelined request, `Expect: 100-continue`, a percent-encoded
path) takes uvicorn's path to the ASGI app unchanged, and both paths share the App's
steps: scopes, meta, problems, metrics.

Per request the relay looks its target up in a table kept per method and URL, writes the
answer from one bytes format, and keeps one keep-alive timer per connection instead of
uvicorn's timer per answer (docs/benchmarks.md, "The front's relay, again").

What a relayed request keeps from uvicorn's cycle: keep-alive and its timeout, pipelining
(a request that arrives while one is in flight waits in uvicorn's queue), `Connection:
close` while draining and at shutdown (uvicorn's `shutdown()` reads `keep_alive` and
`response_complete` of whatever `cycle` is), the body limit (413) and the body timeout
(408, re-armed as long as bytes keep coming).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from engine.core.i18n import pick_language, using_language
from engine.service import routes
from engine.service.http import DATA_CHANGES, JSON
from engine.service.pool import Reply, WorkerGone
from engine.service.problems import QueryRefused, internal_error, unavailable

# a worker's answer without headers of its own: the content type App.worker_answer gives it
JSON_HEAD = b"content-type: %s\r\n" % JSON

if TYPE_CHECKING:
    from engine.service.http import Answer, App


class Relay:
    """One request on its way to a worker. uvicorn's protocol reads its `cycle`'s
    `response_complete`, `keep_alive`, `disconnected` and `message_event.set()`; this
    object answers for all of them."""

    __slots__ = (
        "chunks",
        "complete",
        "disconnected",
        "keep_alive",
        "params",
        "principal",
        "response_complete",
        "route",
        "scope",
        "size",
        "started",
        "timer",
    )

    def __init__(
        self,
        route: routes.Route,
        params: Mapping[str, str],
        principal: str | None,
        scope: dict[str, Any],
        keep_alive: bool,
    ) -> None:
        self.route = route
        self.params = params
        self.principal = principal
        self.scope = scope
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False  # the whole body is in
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.timer: asyncio.TimerHandle | None = None
        self.started = time.perf_counter()

    @property
    def message_event(self) -> Relay:
        return self  # connection_lost() sets it: nothing waits on a relay

    def set(self) -> None:
        pass


# (method, URL) -> what the relay needs of them, or None: the request takes the ASGI path.
# A service is asked the same few URLs again and again; emptied when full, as URLs that
# carry ids must not grow it, and no longer URL is kept (a client chooses its URLs' size).
_Target = tuple[str, str, bytes, bytes, routes.Route, Mapping[str, str]]
_TARGETS: dict[tuple[bytes, bytes], _Target | None] = {}
TARGETS_MAX = 1024
TARGET_URL_MAX = 512


def _target(method: bytes, url: bytes) -> _Target | None:
    if len(url) > TARGET_URL_MAX:
        return _find_target(method, url)
    key = (method, url)
    try:
        return _TARGETS[key]
    except KeyError:
        pass
    found = _find_target(method, url)
    if len(_TARGETS) >= TARGETS_MAX:
        _TARGETS.clear()
    _TARGETS[key] = found
    return found


def _find_target(method_bytes: bytes, url: bytes) -> _Target | None:
    method = method_bytes.decode("ascii")
    try:
        parsed = httptools.parse_url(url)
        path = parsed.path.decode("ascii")
    except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
        return None
    if "%" in path or method == "HEAD":
        return None
    try:
        route, params = routes.find(method, path)
    except (routes.NoRoute, routes.NoMethod):
        return None
    if route.by is not routes.By.WORKER:
        return None
    # shared by every request of this URL: read-only (the meta copies it)
    return method, path, parsed.path, parsed.query or b"", route, MappingProxyType(params)


def protocol_for(app: App) -> type[HttpToolsProtocol]:
    """uvicorn's protocol class for this front (uvicorn.Config(http=...))."""

    _defaults: list[Any] = [None, b""]  # uvicorn's default headers, and their lines

    class FrontProtocol(HttpToolsProtocol):
        idle_since: float | None = None  # since the last answer, with nothing read since

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            relay = self.cycle
            if type(relay) is Relay and not relay.complete and not relay.response_complete:
                # the body goes on in a later read: it must not stop for longer than this
                if relay.timer is not None:
                    relay.timer.cancel()
                relay.timer = self.loop.call_later(app.config.body_timeout, self._late, relay)

        def on_headers_complete(self) -> None:
            relay = self._relay() if self.cycle is None or self.cycle.response_complete else None
            if relay is None:
                super().on_headers_complete()
            else:
                self.cycle = relay  # type: ignore[assignment]

        def _relay(self) -> Relay | None:
            """A Relay if a worker answers this request and nothing about it needs the ASGI
            path; None otherwise."""
            parser = self.parser
            if self.expect_100_continue or parser.should_upgrade():
                return None
            target = _target(parser.get_method(), self.url)
            if target is None:
                return None
            method, path, raw_path, query, route, params = target
            scope = self.scope
            scope["method"], scope["path"], scope["raw_path"] = method, path, raw_path
            scope["query_string"] = query
            principal = app.principal(route, scope)
            if principal is not None and not isinstance(principal, str):
                return None  # a refusal: uvicorn's path answers it
            length = app.header(scope, b"content-length")
            if length is not None and length.isdigit() and int(length) > app.config.max_body_bytes:
                return None
            version = parser.get_http_version()
            scope["http_version"] = version
            keep_alive = version != "1.0" and parser.should_keep_alive()
            return Relay(route, params, principal, scope, keep_alive)

        def on_body(self, body: bytes) -> None:
            relay = self.cycle
            if type(relay) is not Relay:
                super().on_body(body)
                return
            if relay.response_complete:
                return
            relay.size += len(body)
            if relay.size > app.config.max_body_bytes:
                with using_language(self._language(relay)):
                    self._answer(relay, app.too_large())
                return
            relay.chunks.append(body)

        def on_message_complete(self) -> None:
            relay = self.cycle
            if type(relay) is not Relay:
                super().on_message_complete()
                return
            relay.complete = True
            if relay.timer is not None:
                relay.timer.cancel()
                relay.timer = None
            if not relay.response_complete:  # a route without a body ignores one (as ASGI's)
                self._send(relay, b"".join(relay.chunks) if relay.route.takes_body else b"")

        def _send(self, relay: Relay, body: bytes) -> None:
            route = relay.route
            assert route.op is not None
            lang = self._language(relay)
            try:
                meta = app.worker_meta(route, relay.params, relay.scope, relay.principal, lang)
                slot = app.pool.pick()
                if route.op in DATA_CHANGES:  # answered once every worker serves it
                    reply = self.loop.create_task(app.change_data(route.op, meta, body))
                elif slot is None:  # no worker ready: wait for one as the ASGI path does
                    reply: asyncio.Future[Reply] = self.loop.create_task(
                        app.pool.call(route.op, meta, body)
                    )
                else:
                    reply = app.pool.send(slot, route.op, meta, body)
            except WorkerGone as exc:
                with using_language(lang):
                    self._answer(relay, (*unavailable(exc.detail, exc.code), {}))
                return
            except QueryRefused as exc:  # a query parameter the route refuses
                with using_language(lang):
                    self._answer(relay, (*exc.response(), {}))
                return
            except Exception:  # a bug of the front: logged, never shown to the client
                with using_language(lang):
                    self._answer(relay, self._failed(relay))
                return
            reply.add_done_callback(lambda done: self._replied(relay, lang, done))

        def _replied(self, relay: Relay, lang: str, done: asyncio.Future[Reply]) -> None:
            try:
                status, reply, out = done.result()  # the worker wrote it in `lang`
                lines = reply.get("h")
                if lines is None:
                    head, closing = JSON_HEAD, False
                else:
                    head = b"".join(f"{k}: {v}\r\n".encode() for k, v in lines)
                    closing = any(k.lower() == "connection" for k, _ in lines)
            except WorkerGone as exc:
                with using_language(lang):
                    self._answer(relay, (*unavailable(exc.detail, exc.code), {}))
                return
            except QueryRefused as exc:  # a query parameter the route refuses
                with using_language(lang):
                    self._answer(relay, (*exc.response(), {}))
                return
            except Exception:
                with using_language(lang):
                    self._answer(relay, self._failed(relay))
                return
            try:
                self._write_head(relay, status, head, out, reply, closing)
            except Exception:  # a bug here must not leave the client waiting for ever
                self._broken(relay)

        @staticmethod
        def _failed(relay: Relay) -> Answer:
            scope = relay.scope
            return (*internal_error(f"{scope['method']} {scope['path']}"), {})

        def _late(self, relay: Relay) -> None:
            relay.timer = None
            if self.transport.is_closing():  # the client left: no answer, no 408 counted
                relay.response_complete = True
                return
            if not relay.complete and not relay.response_complete:
                with using_language(self._language(relay)):
                    self._answer(relay, app.body_late())

        @staticmethod
        def _language(relay: Relay) -> str:
            """The language of the front's own problems (a worker's are in the meta)."""
            return pick_language(app.header(relay.scope, b"accept-language"))

        def _answer(self, relay: Relay, answer: Answer) -> None:
            try:
                self._write(relay, answer)
            except Exception:  # a bug here must not leave the client waiting for ever
                self._broken(relay)

        def _broken(self, relay: Relay) -> None:
            internal_error("writing an answer")  # logged with its id and trace
            relay.response_complete = True
            self.transport.close()

        def _write(self, relay: Relay, answer: Answer) -> None:
            """Write the answer in one piece, count it, and let the next request start."""
            status, headers, body, meta = answer
            closing = False  # 413, 408: the answer closes the connection itself
            head = []
            for name, value in headers:
                head += (name, b": ", value, b"\r\n")
                if name == b"connection":
                    closing = True
            self._write_head(relay, status, b"".join(head), body, meta, closing)

        def _write_head(
            self,
            relay: Relay,
            status: int,
            head: bytes,
            body: bytes,
            meta: dict[str, Any],
            closing: bool,
        ) -> None:
            """`_write` with the answer's own header lines already joined (`head`)."""
            app.count(status, meta, body, time.perf_counter() - relay.started)
            relay.response_complete = True
            if relay.timer is not None:
                relay.timer.cancel()
                relay.timer = None
            transport = self.transport
            if transport.is_closing():
                return  # the client left: nothing to write (the worker logged its decision)
            if self.access_log:
                self._log_access(relay, status)
            keep = relay.keep_alive and not closing and not app.draining
            transport.write(
                b"%s%s%scontent-length: %d\r\n%s\r\n%s"
                % (
                    STATUS_LINE[status],
                    self._default_head(),
                    head,
                    len(body),
                    b"" if keep or closing else b"connection: close\r\n",
                    body,
                )
            )
            if not keep:
                transport.close()
            self.on_response_complete()

        def _default_head(self) -> bytes:
            """uvicorn's default headers (the date), as lines: joined again only when uvicorn
            replaces the list (once a second)."""
            defaults = self.server_state.default_headers
            if defaults is not _defaults[0]:
                lines = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
                _defaults[:] = [defaults, lines]  # the list itself: `is` tells a new one
            return _defaults[1]  # type: ignore[no-any-return]

        def _log_access(self, relay: Relay, status: int) -> None:
            scope = relay.scope
            client = get_client_addr(scope)  # type: ignore[arg-type]
            path = get_path_with_query_string(scope)  # type: ignore[arg-type]
            version = scope["http_version"]  # the arguments uvicorn's formatter reads
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client, scope["method"], path, version, status
            )

        # -- keep-alive: one coarse timer per connection -----------------------------
        # uvicorn arms a timer after every answer and cancels it on the next read: two
        # timer operations a request. Here a read only marks the connection in use, and a
        # timer armed after an answer closes the connection once it has been idle for
        # timeout_keep_alive, else re-arms itself for the rest: the same rule, one timer
        # per connection and period.

        def _unset_keepalive_if_required(self) -> None:
            self.idle_since = None

        def on_response_complete(self) -> None:
            if self.pipeline or self.transport.is_closing():
                super().on_response_complete()  # uvicorn's starts the next pipelined request
                return
            self.server_state.total_requests += 1
            self.flow.resume_reading()
            self.idle_since = self.loop.time()
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self._idle_check
                )

        def _idle_check(self) -> None:
            self.timeout_keep_alive_task = None
            since = self.idle_since
            if since is None:
                return  # in use: its next answer arms the timer again
            left = since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self.timeout_keep_alive_task = self.loop.call_later(left, self._idle_check)
            else:
                self.timeout_keep_alive_handler()

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            timer = self.timeout_keep_alive_task
            if timer is not None:
                timer.cancel()
                self.timeout_keep_alive_task = None

    return FrontProtocol
