"""Strict checks of values read from files and the command line, shared by every parser.

The config, the sweep file, the search space and the course-report registry all read TOML
values with these, so one rule holds everywhere: a bool is never a number, a number is never
a string, an integer field takes no float (not even ``2.0``), and a number must be finite (an
integer too large for a float counts as infinite).

Each function returns the value (a number for a float field as ``float``) or raises a one-line
:class:`ConfigError`: ``[source: ]name=value: expected <what>``. ``expected`` replaces the
default wording of what was expected; ``shown`` replaces the ``name=value`` part, for the few
messages shaped differently.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from mnist_models.errors import ConfigError

__all__ = [
    "as_bool",
    "as_choice",
    "as_float",
    "as_int",
    "as_list",
    "as_str",
    "as_table",
    "fail",
    "spelled_out",
]


def fail(
    name: str, value: Any, expected: str, *, source: str | None = None, shown: str | None = None
) -> NoReturn:
    """Raises ``[source: ]name=value: expected <expected>`` as a :class:`ConfigError`."""
    what = f"{name}={value!r}" if shown is None else shown
    prefix = f"{source}: " if source else ""
    raise ConfigError(f"{prefix}{what}: expected {expected}")


def spelled_out(choices: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``: choices as an error message lists them."""
    quoted = [repr(choice) for choice in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def as_bool(
    name: str,
    value: Any,
    *,
    expected: str = "true or false",
    source: str | None = None,
    shown: str | None = None,
) -> bool:
    """``true`` or ``false``; never ``0``, ``1`` or ``"true"``."""
    if not isinstance(value, bool):
        fail(name, value, expected, source=source, shown=shown)
    return value


def as_int(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    expected: str | None = None,
    source: str | None = None,
    shown: str | None = None,
) -> int:
    """An integer in ``[low, high]`` (either bound optional); never a bool or a float."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(name, value, expected or "an integer", source=source, shown=shown)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(name, value, expected or _bounds(low, high), source=source, shown=shown)
    return value


def as_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    finite: bool = True,
    expected: str | None = None,
    source: str | None = None,
    shown: str | None = None,
) -> float:
    """A number (an integer is a fine float) in ``[low, high]``, returned as ``float``.

    Args:
        finite: Refuse NaN and infinities (integers beyond the float range included). Off
            only where a later check refuses them with a more telling message.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(name, value, expected or "a number", source=source, shown=shown)
    number = _to_float(value)
    if finite and not math.isfinite(number):
        fail(name, value, expected or "a finite number", source=source, shown=shown)
    if (low is not None and not number >= low) or (high is not None and not number <= high):
        fail(name, value, expected or _bounds(low, high), source=source, shown=shown)
    return number


def as_str(
    name: str,
    value: Any,
    *,
    expected: str = "a string",
    source: str | None = None,
    shown: str | None = None,
) -> str:
    """A string."""
    if not isinstance(value, str):
        fail(name, value, expected, source=source, shown=shown)
    return value


def as_choice(
    name: str,
    value: Any,
    choices: Sequence[str],
    *,
    expected: str | None = None,
    source: str | None = None,
    shown: str | None = None,
) -> str:
    """One of ``choices`` (the message lists them: ``one of ('a', 'b')`` by default)."""
    if not isinstance(value, str) or value not in choices:
        fail(name, value, expected or f"one of {choices}", source=source, shown=shown)
    return value


def as_table(
    name: str,
    value: Any,
    *,
    expected: str = "a table",
    source: str | None = None,
    shown: str | None = None,
) -> Mapping[str, Any]:
    """A TOML table (any mapping)."""
    if not isinstance(value, Mapping):
        fail(name, value, expected, source=source, shown=shown)
    return value


def as_list(
    name: str,
    value: Any,
    *,
    tuples: bool = False,
    expected: str = "a list",
    source: str | None = None,
    shown: str | None = None,
) -> list[Any]:
    """A TOML array, as a new list; with ``tuples``, a tuple too (a config's in-memory form)."""
    if not isinstance(value, (list, tuple) if tuples else list):
        fail(name, value, expected, source=source, shown=shown)
    return list(value)


def _to_float(value: int | float) -> float:
    """``float(value)``, but an integer beyond the largest float is infinite (``float()``
    raises for most such integers and rounds the rest down to the largest float)."""
    if isinstance(value, int) and abs(value) > sys.float_info.max:
        return math.inf if value > 0 else -math.inf
    return float(value)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"a value in [{low}, {high}]"
    return f">= {low}" if low is not None else f"<= {high}"
