"""Safe YAML reading with positions.

PyYAML keeps the last of two duplicate keys, turns `no` into False, `10:30`
into 630 and `0.1` into a float, and accepts tags that build Python objects.
None of that is acceptable for rulebooks that business staff edit, so this
module composes the node graph itself and constructs plain JSON-like data
(dict, list, str, int, Decimal, bool, None), refusing everything ambiguous
with a `file:line:col` diagnostic. It also records where every value and
key came from, keyed by JSON pointer, because no later stage can find a
line again once the data is plain Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import yaml

from engine.core.errors import Diagnostic, Location, PolicyError
from engine.core.i18n import Msg, os_reason
from engine.core.jsonvalue import INT_MAX, INT_MIN, escape_pointer_token

# Limits a policy or test file cannot exceed, each refused with its place: the largest
# shipped file is ~40 KB; a policy holds at most 150 rules; 64-bit integers are what the
# rule engine compares; the nesting of a policy is a handful of levels.
MAX_FILE_BYTES = 1024 * 1024
MAX_ERRORS = 100
MAX_DEPTH = 64
MAX_DECIMAL_DIGITS = 30

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, with the implicit tag of a plain scalar remembered by its text.

    PyYAML resolves every scalar in Python by trying the implicit resolvers' patterns
    (~15% of loading the shipped policies); their texts repeat (keys, `true`, ids), and
    without path resolvers (none are added here) the tag depends on the text and the
    implicit flags only.
    """

    _tags: ClassVar[dict[tuple[str, tuple[bool, bool]], str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode or len(value) > 64:
            return str(super().resolve(kind, value, implicit))
        found = (value, tuple(implicit))
        tag = self._tags.get(found)
        if tag is None:
            if len(self._tags) > 50_000:  # a bound, whatever is read
                self._tags.clear()
            tag = self._tags[found] = super().resolve(kind, value, implicit)
        return tag


_TAG = "tag:yaml.org,2002:"
# No '_' between digits: YAML 1.1 (PyYAML) reads `70_` and `7_0` as 70, YAML 1.2 (editors'
# language servers) reads `70_` as text; such a number is refused (_underscored).
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?([0-9]+)?\.[0-9]+([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


def join_pointer(base: str, token: str | int) -> str:
    return f"{base}/{escape_pointer_token(token)}"


@dataclass(frozen=True, slots=True)
class _Span:
    line: int  # 0-based, as PyYAML marks
    col: int
    end_line: int
    end_col: int


class PositionIndex:
    """Where each JSON pointer of a document came from in its file."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self._text = text
        self._values: dict[str, _Span] = {}
        self._keys: dict[str, _Span] = {}
        self._lines: list[str] | None = None

    def _record(self, pointer: str, node: yaml.Node, key: yaml.Node | None) -> None:
        s, e = node.start_mark, node.end_mark
        self._values[pointer] = _Span(s.line, s.column, e.line, e.column)
        if key is not None:
            ks, ke = key.start_mark, key.end_mark
            self._keys[pointer] = _Span(ks.line, ks.column, ke.line, ke.column)

    def _nearest(self, table: dict[str, _Span], pointer: str) -> _Span | None:
        while True:
            span = table.get(pointer) or self._values.get(pointer)
            if span is not None or not pointer:
                return span
            pointer = pointer.rsplit("/", 1)[0]

    def value(self, pointer: str) -> Location:
        """Position of the value at `pointer`, or of its nearest existing ancestor."""
        span = self._nearest(self._values, pointer)
        return self._loc(span)

    def key(self, pointer: str) -> Location:
        """Position of the mapping key that introduces `pointer` (for 'unknown key' errors)."""
        span = self._nearest(self._keys, pointer)
        return self._loc(span)

    def has(self, pointer: str) -> bool:
        return pointer in self._values

    def within(self, pointer: str, offset: int, value: str) -> Location:
        """Position of character `offset` of the string scalar at `pointer`.

        The scalar may be quoted, folded or a literal block, so the source and
        the value differ by quotes, indentation and line breaks; walking both
        in step and skipping source characters that do not match finds the
        character without re-implementing YAML's scalar rules.
        """
        span = self._values.get(pointer)
        if span is None:
            return self.value(pointer)
        lines = self._source_lines()
        places = quoted_places(lines, span.line, span.col)
        if places is not None and len(places) == len(value) + 1:  # else: walk (a fallback)
            line, col = places[min(offset, len(value))]
            return Location(self.file, line + 1, col + 1)
        line, col = span.line, span.col
        for ch in value[:offset]:
            line, col = self._advance_to(lines, line, col, ch, span)
            line, col = self._step(lines, line, col)
        line, col = self._skip_to_content(lines, line, col, value[offset : offset + 1], span)
        return Location(self.file, line + 1, col + 1)

    def _source_lines(self) -> list[str]:
        if self._lines is None:
            self._lines = split_lines(self._text)
        return self._lines

    @staticmethod
    def _step(lines: list[str], line: int, col: int) -> tuple[int, int]:
        if line < len(lines) and col < len(lines[line]):  # the end of a line is a place too
            return line, col + 1
        return line + 1, 0

    def _advance_to(
        self, lines: list[str], line: int, col: int, ch: str, span: _Span
    ) -> tuple[int, int]:
        start = (line, col)
        while (line, col) <= (span.end_line, span.end_col) and line < len(lines):
            text = lines[line]
            if col < len(text) and text[col] == ch:
                return line, col
            line, col = self._step(lines, line, col)
        return start

    def _skip_to_content(
        self, lines: list[str], line: int, col: int, ch: str, span: _Span
    ) -> tuple[int, int]:
        if not ch:
            return line, col
        return self._advance_to(lines, line, col, ch, span)

    @staticmethod
    def _loc_of(file: str, span: _Span | None) -> Location:
        if span is None:
            return Location(file, 1, 1)
        return Location(file, span.line + 1, span.col + 1)

    def _loc(self, span: _Span | None) -> Location:
        return self._loc_of(self.file, span)


# The escapes of a double-quoted scalar followed by hex digits, and how many (`\u3042`);
# every other escape is a backslash and one character (YAML 1.1, as PyYAML reads them).
_ESCAPE_DIGITS = {"x": 2, "u": 4, "U": 8}
_BLANKS = " \t"


def quoted_places(lines: list[str], line: int, col: int) -> list[tuple[int, int]] | None:
    """Where each character of the quoted scalar at `line`:`col` comes from in `lines`
    (0-based), then where its closing quote is; None when no quote starts there.

    An escape (`\\u3042`, `\\t`, `\\N`) is one character of the value written with several,
    and folding turns a line break into one space or drops it: searching the source for
    the value's characters (as `within` does for other scalars) lost its place at each,
    or jumped to a later `あ`."""
    quote = lines[line][col : col + 1] if line < len(lines) else ""
    if quote not in ('"', "'"):
        return None
    places: list[tuple[int, int]] = []
    col += 1
    while line < len(lines):
        text = lines[line]
        if col >= len(text) or not text[col:].strip(_BLANKS):  # trailing blanks go too
            line, col = _fold(lines, line, len(text), places)
            continue
        ch = text[col]
        places.append((line, col))
        if ch == quote and text[col + 1 : col + 2] == "'" == quote:  # '' in '...'
            col += 2
        elif ch == quote:
            return places
        elif ch == "\\" and quote == '"' and col + 1 == len(text):  # an escaped line break
            places.pop()
            line, col = _escaped_break(lines, line, places)
        elif ch == "\\" and quote == '"':
            col += 2 + _ESCAPE_DIGITS.get(text[col + 1], 0)
        else:
            col += 1
    return None  # never closed: PyYAML refused it before


def _fold(lines: list[str], line: int, end: int, places: list[tuple[int, int]]) -> tuple[int, int]:
    """A line break inside a quoted scalar: one space, or a newline per blank line after
    it; the next line's leading blanks are dropped."""
    empty = _blank_lines_after(lines, line)
    if empty:
        places.extend((line + 1 + i, 0) for i in range(empty))
    else:
        places.append((line, end))
    return _content_start(lines, line + 1 + empty)


def _escaped_break(lines: list[str], line: int, places: list[tuple[int, int]]) -> tuple[int, int]:
    """A backslash ending a line: the break is dropped, each blank line after it kept."""
    empty = _blank_lines_after(lines, line)
    places.extend((line + 1 + i, 0) for i in range(empty))
    return _content_start(lines, line + 1 + empty)


def _blank_lines_after(lines: list[str], line: int) -> int:
    count = 0
    while line + 1 + count < len(lines) and not lines[line + 1 + count].strip(_BLANKS):
        count += 1
    return count


def _content_start(lines: list[str], line: int) -> tuple[int, int]:
    if line >= len(lines):
        return line, 0
    text = lines[line]
    return line, len(text) - len(text.lstrip(_BLANKS))


@dataclass(frozen=True)
class Document:
    """A YAML file read safely: plain data, where each value came from, and a revision."""

    path: str
    text: str
    data: Any
    positions: PositionIndex
    revision: str
    # The file it was read from; `path` is how messages show it. Relative paths inside
    # the document (facts schema, data) resolve from here.
    origin: Path | None = None


def revision_of(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def read_yaml_file(path: str | Path, *, display: str | None = None) -> Document:
    path = Path(path)
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            [
                Diagnostic(
                    "file_unreadable",
                    Msg("cannot read file: {reason}", reason=os_reason(exc)),
                    Location(shown, 1, 1),
                )
            ]
        ) from None
    document = parse_yaml(raw, shown)
    # absolute, not resolved: a symbolic link is the policy its own name says (its id must
    # be that name), not a second copy of the file it points at, named by that file
    return dataclasses.replace(document, origin=Path(os.path.abspath(path)))  # noqa: PTH100


# Documents parsed in this process, by file name and SHA-256 of their bytes: a folder is
# loaded again and again (each reload, validation of a draft, test run) while most of its
# files stay as they were, and composing YAML with positions is most of a warm load.
_PARSED: dict[tuple[str, bytes], tuple[Document, int]] = {}  # -> (document, its bytes)
_PARSED_BYTES = 16 * 1024 * 1024  # of source kept at most (the shipped folder: ~0.4 MB)
_PARSED_COUNT = 1024  # documents kept at most (many tiny ones cost more than their bytes)
_parsed_guard = threading.Lock()
_parsed_size = 0


def forget_parsed() -> None:
    """Parse every document again (as a new process would): the benchmarks' cold loads."""
    global _parsed_size
    with _parsed_guard:
        _PARSED.clear()
        _parsed_size = 0


def _keep_parsed(key: tuple[str, bytes], document: Document, size: int) -> None:
    global _parsed_size
    with _parsed_guard:
        if key in _PARSED:
            return
        while _PARSED and (_parsed_size + size > _PARSED_BYTES or len(_PARSED) >= _PARSED_COUNT):
            _parsed_size -= _PARSED.pop(next(iter(_PARSED)))[1]  # the oldest first
        _PARSED[key] = (document, size)
        _parsed_size += size


def parse_yaml(raw: bytes | str, file: str) -> Document:
    """Parse one YAML document; raise PolicyError listing every problem found.

    The same bytes under the same name parse once per process: each caller gets its own
    copy of the data (callers may change it), the text and positions being immutable."""
    data_bytes = _utf8(raw, file) if isinstance(raw, str) else raw
    if len(data_bytes) > MAX_FILE_BYTES:
        return _parse(data_bytes, file)  # refused before any work on it
    key = (file, hashlib.sha256(data_bytes).digest())
    with _parsed_guard:
        known = _PARSED.get(key)
    if known is not None:
        return dataclasses.replace(known[0], data=_fresh(known[0].data))
    document = _parse(data_bytes, file)  # a file that does not parse is read again each time
    _keep_parsed(key, document, len(data_bytes))
    return dataclasses.replace(document, data=_fresh(document.data))


def _utf8(text: str, file: str) -> bytes:
    """A text given as str (a policy sent over HTTP, an API caller's), as its UTF-8 bytes;
    a lone surrogate (which no UTF-8 file can hold) is refused at its place."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line, col = _line_col(text, exc.start)
        raise PolicyError([_not_allowed(ord(text[exc.start]), Location(file, line, col))]) from None


def _not_allowed(code: int, where: Location) -> Diagnostic:
    return Diagnostic(
        "yaml_syntax",
        Msg("the character U+{code:04X} is not allowed in a YAML file", code=code),
        where,
    )


def _fresh(value: Any) -> Any:
    """A copy of parsed YAML data: its mappings and lists new, its scalars (str, int, bool,
    None, Decimal, float) immutable and shared."""
    kind = value.__class__
    if kind is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if kind is list:
        return [_fresh(v) for v in value]
    return value


def _parse(data_bytes: bytes, file: str) -> Document:
    if len(data_bytes) > MAX_FILE_BYTES:
        raise PolicyError(
            [
                Diagnostic(
                    "file_too_large",
                    Msg(
                        "the file has {size} bytes; a policy or test file may have "
                        "at most {limit} (split it)",
                        size=len(data_bytes),
                        limit=MAX_FILE_BYTES,
                    ),
                    Location(file, 1, 1),
                )
            ]
        )
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError([not_utf8(data_bytes, exc, file)]) from None
    text = text.removeprefix("\ufeff")
    root = _compose(text, file)
    builder = _Builder(file, text)
    data = builder.build(root) if root is not None else None
    if builder.errors:
        raise PolicyError(builder.errors[:MAX_ERRORS])
    return Document(file, text, data, builder.positions, revision_of(data_bytes))


def not_utf8(data: bytes, exc: UnicodeDecodeError, file: str) -> Diagnostic:
    """Where the first byte that is not UTF-8 sits (an editor saving in Shift_JIS, say)."""
    before = data[: exc.start].decode("utf-8", errors="replace")
    line, col = _line_col(before, len(before))
    byte = data[exc.start]
    return Diagnostic(
        "file_not_utf8",
        Msg(
            "the file is not UTF-8: byte 0x{byte:02x} here cannot be read ({reason}); "
            "save the file as UTF-8",
            byte=byte,
            reason=exc.reason,
        ),
        Location(file, line, col),
    )


# YAML ends a line at NEL and the Unicode line and paragraph separators too; editors (the
# console's included) do not, so every place after one would be a line off. Refused.
_SEPARATOR = re.compile("[\x85\u2028\u2029]")


def _compose(text: str, file: str) -> yaml.Node | None:
    separator = _SEPARATOR.search(text)
    if separator is not None:  # the lines before it are counted alike by YAML and editors
        line, col = _line_col(text, separator.start())
        where = Location(file, line, col)
        raise PolicyError([_not_allowed(ord(separator.group()), where)]) from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        message, line, col = plain_words(exc, text)
        raise PolicyError([Diagnostic("yaml_syntax", message, Location(file, line, col))]) from None
    except yaml.reader.ReaderError as exc:
        raise PolicyError([_reader_error(exc, text, file)]) from None
    except yaml.YAMLError as exc:
        raise PolicyError(
            [
                Diagnostic(
                    "yaml_syntax",
                    Msg("YAML syntax error: {reason}", reason=str(exc)),
                    Location(file, 1, 1),
                )
            ]
        ) from None
    if len(nodes) > 1:
        second = nodes[1].start_mark
        raise PolicyError(
            [
                Diagnostic(
                    "yaml_multiple_documents",
                    Msg("a file holds one YAML document; found a second one"),
                    Location(file, second.line + 1, second.column + 1),
                )
            ]
        )
    return nodes[0] if nodes else None


# The characters YAML allows in a stream; both of PyYAML's readers (its Python one and
# libyaml's) refuse any other with a ReaderError.
_NON_PRINTABLE: re.Pattern[str] = yaml.reader.Reader.NON_PRINTABLE
# libyaml (the C loader, when installed) reads the text as UTF-8 and reports a ReaderError's
# position in bytes; PyYAML's own reader, in characters.
_POSITION_IN_BYTES = _BaseLoader is not yaml.SafeLoader


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> Diagnostic:
    """The character PyYAML's reader refused, at its line and column.

    `exc.position` cannot be taken as an index of `text`: libyaml counts UTF-8 bytes, so
    each character of two to four bytes before it (Japanese text) pushed the place further
    down the file. The reader refuses the first character outside YAML's printable set,
    so it is looked for here, with the same set."""
    found = _NON_PRINTABLE.search(text)
    if found is not None:
        line, col = _line_col(text, found.start())
        return _not_allowed(ord(found.group()), Location(file, line, col))
    offset = exc.position  # not a character of the text (none was found): a fallback only
    if _POSITION_IN_BYTES:
        offset = len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
    line, col = _line_col(text, offset)
    if isinstance(exc.character, int):
        return _not_allowed(exc.character, Location(file, line, col))
    return Diagnostic(
        "yaml_syntax", Msg("the file is not readable text"), Location(file, line, col)
    )


# The line breaks of YAML (1.1, as PyYAML's marks count them): a lone CR, NEL, and the line
# and paragraph separators end a line too, so every place is counted as the marks count it.
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def split_lines(text: str) -> list[str]:
    """The lines of a YAML text, as its marks number them."""
    return _BREAK.split(text)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character `offset` of `text`."""
    breaks = list(_BREAK.finditer(text, 0, offset))
    return len(breaks) + 1, offset - (breaks[-1].end() if breaks else 0) + 1


_CLOSER = {"{": "}", "[": "]"}
# a mapping entry whose value starts with a bracket: `message: {x} text`, `- note: [a] b`
_BRACKET_VALUE = re.compile(r"^\s*(?:-\s+)?[^\s#'\"][^:#]*:\s+([\[{])")


def plain_words(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, int, int]:
    """What a YAML syntax error means for someone editing a policy, and the place to look.

    PyYAML reports what its scanner or parser expected ("found character that cannot start
    any token"), often a line after the mistake (an unclosed '{' is noticed where the next
    line starts). The common mistakes are recognised here and said in plain words at the
    place where they are made; anything else keeps PyYAML's words."""
    problem, context = exc.problem or "", exc.context or ""
    mark, opened = exc.problem_mark, exc.context_mark
    at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    start = (opened.line + 1, opened.column + 1) if opened else at
    lines = split_lines(text)
    here = lines[mark.line] if mark and mark.line < len(lines) else ""
    found = here[mark.column : mark.column + 1] if mark else ""
    if "tab character" in problem or (found == "\t" and "cannot start any token" in problem):
        return Msg("tab characters are not allowed for indentation; indent with spaces"), *at
    if mark is not None and "quoted scalar" not in context:
        told = _told_by_tokens(_tokens_up_to(lines, mark.line), mark, lines, context)
        if told is not None:
            return told
    if "cannot start any token" in problem:
        return Msg(
            "'{found}' cannot start a value; quote the value ('{found}...')", found=found
        ), *at
    if problem.startswith("did not find expected ',' or") and opened is not None:
        bracket = "{" if "mapping" in context else "["
        if not _closed_on_its_line(lines[opened.line], opened.column):
            return (
                Msg(
                    "this '{bracket}' is never closed: add the '{closer}', or quote the "
                    "text if the '{bracket}' belongs to it",
                    bracket=bracket,
                    closer=_CLOSER[bracket],
                ),
                *start,
            )
        return (
            Msg(
                "expected ',' or '{closer}' here, inside the '{bracket}' opened at "
                "line {line} (quote a value that holds ': ' or ', ')",
                closer=_CLOSER[bracket],
                bracket=bracket,
                line=start[0],
            ),
            *at,
        )
    if problem == "did not find expected key" and mark is not None:
        value = _BRACKET_VALUE.match(here)
        if value is not None:
            bracket, key = value.group(1), here[: value.start(1)].strip().removeprefix("- ")
            quoted = here[value.start(1) :].rstrip().replace("\\", "\\\\").replace('"', '\\"')
            fixed = f'{key} "{quoted}"'  # the line as it should be
            return (
                Msg(
                    "a value that starts with '{bracket}' is read as a YAML {kind}, and text "
                    "cannot follow its '{closer}'; quote text that contains '{bracket}': {fixed}",
                    bracket=bracket,
                    kind=Msg("mapping") if bracket == "{" else Msg("list"),
                    closer=_CLOSER[bracket],
                    fixed=fixed,
                ),
                mark.line + 1,
                value.start(1) + 1,
            )
        return Msg("this line's indentation matches no key above it; check the indentation"), *at
    if problem.startswith("mapping values are not allowed"):
        return (
            Msg(
                "a ': ' inside an unquoted value starts a mapping here: quote the value, or check "
                "the indentation"
            ),
            *at,
        )
    if "quoted scalar" in context:
        return Msg("this quote is never closed"), *start
    if problem == "could not find expected ':'":
        return Msg("expected 'key: value' on this line (or quote the text, or indent it)"), *start
    if problem == "did not find expected '-' indicator":
        return (
            Msg("the lines above are list items ('- '), this one is not: check its indentation"),
            *at,
        )
    if "maximum nesting depth" in problem:
        return Msg("values are nested too deeply (more than 1000 levels)"), *at
    words = f"{problem} ({context})" if problem and context else problem or context
    return Msg("YAML syntax error: {reason}", reason=words or Msg("invalid YAML")), *at


def _tokens_up_to(lines: list[str], line: int) -> list[yaml.Token]:
    """The tokens of the text up to the end of `line` (0-based), as far as they scan."""
    tokens: list[yaml.Token] = []
    try:
        for token in yaml.scan("\n".join(lines[: line + 1]), Loader=yaml.SafeLoader):
            tokens.append(token)
    except yaml.YAMLError:
        pass  # the text is cut at the error's line: what scanned is what is wanted
    return tokens


def _told_by_tokens(
    tokens: list[yaml.Token], mark: yaml.Mark, lines: list[str], context: str
) -> tuple[str, int, int] | None:
    """A full-width space that YAML read as text, or text after a closing quote, found
    from the tokens before the error (PyYAML only says the next line is misplaced)."""
    full_width = _full_width_indent(tokens, lines)
    if full_width is not None:
        return full_width
    before = [
        t for t in tokens if (t.start_mark.line, t.start_mark.column) < (mark.line, mark.column)
    ]
    last = before[-1] if before else None
    if not isinstance(last, yaml.ScalarToken) or last.style not in ('"', "'"):
        return None
    end = last.end_mark
    if end.line != mark.line or lines[end.line][end.column : mark.column].strip():
        return None
    start, quote = last.start_mark, last.style
    if "flow" in context and _NEXT_ITEM.match(lines[mark.line], mark.column):
        return None  # ["a" "b"], {ja: "x" en: y}: a comma missing, as PyYAML says
    if start.line != end.line and _swallows_structure(lines, start.line, end.line):
        message = Msg(
            "this quote is never closed on its line: YAML read on to the next {quote} "
            "(line {line}) as part of the value; close the quote on this line",
            quote=quote,
            line=end.line + 1,
        )
        return message, start.line + 1, start.column + 1
    if start.line != end.line:  # a value quoted over lines, closed, then more text
        message = Msg(
            "text cannot follow the closing quote of a value (opened at line {line}); put "
            "the whole value in single quotes, or write it on the next line after '>-'",
            line=start.line + 1,
        )
        return message, mark.line + 1, mark.column + 1
    message = _text_after_quote(lines[mark.line], start.column, mark.column, context)
    return message, mark.line + 1, mark.column + 1


# After a closing quote inside [...] or {...}: another item or key, not more of the value.
_NEXT_ITEM = re.compile(r"""\s*(?:["']|[^\s,:\[\]{}#]+\s*:(?:\s|$))""")


def _swallows_structure(lines: list[str], first: int, last: int) -> bool:
    """Whether a quoted value read from line `first` to `last` took in lines indented no
    deeper than the line it opened on: YAML structure (keys, items, comments), not the
    continuation of a value quoted over several lines, which is indented deeper."""
    opening = lines[first]
    indent = len(opening) - len(opening.lstrip(" "))
    for line in lines[first + 1 : last + 1]:
        stripped = line.lstrip(" ")
        if stripped and len(line) - len(stripped) <= indent:
            return True
    return False


def _text_after_quote(here: str, opened: int, after: int, context: str) -> str:
    """`"重複" == x`: the quote closed the value, and text follows it."""
    value = here[opened:].rstrip()
    prefix = here[:opened].strip()
    if "flow" in context:  # inside {...} or [...]: the value ends at the next separator
        cut = re.search(r"[,}\]]", here[after:])
        value = here[opened : after + cut.start()].rstrip() if cut else value
        prefix = ""
    wrapped = "'" + value.replace("'", "''") + "'"
    return Msg(
        "text cannot follow the closing quote of a value; to keep the quotes in the "
        "value, put the whole value in single quotes: {fixed} (or write it on the next "
        "line after '>-')",
        fixed=f"{prefix} {wrapped}".strip(),
    )


# What editors and IMEs put where a space was meant: YAML reads it as text, not indentation.
_IDEOGRAPHIC_SPACE = "\u3000"


def _full_width_indent(tokens: list[yaml.Token], lines: list[str]) -> tuple[str, int, int] | None:
    """A key or list item indented with full-width spaces, which YAML read as part of a key
    (the error comes later, where the next line's indentation matches nothing)."""
    for token, following in itertools.pairwise(tokens):
        if not isinstance(token, yaml.ScalarToken) or token.style is not None:
            continue
        start = token.start_mark
        indent = lines[start.line][: start.column]
        if not token.value.startswith(_IDEOGRAPHIC_SPACE) or indent.strip(" "):
            continue
        rest = token.value.lstrip(_IDEOGRAPHIC_SPACE + " ")
        if isinstance(following, yaml.ValueToken) or rest.startswith("- "):
            return _full_width_message(), start.line + 1, start.column + 1
    return None


def _full_width_message() -> str:
    return Msg(
        "full-width spaces (U+3000, 全角スペース) are not allowed for indentation; "
        "indent with ordinary spaces"
    )


def _closed_on_its_line(line: str, column: int) -> bool:
    """Whether the bracket at `column` is closed later on the same line (quotes skipped)."""
    depth, quote = 0, ""
    for ch in line[column:]:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return True
    return False


class _Builder:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.positions = PositionIndex(file, text)
        self.errors: list[Diagnostic] = []
        self._seen: set[int] = set()

    def _error(
        self, code: str, message: str, node: yaml.Node, pointer: str, hint: str | None = None
    ) -> None:
        mark = node.start_mark
        loc = Location(self.file, mark.line + 1, mark.column + 1)
        self.errors.append(Diagnostic(code, message, loc, pointer=pointer or "/", hint=hint))

    def build(
        self, node: yaml.Node, pointer: str = "", key: yaml.Node | None = None, depth: int = 0
    ) -> Any:
        if depth > MAX_DEPTH:
            self._error(
                "yaml_too_deep",
                Msg("values are nested more than {limit} levels deep here", limit=MAX_DEPTH),
                node,
                pointer,
            )
            return None
        if id(node) in self._seen:
            self._error(
                "yaml_alias",
                Msg("anchors and aliases (&name / *name) are not allowed; write the value out"),
                node,
                pointer,
            )
            return None
        self._seen.add(id(node))
        self.positions._record(pointer, node, key)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, pointer, depth)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, pointer, "seq")
            return [
                self.build(item, join_pointer(pointer, i), None, depth + 1)
                for i, item in enumerate(node.value)
            ]
        return self._scalar(node, pointer)

    def _check_tag(self, node: yaml.Node, pointer: str, expected: str) -> bool:
        if node.tag == _TAG + expected:
            return True
        self._error(
            "yaml_unsafe_tag",
            Msg(
                "tag '{tag}' is not allowed; only plain YAML "
                "values (strings, numbers, true/false, null, lists, mappings)",
                tag=node.tag,
            ),
            node,
            pointer,
        )
        return False

    def _mapping(self, node: yaml.MappingNode, pointer: str, depth: int) -> dict[str, Any]:
        self._check_tag(node, pointer, "map")
        out: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                self._error(
                    "yaml_merge_key",
                    Msg("merge keys ('<<') are not allowed; write the entries out"),
                    key_node,
                    pointer,
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _TAG + "str":
                self._error(
                    "yaml_key_not_string",
                    Msg("mapping keys must be plain strings; quote the key"),
                    key_node,
                    pointer,
                )
                continue
            name = key_node.value
            child = join_pointer(pointer, name)
            if name.startswith(_IDEOGRAPHIC_SPACE) and not key_node.style:  # plain: None or ""
                self._error("yaml_syntax", _full_width_message(), key_node, child)
                continue
            if name in first_seen:
                first = first_seen[name].start_mark
                self._error(
                    "duplicate_key",
                    Msg(
                        "duplicate key '{name}' (first defined at line {line}); "
                        "YAML would silently keep only the last one",
                        name=name,
                        line=first.line + 1,
                    ),
                    key_node,
                    child,
                )
                continue
            first_seen[name] = key_node
            out[name] = self.build(value_node, child, key_node, depth + 1)
        return out

    def _scalar(self, node: yaml.ScalarNode, pointer: str) -> Any:
        tag, text = node.tag, node.value
        kind = tag.removeprefix(_TAG) if tag.startswith(_TAG) else None
        if kind in ("str", "timestamp"):
            # Timestamps stay text: the facts schema decides whether it is a date.
            return text
        if kind == "null":
            return None
        if kind == "bool":
            return self._bool(node, pointer)
        if kind == "int":
            return self._int(node, pointer)
        if kind == "float":
            return self._float(node, pointer)
        self._check_tag(node, pointer, "str")
        return None

    def _bool(self, node: yaml.ScalarNode, pointer: str) -> bool | None:
        if node.value in _TRUE:
            return True
        if node.value in _FALSE:
            return False
        self._error(
            "yaml_ambiguous_scalar",
            Msg(
                "'{value}' reads as a boolean in YAML 1.1; write true or false, "
                "or quote it if you mean the text",
                value=node.value,
            ),
            node,
            pointer,
        )
        return None

    def _underscored(self, node: yaml.ScalarNode, pointer: str, plain: re.Pattern[str]) -> bool:
        """Refuse `70_`, `7_0`, `1_000.5`: a number to PyYAML, text (`70_`) to YAML 1.2."""
        number = node.value.replace("_", "")
        if "_" not in node.value or not plain.fullmatch(number):
            return False
        self._error(
            "yaml_ambiguous_scalar",
            Msg(
                "'{value}' holds a '_': YAML 1.1 reads it as the number {number}, YAML 1.2 "
                "(editors) as text; write the number without '_' ({number}), or quote it if "
                "it is text",
                value=node.value,
                number=number,
            ),
            node,
            pointer,
        )
        return True

    def _int(self, node: yaml.ScalarNode, pointer: str) -> int | None:
        if self._underscored(node, pointer, _PLAIN_INT):
            return None
        if _PLAIN_INT.fullmatch(node.value):
            digits = node.value.lstrip("+-")
            # length first: int() of a text of thousands of digits raises (and is slow)
            number = int(node.value) if len(digits) <= 19 else None
            if number is not None and INT_MIN <= number <= INT_MAX:
                return number
            self._error(
                "number_out_of_range",
                Msg(
                    "this integer ({digits} digits) is out of range: integers must fit "
                    "64 bits, from {low} to {high}",
                    digits=len(digits),
                    low=INT_MIN,
                    high=INT_MAX,
                ),
                node,
                pointer,
            )
            return None
        self._error(
            "yaml_ambiguous_scalar",
            Msg(
                "'{value}' would be read as a base-8, base-16 or base-60 number; "
                "quote it if it is text (a time such as '10:30'), or write it in decimal",
                value=node.value,
            ),
            node,
            pointer,
        )
        return None

    def _float(self, node: yaml.ScalarNode, pointer: str) -> Decimal | None:
        # Numbers with a fraction become Decimal: money and rates are never float.
        if self._underscored(node, pointer, _PLAIN_FLOAT):
            return None
        if _PLAIN_FLOAT.fullmatch(node.value):
            try:
                number = Decimal(node.value)
            except InvalidOperation:
                pass
            else:
                if len(number.as_tuple().digits) <= MAX_DECIMAL_DIGITS and number.adjusted() < 300:
                    return number
                self._error(
                    "number_out_of_range",
                    Msg(
                        "this number is out of range: at most {digits} digits, and less than 1e300",
                        digits=MAX_DECIMAL_DIGITS,
                    ),
                    node,
                    pointer,
                )
                return None
        self._error(
            "yaml_ambiguous_scalar",
            Msg(
                "'{value}' is not a plain decimal number (infinity, NaN and base-60 "
                "numbers are not allowed); quote it if it is text",
                value=node.value,
            ),
            node,
            pointer,
        )
        return None
