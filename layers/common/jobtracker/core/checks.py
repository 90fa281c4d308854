"""Small checks for what the event functions read and no request body carries: the settings
(environment variables), queue messages and ECS events. pydantic alone costs a cold start about
110 ms (0.1x the floor, bench/coldstart.py), so it stays with the HTTP API's models
(edge/api_models.py, the one owner of every request body's rules); each failure names its field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING
from typing import Any, TypeVar

T = TypeVar("T")

# The words pydantic's lax mode took for booleans (JSON and environment variables carry them).
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class Invalid(ValueError):
    """A value that breaks a rule: `field` is where (a dotted path, "" for the whole object),
    `message` what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def within(self, prefix: str | int) -> Invalid:
        outer = str(prefix)
        return Invalid(f"{outer}.{self.field}" if self.field else outer, self.message)


@contextmanager
def within(prefix: str | int) -> Iterator[None]:
    """Errors raised inside are about a part of `prefix`."""
    try:
        yield
    except Invalid as exc:
        raise exc.within(prefix) from None


def store(model: object, name: str, value: object) -> None:
    """In a frozen dataclass's __post_init__: keep the checked (and converted) value."""
    object.__setattr__(model, name, value)


def fields(
    data: object, allowed: frozenset[str], required: tuple[str, ...] = (), extra: bool = False
) -> dict[str, Any]:
    """An object's known fields; an unknown one is an error unless `extra` (then it is ignored)."""
    if not isinstance(data, dict):
        raise Invalid("", "must be an object")
    for name in required:
        if name not in data:
            raise Invalid(name, "field required")
    if not extra:
        for name in data:
            if name not in allowed:
                raise Invalid(str(name), "unknown field")
    return {k: v for k, v in data.items() if k in allowed}


def _bounds(value: float, name: str, ge: float | None, gt: float | None, le: float | None) -> None:
    # Written so that NaN fails every bound.
    if ge is not None and not value >= ge:
        raise Invalid(name, f"must be at least {ge}")
    if gt is not None and not value > gt:
        raise Invalid(name, f"must be greater than {gt}")
    if le is not None and not value <= le:
        raise Invalid(name, f"must be at most {le}")


def integer(
    value: object, name: str, ge: int | None = None, le: int | None = None, gt: int | None = None
) -> int:
    """An int; a whole float or a numeric string is taken too."""
    result: int | None = None
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        result = int(value)
    elif isinstance(value, str) and value.isascii() and "e" not in value.lower():
        # As pydantic's lax mode: "60" and "60.0", not "6e1" nor other scripts' digits.
        try:
            result = int(value.strip())
        except ValueError:
            try:
                whole = float(value.strip())
            except ValueError:
                whole = math.nan
            result = int(whole) if whole.is_integer() else None
    if result is None:
        raise Invalid(name, "must be an integer")
    _bounds(result, name, ge, gt, le)
    return result


def number(
    value: object,
    name: str,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
) -> float:
    """A float; an int or a numeric string is taken too."""
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str) and value.isascii():
        try:
            result = float(value.strip())
        except ValueError:
            raise Invalid(name, "must be a number") from None
    else:
        raise Invalid(name, "must be a number")
    if not math.isfinite(result):
        raise Invalid(name, "must be a finite number")
    _bounds(result, name, ge, gt, le)
    return result


def boolean(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise Invalid(name, "must be true or false")


def text(
    value: object,
    name: str,
    min_length: int = 0,
    max_length: int | None = None,
    pattern: str | None = None,
) -> str:
    if not isinstance(value, str):
        raise Invalid(name, "must be a string")
    if len(value) < min_length:
        raise Invalid(name, f"must have at least {min_length} character(s)")
    if max_length is not None and len(value) > max_length:
        raise Invalid(name, f"must have at most {max_length} characters")
    if pattern is not None and not re.fullmatch(pattern, value):  # "$" would pass a last "\n"
        raise Invalid(name, f"must match {pattern}")
    return value


def one_of(value: object, name: str, choices: tuple[T, ...]) -> T:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    raise Invalid(name, "must be one of " + ", ".join(repr(c) for c in choices))


def items(value: object, name: str, max_items: int | None = None) -> list[Any]:
    """A list (of anything yet: the caller checks each item)."""
    if not isinstance(value, list | tuple):
        raise Invalid(name, "must be a list")
    if max_items is not None and len(value) > max_items:
        raise Invalid(name, f"must have at most {max_items} items")
    return list(value)


def texts(
    value: object, name: str, max_items: int | None = None, max_length: int | None = None
) -> list[str]:
    return [
        text(item, f"{name}.{i}", max_length=max_length)
        for i, item in enumerate(items(value, name, max_items))
    ]


def mapping(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(name, "must be an object")
    return value


def optional(check: Callable[..., T], value: object, name: str, **limits: Any) -> T | None:
    """`check` on a value that may also be None."""
    return None if value is None else check(value, name, **limits)


def plain(model: Any, skip_defaults: bool = False) -> dict[str, Any]:
    """A dataclass as JSON-ready data, its None fields left out (and, with skip_defaults, those
    still at their default); dataclasses inside are converted too."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(model):
        value = getattr(model, f.name)
        if value is None:
            continue
        if skip_defaults:
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if value == default:
                continue
        out[f.name] = _plain_value(value, skip_defaults)
    return out


def _plain_value(value: Any, skip_defaults: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(value, skip_defaults)
    if isinstance(value, list | tuple):
        return [_plain_value(v, skip_defaults) for v in value]
    if isinstance(value, dict):
        return {k: _plain_value(v, skip_defaults) for k, v in value.items()}
    return value
