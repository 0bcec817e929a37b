"""The building blocks of parameter checks.

Each check either returns the value (converted where that is lossless) or
raises :class:`ParameterError` naming the parameter, what it accepts and what
it got, so bad input is refused before any work starts.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable

_NOTHING = object()


class ParameterError(ValueError):
    """A parameter outside what it accepts: ``<name> must <requirement>, got <value>[; <hint>]``."""

    def __init__(self, name: str, requirement: str, value=_NOTHING, hint: str = ""):
        self.name, self.requirement, self.value, self.hint = name, requirement, value, hint
        super().__init__(self.message())

    def message(self) -> str:
        got = "" if self.value is _NOTHING else f", got {self.value!r}"
        return f"{self.name} must {self.requirement}{got}" + (f"; {self.hint}" if self.hint else "")

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: in a notebook, a bad parameter is one line
        return [f"{type(self).__name__}: {self}"]


class UnknownParameter(ParameterError):
    """Parameter names nobody declares; ``why`` says where they were looked for."""

    def __init__(self, names: Iterable[str], why: str, known: Iterable[str]):
        self.names, self.why, self.known = sorted(names), why, sorted(known)
        super().__init__(", ".join(self.names), "be a declared parameter")

    def message(self) -> str:
        guesses = [with_guess(n, self.known) for n in self.names]
        return (f"unknown parameter{'s' * (len(self.names) > 1)} {', '.join(guesses)}: {self.why}; "
                f"known: {', '.join(self.known)}")


def with_guess(name: str, known: Iterable[str], typed: str | None = None) -> str:
    """``typed`` (default ``name``), followed by ``(did you mean X?)`` if a known name is close to ``name``."""
    # a misspelling is the usual cause of an unknown name, so the nearest known one is offered
    close = difflib.get_close_matches(name, list(known), 1)
    return f"{typed or name} (did you mean {close[0]}?)" if close else typed or name


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def real(name: str, value, *, low: float | None = None, low_open: bool = False) -> float:
    """``value`` as a finite float, optionally ``> low`` (``low_open``) or ``>= low``."""
    if not _is_real(value):
        raise ParameterError(name, "be a number", value)
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ParameterError(name, "be finite", value)
    if low is not None and (value <= low if low_open else value < low):
        raise ParameterError(name, f"be {'>' if low_open else '>='} {low:g}", value)
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
        raise ParameterError(name, "be an integer", value)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            requirement = f"be an integer from {low} to {high}"
        else:
            requirement = f"be at least {low}" if low is not None else f"be at most {high}"
        raise ParameterError(name, requirement, value)
    return value


def flag(name: str, value) -> bool:
    """True or False, and nothing that merely compares equal to them (1, 0)."""
    if not isinstance(value, bool):
        raise ParameterError(name, "be True or False", value)
    return value


def choice(name: str, value, allowed: Iterable):
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ParameterError(name, f"be one of {', '.join(map(repr, allowed))}", value)
    return value


def sequence(name: str, value, what: str, *, length: int | None = None, nonempty: bool = False) -> list:
    """``value`` as a list if it is a list or tuple (never a string), of ``length`` items if given."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple))
            or (length is not None and len(value) != length) or (nonempty and not value)):
        raise ParameterError(name, f"be {what}", value)
    return list(value)


def positive_range(name: str, value) -> list[float]:
    """A ``[low, high]`` pair of positive numbers with ``low <= high``."""
    lo, hi = sequence(name, value, "a [low, high] pair", length=2)
    lo, hi = positive(f"{name}[0]", lo), positive(f"{name}[1]", hi)
    if hi < lo:
        raise ParameterError(name, "be a range with low <= high", value)
    return [lo, hi]
