"""`kimari serve`: the HTTP front (a plain ASGI app on uvicorn) over a pool of engine workers.

    client --HTTP--> front (this module: routing, auth, limits, metrics, problem+json)
                       --frames over a Unix socket--> worker (engine/service/worker.py: decide, log)

The front never evaluates anything and never parses a decision body: it checks the
token and the size, forwards the bytes to a worker, and relays the answer. It stays up
when a worker dies, and answers that worker's requests with a retriable 503. The requests
a worker answers go there from uvicorn's parser callbacks without an ASGI cycle
(engine/service/protocol.py, the same steps of this App); the rest come through ASGI.

Why plain ASGI and not FastAPI: measured on 2 cores (bench/http_load.py, 32 connections,
one 200-byte JSON response), uvicorn with a plain ASGI app answered ~8,000-9,700 requests/s,
Starlette ~6,600, FastAPI ~2,900. The routes are few and fixed (one table,
engine/service/routes.py, which this module matches and checks scopes from), the bodies are
validated by the engine's facts schemas, and the OpenAPI document is generated from the table
and the policies (engine/service/openapi.py), so FastAPI's layers would cost two thirds of the
budget for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

import orjson

from engine.console.assets import Assets, NotBuilt
from engine.core.i18n import DEFAULT, Msg, pick_language, using_language
from engine.core.jsonvalue import quoted
from engine.core.suggest import did_you_mean
from engine.service import routes
from engine.service.config import Config, Token, digest
from engine.service.ipc import Event, Op
from engine.service.metrics import Metrics
from engine.service.pool import Reply, WorkerGone, WorkerPool
from engine.service.problems import QueryRefused, Response, internal_error, problem, unavailable
from engine.service.routes import SCOPES, Route

log = logging.getLogger("kimari.server")

JSON = b"application/json"
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes, dict[str, Any]]  # a response, and its meta for the metrics


EVENT_WINDOW = 60.0  # seconds in which the same event from several workers is one
# a data set changed: every worker serves the change before the answer (_sync_data)
DATA_CHANGES = frozenset({Op.PUT_DATA, Op.DELETE_DATA})


class TooLarge(Exception):
    pass


class BodyTimeout(Exception):
    """The body stopped arriving (shorter than its Content-Length, or a stalled client)."""


_EVERY_SCOPE = frozenset(SCOPES)  # what a request may do when no token is configured


class App:
    """The ASGI application of the front process."""

    def __init__(self, config: Config, pool: WorkerPool | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.pool = pool or WorkerPool(config, self._on_event)
        self.pool.on_event = self._on_event
        self.seen_events: dict[str, float] = {}  # event -> when first reported
        self.polls: set[asyncio.Task[Any]] = set()  # POLLs under way (kept from the collector)
        self.tokens = {t.digest: t for t in config.tokens}
        self.maintenance: asyncio.Task[None] | None = None
        # set by the first SIGTERM or SIGINT: /readyz answers 503, and every answer closes its
        # connection, so that no idle keep-alive connection is left to be cut at the stop
        self.draining = False
        # no pid nor version: an unauthenticated probe learns that the front answers, no more
        self.health = orjson.dumps({"status": "ok"})
        # the routes the table says the front answers (not one worker), by operationId
        # (each gets the request's ASGI scope too: whoami reads its token)
        self.answers: dict[str, Callable[[Route, dict[str, Any]], Awaitable[Answer]]] = {
            "healthz": self._healthz,
            "readyz": self._readyz,
            "reload": self._reload,
            "metrics": self._metrics,
            "whoami": self._whoami,
        }
        self.assets = Assets()
        self.files: dict[str, Callable[[dict[str, str]], Answer]] = {
            "root": self._root,
            "console": lambda _params: self._page("console"),
            "docs": lambda _params: self._page("docs"),
            "console-asset": self._asset,
        }
        unanswered = {
            r.operation_id for r in routes.ROUTES if r.by not in (routes.By.WORKER, routes.By.FILES)
        }
        if {r.operation_id for r in routes.ROUTES if r.by is routes.By.FILES} != self.files.keys():
            raise RuntimeError("the front's file answers differ from the route table's")
        if unanswered - self.answers.keys():  # a table row the front cannot answer
            raise RuntimeError(f"no front answer for {sorted(unanswered - self.answers.keys())}")

    # -- lifecycle ---------------------------------------------------------------------
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.pool.start()
                self.maintenance = asyncio.create_task(self._maintain())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.maintenance is not None:
                    self.maintenance.cancel()
                await self.pool.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _maintain(self) -> None:
        """Retention: delete decisions older than log_retention_days, now and then hourly."""
        from engine.store.decisions import DecisionLog

        days = self.config.log_retention_days
        if days <= 0:
            return
        await asyncio.sleep(5)
        while True:
            before = int((time.time() - days * 86400) * 1000)
            try:
                decision_log = DecisionLog(self.config.store)
                try:
                    deleted = await asyncio.to_thread(decision_log.prune, before)
                finally:
                    decision_log.close()
                if deleted:
                    log.info("retention: deleted %d decisions older than %s days", deleted, days)
            except Exception as exc:
                log.error("retention failed: %s", exc)
            await asyncio.sleep(3600)

    def _on_event(self, code: int, meta: dict[str, Any]) -> None:
        if code != Event.RELOAD:
            return
        # what identifies the edit or the publication, whichever worker reports it (each
        # may have served another revision before: "revision" of a refusal, "previous")
        if meta.get("result") == "refused":
            fields: tuple[str, ...] = ("policy", "result", "origin", "stamp", "text")
        else:
            fields = ("policy", "result", "revision", "publication", "stamp")
        key = orjson.dumps([meta.get(k) for k in fields]).decode()
        now = time.monotonic()
        if now - self.seen_events.get(key, -EVENT_WINDOW) < EVENT_WINDOW:
            return  # every worker reports the same edit or publication
        self.seen_events[key] = now
        if len(self.seen_events) > 1000:
            self.seen_events = {k: t for k, t in self.seen_events.items() if now - t < EVENT_WINDOW}
        self._poll_others()
        policy, result = meta.get("policy", "?"), meta.get("result", "?")
        self.metrics.reloaded(policy, result)
        if result == "refused":
            serving = meta.get("revision") or "nothing"
            if meta.get("origin") == "last served":
                serving += " (the last revision it served, from the store)"
            detail = "\n  ".join(meta.get("text", []))
            what = "published revision" if meta.get("origin") == "store" else "edit"
            log.warning(
                "policy %s: %s refused, still serving %s:\n  %s", policy, what, serving, detail
            )
        elif result == "loaded":
            publication = meta.get("publication")
            shown = f" (publication {publication})" if publication is not None else ""
            log.info("policy %s: serving revision %s%s", policy, meta.get("revision"), shown)
        else:
            log.info("policy %s: %s", policy, result)

    def _poll_others(self) -> None:
        """The first worker to serve a new revision (or refuse an edit) says so: tell every
        worker to look now, instead of each at the end of its own reload interval (two
        workers' timers may be almost an interval apart: mixed answers for that long)."""
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to tell (tests)
            task = asyncio.get_running_loop().create_task(self.pool.call_all(Op.POLL))
            self.polls.add(task)
            task.add_done_callback(self.polls.discard)

    # -- ASGI --------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        started = time.perf_counter()
        lang = pick_language(self.header(scope, b"accept-language"))
        with using_language(lang):  # the front's own problems; the worker gets it in the meta
            status, headers, body, meta = await self._answer(scope, receive, lang)
        self.count(status, meta, body, time.perf_counter() - started)
        headers.append((b"content-length", str(len(body)).encode()))
        if self.draining:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: dict[str, Any], receive: Receive, lang: str) -> Answer:
        try:
            status, headers, body, meta = await self._route(scope, receive, lang)
        except TooLarge:
            status, headers, body, meta = self.too_large()
        except BodyTimeout:
            status, headers, body, meta = self.body_late()
        except WorkerGone as exc:
            status, headers, body = unavailable(exc.detail, exc.code)
            meta = {}
        except Exception:  # a bug of the front: logged here, never shown to the client
            status, headers, body = internal_error(f"{scope.get('method')} {scope.get('path')}")
            meta = {}
        return status, headers, body, meta

    def count(self, status: int, meta: dict[str, Any], body: bytes, seconds: float) -> None:
        policy = meta.get("p")
        if status == 200 and policy is not None:
            outcome = meta.get("o")
            if isinstance(outcome, list):
                for label in outcome:
                    self.metrics.decided(policy, label, seconds)
            else:
                self.metrics.decided(policy, outcome or "decided", seconds)
        elif status >= 400:
            code = meta.get("c")
            if code is None:
                with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                    code = orjson.loads(body).get("code")
            self.metrics.error(status, code or "unknown")

    def _token(self, scope: dict[str, Any]) -> Token | None:
        """The request's configured token; None: no valid token."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                kind, _, secret = value.decode("latin-1").partition(" ")
                if kind.lower() != "bearer" or not secret:
                    return None
                wanted = digest(secret.strip())
                for known, token in self.tokens.items():
                    if hmac.compare_digest(known, wanted):
                        return token
                return None
        return None

    def _scopes(self, scope: dict[str, Any]) -> tuple[frozenset[str], str] | None:
        """The token's scopes and principal; None: no valid token. Without configured
        tokens: every scope, as 'anonymous'."""
        if self.config.anonymous:
            return _EVERY_SCOPE, "anonymous"
        token = self._token(scope)
        return (token.scopes, token.principal) if token is not None else None

    def _deny(self, scope: dict[str, Any], needed: str) -> Response | str:
        """The problem refusing the request, or the principal it is allowed for."""
        found = self._scopes(scope)
        if found is None:
            return problem(
                401,
                "unauthorized",
                Msg("send 'Authorization: Bearer <token>' with a configured token"),
                headers=[(b"www-authenticate", b'Bearer realm="kimari"')],
            )
        scopes, principal = found
        if needed not in scopes:
            return problem(
                403,
                "forbidden",
                Msg("this token lacks the '{scope}' scope", scope=needed),
                scope_needed=needed,
            )
        return principal

    async def _body(self, scope: dict[str, Any], receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise TooLarge
        chunks = []
        size = 0
        while True:
            try:
                async with asyncio.timeout(self.config.body_timeout):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def header(scope: dict[str, Any], wanted: bytes) -> str | None:
        for name, value in scope["headers"]:
            if name == wanted:
                return value.decode("latin-1")
        return None

    @staticmethod
    def worker_answer(status: int, reply: dict[str, Any], out: bytes) -> Answer:
        """A worker's reply as the front's answer: its headers, or JSON's."""
        headers = (
            [(k.encode(), v.encode()) for k, v in reply["h"]]
            if "h" in reply
            else [(b"content-type", JSON)]
        )
        return status, headers, out, reply

    def too_large(self) -> Answer:
        detail = Msg("the body exceeds {limit} bytes", limit=self.config.max_body_bytes)
        return (*problem(413, "body_too_large", detail, headers=[(b"connection", b"close")]), {})

    def body_late(self) -> Answer:
        detail = Msg(
            "the body stopped arriving for {seconds:g} s before its "
            "end (is it shorter than its Content-Length?)",
            seconds=self.config.body_timeout,
        )
        return (*problem(408, "body_timeout", detail, headers=[(b"connection", b"close")]), {})

    def principal(self, route: Route, scope: dict[str, Any]) -> Response | str | None:
        """Who the request is allowed for (None: the route needs no scope), or the problem
        refusing it."""
        return None if route.scope is None else self._deny(scope, route.scope)

    def worker_meta(
        self,
        route: Route,
        params: Mapping[str, str],
        scope: dict[str, Any],
        principal: str | None,
        lang: str,
    ) -> dict[str, Any] | None:
        """The frame's meta of a request a worker answers."""
        meta = self._meta(route, params, scope)
        if route.audited:  # the worker records who did what
            meta["principal"] = principal
        if lang != DEFAULT:  # the language to answer in (engine/core/i18n.py): English if absent
            meta["lang"] = lang
        return meta or None

    async def _route(self, scope: dict[str, Any], receive: Receive, lang: str) -> Answer:
        method = scope["method"]
        if "\ufffd" in scope["path"] and not _utf8_path(scope.get("raw_path")):
            # uvicorn decodes %-escapes with errors="replace": %ff, %fe and %80 would all
            # name the same entity, "\ufffd"
            detail = Msg("the path is not UTF-8 once its percent-escapes are decoded")
            return (*problem(400, "path_invalid", detail), {})
        try:
            route, params = routes.find(method, scope["path"])
        except routes.NoRoute:
            path = scope["path"]
            hint = routes.suggest(path, scope.get("raw_path"))
            detail = Msg("no such path: {path}", path=path)
            return (*problem(404, "not_found", detail, hint=hint), {})
        except routes.NoMethod as exc:
            allow = ", ".join(sorted(exc.allowed)).encode()
            return (
                *problem(
                    405,
                    "method_not_allowed",
                    Msg("{method} is not allowed here", method=method),
                    headers=[(b"allow", allow)],
                ),
                {},
            )
        principal = self.principal(route, scope)
        if principal is not None and not isinstance(principal, str):
            return (*principal, {})
        if route.by is routes.By.FILES:
            return self.files[route.operation_id](params)
        if route.by is not routes.By.WORKER:
            return await self.answers[route.operation_id](route, scope)
        assert route.op is not None
        body = await self._body(scope, receive) if route.takes_body else b""
        try:
            meta = self.worker_meta(route, params, scope, principal, lang)
        except QueryRefused as exc:
            with using_language(lang):
                return (*exc.response(), {})
        if route.op in DATA_CHANGES:
            return self.worker_answer(*await self.change_data(route.op, meta, body))
        return self.worker_answer(*await self.pool.call(route.op, meta, body))

    async def change_data(self, op: int, meta: dict[str, Any] | None, body: bytes) -> Reply:
        """A data set replaced (or reset) through one worker: answered once every worker
        serves it, so that a decision sent after the answer uses it whichever worker takes
        it. Each builds it beside its decisions; one that dies meanwhile starts with it."""
        reply = await self.pool.call(op, meta, body)
        if reply[0] == 200:
            fault = (meta or {}).get("fault")  # test mode only: the same on every worker
            await self.pool.call_all(Op.DATA_SYNC, {"fault": fault} if fault else None)
        return reply

    def _meta(
        self, route: Route, params: Mapping[str, str], scope: dict[str, Any]
    ) -> dict[str, Any]:
        """What the worker needs besides the body: the path's parameters, the route's query
        flags and headers (and, in test mode only, the fault to inject)."""
        meta: dict[str, Any] = dict(params)
        query_string = scope.get("query_string")
        if query_string:
            query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
            for name in query:
                if name not in route.flags and name not in route.query:
                    raise _unknown_parameter(route, name)
            for flag in route.flags:
                if query.get(flag, [""])[-1]:  # blank: not given (a client's None)
                    meta[flag] = _flag(flag, query[flag][-1])
            for name in route.query:  # text: the worker checks it (a 422 names the parameter)
                if query.get(name, [""])[-1]:
                    meta[name] = query[name][-1]
        for header, key in route.headers.items():
            value = self.header(scope, header.lower().encode())
            if value is not None:
                meta[key] = value
        if route.actor and not self.config.anonymous:
            # the roles the token lets an actor claim; the worker checks the actor (403)
            token = self._token(scope)
            meta["roles"] = sorted(token.roles) if token is not None else []
        if self.config.test_faults:
            fault = self.header(scope, b"x-kimari-test-fault")
            if fault:
                meta["fault"] = fault
        return meta

    # -- the routes the front answers itself ---------------------------------------------
    async def _healthz(self, _route: Route, _scope: dict[str, Any]) -> Answer:
        return 200, [(b"content-type", JSON)], self.health, {}

    async def _readyz(self, _route: Route, _scope: dict[str, Any]) -> Answer:
        if self.draining:
            detail = Msg("the service is stopping; send new requests to another replica")
            return (*unavailable(detail, "shutting_down"), {})
        ready = self.pool.ready_count
        if ready:
            body = orjson.dumps({"status": "ready", "workers": ready})
            return 200, [(b"content-type", JSON)], body, {}
        return (*unavailable(Msg("no engine worker is ready yet"), "not_ready"), {})

    async def _reload(self, route: Route, _scope: dict[str, Any]) -> Answer:
        assert route.op is not None
        replies = await self.pool.call_all(route.op)
        if not replies:
            return (*unavailable(Msg("no engine worker is ready yet"), "no_worker"), {})
        status, _reply, out = replies[0]  # every worker compiled the same files
        return status, [(b"content-type", JSON)], out, {}

    async def _metrics(self, route: Route, _scope: dict[str, Any]) -> Answer:
        assert route.op is not None
        stats = [orjson.loads(r[2]) for r in await self.pool.call_all(route.op)]
        self.metrics.restarts = self.pool.restarts
        text = self.metrics.render(stats, self.pool.ready_count)
        return 200, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")], text, {}

    async def _whoami(self, _route: Route, scope: dict[str, Any]) -> Answer:
        """The token's principal, scopes and the roles its flow events may claim: what the
        console may offer (its pages, the roles of an actor). Never the secret."""
        token = self._token(scope)
        if self.config.anonymous or token is None:  # no tokens configured: everything
            principal, scopes, roles = "anonymous", sorted(SCOPES), ["*"]
        else:
            principal, scopes, roles = token.principal, sorted(token.scopes), sorted(token.roles)
        body = orjson.dumps({"principal": principal, "scopes": scopes, "roles": roles})
        return 200, [(b"content-type", JSON)], body, {}

    # -- the console's files (engine/console/assets.py) -----------------------------------
    @staticmethod
    def _root(_params: dict[str, str]) -> Answer:
        return 302, [(b"location", b"/console/"), (b"content-type", b"text/plain")], b"", {}

    def _page(self, name: str) -> Answer:
        try:
            found = self.assets.page(name)
        except NotBuilt:
            return (
                *problem(
                    404,
                    "console_not_built",
                    Msg(
                        "the console's files are not built here: run 'make console' (a wheel "
                        "ships them built)"
                    ),
                ),
                {},
            )
        return 200, [(k.encode(), v.encode()) for k, v in found.headers], found.body, {}

    def _asset(self, params: dict[str, str]) -> Answer:
        found = self.assets.asset(params["asset"])
        if found is None:
            return (*problem(404, "not_found", Msg("no such asset")), {})
        return 200, [(k.encode(), v.encode()) for k, v in found.headers], found.body, {}


def run_front(sock: socket.socket, config: Config) -> None:
    """Serve HTTP on an already bound socket until SIGINT/SIGTERM (the front process)."""
    import uvicorn

    logging.basicConfig(
        level=logging.INFO, format="kimari %(levelname)s %(message)s", stream=sys.stderr
    )
    from engine.service.protocol import protocol_for

    app = App(config)
    uv_config = uvicorn.Config(
        app,
        http=protocol_for(app),
        lifespan="on",
        access_log=config.access_log,
        log_level="warning",
        timeout_graceful_shutdown=config.shutdown_timeout,
        timeout_keep_alive=config.keep_alive_timeout,  # a float: uvicorn types it int
        server_header=False,
    )
    if config.access_log:  # uvicorn's log_level (warning) would hide its access lines (info)
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    server = _make_server_class()(uv_config, app, config.shutdown_drain)
    # uvicorn raises the signal it stopped on again once it is done; ignored, the front exits 0
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(server.serve(sockets=[sock]))


def _make_server_class() -> type:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server, stopped in the order a load balancer needs (docs/service.md):

        1. SIGTERM: /readyz answers 503 and every answer closes its connection, while
           requests are still accepted and served, for `shutdown_drain` seconds;
        2. then uvicorn's own graceful stop: no new connection is accepted, requests in
           flight finish (at most `shutdown_timeout`), and the lifespan's end closes the
           workers, which commit their last decisions and close the store.

        SIGINT (Ctrl-C) or a second signal skips what is left of the drain.
        """

        def __init__(self, config: Any, app: App, drain: float) -> None:
            super().__init__(config)
            self.app = app
            self.drain = drain
            self.drain_until: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.drain_until is not None and sig == signal.SIGTERM:
                return  # the same stop, told twice (the process group's and the supervisor's)
            first = not self.app.draining
            self.app.draining = True
            if first and sig == signal.SIGTERM and self.drain > 0:
                self.drain_until = time.monotonic() + self.drain
                log.info("stopping: /readyz is 503 for %ss, then no new connections", self.drain)
                return
            log.info("stopping: no new connections; finishing the requests in flight")
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                self.drain_until = None
                log.info("stopping: drained; no new connections")
                super().handle_exit(signal.SIGTERM, None)
            return await super().on_tick(counter)

    return DrainingServer


def _utf8_path(raw_path: bytes | None) -> bool:
    """Whether the request's path, its %-escapes decoded, is UTF-8 text."""
    try:
        unquote_to_bytes(raw_path or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _die_with_parent() -> None:
    """Linux: SIGTERM this front when the supervisor dies, so no orphan keeps the port."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM


_TRUE, _FALSE = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


def _flag(name: str, value: str) -> bool:
    """A query flag: `true`, `1`, `yes` or `false`, `0`, `no` (any case); anything else is
    refused, never read as false (`?refusals=banana` showed no refusals)."""
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise QueryRefused(name, Msg("{value} is not true or false", value=quoted(value[:60])))


def _unknown_parameter(route: Route, name: str) -> QueryRefused:
    """A parameter the route does not read: a misspelt flag was silently ignored."""
    known = (*route.flags, *route.query)
    reason = (
        Msg("not a parameter of this path (it reads {names})", names=", ".join(known))
        if known
        else Msg("this path reads no query parameters")
    )
    return QueryRefused(name[:60], reason, did_you_mean(name, known))


if (
    __name__ == "__main__"
):  # started by engine/service/supervisor.py: python -m engine.service.http FD
    _die_with_parent()
    front_config = Config.from_json(os.environ["KIMARI_FRONT"])
    listening = socket.socket(fileno=int(sys.argv[1]))
    run_front(listening, front_config)
