"""Read-only dicts and lists: JSON parts built once and shared by every answer that holds them.

An explanation repeats what depends only on the revision (a rule's location, label and
refs, a condition's text and location) in every decision it explains. Copying those for
each one costs more than building the rest; shared, a change made through one answer
would show in every later one. These types are shared safely: they are a `dict` and a
`list` to every reader (orjson, json, jsonschema, `==`, `isinstance`), and any change
raises TypeError. A copy (`dict(x)`, `x.copy()`, `list(x)`) is a plain, changeable one.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any, NoReturn


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"this {type(self).__name__} is shared by every answer that holds it and cannot be "
        "changed: change a copy (dict(x) or list(x))"
    )


class ReadOnlyDict(dict[str, Any]):
    """A dict no one can change after it is made."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[ReadOnlyDict], tuple[dict[str, Any]]]:
        # pickle's default sets the items one by one, which this type refuses
        return ReadOnlyDict, (dict(self),)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: deepcopy(value, memo) for key, value in self.items()}


class ReadOnlyList(list[Any]):
    """A list no one can change after it is made."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[type[ReadOnlyList], tuple[list[Any]]]:
        return ReadOnlyList, (list(self),)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [deepcopy(value, memo) for value in self]


def frozen(value: Any) -> Any:
    """`value` (JSON: dicts, lists, scalars) as read-only dicts and lists, all the way down."""
    if isinstance(value, dict):
        return ReadOnlyDict({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return ReadOnlyList(frozen(item) for item in value)
    return value
