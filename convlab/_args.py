"""Argument parsing and validation shared by every public function.

Everything a kernel relies on (shapes, positive strides, in-range padding) is checked here, in
plain Python, before any Numba code runs: Numba does not bounds-check, so a bad argument that
reached a kernel could read or write outside an array.

Integer arguments
-----------------
Every integer argument (stride, padding, dilation, groups, sizes) enters through
:func:`ntuple` or :func:`positive_int`, which accept Python and NumPy integers (not ``bool``) and
reject, with a ``ValueError`` that names the value, anything outside ``[0 or 1, 2**63 - 1]``:
PyTorch stores these arguments as int64 too, and rejects larger ones. Sizes are then computed in
Python integers (no overflow) by :mod:`convlab.shapes`, which also requires every extent a kernel
computes (padded sizes, ``(out - 1) * stride + (k - 1) * dilation + 1``, a transposed
convolution's uncropped size) to be at most :data:`INDEX_LIMIT` = ``2**62``, so that a kernel's
index arithmetic in int64 (a sum of two such extents at most) cannot overflow.

dtype rules
-----------
convlab computes in float32 or float64 and returns arrays of the dtype it computed in. For the
``input`` (the array that decides; :func:`float_array` without ``dtype``):

* ``float32`` and ``float64`` are kept, in either byte order (big-endian ``>f8`` from FITS files
  or ``np.fromfile`` is computed in float64 and returned in native byte order);
* ``float16`` is computed and returned in ``float32`` (PyTorch keeps float16; NumPy has no fast
  float16 arithmetic, and float32 is exact for every float16 value);
* extended precision (``np.longdouble`` where it is wider than float64, ``float128``) is
  rejected with a ``TypeError``: computing it in float64 would silently drop its extra bits, so
  the caller converts explicitly (``x.astype(np.float64)``);
* integers and ``bool`` are computed in ``float64`` (exact for integers up to ``2**53``).
  PyTorch computes integer convolutions in integers and rejects ``bool``; convlab returns floats;
* complex, object and string arrays are rejected with a ``TypeError``.

Weights, biases, offsets and masks follow the input's dtype (``float_array(..., dtype=x.dtype)``):
a float64 weight on a float32 input is rounded to float32, a float32 weight on a float64 input is
widened. PyTorch rejects mixed dtypes instead; convlab converts, as NumPy would.

Anything with ``__array__`` is accepted, including CPU ``torch.Tensor`` objects (through NumPy's
conversion, which shares memory). A tensor that requires grad gets a ``TypeError`` asking for
``.detach()``: convlab does not record gradients (its gradients are explicit functions,
:mod:`convlab.grad`).
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Collection
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

#: every integer argument must fit in int64, as in PyTorch
INT64_MAX = 2**63 - 1
#: every size, extent and index a kernel computes stays at most this (see the module notes)
INDEX_LIMIT = 2**62

#: a float32 or float64 array: what :func:`float_array` and every public function return
Array: TypeAlias = NDArray[np.floating[Any]]


def _out_of_range(name: str, value: object, v: int, lo: int) -> ValueError:
    """The error for entry ``v`` of argument ``name`` (given as ``value``) outside its range."""
    if v > INT64_MAX or lo < 0:
        return ValueError(
            f"{name} must fit in a 64-bit integer (|value| <= 2**63 - 1, as in PyTorch), "
            f"got {value!r}"
        )
    return ValueError(f"{name} must be {'non-negative' if lo == 0 else 'positive'}, got {value!r}")


def ntuple(
    value: Any, n: int, name: str, *, allow_zero: bool = False, allow_negative: bool = False
) -> tuple[int, ...]:
    """Normalise an int-or-tuple argument to a tuple of ``n`` Python ints.

    Raises ``TypeError`` for non-integers and ``ValueError`` for a wrong length or a value that is
    not positive (or non-negative when ``allow_zero``), or does not fit in int64.
    """
    lo = -INT64_MAX if allow_negative else (0 if allow_zero else 1)
    if type(value) is int and lo <= value <= INT64_MAX:
        return (value,) * n  # the common case, without the checks below (called on every conv)
    if type(value) is tuple and len(value) == n:
        # the other common case (shapes, and sizes computed by convlab itself): a tuple of plain
        # ints in range is returned as it is; the isinstance checks below against numbers'
        # abstract classes cost ~1 us per entry, ~25 us per call of a small layer's gradient
        for v in value:
            if type(v) is not int or not lo <= v <= INT64_MAX:
                break
        else:
            return value
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        values = (operator.index(value),) * n
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
        ints: list[int] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (numbers.Integral, np.integer)):
                raise TypeError(f"{name} must contain ints, got {value!r}")
            ints.append(operator.index(item))
        values = tuple(ints)
    for v in values:
        if not lo <= v <= INT64_MAX:
            raise _out_of_range(name, value, v, lo)
    return values


def positive_int(value: object, name: str) -> int:
    """A single positive Python int (``groups``, channel counts), at most ``2**63 - 1``."""
    if type(value) is int and 0 < value <= INT64_MAX:
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = operator.index(value)
    if not 0 < value <= INT64_MAX:
        if value > INT64_MAX:
            raise _out_of_range(name, value, value, 1)
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def check_extent(value: int, what: str) -> int:
    """``value`` (a size or extent computed from the arguments) must be at most INDEX_LIMIT."""
    if value > INDEX_LIMIT:
        raise ValueError(
            f"{what} = {value} exceeds 2**62: convlab's kernels index in 64-bit integers and "
            f"need every size and extent they compute to stay below 2**62"
        )
    return value


_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def _requires_grad(value: object) -> bool:
    # duck-typed so that torch is never imported: a torch.Tensor (or anything like it) that
    # records gradients; np.asarray would raise torch's RuntimeError on it
    return getattr(value, "requires_grad", False) is True and hasattr(value, "detach")


def float_array(value: npt.ArrayLike, name: str, dtype: npt.DTypeLike | None = None) -> Array:
    """Convert an array-like to a C-contiguous, native-byte-order float32/float64 array.

    The module notes state the rules: float32 and float64 are kept in either byte order, float16
    becomes float32, integers and booleans float64; wider floats, complex and other kinds are a
    ``TypeError``, as is a torch tensor that requires grad. With ``dtype`` given (weights, bias:
    they follow the input) the result is cast to it.
    """
    if type(value) is not np.ndarray and _requires_grad(value):
        raise TypeError(
            f"{name} is a tensor that requires grad; convlab computes on NumPy arrays and does not "
            f"record gradients: pass {name}.detach() (and see convlab.grad for gradients)"
        )
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a numeric array-like: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"{name} must be a real numeric array (bool, int or float), got dtype {arr.dtype}"
        )
    if dtype is None:
        if kind != "f":
            dtype = _FLOAT64
        elif arr.dtype.itemsize == 8:
            dtype = _FLOAT64  # any byte order
        elif arr.dtype.itemsize == 4:
            dtype = _FLOAT32
        elif arr.dtype.itemsize < 4:
            dtype = _FLOAT32  # float16: exact in float32
        else:
            raise TypeError(
                f"{name} has dtype {arr.dtype} ({8 * arr.dtype.itemsize}-bit floats): convlab "
                f"computes in float32 or float64 and does not silently drop precision; convert "
                f"it with {name}.astype(np.float64) if float64 is enough"
            )
    elif kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(
            f"{name} has dtype {arr.dtype} ({8 * arr.dtype.itemsize}-bit floats): convlab "
            f"computes in float32 or float64; convert it with {name}.astype(np.float64)"
        )
    return np.ascontiguousarray(arr, dtype=dtype)


def check_rank(arr: np.ndarray[Any, Any], ranks: Collection[int], name: str, layout: str) -> None:
    """``arr.ndim`` must be one of ``ranks``; the message spells the expected ``layout``."""
    if arr.ndim not in ranks:
        expected = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{name} must be {expected} {layout}, got shape {arr.shape}")


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def check_padding_mode(padding_mode: str) -> str:
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, got {padding_mode!r}"
        )
    return padding_mode
