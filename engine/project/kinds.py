"""Policy kinds and their compilers, written out: a `kind:` absent here compiles as a decision
(whose schema check then names the kinds that exist)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.compile.model import CompiledPolicy
from engine.compile.stages import compile_document
from engine.flow.compile import compile_flow
from engine.source.yaml import Document

Compiler = Callable[..., CompiledPolicy]
KIND_COMPILERS: dict[str, Compiler] = {
    "decision": compile_document,
    "flow": compile_flow,
}


def compile_any(
    document: Document,
    rulebook: Mapping[str, str] | None,
    files: Mapping[str, bytes] | None = None,
) -> CompiledPolicy:
    """Compile a document with the compiler of its `kind` (a decision by default)."""
    kind = document.data.get("kind") if isinstance(document.data, dict) else None
    compiler = KIND_COMPILERS.get(kind) if isinstance(kind, str) else None
    return (compiler or compile_document)(document, rulebook=rulebook, files=files)
