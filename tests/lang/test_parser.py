"""The expression parser: grammar, precedence, error positions, and property tests."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.lang import ast
from engine.lang.parser import MAX_DEPTH, MAX_LENGTH, ExprError, parse


def unparse(node: ast.Node) -> str:
    """Fully parenthesised source for a tree (the parser must read it back to the same tree)."""
    if isinstance(node, ast.Literal):
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"({value})" if value < 0 else str(value)
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Field):
        return f"{unparse(node.target)}.{node.name}"
    if isinstance(node, ast.Unary):
        return (
            f"(not {unparse(node.operand)})" if node.op == "not" else f"(-{unparse(node.operand)})"
        )
    if isinstance(node, ast.Logical):
        return "(" + f" {node.op} ".join(unparse(o) for o in node.operands) + ")"
    if isinstance(node, ast.Compare | ast.Arith):
        return f"({unparse(node.left)} {node.op} {unparse(node.right)})"
    if isinstance(node, ast.Call):
        return f"{node.name}(" + ", ".join(unparse(a) for a in node.args) + ")"
    if isinstance(node, ast.Lambda):
        return f"{node.param} -> {unparse(node.body)}"
    if isinstance(node, ast.ListLit):
        return "[" + ", ".join(unparse(i) for i in node.items) + "]"
    if isinstance(node, ast.RecordLit):
        inner = ", ".join(f"{k}: {unparse(v)}" for k, v in zip(node.keys, node.values, strict=True))
        return "{" + inner + "}"
    raise AssertionError(node)


def shape(node: ast.Node) -> object:
    """A tree without positions, to compare parses."""
    if isinstance(node, ast.Literal):
        return ("lit", type(node.value).__name__, node.value)
    if isinstance(node, ast.Name):
        return ("name", node.name)
    fields = {k: getattr(node, k) for k in node.__dataclass_fields__ if k not in ("start", "end")}
    out = []
    for key, value in sorted(fields.items()):
        if key in ("name_start", "name_end"):
            continue
        if isinstance(value, ast.Node):
            out.append((key, shape(value)))
        elif isinstance(value, tuple) and value and isinstance(value[0], ast.Node):
            out.append((key, tuple(shape(v) for v in value)))
        else:
            out.append((key, value))
    return (type(node).__name__, tuple(out))


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    node = parse("a or not b and c")
    assert isinstance(node, ast.Logical) and node.op == "or"
    right = node.operands[1]
    assert isinstance(right, ast.Logical) and right.op == "and"
    assert isinstance(right.operands[0], ast.Unary)


def test_arithmetic_precedence_and_left_associativity() -> None:
    node = parse("a - b - c * d")
    assert unparse(node) == "((a - b) - (c * d))"


def test_field_paths_read_as_paths() -> None:
    assert ast.path_of(parse("order.payment.method")) == ("order", "payment", "method")
    assert ast.path_of(parse("first(xs).id")) is None


def test_not_in_is_one_operator() -> None:
    node = parse('x not in ["a", "b"]')
    assert isinstance(node, ast.Compare) and node.op == "not in"


def test_numbers_with_a_fraction_are_decimal_never_float() -> None:
    node = parse("0.7")
    assert isinstance(node, ast.Literal) and node.value == Decimal("0.7")
    assert type(parse("70").value) is int  # type: ignore[attr-defined]


def test_negative_literals_fold_into_the_literal() -> None:
    node = parse("-3")
    assert isinstance(node, ast.Literal) and node.value == -3


def test_string_escapes_and_japanese_text() -> None:
    node = parse('"対象外\\n\\u3042" == x')
    assert isinstance(node, ast.Compare)
    assert node.left.value == "対象外\nあ"  # type: ignore[attr-defined]


def test_lambda_arguments_and_record_literals() -> None:
    node = parse("count(xs, x -> x.ok) >= 1 and similar(data.bl, {name: a, 'phone': b}, 2) != null")
    assert isinstance(node, ast.Logical)
    count = node.operands[0].left  # type: ignore[attr-defined]
    assert isinstance(count.args[1], ast.Lambda) and count.args[1].param == "x"


def test_spans_cover_the_source_of_each_node() -> None:
    source = "order.total > settings.limit"
    node = parse(source)
    assert isinstance(node, ast.Compare)
    assert source[node.right.start : node.right.end] == "settings.limit"


@pytest.mark.parametrize(
    ("source", "inner"),
    [
        ("not (a and b)", "(a and b)"),
        ("(a + b) * c", "(a + b)"),
        ("x == ((1))", "((1))"),
        ("f((a or b), c)", "(a or b)"),
    ],
)
def test_a_span_takes_its_parentheses_in(source: str, inner: str) -> None:
    """An explanation quotes a condition by its span: `not (a and b)` lost its `)`."""
    node = parse(source)
    assert source[node.start : node.end] == source
    assert inner in [source[c.start : c.end] for c in node.walk()]


@pytest.mark.parametrize(
    ("source", "offset", "message", "hint"),
    [
        ("a = 3", 2, "unexpected character '='", "use '==' to compare"),
        ("a ＞ 3", 2, "unexpected character '＞'", "this is a full-width character; write '>'"),
        ("a > １２", 4, "unexpected character '１'", "this is a full-width character; write '1'"),
        ("a > 1.５", 6, "unexpected character '５'", "this is a full-width character; write '5'"),
        ("a < b < c", 6, "comparisons cannot be chained, found '<'", "write 'a < b and b < c'"),
        ("f(", 2, "expected a value, a field or a function call, found end of expression", None),
        ('"abc', 0, "text is not closed", 'add the closing "'),
        ("x.", 2, "expected a field name after '.', found end of expression", None),
        (
            "a b",
            2,
            "expected the end of the expression, found 'b'",
            "join conditions with 'and' / 'or'",
        ),
        ("(a", 2, "expected ')' to close '(', found end of expression", None),
        ("and", 0, "expected a value, found 'and'", None),
        ("{a: 1, a: 2}", 7, "field 'a' is given twice", None),
        ("", 0, "expression is empty", None),
        (
            "order.sequence >= 012",
            18,
            "a number does not start with 0: 012",
            "write 12, or quote a code: '012'",
        ),
        (
            "x == 00.5",
            5,
            "a number does not start with 0: 00.5",
            "write 0.5, or quote a code: '00.5'",
        ),
    ],
)
def test_syntax_errors_point_at_the_offending_character(
    source: str, offset: int, message: str, hint: str | None
) -> None:
    with pytest.raises(ExprError) as caught:
        parse(source)
    problem = caught.value.problem
    assert (problem.start, problem.message, problem.hint) == (offset, message, hint)


def test_too_long_and_too_deep_expressions_are_refused() -> None:
    with pytest.raises(ExprError) as caught:
        parse("a" * (MAX_LENGTH + 1))
    assert caught.value.problem.code == "expr_too_long"
    with pytest.raises(ExprError) as caught:
        parse("(" * (MAX_DEPTH + 5) + "a" + ")" * (MAX_DEPTH + 5))
    assert caught.value.problem.code == "expr_too_deep"
    with pytest.raises(ExprError):
        parse("not " * (MAX_DEPTH + 5) + "a")


# -- property tests ----------------------------------------------------------------

names = st.sampled_from(["a", "b", "order", "total", "x_1", "settings", "derived"])
literals = st.one_of(
    st.integers(-1000, 1000),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False).filter(
        lambda d: d != d.to_integral_value()
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
    st.booleans(),
    st.none(),
).map(lambda v: ast.Literal(0, 0, v))


def trees(depth: int = 3) -> st.SearchStrategy[ast.Node]:
    leaf = st.one_of(literals, names.map(lambda n: ast.Name(0, 0, n)))
    if depth == 0:
        return leaf
    sub = st.deferred(lambda: trees(depth - 1))
    return st.one_of(
        leaf,
        st.builds(
            lambda t, n: ast.Field(0, 0, t, n, 0), names.map(lambda n: ast.Name(0, 0, n)), names
        ),
        st.builds(lambda o: ast.Unary(0, 0, "not", o), sub),
        st.builds(
            lambda op, xs: ast.Logical(0, 0, op, tuple(xs)),
            st.sampled_from(["and", "or"]),
            st.lists(sub, min_size=2, max_size=3),
        ),
        st.builds(
            lambda op, a, b: ast.Compare(0, 0, op, a, b),
            st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"]),
            sub,
            sub,
        ),
        st.builds(lambda op, a, b: ast.Arith(0, 0, op, a, b), st.sampled_from("+-*/"), sub, sub),
        st.builds(lambda xs: ast.ListLit(0, 0, tuple(xs)), st.lists(sub, max_size=3)),
        st.builds(lambda n, xs: ast.Call(0, 0, n, tuple(xs), 0), names, st.lists(sub, max_size=3)),
        st.builds(
            lambda p, b, xs: ast.Call(0, 0, "any", (xs, ast.Lambda(0, 0, p, b)), 0),
            names,
            sub,
            names.map(lambda n: ast.Name(0, 0, n)),
        ),
    )


@given(trees())
@settings(max_examples=400, deadline=None)
def test_printing_a_tree_and_parsing_it_back_gives_the_same_tree(tree: ast.Node) -> None:
    assert shape(parse(unparse(tree))) == shape(tree)


@given(trees())
@settings(max_examples=400, deadline=None)
def test_the_span_of_every_node_parses_back_to_that_node(tree: ast.Node) -> None:
    source = unparse(tree)
    for node in parse(source).walk():
        if not isinstance(node, ast.Lambda):  # `x -> ...` is an argument, not an expression
            assert shape(parse(source[node.start : node.end])) == shape(node), node


@given(st.text(max_size=60))
@settings(max_examples=600, deadline=None)
def test_any_text_either_parses_or_raises_an_expression_error(source: str) -> None:
    try:
        node = parse(source)
    except ExprError as exc:
        assert 0 <= exc.problem.start <= max(len(source), 0)
    else:
        assert 0 <= node.start <= node.end <= len(source)
