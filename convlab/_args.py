"""Argument parsing and validation shared by every public function.

Everything a kernel relies on (shapes, positive strides, in-range padding) is checked here, in
plain Python, before any Numba code runs: Numba does not bounds-check, so a bad argument that
reached a kernel could read or write outside an array.
"""

import numbers
import operator

import numpy as np


def ntuple(value, n, name, *, allow_zero=False, allow_negative=False):
    """Normalise an int-or-tuple argument to a tuple of ``n`` Python ints.

    Raises ``TypeError`` for non-integers and ``ValueError`` for a wrong length or a value that is
    not positive (or non-negative when ``allow_zero``).
    """
    if type(value) is int and (value > 0 or (value == 0 and allow_zero) or allow_negative):
        return (value,) * n  # the common case, without the checks below (called on every conv)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    else:
        try:
            items = list(value)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a tuple of {n} ints, got {value!r}"
            ) from None
        if len(items) == 1:
            items = items * n
        if len(items) != n:
            raise ValueError(
                f"{name} must be an int or a tuple of {n} ints (one per spatial dimension), "
                f"got {value!r} with {len(items)} entries"
            )
        values = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (numbers.Integral, np.integer)):
                raise TypeError(f"{name} must contain ints, got {value!r}")
            values.append(operator.index(item))
        values = tuple(values)
    for v in values:
        if allow_negative:
            continue
        if allow_zero and v < 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")
        if not allow_zero and v <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    return values


def positive_int(value, name):
    """A single positive Python int (``groups``, channel counts)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def float_array(value, name, dtype=None):
    """Convert an array-like to a C-contiguous float32/float64 array.

    ``float32`` and ``float64`` are kept; other real floats (``float16``) become ``float32``;
    integers and booleans become ``float64`` (NumPy's default). With ``dtype`` given the result is
    cast to it (used for weights and bias, which follow the input's dtype).
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be a numeric array-like: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real numeric array (bool, int or float), got dtype {arr.dtype}"
        )
    if dtype is None:
        if arr.dtype == np.float32 or arr.dtype == np.float64:
            dtype = arr.dtype
        elif arr.dtype.kind == "f":
            dtype = np.dtype(np.float32)
        else:
            dtype = np.dtype(np.float64)
    return np.ascontiguousarray(arr, dtype=dtype)


def check_rank(arr, ranks, name, layout):
    """``arr.ndim`` must be one of ``ranks``; the message spells the expected ``layout``."""
    if arr.ndim not in ranks:
        expected = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{name} must be {expected} {layout}, got shape {arr.shape}")


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def check_padding_mode(padding_mode):
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, got {padding_mode!r}"
        )
    return padding_mode
