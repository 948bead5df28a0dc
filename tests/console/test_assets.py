"""engine/console/assets.py: which files the front may serve and how; and the console's
sources: one message catalogue per language, the same keys, no words in the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.console.assets import IMMUTABLE, STATIC, Assets, NotBuilt
from tests import ROOT

CONSOLE = ROOT / "console"


def _built(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><p>console</p>", encoding="utf-8")
    (root / "docs.html").write_text("<!doctype html><p>docs</p>", encoding="utf-8")
    (root / "assets" / "console-AbC123.js").write_text("export {}", encoding="utf-8")
    (root / "assets" / "console-AbC123.css").write_text("p {}", encoding="utf-8")
    (root / "assets" / "font-x.woff2").write_bytes(b"wOF2")
    return root


def test_an_asset_is_found_by_its_exact_name_with_its_type_and_a_year_of_cache(
    tmp_path: Path,
) -> None:
    assets = Assets(_built(tmp_path))
    found = assets.asset("console-AbC123.js")
    assert found is not None and found.body == b"export {}"
    headers = dict(found.headers)
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == IMMUTABLE
    assert "content-security-policy" not in headers
    css, font = assets.asset("console-AbC123.css"), assets.asset("font-x.woff2")
    assert css is not None and dict(css.headers)["content-type"] == "text/css; charset=utf-8"
    assert font is not None and dict(font.headers)["content-type"] == "font/woff2"


@pytest.mark.parametrize(
    "name",
    ["../index.html", "..", ".", "", "Console-AbC123.js", "console-AbC123.js/", "a/b", ".hidden"],
)
def test_a_name_that_was_not_built_there_is_not_found(tmp_path: Path, name: str) -> None:
    root = _built(tmp_path)
    (root / "assets" / ".hidden").write_text("x", encoding="utf-8")
    assert Assets(root).asset(name) is None


def test_a_link_in_the_assets_folder_is_never_followed(tmp_path: Path) -> None:
    root = _built(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("secret", encoding="utf-8")
    (root / "assets" / "link.js").symlink_to(secret)
    assert Assets(root).asset("link.js") is None


def test_the_pages_are_revalidated_and_carry_a_policy_of_this_origin_only(
    tmp_path: Path,
) -> None:
    page = Assets(_built(tmp_path)).page("console")
    headers = dict(page.headers)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert page.body.endswith(b"console</p>")


def test_a_console_never_built_says_so(tmp_path: Path) -> None:
    assets = Assets(tmp_path / "nothing")
    assert not assets.built and assets.asset("console-AbC123.js") is None
    with pytest.raises(NotBuilt):
        assets.page("docs")


def test_the_build_is_where_the_package_looks_for_it() -> None:
    assert STATIC == ROOT / "engine" / "console" / "static"
    assert Assets().built, "run 'make console' (make test and make run build it)"


# -- the console's sources ---------------------------------------------------------------
def _catalogue(lang: str) -> dict[str, str]:
    return json.loads((CONSOLE / "src" / "messages" / f"{lang}.json").read_text(encoding="utf-8"))


def test_the_japanese_and_english_catalogues_have_the_same_keys_and_holes() -> None:
    ja, en = _catalogue("ja"), _catalogue("en")
    assert sorted(ja) == sorted(en)
    for key in ja:
        holes = (set(re.findall(r"\{(\w+)\}", ja[key])), set(re.findall(r"\{(\w+)\}", en[key])))
        assert holes[0] == holes[1], key
        assert ja[key] and en[key], key


def test_every_key_the_code_asks_for_is_in_the_catalogue() -> None:
    ja = _catalogue("ja")
    code = "\n".join(p.read_text(encoding="utf-8") for p in (CONSOLE / "src").rglob("*.ts*"))
    asked = set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"(?! \+)', code))
    assert asked and asked - ja.keys() == set()
    # keys built from a prefix: each prefix has keys in the catalogue
    for prefix in re.findall(r'\bt\("([a-z_]+\.[a-z_]*)" \+', code):
        assert any(k.startswith(prefix) for k in ja), prefix


def test_no_japanese_words_are_written_in_the_code() -> None:
    """Every word the console shows comes from the catalogues (the language names of the
    switch are there too)."""
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uff00-\uffef]")
    for path in (CONSOLE / "src").rglob("*"):
        if path.suffix in (".ts", ".tsx", ".css", ".html"):
            assert not japanese.search(path.read_text(encoding="utf-8")), path
