"""Drafts, submission, approval, publication and rollback of policy revisions.

    edit policies/x.yaml ──draft──> draft ──submit──> pending ──approve──> published
                                     │   (validated, tests run,   │ (another principal;   │
                                     │    impact over the window)  │  still based on the   │
                                     └──────reject────────────────┴──published one)      │
    rollback --to N: an earlier published revision is published again (a new publication)

`Lifecycle` holds these rules; the records are the store's (engine/store/revisions.py),
written one transaction per step, each with its audit row. With `approvals_required`
0 (a sandbox without tokens) a submitted revision is published at once by its author.

Refusals are exceptions with their exit code and HTTP status (engine/core/errors.py):
DraftInvalid (the text does not compile, 422), FailingTests (422), NotPermitted (self-
approval, 403), Refused (409: not pending, no longer based on the published revision,
nothing changed, a job running).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.errors import (
    Diagnostic,
    DraftInvalid,
    FailingTests,
    Location,
    NotPermitted,
    PolicyError,
    Refused,
    UsageError,
    error_count,
)
from engine.core.i18n import Msg, Rendered, translate
from engine.lifecycle import candidates, impact
from engine.lifecycle.candidates import Candidate
from engine.lifecycle.diff import diff
from engine.project.names import clash_with
from engine.project.project import policy_files, shown_path
from engine.store.backend import Backend, open_backend
from engine.store.revisions import (
    NewRevision,
    Publication,
    RevisionRecord,
    RevisionStore,
    StaleState,
)
from engine.store.versions import Store

DAY_MS = 86_400_000
APPROVALS = "approvals_required"
LISTED = 100  # revision records on a page of a listing, unless asked for another count
MAX_LISTED = 500  # ... at most


def state_word(state: str) -> str:
    """A revision's state as a message names it: the code's word in English, in Japanese the
    console's (公開中, 承認待ち, ...), never the bare code inside a Japanese sentence."""
    words = {
        "draft": Msg("draft"),
        "pending": Msg("pending"),
        "published": Msg("published"),
        "retired": Msg("retired"),
        "rejected": Msg("rejected"),
    }
    return words.get(state, state)


@dataclass(frozen=True)
class Rules:
    """How a store's revisions are governed (from the service configuration)."""

    approvals_required: int = 0  # 1: approved by a principal other than the author
    impact_days: float = 7.0  # the window of the log replayed at submission
    impact_sample: int | None = 20_000  # at most about this many decisions of it
    workers: int | None = None  # processes for replays (default: every core)


class Lifecycle:
    """The lifecycle over one store. `files`: whether a ref may name a policy file (the CLI,
    on the editor's machine); never over HTTP, where a path would read the server's files."""

    def __init__(
        self,
        location: str | Path,
        rules: Rules | None = None,
        *,
        files: bool = False,
        stores: tuple[Store, RevisionStore] | None = None,
    ) -> None:
        self.path = location  # a SQLite file or a PostgreSQL URL: replay processes open it too
        self.rules = rules or Rules()
        self.files = files
        # `stores`: a worker's components over its backend, not closed here
        self._backend: Backend | None = None
        if stores is None:
            self._backend = open_backend(location)
            self.store = Store(self._backend)
            self.revisions = RevisionStore(self._backend)
        else:
            self.store, self.revisions = stores
        # the service records what it requires; a CLI on the same store cannot need less
        recorded = self.revisions.setting(APPROVALS)
        if recorded is not None and int(recorded) > self.rules.approvals_required:
            self.rules = dataclasses.replace(self.rules, approvals_required=int(recorded))

    def require(self, approvals: int) -> None:
        """Record the approvals every user of this store must obtain (the service's)."""
        self.revisions.set_setting(APPROVALS, str(approvals))
        self.rules = dataclasses.replace(self.rules, approvals_required=approvals)

    def close(self) -> None:
        if self._backend is not None:
            self.revisions.close()
            self.store.close()
            self._backend.close()

    def __enter__(self) -> Lifecycle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------
    def resolve(self, policy_id: str, ref: str) -> Candidate:
        return candidates.resolve(self.store, self.revisions, policy_id, ref, files=self.files)

    def record(self, policy_id: str, number: int) -> RevisionRecord:
        return candidates.known_record(self.revisions, policy_id, number)

    def listing(
        self, policy_id: str, limit: int = LISTED, before: int | None = None
    ) -> dict[str, Any]:
        """A page of a policy's revision records, newest first: `limit` of them (at most
        MAX_LISTED), numbered below `before` when given; with what the console needs: which
        is served, which drafts and pending ones are no longer based on it (stale).

        The published revision is always named, on the page or not: `published` (its
        publication) and `published_revision` (its record). `next_before`: the `before` of
        the next page, None when this one holds the oldest record."""
        limit = max(1, min(limit, MAX_LISTED))
        current = self.revisions.publication_of(policy_id)
        published = current.number if current else None
        found = self.revisions.records(policy_id, limit=limit + 1, before=before)
        page = found[:limit]
        out = self._listed(policy_id, page, published)
        published_item = next((item for item in out if item["number"] == published), None)
        if published is not None and published_item is None:
            record = self.revisions.record(policy_id, published)
            if record is not None:
                published_item = self._listed(policy_id, [record], published)[0]
        return {
            "policy": policy_id,
            "published": current.to_dict() if current else None,
            "published_revision": published_item,
            "approvals_required": self.rules.approvals_required,
            "revisions": out,
            "next_before": page[-1].number if len(found) > limit else None,
        }

    def _listed(
        self, policy_id: str, records: list[RevisionRecord], published: int | None
    ) -> list[dict[str, Any]]:
        """Records (newest first) as a listing shows them: with every publication of each,
        and whether it is a draft or pending revision no longer based on what is published."""
        publications: dict[int, list[int]] = {}
        if records:
            low, high = records[-1].number, records[0].number
            for pub in self.revisions.publications_of(policy_id, low, high):
                publications.setdefault(pub.number, []).append(pub.id)
        out = []
        for record in records:
            item = record.to_dict()
            item["publications"] = sorted(publications.get(record.number, []))
            item["stale"] = record.state in ("draft", "pending") and record.base != published
            out.append(item)
        return out

    def detail(self, policy_id: str, number: int) -> dict[str, Any]:
        record = self.record(policy_id, number)
        stored = self.store.stored_revision(record.revision)
        item = record.to_dict()
        item["tests_source"] = record.tests_source
        item["source"] = stored.source.text if stored else None
        item["files"] = (
            {name: raw.decode("utf-8", "replace") for name, raw in stored.source.files.items()}
            if stored
            else {}
        )
        item["path"] = stored.path if stored else None
        # newest first, every one (however many publications of the policy came since)
        item["publications"] = [
            p.to_dict() for p in reversed(self.revisions.publications_of(policy_id, number, number))
        ]
        return item

    def consulted(self, candidate: Candidate) -> candidates.Consulted:
        """The decision policies a flow candidate consults, as its tests decide them: their
        published revisions with their published default data (consulted_as_tested)."""
        return candidates.consulted_as_tested(self.store, self.revisions, candidate.policy)

    def flows_tested(
        self, candidate: Candidate, backend: str = "durable"
    ) -> list[candidates.FlowTests]:
        """The test cases of every published flow that consults a decision policy candidate,
        run with the candidate as the policy its events consult (with its own data, as its
        own cases run): a change the candidate's own tests accept may
        still break a flow compiled against an older text of it (an outcome field renamed or
        dropped fails the flow's events with decision_answer_invalid)."""
        return candidates.flows_tested(self.store, self.revisions, candidate, backend)

    def diff(self, policy_id: str, old: str, new: str) -> dict[str, Any]:
        before = self.resolve(policy_id, old)
        after = self.resolve(policy_id, new)
        return diff(before, after)

    # -- writing -----------------------------------------------------------------------
    def _keep(self, candidate: Candidate) -> None:
        """Keep what the revision is compiled from and its default data (content-addressed)."""
        policy = candidate.policy
        self.store.remember_revision(policy.id, policy.revision, policy.path, candidate.source)
        for name, dataset in candidate.data.items():
            self.store.remember_data(name, dataset.version, list(dataset.entries))

    def _refuse_clash(self, candidate: Candidate) -> None:
        """A new policy whose id generated clients could not tell from a published one's
        (engine/project/names.py) is refused before it is stored, not when served."""
        found = clash_with(candidate.policy, self.revisions.published())
        if found is not None:
            raise Refused([found])

    def draft(self, candidate: Candidate, principal: str, message: str) -> RevisionRecord:
        """Store a candidate as a draft (shareable: diff and impact by its number)."""
        current = self.revisions.publication_of(candidate.id)
        if current is None:
            self._refuse_clash(candidate)
        self._keep(candidate)
        return self.revisions.add(
            NewRevision(
                candidate.id,
                candidate.revision,
                "draft",
                principal,
                message,
                candidate.data_versions,
                current.number if current else None,
                candidate.tests_source,
            )
        )

    def submit(
        self,
        candidate: Candidate,
        principal: str,
        message: str,
        *,
        on_progress: impact.Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> tuple[RevisionRecord, Publication | None]:
        """Validate (the candidate compiled), run its tests, replay the window of the log
        against the published revision, and record it pending with all of it; published at
        once when no approval is required. A candidate that is a draft record becomes
        pending itself. `cancelled` is asked last, before anything is recorded: a job
        cancelled while its tests ran, or with nothing to replay, records nothing."""
        current = self.revisions.publication_of(candidate.id)
        if current is None:
            self._refuse_clash(candidate)
        if (
            current is not None
            and current.revision == candidate.revision
            and self._data_of(current) == candidate.data_versions
        ):
            ref = f"{candidate.id}@{current.number}"
            raise Refused(
                [
                    Diagnostic(
                        "unchanged",
                        Msg(
                            "{label} is the published revision {ref}: nothing to submit",
                            label=candidate.label,
                            ref=ref,
                        ),
                    )
                ]
            )
        record = candidate.record
        if record is not None and record.state == "draft":
            self._refuse_stale_draft(record, current)
        tests, problems = candidates.tested(candidate, self.consulted(candidate))
        refusals = []
        if tests["failed"] or tests["errors"]:
            refusals += _test_failures(candidate, tests, problems)
        flows = self.flows_tested(candidate)
        refusals += _flows_failures(candidate, flows)
        if refusals:
            raise FailingTests(refusals)
        if flows:  # the reviewer sees which flows were checked against it
            tests = {**tests, "consulting_flows": [flow.brief() for flow in flows]}
        summary = self._submission_impact(candidate, current, on_progress)
        if cancelled is not None and cancelled():
            raise Refused([Diagnostic("cancelled", Msg("the submission was cancelled"))])
        base = current.number if current else None
        self._keep(candidate)
        if record is not None and record.state == "draft":
            try:
                record = self.revisions.submit(
                    candidate.id,
                    record.number,
                    principal,
                    base=base,
                    tests=tests,
                    impact=summary,
                    message=message,
                )
            except StaleState as exc:
                message = Msg("{ref} is no longer a draft", ref=record.ref)
                raise Refused([Diagnostic("not_a_draft", message)]) from exc
        elif record is not None:
            raise Refused(
                [
                    Diagnostic(
                        "not_a_draft",
                        Msg(
                            "{ref} is {state}, not a draft",
                            ref=record.ref,
                            state=state_word(record.state),
                        ),
                    )
                ]
            )
        else:
            record = self.revisions.add(
                NewRevision(
                    candidate.id,
                    candidate.revision,
                    "pending",
                    principal,
                    message,
                    candidate.data_versions,
                    base,
                    candidate.tests_source,
                    tests,
                    summary,
                )
            )
        if self.rules.approvals_required > 0 or stranding(summary):
            # stranding stored entities is accepted only knowingly, with the count: the
            # approval's acknowledge_stranded, whoever approves (no one else is needed here)
            return record, None
        publication = self._publish(
            record, principal, "direct", message or record.message, approver=None
        )
        return self.record(record.policy_id, record.number), publication

    def check_base(self, record: RevisionRecord) -> None:
        """Refused (stale_base) when `record` is a draft based on a publication that is no
        longer live (the service's submit checks before it starts the job)."""
        if record.state == "draft":
            self._refuse_stale_draft(record, self.revisions.publication_of(record.policy_id))

    def _refuse_stale_draft(self, record: RevisionRecord, current: Publication | None) -> None:
        """A draft is a change to the revision it was drafted from: submitted once another
        is live, its approval would undo what was published since, unseen (its tests and
        impact would be run, and its diff read, against a revision it does not contain)."""
        live = current.number if current else None
        if record.base == live:
            return
        now = f"{record.policy_id}@{live}" if live is not None else Msg("nothing")
        if record.base is None:
            message = Msg(
                "{ref} was drafted when nothing was published, but {now} is published now: "
                "submitting it would undo what was published since",
                ref=record.ref,
                now=now,
            )
        else:
            was = f"{record.policy_id}@{record.base}"
            message = Msg(
                "{ref} was drafted from {was}, but {now} is published now: submitting it "
                "would undo what was published since",
                ref=record.ref,
                was=was,
                now=now,
            )
        hint = Msg(
            "draft it again from what is published ({now}): edit {now} in the console's "
            "editor, or bring the policy file up to date and run `kimari draft`",
            now=now,
        )
        raise Refused([Diagnostic("stale_base", message, hint=hint)])

    def _data_of(self, publication: Publication) -> dict[str, str]:
        record = self.revisions.record(publication.policy_id, publication.number)
        return dict(record.data) if record else {}

    def _submission_impact(
        self,
        candidate: Candidate,
        current: Publication | None,
        on_progress: impact.Progress | None,
    ) -> dict[str, Any]:
        if current is None:
            return {"note": "nothing was published before: no decision to replay"}
        against = self.resolve(candidate.id, "published")
        # never before year 1 (-62135596800 s), whatever impact_days the config gives; a
        # float: a job's parameters read exactly (a long number in a text sent with them)
        # give a Decimal, which time.time() cannot be subtracted from
        days = float(self.rules.impact_days)
        since = int(max(time.time() - days * 86400, -62135596800) * 1000)
        plan = impact.Plan(
            candidate.id,
            store=str(self.path),
            since_ms=since,
            sample=self.rules.impact_sample,
            list_limit=20,
            explain=0,
        )
        result = impact.run(
            side_of(against, "published"),
            side_of(candidate, candidate.label),
            plan,
            workers=self.rules.workers,
            on_progress=on_progress,
        )
        if result["cancelled"]:
            raise Refused([Diagnostic("cancelled", Msg("the submission was cancelled"))])
        out = impact.summary(result)
        out["window_days"] = self.rules.impact_days
        return out

    def approve(
        self,
        policy_id: str,
        number: int,
        principal: str,
        message: str = "",
        acknowledged: int | None = None,
    ) -> Publication:
        """Publish a pending revision. What its submission checked that may have moved since
        is checked again: a flow revision that would strand stored entities (their state
        removed or abolished) is published only when `acknowledged` is at least how many it
        strands now (StrandsEntities otherwise); a decision policy's revision only when the
        published flows that consult it now still pass their cases with it (FailingTests:
        a flow published since may read what it does not answer)."""
        record = self.record(policy_id, number)
        if record.state != "pending":
            raise Refused(
                [
                    Diagnostic(
                        "not_pending",
                        Msg(
                            "{ref} is {state}, not pending",
                            ref=record.ref,
                            state=state_word(record.state),
                        ),
                    )
                ]
            )
        if self.rules.approvals_required > 0:
            self._refuse_own_approval(record, principal)
        candidate = self.resolve(policy_id, str(number))
        self._refuse_unseen_strands(candidate, acknowledged)
        self._refuse_broken_flows(candidate)
        return self._publish(record, principal, "approval", message, approver=principal)

    def stranded(self, candidate: Candidate) -> dict[str, Any] | None:
        """What publishing a flow revision would do to the store's entities now (their
        counts move after the submission measured them); None for a decision policy or
        before anything is published."""
        if self.revisions.publication_of(candidate.id) is None:
            return None
        before = side_of(self.resolve(candidate.id, "published"), "published")
        plan = impact.Plan(candidate.id, store=str(self.path))
        return impact.entities(before, side_of(candidate, candidate.label), plan)

    def _refuse_unseen_strands(
        self, candidate: Candidate, acknowledged: int | None, *, rollback: bool = False
    ) -> None:
        """The approver (or whoever rolls back) accepts stranding entities knowing how many:
        the console's tick, the CLI's --acknowledge-stranded N, the API's
        acknowledge_stranded (counted now, not at the submission: entities may have reached
        those states since)."""
        found = self.stranded(candidate)
        count = found["stranded"] if found else 0
        if count == 0 or (acknowledged is not None and acknowledged >= count):
            return
        assert found is not None
        states = [i["state"] for i in found["removed_states"] + found["abolished_states"]]
        raise StrandsEntities(candidate.label, count, states, acknowledged, rollback=rollback)

    def _refuse_broken_flows(self, candidate: Candidate) -> None:
        """The consulting flows' cases again, against the flows published now: in the
        service's worker, with the python backend (the two agree, tests/runtime), since
        durable_rules never unregisters the rulesets these cases would register there."""
        refusals = _flows_failures(candidate, self.flows_tested(candidate, backend="python"))
        if refusals:
            raise FailingTests(refusals)

    def _refuse_own_approval(self, record: RevisionRecord, principal: str) -> None:
        """Four eyes: whoever wrote a revision, or asked for it to be published (a
        colleague's shared draft submitted), may not also be the one who approves it."""
        if principal == record.author:
            reason = Msg(
                "{principal} wrote {ref}: another principal must approve it",
                principal=principal,
                ref=record.ref,
            )
        elif principal == self.revisions.submitter(record.policy_id, record.number):
            reason = Msg(
                "{principal} submitted {ref} for approval: another principal must approve it",
                principal=principal,
                ref=record.ref,
            )
        else:
            return
        raise NotPermitted([Diagnostic("self_approval", reason)])

    def _publish(
        self,
        record: RevisionRecord,
        principal: str,
        kind: str,
        message: str,
        *,
        approver: str | None,
    ) -> Publication:
        try:
            return self.revisions.publish(
                record.policy_id,
                record.number,
                principal=principal,
                kind=kind,
                message=message or record.message,
                from_states=("pending",),
                expect_published=record.base,
                approver=approver,
            )
        except StaleState:
            current = self.revisions.publication_of(record.policy_id)
            now = f"{record.policy_id}@{current.number}" if current else Msg("nothing")
            was = f"{record.policy_id}@{record.base}" if record.base else Msg("nothing")
            raise Refused(
                [
                    Diagnostic(
                        "stale_base",
                        Msg(
                            "{ref} was based on {was}, but {now} has been published since: "
                            "its tests and impact no longer hold",
                            ref=record.ref,
                            was=was,
                            now=now,
                        ),
                        hint=Msg("submit it again on top of what is published (rebase or redo)"),
                    )
                ]
            ) from None

    def reject(
        self, policy_id: str, number: int, principal: str, message: str = ""
    ) -> RevisionRecord:
        record = self.record(policy_id, number)
        try:
            return self.revisions.reject(policy_id, number, principal, message)
        except StaleState:
            raise Refused(
                [
                    Diagnostic(
                        "not_pending",
                        Msg(
                            "{ref} is {state}: only drafts and pending revisions can be rejected",
                            ref=record.ref,
                            state=state_word(record.state),
                        ),
                    )
                ]
            ) from None

    def rollback(
        self,
        policy_id: str,
        ref: str,
        principal: str,
        message: str,
        acknowledged: int | None = None,
    ) -> Publication:
        """Publish an earlier published revision again: a new publication, history intact.
        A decision policy's is refused (FailingTests) when the flows published now that
        consult it fail their cases with it: one published since may read an outcome
        field the older revision lacks (roll that flow back first). A flow's is refused
        (StrandsEntities) when the older revision lacks states that stored entities stand
        in now, unless `acknowledged` is at least how many, as at an approval."""
        candidate = self.resolve(policy_id, ref)
        record = candidate.record

        def published(found: RevisionRecord | None) -> bool:
            # asked of the publications themselves: every one, however many came since
            return found is not None and self.revisions.was_published(policy_id, found.number)

        if not published(record) and (record is None or _by_hash(ref, candidate)):
            # a hash, or a file (by its content's hash), names the revision that was published
            # with that content, even when a later draft has the same text
            same = self.revisions.records_by_hash(policy_id, candidate.revision)
            record = next((r for r in same if published(r)), record)
        if record is None or not published(record):
            raise Refused(
                [
                    Diagnostic(
                        "never_published",
                        Msg("{ref} was never published: roll back to a revision that was", ref=ref),
                    )
                ]
            )
        if record.state == "published":
            raise _already_published(record.ref)
        same = candidate.record is not None and candidate.record.number == record.number
        target = candidate if same else self.resolve(policy_id, record.ref)
        self._refuse_unseen_strands(target, acknowledged, rollback=True)
        self._refuse_broken_flows(target)
        try:
            return self.revisions.publish(
                policy_id,
                record.number,
                principal=principal,
                kind="rollback",
                message=message or f"rollback to {record.ref}",
                from_states=("retired",),
            )
        except StaleState as exc:
            now = self.revisions.record(policy_id, record.number)
            if now is not None and now.state == "published":  # a rollback racing this one won
                raise _already_published(record.ref) from exc
            message = Msg("{ref} cannot be published again now", ref=record.ref)
            raise Refused([Diagnostic("refused", message)]) from exc

    def bootstrap(self, folder: Path, principal: str = "bootstrap") -> list[str]:
        """An empty store (nothing ever published) publishes every policy of the folder that
        compiles; the lines to log. A store with publications is left as it is (catch_up
        says what of the folder it does not serve).

        Several services may start on one empty store at once (replicas on PostgreSQL):
        each policy's record and publication are written in one transaction that first
        checks the policy has none, so each policy is published once, by whichever
        starter comes first; the others find it published and skip it."""
        if self.revisions.has_publications():
            return []
        lines = []
        for path in policy_files(folder):
            try:
                candidate = candidates.from_path(path)
            except (PolicyError, UsageError) as exc:
                lines.append(f"bootstrap: {shown_path(path)} not published: {exc}")
                continue
            publication, clashing = self._bootstrap_one(path, candidate, principal)
            if clashing is not None:
                lines.append(f"bootstrap: {shown_path(path)} not published: {clashing}")
            elif publication is not None:
                lines.append(_bootstrapped(candidate, publication))
        return lines

    def _bootstrap_one(
        self, path: Path, candidate: Candidate, principal: str
    ) -> tuple[Publication | None, Diagnostic | None]:
        """Publish a policy file as the policy's first revision (kind bootstrap): its
        publication (None when another service published it meanwhile), or why not (its
        id clashes with a published one's)."""
        clashing = clash_with(candidate.policy, self.revisions.published())
        if clashing is not None:
            return None, clashing
        self._keep(candidate)
        publication = self.revisions.bootstrap(
            NewRevision(
                candidate.id,
                candidate.revision,
                "pending",
                principal,
                f"bootstrap from {shown_path(path)}",
                candidate.data_versions,
                None,
                candidate.tests_source,
            )
        )
        return publication, None

    def catch_up(self, folder: Path, principal: str = "bootstrap") -> tuple[list[str], list[str]]:
        """A store with publications, started beside policy files it never published (the
        sandbox's `kimari publish` of one policy, then `kimari serve`): what it serves
        would silently lack them. With no approval required, each policy of the folder that
        has no revision record at all is published as bootstrap publishes an empty store's;
        every other one (approvals are required, or someone drafted, submitted or rejected
        a revision of it) is not: it goes live only through the lifecycle. Its test cases
        must pass first, as at a submission (decision policies are taken before flows, whose
        cases consult them). Returns the lines to log: those published, and a warning for
        each file still not served, with the command that publishes it."""
        published = self.revisions.published()
        done: list[str] = []
        warnings: list[str] = []
        found: list[tuple[Path, Candidate]] = []
        for path in policy_files(folder):
            if path.stem in published:  # a policy's id is its file's name
                continue
            try:
                found.append((path, candidates.from_path(path)))
            except (PolicyError, UsageError) as exc:
                warnings.append(_not_compiled(path, exc))
        found.sort(key=lambda item: item[1].policy.kind == "flow")  # decision policies first
        for path, candidate in found:
            shown = shown_path(path)
            if candidate.id in published:
                continue
            line, warning = self._catch_up_one(path, candidate, principal)
            if line is not None:
                done.append(line + f": {shown} was never published, and no approval is required")
            if warning is not None:
                warnings.append(warning)
        return done, warnings

    def _catch_up_one(
        self, path: Path, candidate: Candidate, principal: str
    ) -> tuple[str | None, str | None]:
        """One policy file the store never published: published (its line to log), or why
        not (a warning naming how to publish it)."""
        shown = shown_path(path)
        newest = self.revisions.records(candidate.id, limit=1)
        approval = self.rules.approvals_required > 0
        if newest or approval:
            return None, _unpublished(shown, candidate.id, newest, approval)
        tests, _ = candidates.tested(candidate, self.consulted(candidate))
        if tests["failed"] or tests["errors"]:
            return None, _untested(shown, candidate.id, tests)
        publication, clashing = self._bootstrap_one(path, candidate, principal)
        if clashing is not None:
            return None, f"{shown}: not published: {clashing.render('en')}"
        if publication is None:  # another service published it meanwhile
            return None, None
        return _bootstrapped(candidate, publication), None

    # -- impact ------------------------------------------------------------------------
    def impact(
        self,
        policy_id: str,
        *,
        draft: str | Candidate | None,
        against: str = "published",
        since_ms: int | None = None,
        until_ms: int | None = None,
        file: str | None = None,
        data: Mapping[str, Path | list[Any]] | None = None,
        sample: int | None = None,
        max_changed: int | None = None,
        list_limit: int = 100,
        explain: int = 3,
        backend: str = "durable",
        on_progress: impact.Progress | None = None,
    ) -> dict[str, Any]:
        """Replay the log (or a file) against `draft` and `against`; the report."""
        before = self.resolve(policy_id, against)
        if draft is None:
            if not data:
                raise UsageError(
                    [
                        Diagnostic(
                            "usage", Msg("give a draft (--draft) or new data (--data), or both")
                        )
                    ]
                )
            after_candidate = before
        elif isinstance(draft, Candidate):
            after_candidate = draft
        else:
            after_candidate = self.resolve(policy_id, draft)
        overrides = check_overrides(after_candidate, data or {})
        label = (
            after_candidate.label
            if draft is not None
            else Msg("{label} + new data", label=before.label)
        )
        plan = impact.Plan(
            policy_id,
            store=str(self.path),
            since_ms=since_ms,
            until_ms=until_ms,
            file=file,
            sample=sample,
            backend=backend,
            list_limit=list_limit,
            explain=explain,
        )
        return impact.run(
            side_of(before, before.label),
            side_of(after_candidate, label, overrides),
            plan,
            workers=self.rules.workers,
            on_progress=on_progress,
            max_changed=max_changed,
        )


def _bootstrapped(candidate: Candidate, publication: Publication) -> str:
    return (
        f"bootstrap: published {candidate.id}@{publication.number} "
        f"(revision {candidate.revision}, publication {publication.id})"
    )


def _unpublished(shown: str, policy_id: str, newest: list[RevisionRecord], approval: bool) -> str:
    """What the service logs at start for a policy file the store has no publication of:
    that it is not served, and the command that publishes it."""
    record = newest[0] if newest else None
    if record is not None and record.state == "pending":
        how = f"{record.ref} waits for approval: kimari approve {record.ref} as another principal"
    elif record is not None and record.state == "draft":
        how = f"kimari publish {policy_id} --draft {record.number} submits its draft {record.ref}"
        how += f", then kimari approve {record.ref} as another principal" if approval else ""
    else:
        how = f"kimari publish {policy_id}"
        how += f", then kimari approve {policy_id}@N as another principal" if approval else ""
    return (
        f"{shown}: policy '{policy_id}' has no publication in the store: it is not served "
        f"(404 unknown_policy) until it is published; {how}"
    )


def stranding(impact_summary: Mapping[str, Any] | None) -> int:
    """How many stored entities a submission's impact says the revision strands."""
    entities = (impact_summary or {}).get("entities") or {}
    return int(entities.get("stranded", 0))


def _not_compiled(path: Path, exc: PolicyError | UsageError) -> str:
    problems = exc.diagnostics
    first = problems[0].render("en") if problems else str(exc)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f"{shown_path(path)}: policy '{path.stem}' has no publication in the store and does "
        f"not compile: {first}{more}; it is not served (404 unknown_policy) until it compiles "
        f"and is published: kimari publish {path.stem}"
    )


def _untested(shown: str, policy_id: str, tests: Mapping[str, Any]) -> str:
    return (
        f"{shown}: policy '{policy_id}' has no publication in the store, and its test cases "
        f"fail ({tests['failed']} of {tests['cases']} failed, {tests['errors']} errors): it "
        f"is not served (404 unknown_policy); kimari test {shown} shows them, kimari publish "
        f"{policy_id} publishes it once they pass"
    )


def _already_published(ref: str) -> Refused:
    return Refused(
        [Diagnostic("already_published", Msg("{ref} is what is published now", ref=ref))]
    )


def _by_hash(ref: str, candidate: Candidate) -> bool:
    """Whether `resolve` read `ref` as a content hash: a number is read as a number, unless
    no revision has that number and it is a hash's prefix."""
    ref = ref.strip()
    if not candidates.HASH.fullmatch(ref):
        return False
    numbered = candidates.NUMBER.fullmatch(ref)
    return numbered is None or candidate.record is None or candidate.record.number != int(ref)


def _test_failures(
    candidate: Candidate, tests: Mapping[str, Any], problems: list[Diagnostic]
) -> list[Diagnostic]:
    """One diagnostic per failing case (file:line of the case), then the problems of the
    test file, each where it is (file:line:col)."""
    errors = error_count(tests["errors"])
    headline = Diagnostic(
        "tests_failed",
        Msg(
            "{label}: {failed} of {cases} test cases fail, {errors}",
            label=candidate.label,
            failed=tests["failed"],
            cases=tests["cases"],
            errors=errors,
        ),
    )
    out = [headline]
    for failure in tests.get("failures", []):
        out.append(
            Diagnostic(
                "test_failed",
                Msg("{name}: {failures}", name=failure["name"], failures=_joined(failure)),
                Location(failure["file"], failure["line"], failure.get("col", 1)),
            )
        )
    out.extend(problems)
    return out


def _flows_failures(
    candidate: Candidate, flows: Sequence[candidates.FlowTests]
) -> list[Diagnostic]:
    """The refusals of every consulting flow that failed its cases with the candidate."""
    return [found for flow in flows if flow.failed for found in _flow_failures(candidate, flow)]


def _flow_failures(candidate: Candidate, flow: candidates.FlowTests) -> list[Diagnostic]:
    """A published flow that consults the candidate fails with it: a headline naming the
    flow, then its failing cases, each where `kimari test` shows it (file:line of the case),
    then the problems of its test file."""
    summary = flow.summary
    ref = flow.flow.record.ref if flow.flow.record else flow.flow.id
    headline = Diagnostic(
        "tests_failed",
        Msg(
            "{ref}, a published flow that consults {policy}, fails with {label}: {failed} of "
            "{cases} of its test cases fail, {errors}",
            ref=ref,
            policy=candidate.id,
            label=candidate.label,
            failed=summary["failed"],
            cases=summary["cases"],
            errors=error_count(summary["errors"]),
        ),
        hint=_flow_hint(candidate.id, flow),
        extra={"flow": flow.flow.id},
    )
    out = [headline]
    for failure in summary.get("failures", []):
        out.append(
            Diagnostic(
                "test_failed",
                Msg("{name}: {failures}", name=failure["name"], failures=_joined(failure)),
                Location(failure["file"], failure["line"], failure.get("col", 1)),
                extra={"flow": flow.flow.id},
            )
        )
    out.extend(flow.problems)
    return out


def _flow_hint(policy_id: str, flow: candidates.FlowTests) -> Msg:
    """How to go on: an answer the flow's compiled schema refuses (an outcome field renamed
    or dropped) is fixed by keeping the field or by publishing the flow against the new text
    first; any other failure, by the policy or by the flow and its cases."""
    schema = any(
        "decision_answer_invalid" in str(item)
        for failure in flow.summary.get("failures", [])
        for item in failure["failures"]
    )
    if schema:
        return Msg(
            "{flow} reads the outcome fields of the {policy} text it was compiled with: keep "
            "them, or first publish {flow} compiled against this text",
            policy=policy_id,
            flow=flow.flow.id,
        )
    return Msg(
        "once published, this revision of {policy} answers the events of {flow}: change it so "
        "that their cases pass, or change {flow} and its cases first",
        policy=policy_id,
        flow=flow.flow.id,
    )


def _joined(failure: Mapping[str, Any]) -> Rendered:
    """A failed case's failures in one line, each in the language it is shown in."""
    items = list(failure["failures"])
    return Rendered(lambda lang: "; ".join(translate(item, lang) for item in items))


class StrandsEntities(Refused):
    """Publishing the revision would leave stored entities in states that it removes or
    abolishes (no event could move them again), and the approval did not accept as many."""

    default_code = "strands_entities"

    def __init__(
        self,
        ref: str,
        count: int,
        states: list[str],
        acknowledged: int | None,
        *,
        rollback: bool = False,
    ):
        self.count, self.states, self.acknowledged = count, states, acknowledged
        if acknowledged is None:
            message = Msg(
                "publishing {ref} strands {count} stored entities (in {states}: removed or "
                "abolished, no event can move them again)",
                ref=ref,
                count=count,
                states=", ".join(states),
            )
        else:
            message = Msg(
                "publishing {ref} strands {count} stored entities now (in {states}), more "
                "than the {acknowledged} acknowledged",
                ref=ref,
                count=count,
                states=", ".join(states),
                acknowledged=acknowledged,
            )
        if rollback:
            hint = Msg(
                "roll back acknowledging {count} (the API's acknowledge_stranded, the CLI's "
                "--acknowledge-stranded) if they are meant to stay where they are",
                count=count,
            )
        else:
            hint = Msg(
                "approve it acknowledging {count} (the API's acknowledge_stranded, the CLI's "
                "--acknowledge-stranded) if they are meant to stay where they are",
                count=count,
            )
        super().__init__([Diagnostic("strands_entities", message, hint=hint)])


def side_of(
    candidate: Candidate,
    label: str,
    overrides: Mapping[str, tuple[str, list[Any]]] | None = None,
) -> impact.Side:
    """What the replay processes need of a candidate. Data sets of a candidate that is not
    a stored record (a file being edited) travel with it: they may not be in the store."""
    inline = {}
    if candidate.record is None:
        inline = {
            name: (dataset.version, list(dataset.entries))
            for name, dataset in candidate.data.items()
        }
    return impact.Side(
        label,
        candidate.id,
        candidate.revision,
        candidate.policy.path,
        candidate.source,
        candidate.data_versions,
        inline,
        dict(overrides or {}),
        candidate.record.number if candidate.record else None,
    )


def check_overrides(
    candidate: Candidate, data: Mapping[str, Path | list[Any]]
) -> dict[str, tuple[str, list[Any]]]:
    """New data sets (a file, or entries) must be read by the policy and valid against its
    entry schema."""
    from engine.core.suggest import did_you_mean
    from engine.project.project import load_dataset

    out = {}
    for name, given in data.items():
        spec = candidate.policy.datasets.get(name)
        if spec is None:
            raise UsageError(
                [
                    Diagnostic(
                        "unknown_data_set",
                        Msg(
                            "policy '{policy}' reads no data set '{name}'",
                            policy=candidate.id,
                            name=name,
                        ),
                        hint=did_you_mean(name, candidate.policy.datasets),
                    )
                ]
            )
        locate = None
        if isinstance(given, Path):
            label = shown_path(given)
            entries, locate = candidates.read_entries(given, spec)
        else:  # entries of a request: their pointers say where (/3/phone)
            label, entries = "request", list(given)
        try:
            load_dataset(spec, entries=entries, source=label)
        except PolicyError as exc:
            if locate is None:
                raise
            raise PolicyError([_placed(d, locate, label) for d in exc.diagnostics]) from None
        out[name] = (label, entries)
    return out


def _placed(found: Diagnostic, locate: candidates.Locate, label: str) -> Diagnostic:
    """A problem of a data file's entries, at its line in the file (its pointer alone
    names no file)."""
    if found.location is not None:
        return found
    where = locate(found.pointer or "") or Location(label, 1)
    return dataclasses.replace(found, location=where)


def draft_from_text(
    lifecycle: Lifecycle,
    policy_id: str,
    text: str,
    *,
    files: Mapping[str, str] | None = None,
    tests: str | None = None,
) -> Candidate:
    """A candidate from text sent over HTTP, based on the published revision (its schema
    files, data and tests when not given). A flow is compiled against the published text of
    each policy it consults (unless `files` gives one), never against the copy its base was
    compiled with, which may be outdated: the flow is served beside the published one."""
    base = None
    if lifecycle.revisions.publication_of(policy_id) is not None:
        base = lifecycle.resolve(policy_id, "published")
    try:
        consulted = candidates.published_texts(
            lifecycle.store, lifecycle.revisions, candidates.consulted_in(text, policy_id)
        )
        return candidates.from_text(
            policy_id, text, files=files, base=base, tests_source=tests, consulted=consulted
        )
    except PolicyError as exc:
        raise DraftInvalid(exc.diagnostics) from None
