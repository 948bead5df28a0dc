"""Past policy revisions compiled again from the sources the store kept.

A logged decision names its revision; once the policy file has changed, the
service no longer has that revision loaded. Its text and the schema files it
named are in the store (`Store.remember_revision`), so it can be compiled
again, exactly: the revision is a hash of those same bytes, and a source that
does not hash to the revision it is filed under is refused rather than used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from engine.compile.model import CompiledPolicy
from engine.core.errors import Diagnostic, EngineFault, EvaluationError, InputError, PolicyError
from engine.core.i18n import Msg, translate
from engine.project.kinds import compile_any
from engine.project.registry import build_dataset
from engine.runtime.evaluate import decide
from engine.source.data import Dataset
from engine.source.yaml import parse_yaml
from engine.store.versions import Store

__all__ = ["RevisionCache", "compile_stored", "explain_logged"]


def compile_stored(store: Store, revision: str) -> CompiledPolicy:
    """The policy `revision` as it was, or PolicyError saying why it cannot be had."""
    stored = store.stored_revision(revision)
    if stored is None:
        raise PolicyError(
            [_unavailable(Msg("revision {revision} is not in the store", revision=revision))]
        )
    if not stored.source.files:
        raise PolicyError(
            [
                _unavailable(
                    Msg(
                        "revision {revision} was stored without the schema files it names",
                        revision=revision,
                    )
                )
            ]
        )
    document = parse_yaml(stored.source.text, stored.path)
    # No rulebook: the refs were checked when the revision was first loaded, and the
    # index may have changed since; nothing else of the compilation depends on it.
    policy = compile_any(document, None, stored.source.files)
    if policy.revision != revision:
        raise PolicyError(
            [
                _unavailable(
                    Msg(
                        "the stored source of revision {revision} compiles to {compiled}",
                        revision=revision,
                        compiled=policy.revision,
                    )
                )
            ]
        )
    return policy


def _unavailable(message: Msg) -> Diagnostic:
    return Diagnostic("revision_unavailable", message)


class RevisionCache:
    """The last few stored revisions compiled, so reading a page of old decisions is cheap."""

    def __init__(self, store: Store, size: int = 8) -> None:
        self.store, self.size = store, size
        self._compiled: OrderedDict[str, CompiledPolicy] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, revision: str) -> CompiledPolicy:
        """The compiled revision; PolicyError when it cannot be compiled again."""
        with self._lock:
            policy = self._compiled.get(revision)
            if policy is not None:
                self._compiled.move_to_end(revision)
                return policy
        policy = compile_stored(self.store, revision)
        with self._lock:
            self._compiled[revision] = policy
            while len(self._compiled) > self.size:
                self._compiled.popitem(last=False)[1].close()
        return policy


def explain_logged(
    row: Mapping[str, Any],
    revisions: RevisionCache,
    *,
    loaded: CompiledPolicy | None = None,
    served: Mapping[str, Dataset] | None = None,
) -> dict[str, Any]:
    """Explain a logged decision by deciding its request again, with explain on, on the
    logged revision and data versions.

    `loaded` (the revision being served) is used when it is the logged one; otherwise
    the revision is compiled again from the store and decided by the reference
    evaluator (no durable_rules ruleset is registered for a read). The rules it
    applies must be the logged ones: {"explanation": ...}, or {"explanation": None,
    "explanation_unavailable": why}, never an explanation of something else.
    """
    response = row["response"]
    try:
        if loaded is not None and loaded.revision == row["revision"]:
            policy, backend = loaded, "durable"
        else:
            policy, backend = revisions.get(row["revision"]), "python"
        data = _logged_data(policy, response.get("data", {}), revisions.store, served or {})
        again = decide(
            policy,
            row["request"].get("facts"),
            at=row["at"],
            settings=response.get("settings"),
            data=data,
            backend=backend,
            explain=True,
            decision_id=row["decision_id"],
        )
    except (PolicyError, InputError, EvaluationError, EngineFault) as exc:
        # JSON made here, in the language in effect (the request's, the CLI's): for people
        why = "\n".join(d.render() for d in exc.diagnostics) or str(exc)
        return {"explanation": None, "explanation_unavailable": why}
    if again.fired != row["fired"]:
        why = translate(Msg("re-deciding fired different rules"))
        return {"explanation": None, "explanation_unavailable": why}
    return {"explanation": again.explanation}


def _logged_data(
    policy: CompiledPolicy,
    versions: Mapping[str, str],
    store: Store,
    served: Mapping[str, Dataset],
) -> dict[str, Dataset]:
    """The data sets at the versions a decision logged: as served now, or from the store."""
    data = {}
    for name, spec in policy.datasets.items():
        version = versions.get(name)
        current = served.get(name)
        if current is not None and current.version == version and current.match == spec.match:
            data[name] = current
            continue
        stored = store.data_version(name, version) if version else None
        if stored is None:
            missing = Msg(
                "data set '{name}' version {version} is not stored", name=name, version=version
            )
            raise EvaluationError([Diagnostic("data_version_unavailable", missing)])
        data[name] = build_dataset(spec, stored.entries, version)
    return data
