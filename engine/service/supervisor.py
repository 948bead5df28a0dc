"""`kimari serve`'s top process: bind once, run the HTTP front as a child, restart it if it dies.

    kimari serve (this module: binds the socket, prints where, watches)
      └─ front (engine/service/http.py: HTTP, tokens, metrics)        restarted if it dies
           └─ engine workers (engine/service/worker.py, N)               restarted by the front

The listening socket belongs to this process and is inherited by each front, so while a
new front starts, connections wait in the kernel's backlog instead of being refused. A
dead front's workers see their socket close and exit.

SIGTERM (or SIGINT) stops everything, in the order a load balancer needs: this process
passes SIGTERM on to the front and closes its own copy of the socket; the front answers
/readyz with 503 for `shutdown_drain` seconds while still serving, then stops accepting,
finishes the requests in flight (at most `shutdown_timeout`), and closes its workers,
which commit their last decisions and close the store (no -wal or -shm file is left);
then this process exits 0. docs/service.md describes what a client sees.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from engine.core.errors import Diagnostic, UsageError
from engine.core.i18n import Msg, os_reason
from engine.service.config import Config
from engine.store.backend import parse_location, redact

log = logging.getLogger("kimari.supervisor")


def bind(config: Config) -> socket.socket:
    """The socket bound to the configured address, not yet listening (`serve` listens once
    the store is ready); a UsageError naming the address if it cannot be had (in use, not
    this machine's, a privileged port), before anything is written to the store."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise _unavailable(config, exc) from None
    return sock


def _listen(config: Config, sock: socket.socket) -> None:
    try:
        sock.listen(2048)
    except OSError as exc:  # another process bound the port as well, and listened first
        sock.close()
        raise _unavailable(config, exc) from None


def _unavailable(config: Config, exc: OSError) -> UsageError:
    host = f"[{config.host}]" if ":" in config.host else config.host
    address = f"{host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        message = Msg(
            "--port {port}: {address} is already in use (another kimari serve, or another "
            "program, listens there); choose another port, or 0 for a free one",
            port=config.port,
            address=address,
        )
    else:
        message = Msg(
            "--port {port}: cannot listen on {address}: {reason} (check --host and --port)",
            port=config.port,
            address=address,
            reason=os_reason(exc),
        )
    return UsageError([Diagnostic("port_unavailable", message)])


def _announce(config: Config, sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"kimari: listening on http://{shown}:{port} with {config.workers} workers", flush=True)
    store = parse_location(config.store)  # a URL's password is not printed
    if config.watch:
        print(
            f"kimari: --watch: serving the policy files of {config.policies} as saved; every\n"
            "        saved file goes live unreviewed (a one-person sandbox). Decision log in "
            f"the {store.kind} store {store}",
            flush=True,
        )
    else:
        print(
            f"kimari: serving the published revisions of the {store.kind} store {store} "
            f"(decision log there too);\n        edits of {config.policies} go live through "
            f"kimari publish (approvals required: {config.approvals})",
            flush=True,
        )
    if config.anonymous:
        print(
            "kimari: no tokens configured: every request is allowed (this host only). To require\n"
            "        tokens, set KIMARI_TOKENS='<secret>:decide,<admin-secret>:decide+admin'",
            flush=True,
        )
    if config.test_faults:
        print("kimari: TEST FAULTS ENABLED (X-Kimari-Test-Fault); never in production", flush=True)


def _bootstrap(config: Config) -> None:
    """A store that never published anything publishes the folder's policies, so that a
    fresh `make run` serves the shipped policies with no set-up. A store with publications
    serves only what it published: a policy file of the folder it never published (a
    sandbox's `kimari publish` of one policy, then `kimari serve`) is published too when no
    approval is required, and otherwise named in a warning with how to publish it, never
    left to answer 404 unexplained (Lifecycle.catch_up)."""
    from engine.lifecycle.workflow import Lifecycle

    store = redact(str(config.store))
    with Lifecycle(config.store) as lifecycle:
        lifecycle.require(config.approvals)  # kimari approve on this store needs as many
        lines = lifecycle.bootstrap(config.policies)
        published, warnings = ([], []) if lines else lifecycle.catch_up(config.policies)
    if lines:
        log.info(
            "the store %s was empty: published the policies of %s (bootstrap)",
            store,
            config.policies,
        )
    for line in lines:
        log.info("%s", line)
    if published:
        log.info(
            "the store %s had never published %d policies of %s: published them (no approval "
            "is required)",
            store,
            len(published),
            config.policies,
        )
    for line in published:
        log.info("%s", line)
    if warnings:
        log.warning(
            "%d policy files of %s have no publication in the store %s: they are not served "
            "(see GET /v1/policies, `unpublished`)",
            len(warnings),
            config.policies,
            store,
        )
    for line in warnings:
        log.warning("%s", line)


def serve(config: Config, sock: socket.socket | None = None) -> int:
    """Bind (unless `sock` is the bound socket: `bind`), then keep a front process serving
    until SIGINT/SIGTERM; the exit code."""
    from engine.store.backend import open_backend
    from engine.store.decisions import DecisionLog
    from engine.store.flows import FlowStore
    from engine.store.versions import Store

    logging.basicConfig(
        level=logging.INFO, format="kimari %(levelname)s %(message)s", stream=sys.stderr
    )
    # create and migrate the store once, before fronts and workers race to do it
    backend = open_backend(config.store)
    try:
        Store(backend)
        DecisionLog(backend)
        FlowStore(backend)
    finally:
        backend.close()
    if not config.watch:
        _bootstrap(config)
    else:
        from engine.lifecycle.workflow import Lifecycle

        with Lifecycle(config.store) as lifecycle:
            lifecycle.require(config.approvals)
    if sock is None:
        sock = bind(config)
    _listen(config, sock)
    _announce(config, sock)
    stopping = False
    front: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:  # told twice (a SIGTERM to the process group, then ours): one stop
            return
        stopping = True
        if front is not None and front.poll() is None:
            front.send_signal(signal.SIGTERM)
            # the front's copy of the socket is now the only one: when the front stops
            # accepting, the port refuses new connections instead of queueing them for a
            # front that will never come (and resetting them when this process exits)
            sock.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = dict(os.environ, KIMARI_FRONT=config.to_json())
    failures = 0
    while not stopping:
        began = time.monotonic()
        front = subprocess.Popen(
            [sys.executable, "-m", "engine.service.http", str(sock.fileno())],
            pass_fds=(sock.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        code = front.wait()
        if stopping:
            break
        failures = failures + 1 if time.monotonic() - began < 10 else 0
        reason = f"signal {-code}" if code < 0 else f"exit code {code}"
        log.error("the HTTP front (pid %s) died with %s; starting a new one", front.pid, reason)
        time.sleep(min(0.1 * 2**failures, 5.0))
    if front is not None:
        try:  # the drain, the requests in flight, then the workers' last commits
            front.wait(config.shutdown_drain + 2 * config.shutdown_timeout + 5)
        except subprocess.TimeoutExpired:
            log.error("the HTTP front did not stop in time; killing it")
            front.kill()
    return 0
