"""Messages in more than one language: English for machines and logs, Japanese for people.

A message is written once, in English, as a template with named fields:

    Msg("unknown fact field '{name}'", name=field)

A `Msg` *is* its English text (a `str`), so everything that reads messages (logs, the
English output, tests, the `message` of a Diagnostic) sees exactly the text it saw before.
It also remembers its template and fields, so `translate(message, "ja")` looks the
template up in the gettext catalogue (engine/locale/ja/LC_MESSAGES/kimari.mo, compiled from
kimari.po, see docs/messages.md) and fills the Japanese template with the same fields. A
template the catalogue lacks is shown in English; codes, pointers and file:line:col are
never translated (they are not part of any message).

The rule for fields:
- a field that is itself a `Msg` is translated too (a nested reason, a word such as
  "the document"), in the same language;
- any other field is shown as it is: names, values, pointers, numbers, the user's text,
  and messages that come from elsewhere (a library's own error text).
Templates are `str.format` templates, always formatted: a literal brace is written twice.
Join translatable parts with a template ("{first}; {second}"), never with `+` or
`str.join`: the result of plain string operations is plain English text.

Which language: `translate` takes one, or uses the one *in effect*, a context variable that
is English unless a caller says otherwise: the service's worker sets it per request (from
`Accept-Language`, engine/service/http.py), the CLI per run (`KIMARI_LANG`,
engine/cli/main.py). A ContextVar, not a global, so that each thread (the worker's deciding
and committing threads) and each asyncio task (the front's requests) has its own.
"""

from __future__ import annotations

import errno
import functools
import gettext
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

DOMAIN = "kimari"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DEFAULT = "en"
LANGUAGES = ("en", "ja")  # every language the catalogue speaks; English is the source

_IN_EFFECT: ContextVar[str] = ContextVar("kimari_language", default=DEFAULT)


class Msg(str):
    """An English message that can be shown in another language (see the module's doc)."""

    template: str
    fields: dict[str, object]

    def __new__(cls, template: str, /, **fields: object) -> Msg:
        self = super().__new__(cls, template.format(**fields))
        self.template = template
        self.fields = fields
        return self

    def __reduce__(self) -> tuple[object, ...]:  # pickled whole, for processes
        return (_rebuild, (self.template, self.fields))

    def in_language(self, lang: str) -> str:
        """This message in `lang`; English where the catalogue has no translation."""
        if lang == DEFAULT:
            return str(self)
        template = catalogue(lang).gettext(self.template)  # itself when untranslated
        fields = {
            name: value.in_language(lang) if isinstance(value, Msg) else value
            for name, value in self.fields.items()
        }
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError):  # a broken translation: tests catch it
            return str(self)


class Rendered(Msg):
    """Text made for each language by a function, for what one template cannot say: a list
    of diagnostics, each rendered in the language it is shown in."""

    render: Callable[[str], str]

    def __new__(cls, render: Callable[[str], str]) -> Rendered:  # type: ignore[misc]
        english = render(DEFAULT)
        self = str.__new__(cls, english)
        self.template, self.fields, self.render = english, {}, render
        return self

    def __reduce__(self) -> tuple[object, ...]:  # a function may not pickle: its English
        return (str, (str(self),))

    def in_language(self, lang: str) -> str:
        return self.render(lang)


def plural(count: int, one: Msg, many: Msg) -> Msg:
    """`one` for a count of 1, else `many` ("1 error", "2 errors"): English needs the two
    forms; Japanese uses one text for both (the catalogue translates each)."""
    return one if count == 1 else many


def _rebuild(template: str, fields: dict[str, object]) -> Msg:
    return Msg(template, **fields)


@functools.cache
def catalogue(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of `lang`; an empty one (English) when there is none."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def language() -> str:
    """The language in effect here: 'en' unless a caller chose another."""
    return _IN_EFFECT.get()


def using_language(lang: str | None) -> _InLanguage:
    """Within the block, messages are shown in `lang` (a supported one, else English)."""
    return _InLanguage(lang if lang in LANGUAGES else DEFAULT)


class _InLanguage:
    """using_language's block: a class, not a generator under contextlib (1.13 -> 0.39 µs;
    a worker enters one per request)."""

    __slots__ = ("chosen", "token")

    def __init__(self, chosen: str) -> None:
        self.chosen = chosen

    def __enter__(self) -> str:
        self.token = _IN_EFFECT.set(self.chosen)
        return self.chosen

    def __exit__(self, *exc: object) -> None:
        _IN_EFFECT.reset(self.token)


def translate(text: str, lang: str | None = None) -> str:
    """`text` in `lang` (default: the language in effect). Only a `Msg` can be translated;
    any other text is returned as it is."""
    if not isinstance(text, Msg):
        return text
    return text.in_language(lang or language())


def message_of(exc: BaseException) -> str:
    """The message an exception was raised with: the `Msg` itself when it was raised with one
    (`str(exc)` would make it plain English text), else `str(exc)`."""
    if len(exc.args) == 1 and isinstance(exc.args[0], Msg):
        return exc.args[0]
    return str(exc)


def os_reason(exc: OSError) -> str:
    """Why the system refused a file, in words a message can translate for the common
    causes (the system's own text is English whatever the user reads)."""
    reasons = {
        errno.ENOENT: Msg("No such file or directory"),
        errno.EACCES: Msg("Permission denied"),
        errno.EPERM: Msg("Operation not permitted"),
        errno.EISDIR: Msg("Is a directory"),
        errno.ENOTDIR: Msg("Not a directory"),
        errno.ENOSPC: Msg("No space left on device"),
        errno.EROFS: Msg("Read-only file system"),
    }
    return reasons.get(exc.errno or 0) or exc.strerror or str(exc)


def translated(value: object, lang: str | None = None) -> object:
    """`value` with every `Msg` inside it (in lists and dict values) translated: for JSON
    bodies assembled before the language is applied."""
    if isinstance(value, Msg):
        return value.in_language(lang or language())
    if isinstance(value, dict):
        return {k: translated(v, lang) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [translated(v, lang) for v in value]
    return value


def pick_language(accept_language: str | None) -> str:
    """The language to answer in, from an `Accept-Language` header: the supported one the
    client ranks highest (q-values honoured, 'ja-JP' counts as 'ja'); English when the
    header is absent, malformed, or names none of ours."""
    if not accept_language:  # most clients send none: every request asks
        return DEFAULT
    best, best_q = DEFAULT, 0.0
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                q = q if 0.0 <= q <= 1.0 else 0.0  # also refuses nan and inf
        if q > best_q:
            best, best_q = primary, q
    return best
