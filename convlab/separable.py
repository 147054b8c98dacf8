"""Separable convolutions: depthwise-separable layers and spatially separable (low-rank) kernels.

Two different things share the name:

* a **depthwise-separable** layer (Sifre 2014; Xception, Chollet 2017; MobileNet, Howard et al.
  2017) replaces one ``C_in -> C_out`` convolution by a depthwise convolution (``groups = C_in``,
  one ``kH x kW`` filter per input channel, or ``K`` of them with a depth multiplier ``K``) that
  filters, followed by a ``1 x 1`` convolution that mixes channels;
* a **spatially separable** kernel is a 2-D kernel that is an outer product ``col @ row`` (Sobel,
  Gaussian, box), so filtering with it is a column pass and a row pass: ``kH + kW`` multiply-adds
  per pixel instead of ``kH * kW``. Any kernel is a sum of ``rank`` such products (its SVD).

The public functions validate and allocate in plain Python, then call the Numba kernels of
:mod:`convlab._kernels_separable` (or :func:`convlab.conv2d`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import SupportsIndex

import numpy as np
import numpy.typing as npt

from . import _kernels_separable
from ._args import Array, check_rank, float_array, ntuple
from ._gather import sparse_padding
from .config import parallel_launch
from .conv import conv2d, pad_input
from .shapes import IntOrTuple, conv_output_size, padding_pairs

__all__ = [
    "depthwise_separable_conv2d",
    "separate_kernel",
    "SeparatedKernel",
    "spatially_separable_conv2d",
    "SEPARABLE_ALGORITHMS",
]

#: algorithms accepted by :func:`depthwise_separable_conv2d`
SEPARABLE_ALGORITHMS = ("auto", "fused", "two_pass")


def _as_batched(x: Array) -> tuple[Array, bool]:
    """Return ``(x4, unbatched)`` for an already rank-checked (C, H, W) or (N, C, H, W) array."""
    return (x[None], True) if x.ndim == 3 else (x, False)


def _check_nonempty(arr: Array, name: str) -> None:
    if 0 in arr.shape:
        raise ValueError(f"{name} must not have a zero-size dimension, got shape {arr.shape}")


def _optional_bias(
    bias: npt.ArrayLike | None, size: int, name: str, dtype: npt.DTypeLike, rule: str
) -> Array:
    if bias is None:
        return np.zeros(size, dtype=dtype)
    b = float_array(bias, name, dtype=dtype)
    if b.shape != (size,):
        raise ValueError(f"{name} must have shape ({rule},) = ({size},), got {b.shape}")
    return b


#: output pixels per task of the fused kernel (its buffer is C_in*K x about this many)
FUSED_BLOCK_PIXELS = 256


def _used_stride(stride: Sequence[int], out_spatial: Sequence[int]) -> tuple[int, ...]:
    """A dimension with one output never uses its stride: 1 there (a huge one then sizes nothing)."""
    return tuple(s if o > 1 else 1 for s, o in zip(stride, out_spatial, strict=True))


#: :func:`spatially_separable_conv2d` cuts its planes into blocks of rows until there are at
#: least this many tasks (a plane per task left one of two threads idle on a 3-channel image)
SEPARABLE_MIN_TASKS = 24


def _row_blocks(out_shape: Sequence[int]) -> int:
    """Blocks of output rows per plane in :func:`spatially_separable_conv2d`: from the shape
    only, so the work does not depend on the number of threads."""
    planes = out_shape[0] * out_shape[1]
    return max(1, min(out_shape[2], -(-SEPARABLE_MIN_TASKS // max(1, planes))))


def _sparse(
    spatial: Sequence[int], pairs: Sequence[tuple[int, int]], out_spatial: Sequence[int]
) -> bool:
    """Padding far beyond what is read (a huge stride or dilation): see convlab._gather."""
    return max(sum(pairs, ())) > 64 and sparse_padding(
        spatial, tuple(n + a + b for n, (a, b) in zip(spatial, pairs, strict=True)), out_spatial
    )


def _fused_rows(out_shape: Sequence[int]) -> int:
    """Output rows per task of the fused kernel: about FUSED_BLOCK_PIXELS pixels per block."""
    oh, ow = out_shape[2], out_shape[3]
    return max(1, min(oh, -(-FUSED_BLOCK_PIXELS // ow)))


def choose_separable_algorithm(c_mid: int, c_out: int) -> str:
    """The algorithm ``depthwise_separable_conv2d(..., algorithm="auto")`` runs.

    ``c_mid = C_in * K`` intermediate channels, ``c_out`` output channels. The fused kernel never
    writes the intermediate tensor to memory and wins on narrow layers, where the fixed costs of
    two convolutions and the intermediate's round trip dominate. Once the 1x1 convolution is a
    sizeable matrix product, one BLAS GEMM over the whole image (the two-pass path, through
    conv2d) beats the fused kernel's plain loops; the fused kernel cannot call BLAS itself, since
    a multi-threaded BLAS called from every ``prange`` thread oversubscribes the cores (a version
    that did took 460 ms instead of 48 ms for 64 -> 128 channels at 56 x 56 on a loaded 2-core
    machine). ``benchmarks/bench_separable.py``, float32, batch 1, 3x3,
    padding 1, one thread (``NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``; a shared 2-core machine
    under load gave unusable multi-threaded numbers), milliseconds:

    ===================  ======  ======  ============
    layer (56 x 56)      fused   two     two / fused
    ===================  ======  ======  ============
    8 -> 8               0.13    0.31    2.4
    16 -> 32             0.30    0.52    1.8
    32 -> 32             0.43    0.39    0.91
    64 -> 64             1.22    0.76    0.63
    128 -> 128           5.50    1.84    0.33
    ===================  ======  ======  ============

    so "auto" fuses while ``c_mid * c_out < FUSED_MAX_PRODUCT`` (1024).
    """
    return "fused" if c_mid * c_out < FUSED_MAX_PRODUCT else "two_pass"


#: "auto" fuses while ``C_in*K * C_out`` is below this (see :func:`choose_separable_algorithm`)
FUSED_MAX_PRODUCT = 1024


def depthwise_separable_conv2d(
    input: npt.ArrayLike,
    depthwise_weight: npt.ArrayLike,
    pointwise_weight: npt.ArrayLike,
    depthwise_bias: npt.ArrayLike | None = None,
    pointwise_bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    algorithm: str = "auto",
) -> Array:
    """Depthwise convolution followed by a 1x1 convolution (a depthwise-separable layer).

    Equal (to float rounding) to the two PyTorch-style calls ::

        mid = conv2d(input, depthwise_weight, depthwise_bias, stride, padding, dilation,
                     groups=C_in)
        out = conv2d(mid, pointwise_weight, pointwise_bias)

    the block of MobileNet (Howard et al. 2017) and Xception (Chollet 2017), without the
    normalisation and non-linearity MobileNet puts between the two convolutions.

    Parameters
    ----------
    input : array_like, shape (N, C_in, H, W) or (C_in, H, W)
    depthwise_weight : array_like, shape (C_in * K, 1, kH, kW)
        ``K`` filters per input channel (the depth multiplier, read from the shape); intermediate
        channel ``m`` filters input channel ``m // K``, as in ``torch.nn.Conv2d(groups=C_in)``.
    pointwise_weight : array_like, shape (C_out, C_in * K, 1, 1) or (C_out, C_in * K)
    depthwise_bias : array_like, shape (C_in * K,), optional
    pointwise_bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of 2 ints, positive
        Of the depthwise convolution (the 1x1 convolution has stride 1).
    padding : int, tuple of 2 ints, ``"same"`` or ``"valid"``
        Zero padding of the depthwise convolution, as in :func:`convlab.conv2d`.
    algorithm : {"auto", "fused", "two_pass"}
        ``"fused"`` runs one Numba kernel that computes a block of output rows of every
        intermediate channel in a small buffer and mixes it at once; ``"two_pass"`` makes the two
        :func:`convlab.conv2d` calls; ``"auto"`` picks by :func:`choose_separable_algorithm`
        (fused for narrow layers, two passes otherwise). All give the same result to rounding.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out``, ``W_out`` from :func:`convlab.conv_output_size` of the depthwise convolution;
        the input's dtype (float32 or float64).

    Raises
    ------
    ValueError, TypeError
        Wrong ranks or shapes (``depthwise_weight.shape[1] != 1``, ``C_in * K`` not a multiple
        of ``C_in``, pointwise input channels not ``C_in * K``, a pointwise kernel other than
        1x1, bias shapes), bad stride/padding/dilation, or an unknown algorithm.

    Notes
    -----
    Parameters: ``C_in K kH kW + C_out C_in K`` instead of ``C_out C_in kH kW``; multiply-adds per
    output pixel: ``C_in K kH kW + C_out C_in K`` instead of ``C_out C_in kH kW``. With ``K = 1``
    the ratio is ``1 / C_out + 1 / (kH kW)`` (:func:`convlab.count_params_depthwise_separable`,
    :func:`convlab.count_macs_depthwise_separable`).

    Examples
    --------
    Two channels, each summed over 3x3 windows, then mixed into (channel 0) and
    (channel 0 - channel 1):

    >>> import numpy as np
    >>> x = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4)
    >>> depthwise = np.ones((2, 1, 3, 3))
    >>> pointwise = np.array([[1.0, 0.0], [1.0, -1.0]])
    >>> depthwise_separable_conv2d(x, depthwise, pointwise)
    array([[[  45.,   54.],
            [  81.,   90.]],
    <BLANKLINE>
           [[-144., -144.],
            [-144., -144.]]])
    """
    if algorithm not in SEPARABLE_ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {', '.join(map(repr, SEPARABLE_ALGORITHMS))}, got {algorithm!r}"
        )
    x = float_array(input, "input")
    check_rank(x, (3, 4), "input", "(N, C_in, H, W) or (C_in, H, W)")
    wd = float_array(depthwise_weight, "depthwise_weight", dtype=x.dtype)
    check_rank(wd, (4,), "depthwise_weight", "(C_in*K, 1, kH, kW)")
    _check_nonempty(wd, "depthwise_weight")
    wp = float_array(pointwise_weight, "pointwise_weight", dtype=x.dtype)
    check_rank(wp, (2, 4), "pointwise_weight", "(C_out, C_in*K, 1, 1) or (C_out, C_in*K)")
    _check_nonempty(wp, "pointwise_weight")
    x, unbatched = _as_batched(x)
    c_in = x.shape[1]
    if c_in == 0:
        raise ValueError(f"input must have at least one channel, got shape {x.shape}")
    if wd.shape[1] != 1:
        raise ValueError(
            f"depthwise_weight.shape[1] must be 1 (each depthwise filter sees one input channel, "
            f"groups = C_in), got shape {wd.shape}"
        )
    c_mid = wd.shape[0]
    if c_mid % c_in:
        raise ValueError(
            f"depthwise_weight.shape[0] ({c_mid}) must be a multiple of the input's channels "
            f"({c_in}): depthwise_weight is (C_in*K, 1, kH, kW) with depth multiplier K"
        )
    multiplier = c_mid // c_in
    if wp.ndim == 4:
        if wp.shape[2:] != (1, 1):
            raise ValueError(
                f"pointwise_weight must be a 1x1 kernel (C_out, C_in*K, 1, 1), got shape {wp.shape}"
            )
        wp = wp.reshape(wp.shape[:2])
    if wp.shape[1] != c_mid:
        raise ValueError(
            f"pointwise_weight.shape[1] ({wp.shape[1]}) must equal the depthwise output channels "
            f"C_in*K = {c_in}*{multiplier} = {c_mid}"
        )
    c_out = wp.shape[0]
    bd = _optional_bias(depthwise_bias, c_mid, "depthwise_bias", x.dtype, "C_in*K")
    bp = _optional_bias(pointwise_bias, c_out, "pointwise_bias", x.dtype, "C_out")
    stride = ntuple(stride, 2, "stride")
    dilation = ntuple(dilation, 2, "dilation")
    kernel = wd.shape[2:]
    pairs = padding_pairs(padding, kernel, stride, dilation)
    out_spatial = tuple(
        conv_output_size(size + before + after, k, s, 0, d)
        for size, k, s, d, (before, after) in zip(
            x.shape[2:], kernel, stride, dilation, pairs, strict=True
        )
    )
    if algorithm == "auto":
        algorithm = choose_separable_algorithm(c_mid, c_out)
    if _sparse(x.shape[2:], pairs, out_spatial):
        algorithm = "two_pass"  # conv2d computes it by index maps

    if algorithm == "two_pass":
        # Arguments were checked above; conv2d checks them again (cheaply) and runs its own kernels.
        mid = conv2d(x, wd, bd, stride, padding, dilation, groups=c_in)
        out = conv2d(mid, wp[:, :, None, None], bp)
    else:
        stride = _used_stride(stride, out_spatial)  # the fused kernel's: conv2d does its own
        out = np.empty((x.shape[0], c_out) + out_spatial, dtype=x.dtype)
        if out.size:
            xp = np.ascontiguousarray(pad_input(x, pairs, "zeros"))
            with parallel_launch():
                _kernels_separable._depthwise_separable_fused(
                    xp,
                    wd,
                    bd,
                    np.ascontiguousarray(wp),
                    bp,
                    out,
                    multiplier,
                    *stride,
                    *dilation,
                    _fused_rows(out.shape),
                )
    return out[0] if unbatched else out


class SeparatedKernel:
    """The factors of :func:`separate_kernel`: ``col @ row`` approximates the kernel.

    Unpacks as the pair ``(col, row)``, so ``col, row = separate_kernel(k)`` works; the other
    fields are attributes.

    Attributes
    ----------
    col : numpy.ndarray, shape (kH, rank)
        Column factors: ``col[:, i] = sqrt(s_i) u_i``.
    row : numpy.ndarray, shape (rank, kW)
        Row factors: ``row[i] = sqrt(s_i) v_i``.
    rank : int
        Number of terms kept.
    error : float
        Frobenius norm of the residual ``kernel - col @ row``, of the factors as returned (in the
        kernel's dtype), computed in float64; 0 up to rounding when the kernel's rank is at most
        ``rank``.
    singular_values : numpy.ndarray, shape (min(kH, kW),)
        All singular values of the kernel, largest first; by Eckart–Young, ``error`` equals
        ``sqrt(sum(singular_values[rank:] ** 2))``.
    """

    __slots__ = ("col", "row", "error", "singular_values")
    col: Array
    row: Array
    error: float
    singular_values: Array

    def __init__(self, col: Array, row: Array, error: float, singular_values: Array) -> None:
        self.col = col
        self.row = row
        self.error = error
        self.singular_values = singular_values

    @property
    def rank(self) -> int:
        rank: int = self.col.shape[1]  # numpy types shape entries as Any
        return rank

    @property
    def kernel(self) -> Array:
        """The rank-``rank`` kernel ``col @ row``."""
        return self.col @ self.row

    def __iter__(self) -> Iterator[Array]:
        yield self.col
        yield self.row

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: SupportsIndex) -> Array:
        return (self.col, self.row)[index]

    def __repr__(self) -> str:
        return (
            f"SeparatedKernel(rank={self.rank}, error={self.error:.3g}, "
            f"col.shape={self.col.shape}, row.shape={self.row.shape})"
        )


def separate_kernel(
    kernel: npt.ArrayLike, rank: int | None = None, tol: float | None = None
) -> SeparatedKernel:
    """Split a 2-D kernel into column and row factors by the SVD: ``kernel ~= col @ row``.

    ``kernel = sum_i s_i u_i v_i^T``; keeping the ``r`` largest terms gives the best rank-``r``
    approximation in the Frobenius (and spectral) norm (Eckart–Young), with residual norm
    ``sqrt(sum_{i >= r} s_i^2)``. A kernel of rank 1 (Sobel, Gaussian, box) is separated exactly.

    Parameters
    ----------
    kernel : array_like, shape (kH, kW)
    rank : int, optional
        Number of terms, ``1 <= rank <= min(kH, kW)``. By default the numerical rank: the number
        of singular values larger than ``tol`` (at least 1, so a zero kernel gives zero factors).
    tol : float, optional
        Threshold for the numerical rank, non-negative. Default ``s_max * max(kH, kW) * eps``
        (``numpy.linalg.matrix_rank``'s), with ``eps`` of the kernel's dtype.

    Returns
    -------
    SeparatedKernel
        Unpacks as ``(col, row)`` with shapes ``(kH, r)`` and ``(r, kW)``; also has ``rank``,
        ``error`` (Frobenius norm of ``kernel - col @ row``) and ``singular_values``. The factors
        share ``sqrt(s_i)`` equally and have a fixed sign: the largest-magnitude entry of each
        column factor is positive (the first such entry, on ties), so results are reproducible.
        dtype: the kernel's (float32 or float64; integers give float64).

    Raises
    ------
    ValueError
        If the kernel is not 2-D or is empty, ``rank`` is out of range, or ``tol`` is negative.
    TypeError
        If ``rank`` is not an int or ``tol`` not a real number.

    Examples
    --------
    Sobel's x-derivative is a smoothing column times a difference row:

    >>> import numpy as np
    >>> sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    >>> col, row = separate_kernel(sobel)
    >>> col.shape, row.shape
    ((3, 1), (1, 3))
    >>> scale = col[0, 0]             # rescale to small integers; + 0.0 turns -0.0 into 0.0
    >>> print(np.round(col.ravel() / scale, 6) + 0.0, np.round(row.ravel() * scale, 6) + 0.0)
    [1. 2. 1.] [-1.  0.  1.]
    >>> separate_kernel(np.eye(3), rank=2).error   # drops one singular value 1
    1.0
    """
    k = float_array(kernel, "kernel")
    if k.ndim != 2:
        raise ValueError(f"kernel must be 2-D (kH, kW), got shape {k.shape}")
    _check_nonempty(k, "kernel")
    max_rank = min(k.shape)
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
            raise TypeError(f"tol must be a real number, got {tol!r}")
        if not tol >= 0:  # also rejects NaN
            raise ValueError(f"tol must be non-negative, got {tol!r}")
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, (numbers.Integral, np.integer)):
            raise TypeError(f"rank must be an int, got {rank!r}")
        if not 1 <= rank <= max_rank:
            raise ValueError(
                f"rank must be between 1 and min(kH, kW) = min{k.shape} = {max_rank}, got {rank}"
            )
    if not np.all(np.isfinite(k)):
        raise ValueError("kernel must contain only finite values (the SVD of NaN/inf is undefined)")
    # The SVD runs in float64 even for float32 kernels, so the factors are as exact as the dtype.
    u, s, vt = np.linalg.svd(k.astype(np.float64))
    if rank is None:
        threshold = s[0] * max(k.shape) * np.finfo(k.dtype).eps if tol is None else tol
        rank = max(1, int(np.count_nonzero(s > threshold)))
    rank = int(rank)
    root = np.sqrt(s[:rank])
    col = u[:, :rank] * root
    row = root[:, None] * vt[:rank]
    # Deterministic signs: the largest-magnitude entry of each column factor is positive.
    peaks = col[np.argmax(np.abs(col), axis=0), np.arange(rank)]
    signs = np.where(peaks < 0, -1.0, 1.0)
    col = col * signs
    row = row * signs[:, None]
    col, row = col.astype(k.dtype), row.astype(k.dtype)
    # The residual of the factors returned (rounded to the kernel's dtype), computed in float64.
    error = float(
        np.linalg.norm(k.astype(np.float64) - col.astype(np.float64) @ row.astype(np.float64))
    )
    return SeparatedKernel(col, row, error, s.astype(k.dtype))


def _factor(value: npt.ArrayLike, name: str, layout: str, vector_axis: int) -> Array:
    f = float_array(value, name)
    if f.ndim == 1:
        f = np.expand_dims(f, vector_axis)
    if f.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D {layout}, got shape {f.shape}")
    _check_nonempty(f, name)
    return f


def spatially_separable_conv2d(
    input: npt.ArrayLike,
    col: npt.ArrayLike,
    row: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
) -> Array:
    """Filter every channel with the kernel ``col @ row`` by a column pass and a row pass.

    Image filtering, channel by channel (no mixing): equal to a depthwise
    ``conv2d(input, K, groups=C, stride=stride, padding=padding)`` with
    ``K = col @ row`` repeated for every channel, to float rounding (the sums are taken in a
    different order). For each of the ``r`` terms, the input is filtered vertically with
    ``col[:, i]`` and the result horizontally with ``row[i]``; the terms are added.

    Parameters
    ----------
    input : array_like, shape (N, C, H, W) or (C, H, W)
    col : array_like, shape (kH, r) or (kH,)
        Column factors (a 1-D array is one term). :func:`separate_kernel`'s result can be
        unpacked here: ``spatially_separable_conv2d(x, *separate_kernel(k))``.
    row : array_like, shape (r, kW) or (kW,)
    stride : int or tuple of 2 ints, positive
    padding : int, tuple of 2 ints, ``"same"`` or ``"valid"``
        Zero padding, as in :func:`convlab.conv2d`.

    Returns
    -------
    numpy.ndarray, shape (N, C, H_out, W_out) or (C, H_out, W_out)
        Sizes from :func:`convlab.conv_output_size` with kernel ``(kH, kW)``; the input's dtype.

    Raises
    ------
    ValueError, TypeError
        Wrong ranks, ``col`` and ``row`` with different numbers of terms, empty factors, bad
        stride or padding, a kernel larger than the padded input.

    Notes
    -----
    Cost per output pixel and term: ``kH + kW`` multiply-adds instead of ``kH * kW`` (6 instead
    of 9 for 3x3, 14 instead of 49 for 7x7); the column pass also filters the ``kW - 1`` extra
    columns the row pass needs (:func:`convlab.count_macs_spatially_separable` counts exactly).

    Examples
    --------
    A 3x3 box blur is a 3-tap column average then a 3-tap row average:

    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 4, 4)
    >>> spatially_separable_conv2d(x, np.ones(3) / 3, np.ones(3) / 3)
    array([[[ 5.,  6.],
            [ 9., 10.]]])
    """
    x = float_array(input, "input")
    check_rank(x, (3, 4), "input", "(N, C, H, W) or (C, H, W)")
    c = _factor(col, "col", "(kH, r) or (kH,)", 1).astype(x.dtype)
    r = _factor(row, "row", "(r, kW) or (kW,)", 0).astype(x.dtype)
    if c.shape[1] != r.shape[0]:
        raise ValueError(
            f"col has {c.shape[1]} terms (shape {c.shape}, (kH, r)) but row has {r.shape[0]} "
            f"(shape {r.shape}, (r, kW)): the rank r must match"
        )
    stride = ntuple(stride, 2, "stride")
    kernel = (c.shape[0], r.shape[1])
    pairs = padding_pairs(padding, kernel, stride, (1, 1))
    x, unbatched = _as_batched(x)
    out_spatial = tuple(
        conv_output_size(size + before + after, k, s, 0, 1)
        for size, k, s, (before, after) in zip(x.shape[2:], kernel, stride, pairs, strict=True)
    )
    if _sparse(x.shape[2:], pairs, out_spatial):
        # the padded copy would be sized by the padding: the same filter as a depthwise conv2d,
        # which computes such a call by index maps (convlab._gather)
        kernel2d = np.broadcast_to((c @ r)[None, None], (x.shape[1], 1) + kernel)
        out = conv2d(x, kernel2d, stride=stride, padding=padding, groups=x.shape[1])
        return out[0] if unbatched else out
    stride = _used_stride(stride, out_spatial)
    out = np.empty(x.shape[:2] + out_spatial, dtype=x.dtype)
    if out.size:
        with parallel_launch():
            _kernels_separable._spatially_separable(
                np.ascontiguousarray(x),
                np.ascontiguousarray(c.T),
                np.ascontiguousarray(r),
                out,
                *stride,
                pairs[0][0],
                pairs[1][0],
                _row_blocks(out.shape),
            )
    return out[0] if unbatched else out
