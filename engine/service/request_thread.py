"""A worker's requests that decide nothing and may take their time, on a thread of their own.

The lifecycle's requests (revisions, approvals, rollbacks, diffs, drafts checked, jobs, the
audit trail) ran on the deciding thread: an approval of order-holds re-runs the test cases
of the flows that consult it, and every decision queued behind it waited 0.2-0.5 s. Here
they run one at a time, in the order they came (the lifecycle service keeps one caller),
while the deciding thread goes on. Both share the interpreter and the store's writer, so a
decision meanwhile waits for their turns (8-24 ms at most in docs/benchmarks.md), not for
the whole request.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from engine.service.data_builds import Job

log = logging.getLogger("kimari.worker")


class RequestThread:
    def __init__(self, name: str, answer: Callable[[Job], None]) -> None:
        self.answer = answer  # runs a job's request on this thread and sends its reply
        self.jobs: deque[Job] = deque()
        self.stopping = False
        self.ready = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, job: Job) -> None:
        with self.ready:
            self.jobs.append(job)
            self.ready.notify()

    def stop(self) -> None:
        """Begin no other request: the thread ends once the one under way is answered;
        those not begun are dropped (the front answered them 503 when it closed: not
        made)."""
        with self.ready:
            self.stopping = True
            self.ready.notify_all()

    def join(self, timeout: float) -> None:
        self.stop()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.jobs and not self.stopping:
                    self.ready.wait()
                if self.stopping:
                    self.jobs.clear()
                    return
                job = self.jobs.popleft()
            try:
                self.answer(job)
            except Exception:  # `answer` answers its own failures: this is a bug of ours
                log.exception("a request on %s was not answered", self.thread.name)
