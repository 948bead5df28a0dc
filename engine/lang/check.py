"""Name resolution and static type checking of expressions.

The checker walks a parsed expression once, gives every node a type, and
records each problem with its character span, so that a policy with ten
mistakes reports ten errors. It knows nothing of YAML or files: the caller
maps spans to `file:line:col`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from engine.core.i18n import Msg, plural
from engine.core.jsonvalue import quoted
from engine.core.suggest import did_you_mean
from engine.lang import ast
from engine.lang.functions import FUNCTIONS
from engine.lang.parser import Problem
from engine.lang.signatures import SignatureProblem
from engine.lang.types import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    NULL,
    NUMBER,
    NUMERIC_KINDS,
    STRING,
    UNKNOWN,
    Type,
    comparable,
    join,
    list_of,
    orderable,
    record,
)

# Root namespaces and the error code used for an unknown name under each.
UNKNOWN_CODES = {
    "fact": "unknown_fact_field",
    "settings": "unknown_setting",
    "derived": "unknown_derived",
    "data": "unknown_data_set",
    "outcome": "unknown_outcome_field",
}


@dataclass(frozen=True)
class Root:
    type: Type
    kind: str  # 'fact', 'settings', 'derived', 'data', 'at', 'outcome', 'param'


@dataclass
class Scope:
    roots: dict[str, Root] = field(default_factory=dict)

    def with_param(self, name: str, type_: Type) -> Scope:
        roots = dict(self.roots)
        roots[name] = Root(type_, "param")
        return Scope(roots)


def literal_type(value: object) -> Type:
    if value is None:
        return NULL
    if isinstance(value, datetime):
        return DATETIME
    if isinstance(value, date):
        return DATE
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, Decimal):
        return NUMBER
    if isinstance(value, str):
        return STRING
    return ANY


class Checker:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.types: dict[ast.Node, Type] = {}
        self.problems: list[Problem] = []

    def problem(
        self,
        node: ast.Node,
        code: str,
        message: str,
        hint: str | None = None,
        start: int | None = None,
    ) -> None:
        self.problems.append(
            Problem(node.start if start is None else start, node.end, code, message, hint)
        )

    def check(self, node: ast.Node, scope: Scope | None = None) -> Type:
        result = self._check(node, scope or self.scope)
        self.types[node] = result
        return result

    def _check(self, node: ast.Node, scope: Scope) -> Type:
        method = getattr(self, f"_{type(node).__name__.lower()}")
        return method(node, scope)  # type: ignore[no-any-return]

    # -- leaves -------------------------------------------------------------
    def _literal(self, node: ast.Literal, scope: Scope) -> Type:
        return literal_type(node.value)

    def _name(self, node: ast.Name, scope: Scope) -> Type:
        root = scope.roots.get(node.name)
        if root is None:
            self.problem(
                node,
                "unknown_name",
                Msg("unknown name '{name}'", name=node.name),
                did_you_mean(node.name, scope.roots),
            )
            return ANY
        return root.type

    def _field(self, node: ast.Field, scope: Scope) -> Type:
        target = self.check(node.target, scope)
        if target.kind == "any":
            return ANY
        path = ast.path_of(node)
        shown = ".".join(path) if path else node.name
        if target.kind == "list":
            self.problem(
                node,
                "field_of_list",
                Msg(
                    "'{list}' is a list; it has no field '{name}'",
                    list=shown[: -len(node.name) - 1],
                    name=node.name,
                ),
                Msg("use any(), all(), count() or first() over the list"),
            )
            return ANY
        if target.kind == "dataset":
            self.problem(
                node,
                "field_of_data_set",
                Msg("a data set has no fields to read"),
                Msg("pass it to find() or similar()"),
            )
            return ANY
        found = target.field(node.name)
        if found is not None:
            return found
        if target.kind != "record":
            self.problem(
                node,
                "type_mismatch",
                Msg(
                    "'{target}' is {type}; it has no field '{name}'",
                    target=shown[: -len(node.name) - 1],
                    type=target.describe(),
                    name=node.name,
                ),
                start=node.name_start,
            )
            return ANY
        self._unknown_field(node, scope, shown, target)
        return ANY

    def _unknown_field(self, node: ast.Field, scope: Scope, shown: str, target: Type) -> None:
        path = ast.path_of(node)
        root = scope.roots.get(path[0]) if path else None
        kind = root.kind if root else "fact"
        code = UNKNOWN_CODES.get(kind, "unknown_field")
        siblings = [f"{shown[: -len(node.name)]}{name}" for name in (target.fields or {})]
        deeper = _all_paths(path[0], root.type) if root and path else []
        hint = did_you_mean(shown, siblings) or did_you_mean(shown, deeper)
        self.problem(node, code, _unknown(kind, shown), hint, start=node.name_start)

    # -- operators ----------------------------------------------------------
    def _unary(self, node: ast.Unary, scope: Scope) -> Type:
        operand = self.check(node.operand, scope)
        if node.op == "not":
            self._expect_boolean(node.operand, operand, "'not'")
            return BOOLEAN
        if operand.kind not in NUMERIC_KINDS and operand.kind not in ("any", "null"):
            self.problem(
                node, "type_mismatch", Msg("cannot negate {type}", type=operand.describe())
            )
            return ANY
        return operand

    def _logical(self, node: ast.Logical, scope: Scope) -> Type:
        for operand in node.operands:
            self._expect_boolean(operand, self.check(operand, scope), f"'{node.op}'")
        return BOOLEAN

    def _expect_boolean(self, node: ast.Node, type_: Type, where: str) -> None:
        if type_.kind not in ("boolean", "any"):
            self.problem(
                node,
                "type_mismatch",
                Msg(
                    "{where} needs true/false, but this is {type}",
                    where=where,
                    type=type_.describe(),
                ),
                Msg("compare it, e.g. x == 'value' or x > 0"),
            )

    def _compare(self, node: ast.Compare, scope: Scope) -> Type:
        before = len(self.problems)
        left = self.check(node.left, scope)
        right = self.check(node.right, scope)
        if node.op not in ("in", "not in", "==", "!=") and len(self.problems) == before:
            self._typed(node, left, right, node.op)
        if node.op in ("in", "not in"):
            self._membership(node, left, right)
        elif node.op in ("==", "!="):
            if not comparable(left, right):
                self.problem(
                    node,
                    "type_mismatch",
                    Msg(
                        "cannot compare {left} with {right}",
                        left=left.describe(),
                        right=right.describe(),
                    ),
                )
            else:
                self._check_enum(node.left, left, node.right)
                self._check_enum(node.right, right, node.left)
        elif not orderable(left, right):
            self.problem(
                node,
                "type_mismatch",
                Msg(
                    "cannot order {left} and {right} with '{op}'",
                    left=left.describe(),
                    right=right.describe(),
                    op=node.op,
                ),
                Msg("only numbers, dates and date-times are ordered"),
            )
        return BOOLEAN

    def _typed(self, node: ast.Node, left: Type, right: Type, op: str) -> bool:
        """Ordering and arithmetic need operands whose type is known: a value of no declared
        type (a schema's `{}`, an `if` of a number or a text) may hold a text at run time,
        which neither orders with a number nor adds to one. Reported once, at the
        operation; False when it was."""
        for side, type_ in ((node.left, left), (node.right, right)):  # type: ignore[attr-defined]
            if type_.kind == "any" and type_ != UNKNOWN:
                self.problem(
                    side,
                    "type_mismatch",
                    Msg("'{op}' needs a value of a known type, but this may be anything", op=op),
                    Msg("give it a type in the facts schema, or make both branches one type"),
                )
                return False
        return True

    def _membership(self, node: ast.Compare, left: Type, right: Type) -> None:
        if right.kind not in ("list", "any"):
            self.problem(
                node.right,
                "type_mismatch",
                Msg(
                    "'{op}' needs a list on its right, got {type}",
                    op=node.op,
                    type=right.describe(),
                ),
            )
            return
        item = right.item or ANY
        if not comparable(left, item):
            self.problem(
                node,
                "type_mismatch",
                Msg(
                    "cannot look for {left} in a list of {item}",
                    left=left.describe(),
                    item=item.describe(),
                ),
            )
        elif isinstance(node.right, ast.ListLit):
            for element in node.right.items:
                self._check_enum(node.left, left, element)

    def _check_enum(self, field_node: ast.Node, type_: Type, value_node: ast.Node) -> None:
        if type_.enum is None or not isinstance(value_node, ast.Literal):
            return
        value = value_node.value
        if value is None or value in type_.enum:
            return
        path = ast.path_of(field_node)
        shown = ".".join(path) if path else Msg("this field")
        allowed = ", ".join(quoted(v) for v in type_.enum)
        hint = did_you_mean(str(value), [str(v) for v in type_.enum])
        self.problems.append(
            Problem(
                value_node.start,
                value_node.end,
                "unknown_enum_value",
                Msg(
                    "{value} is not a possible value of {field} (one of {allowed})",
                    value=quoted(value),
                    field=shown,
                    allowed=allowed,
                ),
                hint,
            )
        )

    def _arith(self, node: ast.Arith, scope: Scope) -> Type:
        before = len(self.problems)
        left = self.check(node.left, scope)
        right = self.check(node.right, scope)
        if len(self.problems) == before and not self._typed(node, left, right, node.op):
            return ANY
        for side, t in ((node.left, left), (node.right, right)):
            if t.kind not in NUMERIC_KINDS and t.kind not in ("any", "null"):
                hint = (
                    Msg("use add_days()/add_months() for dates")
                    if t.kind in ("date", "datetime")
                    else None
                )
                self.problem(
                    side,
                    "type_mismatch",
                    Msg("'{op}' needs numbers, got {type}", op=node.op, type=t.describe()),
                    hint,
                )
                return ANY
        divisor = node.right.value if isinstance(node.right, ast.Literal) else None
        if node.op == "/" and type(divisor) is not bool and divisor == 0:
            # a constant zero fails every decision that computes it: say so when it is written
            self.problem(node.right, "division_by_zero", Msg("division by zero"))
            return ANY
        nullable = left.nullable or right.nullable
        if node.op != "/" and left.kind == "integer" and right.kind == "integer":
            return INTEGER.with_nullable(nullable)
        return NUMBER.with_nullable(nullable)

    # -- compound values ----------------------------------------------------
    def _listlit(self, node: ast.ListLit, scope: Scope) -> Type:
        item: Type | None = None
        for element in node.items:
            t = self.check(element, scope)
            item = t if item is None else join(item, t)
        return list_of(item or ANY)

    def _recordlit(self, node: ast.RecordLit, scope: Scope) -> Type:
        return record(
            {k: self.check(v, scope) for k, v in zip(node.keys, node.values, strict=True)}
        )

    def _lambda(self, node: ast.Lambda, scope: Scope) -> Type:
        self.problem(
            node,
            "misplaced_lambda",
            Msg(
                "'{param} -> ...' is only allowed as an argument of "
                "any, all, count, first, filter, map, sum or count_distinct",
                param=node.param,
            ),
        )
        return ANY

    def _call(self, node: ast.Call, scope: Scope) -> Type:
        function = FUNCTIONS.get(node.name)
        if function is None:
            self.problem(
                node,
                "unknown_function",
                Msg("unknown function '{name}'", name=node.name),
                did_you_mean(node.name, FUNCTIONS),
            )
            for arg in node.args:
                if not isinstance(arg, ast.Lambda):
                    self.check(arg, scope)
            return ANY
        count = len(node.args)
        if not function.min_args <= count <= function.max_args:
            wanted = (
                plural(
                    function.min_args,
                    Msg("{count} argument", count=function.min_args),
                    Msg("{count} arguments", count=function.min_args),
                )
                if function.min_args == function.max_args
                else Msg("{low} to {high} arguments", low=function.min_args, high=function.max_args)
            )
            self.problem(
                node,
                "wrong_argument_count",
                Msg(
                    "{function}() takes {wanted}, got {count}",
                    function=node.name,
                    wanted=wanted,
                    count=count,
                ),
                _usage(function.signature),
            )
            return ANY
        types = self._arguments(node, function.lambda_args, scope)
        try:
            return function.check(types)
        except SignatureProblem as exc:
            where = node.args[exc.index] if exc.index is not None else node
            self.problem(
                where,
                "type_mismatch",
                Msg("{function}(): {reason}", function=node.name, reason=exc.message),
                _usage(function.signature),
            )
            return ANY

    def _arguments(self, node: ast.Call, lambda_args: Iterable[int], scope: Scope) -> list[Type]:
        wanted = set(lambda_args)
        types: list[Type] = []
        for index, arg in enumerate(node.args):
            is_lambda = isinstance(arg, ast.Lambda)
            if index in wanted and is_lambda:
                assert isinstance(arg, ast.Lambda)
                item = types[0].item if types and types[0].kind == "list" else None
                inner = scope.with_param(arg.param, item or ANY)
                body = self.check(arg.body, inner)
                self.types[arg] = body
                types.append(body)
            elif index in wanted:
                self.problem(
                    arg,
                    "type_mismatch",
                    Msg(
                        "{function}(): argument {index} must be 'x -> ...'",
                        function=node.name,
                        index=index + 1,
                    ),
                    _usage(FUNCTIONS[node.name].signature),
                )
                types.append(ANY)
            elif is_lambda:
                self.problem(
                    arg,
                    "misplaced_lambda",
                    Msg(
                        "{function}(): argument {index} cannot be 'x -> ...'",
                        function=node.name,
                        index=index + 1,
                    ),
                )
                types.append(ANY)
            else:
                types.append(self.check(arg, scope))
        return types


def _unknown(kind: str, name: str) -> Msg:
    """'unknown fact field ...', said of the kind of root the name starts from."""
    if kind == "fact":
        return Msg("unknown fact field '{name}'", name=name)
    if kind == "settings":
        return Msg("unknown setting '{name}'", name=name)
    if kind == "derived":
        return Msg("unknown derived value '{name}'", name=name)
    if kind == "data":
        return Msg("unknown data set '{name}'", name=name)
    if kind == "outcome":
        return Msg("unknown outcome field '{name}'", name=name)
    return Msg("unknown field '{name}'", name=name)


def _usage(signature: str) -> Msg:
    return Msg("usage: {signature}", signature=signature)


def _all_paths(root: str, type_: Type, depth: int = 0) -> list[str]:
    """Every dotted path below a record type, for suggestions across levels."""
    if type_.kind != "record" or not type_.fields or depth > 6:
        return []
    out: list[str] = []
    for name, child in type_.fields.items():
        path = f"{root}.{name}"
        out.append(path)
        out.extend(_all_paths(path, child, depth + 1))
    return out


def check_expression(
    node: ast.Node, scope: Scope
) -> tuple[Type, dict[ast.Node, Type], list[Problem]]:
    checker = Checker(scope)
    result = checker.check(node)
    return result, checker.types, checker.problems
