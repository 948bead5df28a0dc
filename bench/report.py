"""Tables for the terminal and for docs/benchmarks.md.

`--write` replaces only the text between `<!-- bench:NAME:begin -->` and
`<!-- bench:NAME:end -->` for each section that ran, so the analysis written
around the figures survives a re-run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


class Report:
    def __init__(self, machine: dict[str, str]) -> None:
        self.machine = machine
        self.blocks: dict[str, list[str]] = {}
        self._current = "misc"

    def start(self, section: str) -> None:
        self._current = section

    def table(self, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
        self._emit(lines)

    def ratios(self, title: str, values: dict[str, float]) -> None:
        lines = [f"**{title}: ratios (same run)**", ""]
        lines += [f"- {name}: **{value:.2f}x**" for name, value in values.items()]
        self._emit(lines)

    def _emit(self, lines: list[str]) -> None:
        print("\n".join(lines) + "\n", flush=True)
        self.blocks.setdefault(self._current, []).extend([*lines, ""])

    def write(self, path: Path, sections: Iterable[str]) -> None:
        text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
        header = (
            f"Measured {self.machine['date']} on {self.machine['cpu']}, "
            f"{self.machine['cores']} cores, Python {self.machine['python']} "
            f"({self.machine['platform']})."
        )
        text = _replace(text, "machine", header)
        for section in sections:
            body = "\n".join(self.blocks.get(section, [])).strip()
            text = _replace(text, section, body)
        path.write_text(text, encoding="utf-8")


def _replace(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    block = f"{begin}\n{body}\n{end}"
    if begin in text:
        return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    return text.rstrip("\n") + f"\n\n{block}\n"
