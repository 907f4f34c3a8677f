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


def check_sizes(argument: str, value: Any, expected: str | None = None) -> tuple[int, ...]:
    """``value``, a list or tuple of positive integers (hidden-layer sizes; NumPy integers too), as a tuple."""
    if not isinstance(value, (list, tuple)) or any(_is_bool(size) or not isinstance(size, numbers.Integral) or size < 1
                                                   for size in value):
        raise invalid(argument, value, expected or "a list of positive layer sizes, e.g. [64, 64]")
    return tuple(int(size) for size in value)


def check_choice(argument: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise invalid(argument, value, f"one of {options}")
    return value


def check_device(argument: str, value: Any) -> Any:
    """``value`` as a ``torch.device`` that exists on this machine and can hold data (not ``meta``)."""
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
    if device.type == "meta":
        raise invalid(argument, value, "a device that holds data: 'meta' tensors have shapes but no values, so nothing "
                                       "can be trained or scored on them; use 'cpu' or 'cuda'")
    if device.type not in ("cpu", "cuda", "mps"):  # another backend: usable only if a tensor goes there and back
        try:
            torch.zeros(1, device=device).cpu()
        except Exception as error:  # not compiled in, no such hardware, or no storage (each backend says it its own way)
            reason = " ".join(str(error).split()).split(". ")[0].rstrip(".")
            raise invalid(argument, value, f"a device this PyTorch can hold data on ({type(error).__name__}: {reason}); "
                                           "use 'cpu' or 'cuda'") from None
    return device
