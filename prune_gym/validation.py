"""Argument checks at the door: each failure is one ``ValueError`` naming the argument, the value and what is expected.

NumPy scalars count as the Python numbers they hold; ``bool`` is not a number
and a number is not a ``bool``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np


def invalid(argument: str, value: Any, expected: str) -> ValueError:
    """The one-line error for a bad argument."""
    return ValueError(f"invalid {argument}={value!r}: expected {expected}")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_bool(argument: str, value: Any) -> bool:
    """``value`` as a bool; only True/False (or NumPy's) are accepted."""
    if not _is_bool(value):
        raise invalid(argument, value, "True or False")
    return bool(value)


def check_int(argument: str, value: Any, minimum: int | None = None, expected: str | None = None) -> int:
    """``value`` as an int (NumPy integers too), at least ``minimum``."""
    if _is_bool(value) or not isinstance(value, numbers.Integral) or (minimum is not None and value < minimum):
        raise invalid(argument, value, expected or (f"an integer >= {minimum}" if minimum is not None else "an integer"))
    return int(value)


def check_real(argument: str, value: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False,
               expected: str | None = None) -> float:
    """``value`` as a float in the interval from ``low`` to ``high`` (bounds open or closed)."""
    ok = not _is_bool(value) and isinstance(value, numbers.Real) and np.isfinite(float(value))
    if ok:
        number = float(value)
        ok = (number > low if low_open else number >= low) and (number < high if high_open else number <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise invalid(argument, value, expected or f"a number in {interval}")
    return float(value)


def check_choice(argument: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise invalid(argument, value, f"one of {options}")
    return value


def check_device(argument: str, value: Any) -> Any:
    """``value`` as a ``torch.device`` that exists on this machine."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise invalid(argument, value, "a torch device such as 'cpu', 'cuda' or 'cuda:0'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise invalid(argument, value, "an available device: this machine has no CUDA GPU (torch.cuda.is_available() is False); use 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise invalid(argument, value, f"a GPU index below {torch.cuda.device_count()} (this machine's GPU count)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise invalid(argument, value, "an available device: MPS is not available here; use 'cpu'")
    return device
