"""Tokenizer and recursive-descent parser of the expression language.

The grammar, loosest binding first:

    expr    := or
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := sum (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not' 'in') sum)?
    sum     := product (('+'|'-') product)*
    product := unary (('*'|'/') unary)*
    unary   := '-' unary | postfix
    postfix := primary ('.' NAME)*
    primary := NUMBER | STRING | 'true' | 'false' | 'null' | NAME | call
             | '(' expr ')' | '[' (expr (',' expr)*)? ']' | '{' (NAME ':' expr (',' ...)*)? '}'
    call    := NAME '(' (arg (',' arg)*)? ')'      arg := NAME '->' expr | expr

Work is bounded: expressions longer than MAX_LENGTH characters or nested
deeper than MAX_DEPTH are refused, and the language has no loops or
recursion, so evaluation is bounded by the size of the facts.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from engine.core.i18n import Msg
from engine.lang import ast

MAX_LENGTH = 4000
MAX_DEPTH = 40
MAX_NUMBER_DIGITS = 30
INT_MAX = 2**63 - 1  # a literal is never negative: '-' is an operator

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})


@dataclass(frozen=True, slots=True)
class Problem:
    """An error inside an expression, as character offsets into its source."""

    start: int
    end: int
    code: str
    message: str
    hint: str | None = None


class ExprError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # 'num', 'str', 'name', 'op', 'end'
    text: str
    start: int
    end: int
    value: object = None


# ASCII digits only (`\d` also takes '１２', which facts refuse): a full-width digit is an
# unexpected character, whose hint says which ASCII one to write
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[0-9]+(?:\.[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|==|!=|<=|>=|[<>+\-*/().,\[\]{}:])
  | (?P<str>"|')
    """,
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}

# Typed by habit in Japanese input methods; say what to write instead.
_LOOKALIKES = {
    "=": Msg("use '==' to compare"),
    "&": Msg("use 'and'"),
    "|": Msg("use 'or'"),
    "!": Msg("use 'not'"),
}


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExprError(_bad_character(source, pos))
        kind = match.lastgroup or ""
        if kind == "str":
            token, pos = _string(source, pos)
            tokens.append(token)
            continue
        if kind != "ws":
            text = match.group()
            value: object = None
            if kind == "num":
                value = _number(text, pos)
            tokens.append(Token(kind, text, pos, match.end(), value))
        pos = match.end()
    tokens.append(Token("end", "", len(source), len(source)))
    return tokens


def _number(text: str, pos: int) -> int | Decimal:
    """A number literal: an integer of 64 bits (what the rule engine compares) or a decimal of
    at most MAX_NUMBER_DIGITS digits; anything longer is refused before int() would choke."""
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        # 012: octal in some languages, an error in Python's, and often a code that lost
        # its quotes (a postal code, a product number); never silently 12
        shown = text.lstrip("0")
        shown = "0" + shown if not shown or shown[0] == "." else shown
        raise ExprError(
            Problem(
                pos,
                pos + len(text),
                "expr_syntax",
                Msg("a number does not start with 0: {text}", text=text),
                Msg("write {number}, or quote a code: '{text}'", number=shown, text=text),
            )
        )
    digits = len(text) - ("." in text)
    if "." in text and digits <= MAX_NUMBER_DIGITS:
        return Decimal(text)
    if "." not in text and digits <= 19 and int(text) <= INT_MAX:
        return int(text)
    raise ExprError(
        Problem(
            pos,
            pos + len(text),
            "number_out_of_range",
            Msg(
                "this number ({digits} digits) is out of range: integers must fit 64 bits "
                "(at most {high}), decimals have at most {limit} digits",
                digits=digits,
                high=INT_MAX,
                limit=MAX_NUMBER_DIGITS,
            ),
        )
    )


def _bad_character(source: str, pos: int) -> Problem:
    ch = source[pos]
    hint = _LOOKALIKES.get(ch)
    folded = unicodedata.normalize("NFKC", ch)
    if hint is None and folded != ch and folded.isascii():
        hint = Msg("this is a full-width character; write '{char}'", char=folded)
    if ch == "=" and source[pos : pos + 2] != "==":
        hint = _LOOKALIKES["="]
    return Problem(pos, pos + 1, "expr_syntax", Msg("unexpected character '{char}'", char=ch), hint)


def _string(source: str, start: int) -> tuple[Token, int]:
    quote = source[start]
    pos = start + 1
    out: list[str] = []
    while pos < len(source):
        ch = source[pos]
        if ch == quote:
            return Token("str", source[start : pos + 1], start, pos + 1, "".join(out)), pos + 1
        if ch == "\\":
            pos = _escape(source, pos, out)
            continue
        out.append(ch)
        pos += 1
    raise ExprError(
        Problem(
            start,
            len(source),
            "expr_syntax",
            Msg("text is not closed"),
            Msg("add the closing {quote}", quote=quote),
        )
    )


def _escape(source: str, pos: int, out: list[str]) -> int:
    nxt = source[pos + 1 : pos + 2]
    if nxt in _ESCAPES:
        out.append(_ESCAPES[nxt])
        return pos + 2
    if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", source[pos + 2 : pos + 6]):
        out.append(chr(int(source[pos + 2 : pos + 6], 16)))
        return pos + 6
    raise ExprError(
        Problem(
            pos, pos + 2, "expr_syntax", Msg("unknown escape '{escape}' in text", escape="\\" + nxt)
        )
    )


_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


class Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.pos = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def at(self, text: str) -> bool:
        tok = self.tok
        return tok.kind in ("op", "name") and tok.text == text

    def take(self) -> Token:
        tok = self.tok
        self.pos += 1
        return tok

    def expect(self, text: str, what: str) -> Token:
        if not self.at(text):
            raise self.error(Msg("expected '{token}' {where}", token=text, where=what))
        return self.take()

    def error(self, message: str, hint: str | None = None) -> ExprError:
        tok = self.tok
        found = Msg("end of expression") if tok.kind == "end" else f"'{tok.text}'"
        return ExprError(
            Problem(
                tok.start,
                max(tok.end, tok.start + 1),
                "expr_syntax",
                Msg("{expected}, found {found}", expected=message, found=found),
                hint,
            )
        )

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(
                Problem(
                    self.tok.start,
                    self.tok.end,
                    "expr_too_deep",
                    Msg("expression is nested deeper than {limit} levels", limit=MAX_DEPTH),
                )
            )

    # -- grammar -------------------------------------------------------
    def parse(self) -> ast.Node:
        if len(self.source) > MAX_LENGTH:
            raise ExprError(
                Problem(
                    0,
                    len(self.source),
                    "expr_too_long",
                    Msg("expression is longer than {limit} characters", limit=MAX_LENGTH),
                    Msg("split it into derived values"),
                )
            )
        if self.tok.kind == "end":
            raise ExprError(Problem(0, 0, "expr_syntax", Msg("expression is empty")))
        node = self.expr()
        if self.tok.kind != "end":
            hint = Msg("join conditions with 'and' / 'or'") if self.tok.kind != "op" else None
            raise self.error(Msg("expected the end of the expression"), hint)
        return node

    def expr(self) -> ast.Node:
        self.nested()
        try:
            return self.logical("or", self.logical_and)
        finally:
            self.depth -= 1

    def logical_and(self) -> ast.Node:
        return self.logical("and", self.negation)

    def logical(self, op: str, operand: Callable[[], ast.Node]) -> ast.Node:
        first = operand()
        items = [first]
        while self.at(op):
            self.take()
            items.append(operand())
        if len(items) == 1:
            return first
        return ast.Logical(first.start, items[-1].end, op, tuple(items))

    def negation(self) -> ast.Node:
        if self.at("not"):
            start = self.take().start
            self.nested()
            operand = self.negation()
            self.depth -= 1
            return ast.Unary(start, operand.end, "not", operand)
        return self.comparison()

    def comparison(self) -> ast.Node:
        left = self.sum()
        op = self.compare_op()
        if op is None:
            return left
        right = self.sum()
        if self.compare_op(peek=True) is not None:
            raise self.error(Msg("comparisons cannot be chained"), Msg("write 'a < b and b < c'"))
        return ast.Compare(left.start, right.end, op, left, right)

    def compare_op(self, peek: bool = False) -> str | None:
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARE:
            op = tok.text
        elif self.at("in"):
            op = "in"
        elif self.at("not") and self.peek(1).text == "in":
            op = "not in"
        else:
            return None
        if not peek:
            self.pos += 2 if op == "not in" else 1
        return op

    def sum(self) -> ast.Node:
        node = self.product()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.take().text
            right = self.product()
            node = ast.Arith(node.start, right.end, op, node, right)
        return node

    def product(self) -> ast.Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.take().text
            right = self.unary()
            node = ast.Arith(node.start, right.end, op, node, right)
        return node

    def unary(self) -> ast.Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            start = self.take().start
            self.nested()
            operand = self.unary()
            self.depth -= 1
            if isinstance(operand, ast.Literal) and type(operand.value) in (int, Decimal):
                return ast.Literal(start, operand.end, -operand.value)
            return ast.Unary(start, operand.end, "-", operand)
        return self.postfix()

    def postfix(self) -> ast.Node:
        node = self.primary()
        while self.at("."):
            self.take()
            tok = self.tok
            if tok.kind != "name":
                raise self.error(Msg("expected a field name after '.'"))
            self.take()
            node = ast.Field(node.start, tok.end, node, tok.text, tok.start)
        return node

    def primary(self) -> ast.Node:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.take()
            return ast.Literal(tok.start, tok.end, tok.value)
        if tok.kind == "name":
            return self.name_or_call()
        if self.at("("):
            start = self.take().start
            node = self.expr()
            end = self.expect(")", Msg("to close '('")).end
            # the span takes the parentheses in: `not (a and b)` is shown, and pointed at, whole
            return replace(node, start=start, end=end)
        if self.at("["):
            return self.list_literal()
        if self.at("{"):
            return self.record_literal()
        raise self.error(Msg("expected a value, a field or a function call"))

    def name_or_call(self) -> ast.Node:
        tok = self.take()
        constants = {"true": True, "false": False, "null": None}
        if tok.text in constants:
            return ast.Literal(tok.start, tok.end, constants[tok.text])
        if tok.text in KEYWORDS:
            self.pos -= 1
            raise self.error(Msg("expected a value"))
        if not self.at("("):
            return ast.Name(tok.start, tok.end, tok.text)
        self.take()
        args: list[ast.Node] = []
        while not self.at(")"):
            args.append(self.argument())
            if not self.at(")"):
                self.expect(",", Msg("between arguments"))
        end = self.take().end
        return ast.Call(tok.start, end, tok.text, tuple(args), tok.end)

    def argument(self) -> ast.Node:
        tok = self.tok
        following = self.peek(1)
        if tok.kind == "name" and following.kind == "op" and following.text == "->":
            self.pos += 2
            body = self.expr()
            return ast.Lambda(tok.start, body.end, tok.text, body)
        return self.expr()

    def list_literal(self) -> ast.Node:
        start = self.take().start
        items: list[ast.Node] = []
        while not self.at("]"):
            items.append(self.expr())
            if not self.at("]"):
                self.expect(",", Msg("between list items"))
        end = self.take().end
        return ast.ListLit(start, end, tuple(items))

    def record_literal(self) -> ast.Node:
        start = self.take().start
        keys: list[str] = []
        values: list[ast.Node] = []
        while not self.at("}"):
            tok = self.tok
            if tok.kind not in ("name", "str"):
                raise self.error(Msg("expected a field name in '{{...}}'"))
            self.take()
            name = tok.text if tok.kind == "name" else str(tok.value)
            if name in keys:
                raise ExprError(
                    Problem(
                        tok.start,
                        tok.end,
                        "expr_syntax",
                        Msg("field '{name}' is given twice", name=name),
                    )
                )
            self.expect(":", Msg("after the field name"))
            keys.append(name)
            values.append(self.expr())
            if not self.at("}"):
                self.expect(",", Msg("between fields"))
        end = self.take().end
        return ast.RecordLit(start, end, tuple(keys), tuple(values))


@functools.lru_cache(maxsize=8192)
def parse(source: str) -> ast.Node:
    """Parse an expression or raise ExprError with the offending span.

    Remembered by text (the nodes are immutable and carry offsets into the text only): a
    reload, a worker's compile of a stored revision or another policy with the same
    expression parses it once. A failure is not remembered; it is raised again.
    """
    return Parser(source).parse()
