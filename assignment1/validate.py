"""The building blocks of parameter checks.

A check is a function ``check(name, value)`` that returns the value (converted where that is lossless) or raises
:class:`ParameterError` naming the parameter, what it accepts and what it got, so bad input is refused before
any work starts. :func:`real`, :func:`integer`, :func:`choice` and :func:`each` make checks.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable

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


Check = Callable[[str, object], object]


def real(low: float | None = None, low_open: bool = False) -> Check:
    """A check of a finite number (given as a float), optionally ``> low`` (``low_open``) or ``>= low``."""
    def check(name, value) -> float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ParameterError(name, "be a number", value)
        if not math.isfinite(value := float(value)):
            raise ParameterError(name, "be finite", value)
        if low is not None and (value <= low if low_open else value < low):
            raise ParameterError(name, f"be {'>' if low_open else '>='} {low:g}", value)
        return value
    return check


#: Checks of a number > 0 (``eta``) and >= 0 (``lam``).
positive, non_negative = real(0.0, low_open=True), real(0.0)


def integer(low: int | None = None, high: int | None = None) -> Check:
    """A check of an int in ``[low, high]`` (either bound optional)."""
    def check(name, value) -> int:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ParameterError(name, "be an integer", value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ParameterError(name, f"be at least {low}" if high is None else f"be at most {high}" if low is None
                                 else f"be an integer from {low} to {high}", int(value))
        return int(value)
    return check


def flag(name: str, value) -> bool:
    """True or False, and nothing that merely compares equal to them (1, 0)."""
    if not isinstance(value, bool):
        raise ParameterError(name, "be True or False", value)
    return value


def text(name: str, value) -> str:
    """A string."""
    if not isinstance(value, str):
        raise ParameterError(name, "be a string", value)
    return value


def choice(allowed: Iterable) -> Check:
    """A check of a value that is one of ``allowed``."""
    allowed = tuple(allowed)

    def check(name, value):
        if value not in allowed:
            raise ParameterError(name, f"be one of {', '.join(map(repr, allowed))}", value)
        return value
    return check


def sequence(name: str, value, what: str, *, length: int | None = None, nonempty: bool = False) -> list:
    """``value`` as a list if it is a list or tuple (never a string), of ``length`` items if given."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple))
            or (length is not None and len(value) != length) or (nonempty and not value)):
        raise ParameterError(name, f"be {what}", value)
    return list(value)


def each(item: Check, what: str = "a non-empty list", nonempty: bool = True) -> Check:
    """A check of a list (:func:`sequence`) whose items ``item`` checks, as ``<name>[i]``."""
    def check(name, value) -> list:
        return [item(f"{name}[{i}]", v) for i, v in enumerate(sequence(name, value, what, nonempty=nonempty))]
    return check
