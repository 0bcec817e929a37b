"""Parameter checks shared by the Python API, the CLI and the notebooks.

Each check either returns the value (converted where that is lossless) or
raises :class:`ParameterError` naming the parameter, what it got and what it
accepts, so bad input is refused before any work starts.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable


class ParameterError(ValueError):
    """A parameter outside its allowed values; the message names both."""


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def real(name: str, value, *, low: float | None = None, low_open: bool = False) -> float:
    """``value`` as a finite float, optionally ``> low`` (``low_open``) or ``>= low``."""
    if not _is_real(value):
        raise ParameterError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        relation = ">" if low_open else ">="
        raise ParameterError(f"{name} must be {relation} {low:g}, got {value!r}")
    return value


def positive(name: str, value) -> float:
    """A finite number > 0 (for example ``eta``)."""
    return real(name, value, low=0.0, low_open=True)


def non_negative(name: str, value) -> float:
    """A finite number >= 0 (for example ``lam``)."""
    return real(name, value, low=0.0)


def integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """An int in ``[low, high]`` (either bound optional)."""
    if not _is_int(value):
        raise ParameterError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "" if low is None else f"{low} <= "
        hi = "" if high is None else f" <= {high}"
        raise ParameterError(f"{name} must satisfy {lo}{name}{hi}, got {value}")
    return value


def choice(name: str, value, allowed: Iterable):
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def sequence(name: str, value, what: str, *, length: int | None = None, nonempty: bool = False) -> list:
    """``value`` as a list if it is a list or tuple (never a string), of ``length`` items if given."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple))
            or (length is not None and len(value) != length) or (nonempty and not value)):
        raise ParameterError(f"{name} must be {what}, got {value!r}")
    return list(value)


def integers(name: str, value, *, low: int | None = None) -> list[int]:
    """A non-empty list of ints, each ``>= low`` if given (for example batch sizes to choose from)."""
    return [integer(f"{name}[{i}]", v, low=low)
            for i, v in enumerate(sequence(name, value, "a non-empty list of integers", nonempty=True))]


def positive_range(name: str, value) -> list[float]:
    """A ``[low, high]`` pair of positive numbers with ``low <= high``."""
    lo, hi = sequence(name, value, "a [low, high] pair", length=2)
    lo, hi = positive(f"{name}[0]", lo), positive(f"{name}[1]", hi)
    if hi < lo:
        raise ParameterError(f"{name} range must have low <= high, got {value!r}")
    return [lo, hi]


def seeds(name: str, value) -> list[int]:
    """A non-empty list of distinct non-negative integer seeds."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ParameterError(f"{name} must be a list of integers, got {value!r}")
    out = [integer(f"{name}[{i}]", s, low=0) for i, s in enumerate(value)]
    if not out:
        raise ParameterError(f"{name} must not be empty")
    if len(set(out)) != len(out):
        raise ParameterError(f"{name} must not repeat a seed, got {out}")
    return out
