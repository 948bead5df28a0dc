"""A character YAML does not allow (a control character, NUL, a lone surrogate) is refused
at its own line and column, in a small file and in one far larger than the readers' chunks,
after Japanese text (UTF-8 bytes are not characters) and after ASCII only.

libyaml (PyYAML's C loader, used when installed) reports such a character's place in bytes
of UTF-8, which each Japanese character before it pushed further down the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.core.errors import PolicyError
from engine.source import yaml as yaml_module
from engine.source.yaml import parse_yaml, read_yaml_file
from tests import ROOT

SHIPPED = ROOT / "policies" / "cancellation-fees.yaml"  # ~16,000 characters, ~19,400 bytes


def large_text() -> str:
    """~190 KB of valid YAML, Japanese on every line: far past every reader's buffer."""
    lines = ["kimari: 1", "notes:"]
    lines += [f"  - {{n: {i}, ja: 'キャンセル料の規則 {i} 番目の注記です'}}" for i in range(4000)]
    return "\n".join(lines) + "\n"


def insert(text: str, line: int, col: int, ch: str) -> str:
    """`text` with `ch` put at 1-based `line`:`col` (col may be one past the line's end)."""
    lines = text.split("\n")
    here = lines[line - 1]
    assert col - 1 <= len(here)
    lines[line - 1] = here[: col - 1] + ch + here[col - 1 :]
    return "\n".join(lines)


def refused(text: str, file: str = "p.yaml") -> str:
    with pytest.raises(PolicyError) as caught:
        parse_yaml(text, file)
    [diagnostic] = caught.value.diagnostics
    return diagnostic.render()


def where(line: int, col: int, code: str = "0007", file: str = "p.yaml") -> str:
    return f"{file}:{line}:{col}: yaml_syntax: the character U+{code} is not allowed in a YAML file"


def python_reader_place(text: str) -> tuple[int, int]:
    """Where PyYAML's pure-Python reader (which counts characters) puts the refusal."""
    with pytest.raises(yaml.reader.ReaderError) as caught:
        yaml.reader.Reader(text)
    before = text[: caught.value.position]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def test_the_large_text_is_valid_yaml_and_larger_than_the_readers_chunks() -> None:
    text = large_text()
    assert len(text.encode()) > 4 * 16384 and len(text.encode()) > len(text) + 10_000
    assert parse_yaml(text, "p.yaml").data["notes"][3999]["n"] == 3999


@pytest.mark.parametrize(
    ("line", "col"),
    [
        (1, 1),  # the start
        (1, 4),
        (2001, 20),  # the middle, inside the Japanese text
        (2001, 1),
        (4002, 25),  # the last line, in its Japanese text
        (4002, 44),  # the last line, after its last character
        (4003, 1),  # after the last line break
    ],
)
def test_a_control_character_in_a_large_file_is_refused_at_its_place(line: int, col: int) -> None:
    text = insert(large_text(), line, col, "\x07")
    assert refused(text) == where(line, col)
    assert python_reader_place(text) == (line, col)


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("\x07kimari: 1\n", 1, 1),
        ("kimari: 1\nid: a\x07\n", 2, 6),
        ("kimari: 1\ntitle: {ja: 不正なポリシー}\nid: a\x07\n", 3, 6),  # after Japanese
        ("title: 日本語\x07\n", 1, 11),
        ("kimari: 1\n", 2, 1),
    ],
)
def test_a_control_character_in_a_small_file_is_refused_at_its_place(
    text: str, line: int, col: int
) -> None:
    text = insert(text, line, col, "\x07") if text == "kimari: 1\n" else text
    assert refused(text) == where(line, col)
    assert python_reader_place(text) == (line, col)


def _places(text: str) -> dict[str, tuple[int, int]]:
    """Where to put a bad character in `text`: its first line, the middle and both sides of
    the first Japanese character of its longest Japanese line, its last line and after it."""
    lines = text.split("\n")[:-1]
    japanese = max(
        (n for n, line in enumerate(lines, 1) if not line.isascii()),
        key=lambda n: len(lines[n - 1]),
    )
    wide = next(i for i, ch in enumerate(lines[japanese - 1], 1) if not ch.isascii())
    return {
        "first line": (1, 1),
        "inside the Japanese text": (japanese, wide + 1),
        "before the Japanese text": (japanese, wide),
        "middle of a long line": (japanese, len(lines[japanese - 1]) // 2),
        "last line": (len(lines), 1),
        "after the last line": (len(lines) + 1, 1),
    }


@pytest.mark.parametrize("place", list(_places(SHIPPED.read_text(encoding="utf-8"))))
def test_a_control_character_in_a_shipped_policy_file_is_refused_at_its_place(
    tmp_path: Path, place: str
) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text.endswith("\n")
    line, col = _places(text)[place]
    path = tmp_path / "cancellation-fees.yaml"
    path.write_text(insert(text, line, col, "\x07"), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        read_yaml_file(path, display="policies/cancellation-fees.yaml")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.render() == where(line, col, file="policies/cancellation-fees.yaml")


def test_only_the_first_of_several_bad_characters_is_reported() -> None:
    text = insert(insert(large_text(), 3000, 5, "\x01"), 100, 7, "\x1b")
    assert refused(text) == where(100, 7, "001B")


def test_a_nul_appended_to_a_policy_sent_as_text_is_refused_after_its_last_line() -> None:
    source = (ROOT / "policies" / "order-holds.yaml").read_text(encoding="utf-8")
    lines = source.count("\n")
    assert refused(source + "\u0000", "order-holds.yaml") == where(
        lines + 1, 1, "0000", "order-holds.yaml"
    )


def test_a_nul_in_a_byte_order_marked_file_is_placed_as_an_editor_shows_it() -> None:
    raw = "\ufeffkimari: 1\nid: ああ\u0000\n".encode()
    assert refused(raw) == where(2, 7, "0000")  # type: ignore[arg-type]


def test_a_lone_surrogate_in_a_text_is_refused_at_its_place_not_a_traceback() -> None:
    assert refused("kimari: 1\ntitle: 日本\ud800\n") == where(2, 10, "D800")


def test_a_reader_error_whose_character_is_not_found_is_placed_from_its_byte_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fallback only: whatever the reader refuses is in the class searched for.
    text = "a: 日本\nb: x\n"
    error = yaml.reader.ReaderError("<unicode string>", len("a: 日本\nb: ".encode()), 7, "?", "")
    monkeypatch.setattr(yaml_module, "_POSITION_IN_BYTES", True)
    assert yaml_module._reader_error(error, text, "p.yaml").render() == where(2, 4)
    monkeypatch.setattr(yaml_module, "_POSITION_IN_BYTES", False)
    error = yaml.reader.ReaderError("<unicode string>", len("a: 日本\nb: "), 7, "?", "")
    assert yaml_module._reader_error(error, text, "p.yaml").render() == where(2, 4)
    error = yaml.reader.ReaderError("<byte string>", 3, b"\xff", "utf-8", "invalid start byte")
    assert str(yaml_module._reader_error(error, text, "p.yaml").location) == "p.yaml:1:4"
