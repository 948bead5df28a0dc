"""Find the console's built files, and say how each is served.

    static/index.html        the console          GET /console   no-cache
    static/docs.html         the API docs page    GET /docs      no-cache
    static/assets/<name>     scripts, styles, ... GET /console/assets/<name>, immutable

A request never names a path on disk: the files of `static/assets/` are listed once, and
a request's asset name is looked up in that list, so `..`, `%2F`, a symbolic link or a
name that was not built is simply not found. Vite writes every file of `assets/` with a
content hash in its name, so a browser may keep it for a year; the two pages are
revalidated on every visit and name the current hashes.

The pages carry a Content-Security-Policy that allows nothing but this origin: a page
that tried to load a script or font from a CDN would fail in the browser tests (they
assert an empty console log), not only when someone is offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).parent / "static"
PAGES = {"console": "index.html", "docs": "docs.html"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".txt": "text/plain; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# inline styles: mermaid and Swagger UI set style attributes and <style> elements
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class File:
    body: bytes
    headers: tuple[tuple[str, str], ...]


class NotBuilt(Exception):
    """The console's files are missing: `make console` builds them."""


class Assets:
    """The built files under `root`, listed once; each read on first use and kept."""

    def __init__(self, root: Path = STATIC) -> None:
        self.root = root
        folder = root / "assets"
        self.names: dict[str, Path] = {}
        if folder.is_dir():
            for path in folder.iterdir():
                if _NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                    self.names[path.name] = path
        self._cache: dict[str, File] = {}

    @property
    def built(self) -> bool:
        return all((self.root / page).is_file() for page in PAGES.values())

    def page(self, name: str) -> File:
        """`console` or `docs`; NotBuilt when the console was never built."""
        if name not in self._cache:
            path = self.root / PAGES[name]
            if not path.is_file():
                raise NotBuilt(name)
            self._cache[name] = File(path.read_bytes(), _headers(path.name, REVALIDATE, page=True))
        return self._cache[name]

    def asset(self, name: str) -> File | None:
        """The asset of that exact name, or None."""
        found = self._cache.get("assets/" + name)
        if found is not None:
            return found
        path = self.names.get(name)
        if path is None:
            return None
        try:
            body = path.read_bytes()
        except OSError:  # deleted by a rebuild meanwhile
            return None
        found = File(body, _headers(name, IMMUTABLE))
        self._cache["assets/" + name] = found
        return found


def _headers(name: str, cache: str, *, page: bool = False) -> tuple[tuple[str, str], ...]:
    kind = TYPES.get(Path(name).suffix, "application/octet-stream")
    out = [
        ("content-type", kind),
        ("cache-control", cache),
        ("x-content-type-options", "nosniff"),
    ]
    if page:
        out += [("content-security-policy", POLICY), ("referrer-policy", "no-referrer")]
    return tuple(out)
