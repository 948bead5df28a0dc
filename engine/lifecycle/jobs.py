"""Long lifecycle work (an impact replay, a submission with its impact, a draft's YAML tests
run from the console's editor) as jobs.

    POST /v1/policies/{id}/impact   -> start(): a job row (one running per policy), then
                                       `python -m engine.lifecycle.jobs JOB_ID`, the store
                                       in $KIMARI_JOB_STORE
    that process                    -> runs it on every core, writes progress (which is
                                       also its heartbeat) at most twice a second, stops
                                       at the next chunk when a cancel was asked, and
                                       writes the report or the error
    GET /v1/jobs/{id}               -> the row, from any worker

A job runs in its own process so that no service worker stops deciding while it runs (and
so that a draft's rulesets, which durable_rules can never unregister, die with it), and
its state is in the store so that any worker (or another machine, with a shared store)
can answer for it. A job whose process stopped beating is marked failed when the
next job of its policy starts.

The store's location reaches the job's process in its environment, not its command line:
a PostgreSQL URL may hold a password, and any user of the machine can read a process's
command line (`ps`), while its environment is its owner's only.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, cast

from engine.core.errors import Diagnostic, KimariError, Refused
from engine.core.i18n import Msg, translated, using_language
from engine.lifecycle.candidates import Candidate, run_tests
from engine.lifecycle.workflow import Lifecycle, Rules, draft_from_text
from engine.store.revisions import Job, JobBusy, RevisionStore

log = logging.getLogger("kimari.jobs")
KINDS = ("impact", "submit", "tests")
BEAT_SECONDS = 0.5
STORE_ENV = "KIMARI_JOB_STORE"


def start(
    revisions: RevisionStore,
    kind: str,
    policy_id: str,
    principal: str,
    params: Mapping[str, Any],
) -> Job:
    """Record the job and start its process; Refused (409) while the policy has one."""
    if kind not in KINDS:
        raise ValueError(kind)
    try:
        job = revisions.start_job(kind, policy_id, principal, params)
    except JobBusy as busy:
        raise Refused(
            [
                Diagnostic(
                    "job_running",
                    Msg(
                        "policy '{policy}' already has a job running: {job} ({kind}, started "
                        "by {principal})",
                        policy=policy_id,
                        job=busy.job.id,
                        kind=busy.job.kind,
                        principal=busy.job.principal,
                    ),
                    extra={"job": busy.job.id},
                )
            ]
        ) from None
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.lifecycle.jobs", job.id],
        env=dict(os.environ, **{STORE_ENV: revisions.location}),
        stdin=subprocess.DEVNULL,
    )
    threading.Thread(target=process.wait, name=f"job-{job.id}", daemon=True).start()
    return job


class _Beat:
    """Progress to the store at most every BEAT_SECONDS; True when a cancel was asked."""

    def __init__(self, revisions: RevisionStore, job_id: str) -> None:
        self.revisions, self.job_id = revisions, job_id
        self.last = 0.0
        self.cancelled = False

    def __call__(self, done: int, total: int | None) -> bool:
        now = time.monotonic()
        if now - self.last >= BEAT_SECONDS:
            self.last = now
            self.cancelled = self.revisions.job_progress(self.job_id, done, total)
        return self.cancelled

    def asked(self) -> bool:
        """Whether a cancel was asked, read now (a submission asks before it records)."""
        job = self.revisions.job(self.job_id)
        self.cancelled = self.cancelled or bool(job and job.cancel_requested)
        return self.cancelled


def run_job(store: str, job_id: str) -> int:
    lifecycle_rules = Rules()
    revisions = RevisionStore(store)
    try:
        job = revisions.job(job_id)
        if job is None or job.state != "running":
            return 0
        params = dict(job.params)
        lifecycle_rules = Rules(**params.pop("rules", {}))
        beat = _Beat(revisions, job_id)
        lang = params.pop("lang", None)  # the language of the request that started it
        with Lifecycle(store, lifecycle_rules) as lifecycle, using_language(lang):
            try:
                report = cast(dict[str, Any], translated(_run(lifecycle, job, params, beat)))
            except KimariError as exc:
                revisions.finish_job(
                    job_id,
                    "cancelled" if beat.cancelled else "failed",
                    error={
                        "code": exc.problem_name(),
                        "status": exc.http_status,
                        "errors": [d.to_dict() for d in exc.diagnostics],
                    },
                )
                return 1
            except Exception as exc:  # a bug: the job says so instead of running forever
                log.exception("job %s failed", job_id)
                error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
                revisions.finish_job(job_id, "failed", error=error)
                return 1
        state = "cancelled" if beat.cancelled else "done"
        revisions.finish_job(job_id, state, report=report)
        return 0
    finally:
        revisions.close()


def _run(lifecycle: Lifecycle, job: Job, params: dict[str, Any], beat: _Beat) -> dict[str, Any]:
    if job.kind == "impact":
        data = {name: list(entries) for name, entries in (params.get("data") or {}).items()}
        return lifecycle.impact(
            job.policy_id,
            draft=params.get("draft"),
            against=params.get("against") or "published",
            since_ms=params.get("since_ms"),
            until_ms=params.get("until_ms"),
            data=data,
            sample=params.get("sample"),
            max_changed=params.get("max_changed"),
            list_limit=int(params.get("list", 100)),
            on_progress=beat,
        )

    def sent_text() -> Candidate:
        return draft_from_text(
            lifecycle,
            job.policy_id,
            params["source"],
            files=params.get("files"),
            tests=params.get("tests"),
        )

    if job.kind == "tests":  # the editor's "run the tests": a text, nothing stored
        candidate = sent_text()
        tests = run_tests(candidate, lifecycle.consulted(candidate))
        report: dict[str, Any] = {"revision": candidate.revision, "tests": tests}
        # a decision policy: the published flows that consult it, run with it as a
        # submission runs them (it is refused when one fails)
        flows = lifecycle.flows_tested(candidate)
        if flows:
            report["consulting_flows"] = [
                {**flow.brief(), "failures": flow.summary.get("failures", [])} for flow in flows
            ]
        return report
    if params.get("draft") is not None:
        candidate = lifecycle.resolve(job.policy_id, str(params["draft"]))
    else:
        candidate = sent_text()
    record, publication = lifecycle.submit(
        candidate, job.principal, params.get("message", ""), on_progress=beat, cancelled=beat.asked
    )
    return {
        "revision": record.to_dict(),
        "publication": publication.to_dict() if publication else None,
    }


def main(argv: list[str]) -> int:
    store = os.environ.get(STORE_ENV)
    if len(argv) != 2 or not store:
        print(f"usage: {STORE_ENV}=STORE python -m engine.lifecycle.jobs JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="kimari job %(levelname)s %(message)s", stream=sys.stderr
    )
    return run_job(store, argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
