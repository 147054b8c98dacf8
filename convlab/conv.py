"""Plain convolution: ``conv1d``, ``conv2d``, ``conv3d`` with the semantics of ``torch.nn.functional``.

Each public function validates and prepares in plain Python (dtype, rank, int-or-tuple arguments,
padding, output shape, allocation) and then makes one call into a Numba kernel.
"""

import numpy as np

from . import _kernels, _kernels_depthwise
from ._args import check_padding_mode, check_rank, float_array, ntuple, positive_int
from .algorithms import conv2d_im2col, im2col_buffer_nbytes
from .config import parallel_launch
from .shapes import conv_output_size, padding_pairs

__all__ = ["conv1d", "conv2d", "conv3d", "ALGORITHMS"]

#: algorithms accepted by :func:`conv2d` (and :func:`conv1d`, which runs on the 2-D kernels)
ALGORITHMS = ("auto", "direct", "im2col")

# np.pad's names for PyTorch's padding modes (torch.nn.ConvNd pads with F.pad, whose 'replicate'
# is NumPy's 'edge' and whose 'circular' is NumPy's 'wrap').
_NUMPY_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

_LAYOUT = {1: "(N, C, L) or (C, L)", 2: "(N, C, H, W) or (C, H, W)", 3: "(N, C, D, H, W) or (C, D, H, W)"}
_DIMS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


class _Prepared:
    """Validated, padded arguments of one convolution call."""

    __slots__ = ("x", "w", "b", "stride", "dilation", "groups", "out_shape", "unbatched")


def pad_input(x, pairs, padding_mode):
    """Pad the spatial dimensions of ``x`` (N, C, *spatial) as ``torch.nn.ConvNd`` does.

    ``pairs`` holds one ``(before, after)`` per spatial dimension; ``padding_mode`` is one of
    ``zeros``, ``reflect``, ``replicate``, ``circular``. The caller has checked the sizes.
    """
    if all(before == 0 and after == 0 for before, after in pairs):
        return x
    width = ((0, 0), (0, 0)) + tuple(pairs)
    return np.pad(x, width, mode=_NUMPY_PAD_MODE[padding_mode])


def _check_pad_fits(spatial, pairs, padding_mode, dim_names):
    """PyTorch's limits on non-zero padding modes, checked before np.pad sees them."""
    for name, size, (before, after) in zip(dim_names, spatial, pairs):
        pad = max(before, after)
        if pad == 0:
            continue
        if padding_mode == "reflect" and pad >= size:
            raise ValueError(
                f"reflect padding ({pad}) must be smaller than the input size ({size}) along {name}"
            )
        if padding_mode == "circular" and pad > size:
            raise ValueError(
                f"circular padding ({pad}) must not be larger than the input size ({size}) along "
                f"{name} (it would wrap around more than once)"
            )
        if padding_mode == "replicate" and size == 0:
            raise ValueError(f"replicate padding needs a non-empty input along {name}")


def _prepare(nd, input, weight, bias, stride, padding, dilation, groups, padding_mode, dim_names=None):
    """Validate everything for an ``nd``-dimensional convolution and pad the input.

    ``dim_names`` names the spatial dimensions in messages (conv1d runs as a height-1 conv2d but
    its users know their dimension as L).
    """
    x = float_array(input, "input")
    check_rank(x, (nd + 1, nd + 2), "input", _LAYOUT[nd])
    w = float_array(weight, "weight", dtype=x.dtype)
    check_rank(w, (nd + 2,), "weight", "(C_out, C_in/groups, " + ", ".join(f"k{d}" for d in _DIMS[nd]) + ")")
    if 0 in w.shape:
        raise ValueError(f"weight must not have a zero-size dimension, got shape {w.shape}")
    groups = positive_int(groups, "groups")
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    padding_mode = check_padding_mode(padding_mode)
    kernel = w.shape[2:]
    pairs = padding_pairs(padding, kernel, stride, dilation)

    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    c_in = x.shape[1]
    c_out = w.shape[0]
    if c_out % groups:
        raise ValueError(f"out_channels ({c_out}, weight.shape[0]) must be divisible by groups ({groups})")
    if c_in % groups:
        raise ValueError(f"in_channels ({c_in}) must be divisible by groups ({groups})")
    if c_in != w.shape[1] * groups:
        raise ValueError(
            f"input has {c_in} channels but weight.shape[1] * groups = {w.shape[1]} * {groups} = "
            f"{w.shape[1] * groups}: weight must be (C_out, C_in/groups, *kernel)"
        )
    if bias is None:
        b = np.zeros(c_out, dtype=x.dtype)
    else:
        b = float_array(bias, "bias", dtype=x.dtype)
        if b.shape != (c_out,):
            raise ValueError(f"bias must have shape (C_out,) = ({c_out},), got {b.shape}")

    spatial = x.shape[2:]
    if padding_mode != "zeros":
        _check_pad_fits(spatial, pairs, padding_mode, dim_names or _DIMS[nd])
    out_spatial = []
    for size, k, s, d, (before, after) in zip(spatial, kernel, stride, dilation, pairs):
        out_spatial.append(conv_output_size(size + before + after, k, s, 0, d))

    p = _Prepared()
    p.x = pad_input(x, pairs, padding_mode) if x.shape[0] else x
    p.x = np.ascontiguousarray(p.x)
    p.w, p.b = w, b
    p.stride, p.dilation, p.groups = stride, dilation, groups
    p.out_shape = (x.shape[0], c_out) + tuple(out_spatial)
    p.unbatched = unbatched
    return p


def _finish(p, out):
    return out[0] if p.unbatched else out


def _check_algorithm(algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}")


#: "auto" never lets im2col allocate more than this (bytes) for its column buffer
IM2COL_AUTO_LIMIT = 256 * 2**20


def choose_algorithm(x_shape, w_shape, out_shape, groups, itemsize):
    """The algorithm ``conv2d(..., algorithm="auto")`` runs for these shapes.

    im2col turns the convolution into one matrix product per group, which BLAS runs close to the
    machine's peak; it pays off when each group has enough input channels x taps to make the
    product large. The direct kernel wins for depthwise and narrow groups (little to multiply per
    copied element) and whenever the column buffer would be huge.
    """
    c_per_group, kh, kw = w_shape[1], w_shape[2], w_shape[3]
    taps = c_per_group * kh * kw
    nbytes = im2col_buffer_nbytes(x_shape[0], x_shape[1], (kh, kw), out_shape[2:], itemsize)
    if taps >= 16 and w_shape[0] // groups >= 8 and nbytes <= IM2COL_AUTO_LIMIT:
        return "im2col"
    return "direct"


def _conv2d_prepared(p, algorithm):
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size == 0:
        return out
    if algorithm in ("auto", "direct") and p.groups == p.x.shape[1]:
        # Depthwise (any multiplier K = C_out / C_in): the dedicated kernel gives the generic
        # kernel's results bit for bit, several times faster (benchmarks/bench_depthwise.py).
        with parallel_launch():
            _kernels_depthwise._conv2d_depthwise(p.x, p.w, p.b, out, *p.stride, *p.dilation)
        return out
    if algorithm == "auto":
        algorithm = choose_algorithm(p.x.shape, p.w.shape, p.out_shape, p.groups, p.x.itemsize)
    if algorithm == "im2col":
        conv2d_im2col(p.x, p.w, p.b, out, p.stride, p.dilation, p.groups)
    else:
        with parallel_launch():
            _kernels._conv2d_direct(p.x, p.w, p.b, out, *p.stride, *p.dilation, p.groups)
    return out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
           algorithm="auto"):
    """1-D cross-correlation, exactly ``torch.nn.functional.conv1d`` (plus ``padding_mode``).

    Parameters
    ----------
    input : array_like, shape (N, C_in, L) or (C_in, L)
    weight : array_like, shape (C_out, C_in / groups, k)
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of 1 int, positive
    padding : int, tuple, ``"same"`` or ``"valid"``
        Padding added to both ends. ``"same"`` (stride 1 only) pads ``d(k-1)`` in total, the odd
        element at the end, so the output has length ``L``.
    groups : int
        Split the channels into ``groups`` independent convolutions; must divide ``C_in`` and
        ``C_out``.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        How padded elements are filled, as in ``torch.nn.Conv1d``.
    algorithm : {"auto", "direct", "im2col"}
        See :func:`conv2d`; every choice gives the same result.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, L_out) or (C_out, L_out)
        ``L_out = floor((L + 2p - d(k-1) - 1) / s) + 1`` (:func:`convlab.conv_output_size`); the
        dtype is the input's (float32 or float64; integer input is computed in float64).

    Raises
    ------
    ValueError, TypeError
        For any argument that breaks the rules above, before any kernel runs.

    Examples
    --------
    >>> import numpy as np
    >>> conv1d([[[1, 2, 3, 4, 5, 6]]], np.full((1, 1, 3), 2.0))
    array([[[12., 18., 24., 30.]]])
    """
    _check_algorithm(algorithm)
    x = float_array(input, "input")
    check_rank(x, (2, 3), "input", _LAYOUT[1])
    w = float_array(weight, "weight", dtype=x.dtype)
    check_rank(w, (3,), "weight", "(C_out, C_in/groups, k)")
    # A 1-D convolution is a 2-D one over a height-1 image with a height-1 kernel.
    stride = ntuple(stride, 1, "stride")
    dilation = ntuple(dilation, 1, "dilation")
    if not isinstance(padding, str):
        padding = (0,) + ntuple(padding, 1, "padding", allow_zero=True)
    p = _prepare(2, x[..., None, :], w[:, :, None, :], bias, (1,) + stride, padding, (1,) + dilation,
                 groups, padding_mode, dim_names=("H", "L"))
    out = _conv2d_prepared(p, algorithm)
    return _finish(p, out)[..., 0, :]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
           algorithm="auto"):
    """2-D cross-correlation, exactly ``torch.nn.functional.conv2d`` (plus ``padding_mode``).

    ``out[n, j] = bias[j] + sum_k weight[j, k] * input[n, g*C_in/groups + k]`` where ``*`` is the
    2-D cross-correlation with the given stride, padding and dilation and ``g`` is ``j``'s group.

    Parameters
    ----------
    input : array_like, shape (N, C_in, H, W) or (C_in, H, W)
    weight : array_like, shape (C_out, C_in / groups, kH, kW)
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of 2 ints, positive
    padding : int, tuple of 2 ints, ``"same"`` or ``"valid"``
        Per-side padding. ``"same"`` (stride 1 only) keeps ``H, W``; an odd total puts the extra
        row/column at the bottom/right, as PyTorch does.
    groups : int
        Must divide ``C_in`` and ``C_out``. ``groups == C_in`` is a depthwise convolution.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        How padding is filled, as in ``torch.nn.Conv2d``. Reflect padding must be smaller than the
        input; circular padding must not exceed it.
    algorithm : {"auto", "direct", "im2col"}
        ``"direct"`` loops over the output in Numba; ``"im2col"`` copies every receptive field
        into a column matrix and does one matrix product per group; ``"auto"`` picks by
        :func:`convlab.conv.choose_algorithm`. All give the same result to float rounding.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1`` and likewise ``W_out``, with the input's
        dtype.

    Raises
    ------
    ValueError, TypeError
        For any argument that breaks the rules above, before any kernel runs.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d(x, np.ones((1, 1, 3, 3)))
    array([[[[45., 54.],
             [81., 90.]]]])
    """
    _check_algorithm(algorithm)
    p = _prepare(2, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    return _finish(p, _conv2d_prepared(p, algorithm))


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """3-D cross-correlation, exactly ``torch.nn.functional.conv3d`` (plus ``padding_mode``).

    Parameters
    ----------
    input : array_like, shape (N, C_in, D, H, W) or (C_in, D, H, W)
    weight : array_like, shape (C_out, C_in / groups, kD, kH, kW)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode
        As in :func:`conv2d`, with 3-tuples.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, D_out, H_out, W_out) or (C_out, D_out, H_out, W_out)

    Examples
    --------
    >>> import numpy as np
    >>> conv3d(np.ones((1, 2, 3, 3, 3)), np.ones((1, 2, 3, 3, 3))).ravel()
    array([54.])
    """
    p = _prepare(3, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size and p.groups == p.x.shape[1]:
        with parallel_launch():  # depthwise: the dedicated kernel, as in _conv2d_prepared
            _kernels_depthwise._conv3d_depthwise(p.x, p.w, p.b, out, *p.stride, *p.dilation)
    elif out.size:
        with parallel_launch():
            _kernels._conv3d_direct(p.x, p.w, p.b, out, *p.stride, *p.dilation, p.groups)
    return _finish(p, out)
