"""Parameter constraints, declared once per estimator and checked in one place.

Each estimator lists its parameters' constraints in ``_parameter_constraints`` (as
scikit-learn does); :func:`validate_params` checks them all at the start of ``fit`` and
raises an :class:`~iei_match.errors.InputError` that names the parameter, what it is and
what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from .errors import InputError

__all__ = ["Interval", "Options", "validate_params"]


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (``Integral`` or ``Real``) between ``low`` and ``high``.

    ``None`` leaves a side open; ``closed`` says which ends belong to it.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        value = float(value)  # type: ignore[arg-type]  # a Real, checked above
        if value != value:  # NaN
            return False
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left")
                                     else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right")
                                      else value < self.high)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        what = "a whole number" if self.kind is Integral else "a number"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        if self.low is None and self.high is None:
            return what
        if self.high is None:
            return f"{what} {'>=' if left == '[' else '>'} {self.low}"
        if self.low is None:
            return f"{what} {'<=' if right == ']' else '<'} {self.high}"
        return f"{what} in {left}{self.low}, {self.high}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``, booleans by identity)."""

    values: tuple

    def accepts(self, value) -> bool:
        for v in self.values:
            if isinstance(v, bool) or isinstance(value, bool):
                if value is v:
                    return True
            elif type(value) is type(v) and value == v:
                return True
        return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


def validate_params(estimator) -> None:
    """Check every parameter of ``estimator`` against its ``_parameter_constraints``.

    Raises
    ------
    InputError
        Naming the first parameter whose value no constraint accepts.

    Examples
    --------
    >>> class E:
    ...     _parameter_constraints = {"k": [Interval(Integral, 1)]}
    ...     k = 0
    >>> validate_params(E())
    Traceback (most recent call last):
    ...
    iei_match.errors.InputError: parameter k of E must be a whole number >= 1, got 0
    """
    for name, allowed in type(estimator)._parameter_constraints.items():
        value = getattr(estimator, name)
        if not any(c.accepts(value) for c in allowed):
            expected = " or ".join(str(c) for c in allowed)
            raise InputError(f"parameter {name} of {type(estimator).__name__} must be "
                             f"{expected}, got {value!r}")


INT, REAL = Integral, Real
