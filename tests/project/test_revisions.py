"""Policy revisions kept in the store and compiled again to explain past decisions."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest

from engine.core.errors import PolicyError
from engine.core.i18n import using_language
from engine.project.project import compile_policy_file, load_project, load_rulebook
from engine.project.revisions import RevisionCache, compile_stored, explain_logged
from engine.runtime.evaluate import decide
from engine.store import sqlite
from engine.store.versions import COMPONENT, MIGRATIONS, Store
from tests import FIXTURES, ROOT

RULEBOOK = load_rulebook(ROOT / "policies" / "rulebook.tsv")


def _remember(store: Store, path: Path) -> str:
    policy = compile_policy_file(path, RULEBOOK)
    assert policy.source is not None
    store.remember_revision(policy.id, policy.revision, policy.path, policy.source)
    return policy.revision


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kimari.sqlite3")


@pytest.mark.parametrize("name", ["order-holds", "exemption-claims", "claim-status"])
def test_a_stored_revision_compiles_again_to_the_same_revision(store: Store, name: str) -> None:
    revision = _remember(store, ROOT / "policies" / f"{name}.yaml")
    again = compile_stored(store, revision)
    assert again.revision == revision
    assert again.id == name


def test_the_compiled_revision_decides_like_the_loaded_one(store: Store) -> None:
    project = load_project(ROOT / "policies")
    loaded = project.policy("order-holds")
    assert loaded.source is not None
    store.remember_revision(loaded.id, loaded.revision, loaded.path, loaded.source)
    facts = orjson.loads((ROOT / "examples" / "order-holds.json").read_bytes())
    data, at = project.data_for(loaded), "2024-09-21T12:00:00+09:00"
    now = decide(loaded, facts, at=at, data=data, explain=True)
    again = compile_stored(store, loaded.revision)
    then = decide(again, facts, at=at, data=data, backend="python", explain=True)
    assert then.fired == now.fired != []
    assert then.outcome == now.outcome
    assert then.explanation == now.explanation


def test_the_revision_covers_the_data_schemas_too(tmp_path: Path) -> None:
    """Editing only a data set's schema changes what the policy accepts: a new revision."""
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "service", project)
    path = project / "policies" / "blacklist-check.yaml"
    before = compile_policy_file(path, None).revision
    schema = project / "schemas" / "blacklist.schema.json"
    schema.write_text(schema.read_text(encoding="utf-8").replace("{", '{"title": "x", ', 1))
    assert compile_policy_file(path, None).revision != before


def test_an_unknown_revision_is_a_clear_error(store: Store) -> None:
    with pytest.raises(PolicyError, match="revision 0123456789abcdef is not in the store"):
        compile_stored(store, "0123456789abcdef")


def test_a_stored_source_that_does_not_hash_to_its_revision_is_refused(store: Store) -> None:
    revision = _remember(store, ROOT / "policies" / "order-holds.yaml")
    with store.backend.write() as session:
        session.execute(
            "UPDATE policy_revisions SET source = replace(source, '要対応', '要確認')"
            " WHERE revision = ?",
            (revision,),
        )
    with pytest.raises(PolicyError, match=f"stored source of revision {revision} compiles to"):
        compile_stored(store, revision)


def test_a_revision_stored_before_schema_files_were_kept_is_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    conn = sqlite.connect(db)
    sqlite.migrate(conn, sqlite.WriteLock(db), COMPONENT, MIGRATIONS[:1])  # as release 1 made it
    row = ("aaaaaaaaaaaaaaaa", "np", "np.yaml", 0, "id: np", "{}")
    conn.execute("INSERT INTO policy_revisions VALUES (?, ?, ?, ?, ?, ?)", row)
    conn.commit()
    conn.close()
    store = Store(db)  # migrates to the current schema, keeping the row
    with pytest.raises(PolicyError, match="stored without the schema files it names"):
        compile_stored(store, "aaaaaaaaaaaaaaaa")
    assert sqlite3.connect(db).execute("SELECT count(*) FROM policy_revisions").fetchone() == (1,)


def test_the_cache_keeps_a_bounded_number_of_compiled_revisions(store: Store) -> None:
    revisions = [
        _remember(store, ROOT / "policies" / f"{name}.yaml")
        for name in ("order-holds", "exemption-claims", "cancellation-fees")
    ]
    cache = RevisionCache(store, size=2)
    first = cache.get(revisions[0])
    assert cache.get(revisions[0]) is first  # compiled once
    cache.get(revisions[1])
    cache.get(revisions[2])
    assert cache.get(revisions[0]) is not first  # evicted, compiled again


def test_why_a_logged_decision_cannot_be_explained_is_said_in_the_language_in_effect(
    store: Store,
) -> None:
    """`explanation_unavailable` is JSON made for people, like an explanation's notes: in
    the language of the request (or of the CLI) that reads the logged decision."""
    row = {"revision": "0123456789abcdef", "response": {}, "request": {}, "at": None}
    revisions = RevisionCache(store)
    english = explain_logged(row, revisions)
    assert english == {
        "explanation": None,
        "explanation_unavailable": (
            "revision_unavailable: revision 0123456789abcdef is not in the store"
        ),
    }
    with using_language("ja"):
        japanese = explain_logged(row, revisions)
    assert japanese["explanation_unavailable"] == (
        "revision_unavailable: リビジョン 0123456789abcdef はストアにありません"
    )
