"""What the commands refuse before the engine or the store sees it.

Each refusal is a UsageError (exit 2) or an InputError (exit 1) naming the place, as the
service refuses the same input: text on the command line that is not UTF-8, JSON that holds
a key twice, an integer too long to read, NaN, Infinity or a lone surrogate, a policy of the
wrong kind, a store that is not an SQLite database or whose folder is mistyped, an output that
is the input itself.
Only click and engine/core load with this module: the CLI starts without the engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import click

from engine.core.errors import Diagnostic, InputError, UsageError
from engine.core.i18n import Msg
from engine.core.jsonvalue import (
    HugeNumber,
    LongInteger,
    TooLong,
    duplicate_diagnostic,
    duplicate_key,
    read_decimal,
    read_integer,
    refuse_long_integers,
)

# -- text on the command line -----------------------------------------------------------------


def shown_bytes(text: str) -> str:
    """A text as the bytes it came from: a byte that is not UTF-8 (which Python reads from
    the command line as a lone surrogate, U+DC80-U+DCFF) as \\xff."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no byte gave (from Python, not a shell)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def check_utf8(value: str, name: str) -> str:
    """`value`, if it is UTF-8 text; UsageError naming the option or argument if it is not
    (the store, JSON and the messages hold UTF-8 only)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        reason = Msg("{option} is not UTF-8 text: {text}", option=name, text=shown_bytes(value))
        raise UsageError([Diagnostic("usage", reason)]) from None
    return value


def param_name(param: click.Parameter | None) -> str:
    """How the user wrote an option (its long form) or sees an argument (its metavar)."""
    if param is None:
        return "?"
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


class Text(click.ParamType):
    """A text option or argument: UTF-8 only (see check_utf8)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            check_utf8(value, param_name(param))
        return value


TEXT = Text()


def utf8(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A click callback for an option of another type (a path): UTF-8 only, as TEXT."""
    if isinstance(value, str):
        check_utf8(value, param_name(param))
    return value


# -- JSON read from a file or an option -------------------------------------------------------

# Windows editors save one at the start of a file; JSON may ignore it (RFC 8259, 8.1)
UTF8_BOM = b"\xef\xbb\xbf"


class _Reading:
    """The hooks of one json.loads: whether an object held a key twice (found again, with
    its pointer, only then), or NaN or Infinity was read."""

    def __init__(self) -> None:
        self.duplicate = False
        self.non_finite = False
        self.long_integer = False

    def constant(self, text: str) -> None:
        self.non_finite = True  # NaN, Infinity, -Infinity: refused once found again

    def integer(self, text: str) -> Any:
        value = read_integer(text)
        if isinstance(value, LongInteger):
            self.long_integer = True
        return value

    def decimal(self, text: str) -> Any:
        value = read_decimal(text)
        if isinstance(value, HugeNumber):
            self.long_integer = True  # refused the same way, at its pointer
        return value

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) != len(pairs):
            self.duplicate = True
        return found


def loads_checked(text: str, raw: bytes, pointer: str, error: type[UsageError | InputError]) -> Any:
    """JSON `text` (whose UTF-8 is `raw`) with fractions as Decimal, as the service reads a
    body; `error` (with the place under `pointer`) for an integer too long to read or a key
    held twice. json.JSONDecodeError and RecursionError as json.loads raises them, and
    json.JSONDecodeError too for what Python's json takes and JSON (and the service) does not:
    NaN, Infinity, and a string holding a lone UTF-16 surrogate ("\\ud800")."""
    reading = _Reading()
    value = json.loads(
        text,
        parse_float=reading.decimal,
        parse_int=reading.integer,
        parse_constant=reading.constant,
        object_pairs_hook=reading.pairs,
    )
    if reading.non_finite or _SURROGATE_ESCAPE.search(text) is not None:
        _refuse_non_json(text)
    if reading.long_integer:
        try:
            refuse_long_integers(value)
        except TooLong as exc:
            raise error([exc.diagnostic(pointer)]) from None
    if reading.duplicate:
        inner = duplicate_key(raw)
        if inner is not None:
            raise error([duplicate_diagnostic(pointer + inner)])
    return value


# A string (as written), or a constant Python's json reads and JSON has not
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|NaN|-?Infinity')
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # may be `\\ud800`: looked at again


def _refuse_non_json(text: str) -> None:
    """json.JSONDecodeError at the first NaN, Infinity or lone surrogate of `text` (JSON that
    Python's json has read: its strings are well formed), if there is one."""
    for token in _TOKEN.finditer(text):
        found = token.group()
        if not found.startswith('"'):
            reason = Msg("{value} is not a JSON number: JSON has no NaN or Infinity", value=found)
            raise json.JSONDecodeError(reason, text, token.start())
        at = _lone_surrogate(found)
        if at is not None:
            escape = found[at : at + 6]
            reason = Msg(
                "{escape} is half of a UTF-16 surrogate pair, alone: it is no character",
                escape=escape,
            )
            raise json.JSONDecodeError(reason, text, token.start() + at)


def _lone_surrogate(string: str) -> int | None:
    """Where in `string` (a JSON string as written) a \\u escape of a surrogate is not one
    of a pair (a high one right before a low one, which json reads as one character)."""
    high = None  # where a high surrogate waits for its low half
    for escape in _ESCAPE.finditer(string):
        code = int(escape.group(1), 16) if escape.group(1) else -1
        if high is not None:
            if escape.start() != high + 6 or not 0xDC00 <= code <= 0xDFFF:
                return high
            high = None
        elif 0xD800 <= code <= 0xDBFF:
            high = escape.start()
        elif 0xDC00 <= code <= 0xDFFF:
            return escape.start()
    return high


def line_duplicate(line: bytes, value: Any, long_number: bool) -> Diagnostic | None:
    """duplicate_key for a line of `kimari batch` parsed (`value`) as the service parses a
    body: the cheap check first, the exact one only where a key may have been dropped."""
    pointer = duplicate_key(line, None if long_number else value)
    return duplicate_diagnostic(pointer) if pointer is not None else None


# -- policies ---------------------------------------------------------------------------------


# -- stores -----------------------------------------------------------------------------------

_SQLITE_HEADER = b"SQLite format 3\x00"


def check_store(store: Any, *, must_exist: bool, folder_must_exist: bool = False) -> None:
    """UsageError if the SQLite store `store` (a path or location; PostgreSQL passes) is not
    an SQLite database; with `must_exist` (a read), store_missing if there is no such file;
    with `folder_must_exist`, store_missing if its folder is not there (a mistyped path
    would create a new, empty store that answers as if it had no rows)."""
    from engine.store.backend import MEMORY, SQLITE, parse_location

    location = parse_location(store)
    if location.kind != SQLITE or location.target == MEMORY:
        return
    path = Path(location.target)
    if path.exists():
        if not path.is_file() or not _is_sqlite(path):
            reason = Msg("{path} is not an SQLite database", path=str(location))
            raise UsageError([Diagnostic("store_invalid", reason)])
        return
    missing = Diagnostic("store_missing", Msg("no store at {path}", path=str(location)))
    if must_exist:
        raise UsageError([missing])
    folder = path.parent
    if folder_must_exist and not folder.is_dir():
        hint = Msg(
            "the folder {folder} does not exist either: check the path; a new store is "
            "created only in a folder that exists",
            folder=str(folder),
        )
        raise UsageError([Diagnostic(missing.code, missing.message, hint=hint)])


def _is_sqlite(path: Path) -> bool:
    """Whether the file starts as an SQLite database does (an empty file becomes one)."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except OSError:
        return True  # unreadable: the store's own error names it
    return not head or head == _SQLITE_HEADER


# -- files ------------------------------------------------------------------------------------


def _identity(file: IO[bytes] | None) -> tuple[int, int] | None:
    """(device, inode) of a regular file open as `file`; None for a pipe or terminal."""
    try:
        found = os.fstat(file.fileno())  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):  # no descriptor (a test's buffer)
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISREG(found.st_mode) else None


def check_not_input(source: IO[bytes], source_name: str, output: str, stdout: Any) -> None:
    """UsageError if the output (a file name, or '-': stdout) is the file the requests are
    read from: opening it for writing would empty the input before a line is read."""
    read = _identity(source)
    if read is None:
        return
    if output == "-":
        written = _identity(stdout)
    else:
        try:
            found = Path(output).stat()  # through a symbolic link, as open() would
        except OSError:
            return  # a new file (or one the opening names the problem of)
        written = (found.st_dev, found.st_ino)
    if written == read:
        shown_input = "<stdin>" if source_name == "-" else source_name
        shown_output = "<stdout>" if output == "-" else output
        reason = Msg(
            "the output {output} is the input {input}: write the decisions to another file",
            output=shown_output,
            input=shown_input,
        )
        raise UsageError([Diagnostic("usage", reason)])


# -- values given on the command line ------------------------------------------------------


@contextlib.contextmanager
def named_options(places: Mapping[str, str]) -> Iterator[None]:
    """An InputError about values the command line gave (`--at`, `--role`, ...) names the
    options, not the JSON pointers the API gives them (/at, /actor/roles/0), and is a
    usage error (exit 2). `places`: pointer -> option. Problems of the facts or the event,
    read from a file, keep their pointers: they are the file's."""
    try:
        yield
    except InputError as exc:
        named = [_named(d, places) for d in exc.diagnostics]
        if any(d is None for d in named):
            raise
        found = [d for d in named if d is not None]
        if all(d.code in STATE_CONFLICTS for d in found):  # the store's state, not a misuse
            raise InputError(found) from None
        raise UsageError(found) from None


# problems of an option's value that the stored state makes, not the value's form: exit 1
# (a refused request), not 2 (a misuse of the command); the option is named all the same
STATE_CONFLICTS = frozenset({"event_id_conflict"})


def _named(problem: Diagnostic, places: Mapping[str, str]) -> Diagnostic | None:
    pointer = problem.pointer or ""
    for prefix in sorted(places, key=len, reverse=True):
        if pointer == prefix or pointer.startswith(prefix + "/"):
            option, inner = places[prefix], pointer[len(prefix) :]
            where = f"{option} {inner}" if inner and option == "--settings" else option
            message = Msg("{name}: {reason}", name=where, reason=problem.message)
            return dataclasses.replace(problem, message=message, pointer=None)
    return None
