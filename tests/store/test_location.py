"""A store location names its backend: a path or sqlite:/// is SQLite, postgresql:// is
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import UsageError
from engine.store.backend import POSTGRESQL, SQLITE, parse_location, redact


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("var/kimari.sqlite3", SQLITE, "var/kimari.sqlite3"),
        ("/srv/kimari/log.sqlite3", SQLITE, "/srv/kimari/log.sqlite3"),
        (":memory:", SQLITE, ":memory:"),
        ("sqlite:///var/kimari.sqlite3", SQLITE, "var/kimari.sqlite3"),
        ("sqlite:////srv/kimari.sqlite3", SQLITE, "/srv/kimari.sqlite3"),
        ("dir/with://odd/name.sqlite3", SQLITE, "dir/with://odd/name.sqlite3"),
        ("postgresql://kimari@db/kimari", POSTGRESQL, "postgresql://kimari@db/kimari"),
        ("postgres://kimari@db:5433/k", POSTGRESQL, "postgres://kimari@db:5433/k"),
        # in lower case: libpq reads no other (it was an internal error at connect time)
        ("PostgreSQL://kimari@db/k", POSTGRESQL, "postgresql://kimari@db/k"),
    ],
)
def test_a_location_selects_its_backend(text: str, kind: str, target: str) -> None:
    location = parse_location(text)
    assert (location.kind, location.target) == (kind, target)


def test_a_path_object_is_a_sqlite_file() -> None:
    assert parse_location(Path("var") / "x.sqlite3").kind == SQLITE


@pytest.mark.parametrize("text", ["mysql://u@h/db", "sqlite://relative.db", "sqlite:///"])
def test_an_unknown_scheme_or_a_malformed_sqlite_url_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_location(text)
    assert caught.value.code == "store_invalid"


def test_a_password_never_shows_in_what_is_printed() -> None:
    url = "postgresql://kimari:s3cret@db.example:5432/kimari"
    assert redact(url) == "postgresql://kimari:***@db.example:5432/kimari"
    assert "s3cret" not in str(parse_location(url))
    assert redact("postgresql://kimari@db/k") == "postgresql://kimari@db/k"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://kimari:s3cretpw@[::1/h",  # psycopg's own message quoted the whole URL
        "postgresql://kimari:s3cretpw@127.0.0.1/h%zz",
        "postgresql://kimari:s3cretpw@127.0.0.1/h?bogus=1",
    ],
)
def test_a_postgresql_url_libpq_cannot_read_is_a_usage_error_without_its_password(
    url: str,
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_location(url)
    [problem] = caught.value.diagnostics
    assert problem.code == "store_invalid"
    assert "s3cretpw" not in problem.message and "kimari:***@" in problem.message
    assert parse_location("postgresql://kimari:s3cretpw@127.0.0.1:5432/h").kind == POSTGRESQL
