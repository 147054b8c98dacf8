"""Gradients of convolution, with the signatures and results of ``torch.nn.grad``.

For ``y = conv2d(x, w, stride=s, padding=p, dilation=d, groups=g)`` and an upstream gradient
``dL/dy`` (``grad_output``):

``conv2d_input(x.shape, w, grad_output, ...)``
    ``dL/dx``: the transposed convolution of ``grad_output`` with the *same* weight array,
    :func:`convlab.conv_transpose2d` with ``output_padding`` chosen so that the result has ``x``'s
    size. That is the whole reason transposed convolution exists in frameworks: it is the
    backward pass of a convolution (seed 004; Dumoulin & Visin 2016, section 4).
``conv2d_weight(x, w.shape, grad_output, ...)``
    ``dL/dw[oc, ci, kh, kw] = sum_{n, oh, ow} grad_output[n, oc, oh, ow] *
    x_padded[n, g*C_in/g + ci, oh*s + kh*d, ow*s + kw*d]``: the cross-correlation of the input
    with the output gradient, summed over the batch: per block of output positions, the output
    gradient times the input's values under each tap, read in place from a channels-last copy of
    the rows the block reads (for 1x1 kernels, times the input's columns; for depthwise layers
    and a few channels per group, one dot product per tap), in :mod:`convlab._engine`.

The ``1d`` and ``3d`` versions work the same way. All accept unbatched arrays too (PyTorch's
``torch.nn.grad`` needs a batch dimension); the result then has no batch dimension either.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt

from . import _engine
from ._args import Array, check_rank, float_array, ntuple, positive_int
from ._gather import sparse_padding, weight_grad

# torch has no deform_conv2d in torch.nn.grad; convlab's lives beside the forward pass and is
# re-exported here so that every gradient is found in one place.
from .deformable import deform_conv2d_grad as deform_conv2d
from .shapes import IntOrTuple, conv_output_size, conv_transpose_output_padding
from .transposed import conv_transpose1d, conv_transpose2d, conv_transpose3d

__all__ = [
    "conv1d_input",
    "conv2d_input",
    "conv3d_input",
    "conv1d_weight",
    "conv2d_weight",
    "conv3d_weight",
    "deform_conv2d",
]

_TRANSPOSE = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_KERNEL = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


def _shape(value: Sequence[int], name: str, ranks: Collection[int], layout: str) -> tuple[int, ...]:
    """A shape argument (``input_size``, ``weight_size``) as a tuple of non-negative ints."""
    if isinstance(value, (str, bytes)) or isinstance(value, numbers.Number):
        raise TypeError(f"{name} must be a sequence of ints (a full shape {layout}), got {value!r}")
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of ints (a full shape {layout}), got {value!r}"
        ) from None
    if len(items) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must have {expected} entries {layout}, got {value!r}")
    return ntuple(items, len(items), name, allow_zero=True)


def _grad_output(grad_output: npt.ArrayLike, nd: int, dtype: npt.DTypeLike | None = None) -> Array:
    go = float_array(grad_output, "grad_output", dtype=dtype)
    check_rank(
        go,
        (nd + 1, nd + 2),
        "grad_output",
        f"(N, C_out, {_SPATIAL[nd]}) or (C_out, {_SPATIAL[nd]})",
    )
    return go


def _check_consistent(
    nd: int,
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    out_spatial: Sequence[int],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> None:
    """``grad_output``'s spatial size must be what the convolution gives for the input size."""
    expected = conv_output_size(tuple(in_spatial), tuple(kernel), stride, padding, dilation)
    if tuple(expected) != tuple(out_spatial):
        raise ValueError(
            f"grad_output has spatial size {tuple(out_spatial)} but a convolution of an input of "
            f"spatial size {tuple(in_spatial)} with kernel {tuple(kernel)}, stride {stride}, "
            f"padding {padding}, dilation {dilation} gives {tuple(expected)}"
        )


def _conv_input(
    nd: int,
    input_size: Sequence[int],
    weight: npt.ArrayLike,
    grad_output: npt.ArrayLike,
    stride: IntOrTuple,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    groups: int,
) -> Array:
    go = _grad_output(grad_output, nd)
    w = float_array(weight, "weight", dtype=go.dtype)
    check_rank(w, (nd + 2,), "weight", f"(C_out, C_in/groups, {_KERNEL[nd]})")
    if 0 in w.shape:
        raise ValueError(f"weight must not have a zero-size dimension, got shape {w.shape}")
    unbatched = go.ndim == nd + 1
    rank = nd + 1 if unbatched else nd + 2
    layout = f"(C_in, {_SPATIAL[nd]})" if unbatched else f"(N, C_in, {_SPATIAL[nd]})"
    size = _shape(input_size, "input_size", (rank,), layout + " matching grad_output's batch")
    groups = positive_int(groups, "groups")
    stride = ntuple(stride, nd, "stride")
    padding = ntuple(padding, nd, "padding", allow_zero=True)
    dilation = ntuple(dilation, nd, "dilation")
    c_out = w.shape[0]
    go_b = go if not unbatched else go[None]
    size_b = size if not unbatched else (go_b.shape[0],) + size
    if c_out % groups:
        raise ValueError(
            f"out_channels ({c_out}, weight.shape[0]) must be divisible by groups ({groups})"
        )
    if go_b.shape[1] != c_out:
        raise ValueError(
            f"grad_output has {go_b.shape[1]} channels but weight.shape[0] (C_out) is {c_out}"
        )
    if size_b[1] != w.shape[1] * groups:
        raise ValueError(
            f"input_size has {size_b[1]} channels but weight.shape[1] * groups = {w.shape[1]} * "
            f"{groups} = {w.shape[1] * groups}: weight must be (C_out, C_in/groups, *kernel)"
        )
    if size_b[0] != go_b.shape[0]:
        raise ValueError(
            f"input_size has batch {size_b[0]} but grad_output has batch {go_b.shape[0]}"
        )
    in_spatial, out_spatial, kernel = size_b[2:], go_b.shape[2:], w.shape[2:]
    if 0 in in_spatial:
        raise ValueError(f"input_size must have non-empty spatial dimensions, got {tuple(size)}")
    _check_consistent(nd, in_spatial, kernel, out_spatial, stride, padding, dilation)
    # A strided convolution maps several input sizes to the same output size; the output padding
    # (always < stride here) makes the transposed convolution return the one in input_size.
    output_padding = conv_transpose_output_padding(
        tuple(out_spatial), tuple(in_spatial), tuple(kernel), stride, padding, dilation
    )
    return _TRANSPOSE[nd](go, w, None, stride, padding, output_padding, groups, dilation)


def _conv_weight(
    nd: int,
    input: npt.ArrayLike,
    weight_size: Sequence[int],
    grad_output: npt.ArrayLike,
    stride: IntOrTuple,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    groups: int,
) -> Array:
    x = float_array(input, "input")
    check_rank(x, (nd + 1, nd + 2), "input", f"(N, C_in, {_SPATIAL[nd]}) or (C_in, {_SPATIAL[nd]})")
    go = _grad_output(grad_output, nd, dtype=x.dtype)
    if go.ndim != x.ndim:
        raise ValueError(
            "input and grad_output must both be batched or both unbatched, got shapes "
            f"{x.shape} and {go.shape}"
        )
    size = _shape(weight_size, "weight_size", (nd + 2,), f"(C_out, C_in/groups, {_KERNEL[nd]})")
    if 0 in size:
        raise ValueError(f"weight_size must not have a zero entry, got {tuple(size)}")
    groups = positive_int(groups, "groups")
    stride = ntuple(stride, nd, "stride")
    padding = ntuple(padding, nd, "padding", allow_zero=True)
    dilation = ntuple(dilation, nd, "dilation")
    if x.ndim == nd + 1:
        x, go = x[None], go[None]
    c_out, c_per_group, kernel = size[0], size[1], size[2:]
    if c_out % groups:
        raise ValueError(
            f"out_channels ({c_out}, weight_size[0]) must be divisible by groups ({groups})"
        )
    if x.shape[1] != c_per_group * groups:
        raise ValueError(
            f"input has {x.shape[1]} channels but weight_size[1] * groups = {c_per_group} * {groups} = "
            f"{c_per_group * groups}: weight must be (C_out, C_in/groups, *kernel)"
        )
    if go.shape[1] != c_out:
        raise ValueError(
            f"grad_output has {go.shape[1]} channels but weight_size[0] (C_out) is {c_out}"
        )
    if go.shape[0] != x.shape[0]:
        raise ValueError(f"input has batch {x.shape[0]} but grad_output has batch {go.shape[0]}")
    _check_consistent(nd, x.shape[2:], kernel, go.shape[2:], stride, padding, dilation)

    if x.shape[0] == 0:
        return np.zeros(tuple(size), dtype=x.dtype)
    out_spatial = go.shape[2:]
    # one output along a dimension never uses its stride (a huge one sizes nothing then), and a
    # padding far beyond what is read is not copied: see convlab._gather
    stride = tuple(s if o > 1 else 1 for s, o in zip(stride, out_spatial, strict=True))
    if max(padding) > 64 and sparse_padding(
        x.shape[2:],
        tuple(n + 2 * q for n, q in zip(x.shape[2:], padding, strict=True)),
        out_spatial,
    ):
        return weight_grad(x, go, tuple(kernel), stride, dilation, padding, groups)
    result: Array = _engine.weight_grad(x, go, size, stride, dilation, padding, groups)
    return result


_INPUT_DOC = """Gradient of ``conv{nd}d`` with respect to its input: ``torch.nn.grad.conv{nd}d_input``.

    This *is* the transposed convolution: ``convlab.conv_transpose{nd}d(grad_output, weight,
    stride=s, padding=p, output_padding=a, groups=g, dilation=d)``, where ``a`` is derived from
    ``input_size`` (a strided convolution maps several input sizes to one output size, and ``a``
    picks the one given).

    Parameters
    ----------
    input_size : sequence of ints
        The full shape of the convolution's input, ``(N, C_in, {spatial})`` (``(C_in, {spatial})``
        when ``grad_output`` is unbatched).
    weight : array_like, shape (C_out, C_in / groups, {kernel})
        The convolution's weight (not a transposed layout).
    grad_output : array_like, shape (N, C_out, *out) or (C_out, *out)
        The gradient of the loss with respect to the convolution's output.
    stride, padding, dilation, groups
        Those of the convolution (ints or tuples; padding non-negative ints).

    Returns
    -------
    numpy.ndarray, shape ``input_size``
        With ``grad_output``'s dtype.

    Raises
    ------
    ValueError, TypeError
        If the shapes do not fit together (channels, groups, batch, or ``grad_output``'s size is
        not what the convolution gives for ``input_size``), before any kernel runs.
"""

_WEIGHT_DOC = """Gradient of ``conv{nd}d`` with respect to its weight: ``torch.nn.grad.conv{nd}d_weight``.

    ``grad_w[oc, ci, *k] = sum over n and output positions of grad_output[n, oc, *o] *
    input_padded[n, g*C_in/groups + ci, *(o*s + k*d)]``, computed by :mod:`convlab._engine`:
    blocks of the input's columns (im2col, zero padding written as they are built) times the
    matching block of ``grad_output``, one single-threaded BLAS product per block, summed over the
    blocks in an order fixed by the shapes (the same bits on any number of threads).

    Parameters
    ----------
    input : array_like, shape (N, C_in, {spatial}) or (C_in, {spatial})
        The convolution's input.
    weight_size : sequence of ints
        ``(C_out, C_in / groups, {kernel})``.
    grad_output : array_like, shape (N, C_out, *out) or (C_out, *out)
        Batched exactly when ``input`` is.
    stride, padding, dilation, groups
        Those of the convolution.

    Returns
    -------
    numpy.ndarray, shape ``weight_size``
        With ``input``'s dtype.

    Raises
    ------
    ValueError, TypeError
        If the shapes do not fit together, before any kernel runs.
"""


def conv1d_input(
    input_size: Sequence[int],
    weight: npt.ArrayLike,
    grad_output: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Array:
    return _conv_input(1, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv2d_input(
    input_size: Sequence[int],
    weight: npt.ArrayLike,
    grad_output: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Array:
    return _conv_input(2, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv3d_input(
    input_size: Sequence[int],
    weight: npt.ArrayLike,
    grad_output: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Array:
    return _conv_input(3, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv1d_weight(
    input: npt.ArrayLike,
    weight_size: Sequence[int],
    grad_output: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Array:
    return _conv_weight(1, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv2d_weight(
    input: npt.ArrayLike,
    weight_size: Sequence[int],
    grad_output: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Array:
    return _conv_weight(2, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv3d_weight(
    input: npt.ArrayLike,
    weight_size: Sequence[int],
    grad_output: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Array:
    return _conv_weight(3, input, weight_size, grad_output, stride, padding, dilation, groups)


_EXAMPLES = {
    "conv1d_input": """
    Examples
    --------
    >>> import numpy as np
    >>> conv1d_input((1, 1, 5), np.array([[[1.0, 2.0]]]), np.ones((1, 1, 4)))
    array([[[1., 3., 3., 3., 2.]]])
""",
    "conv2d_input": """
    Examples
    --------
    >>> import numpy as np
    >>> conv2d_input((1, 1, 3, 3), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> conv2d_input((1, 1, 6, 6), np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), stride=2).shape
    (1, 1, 6, 6)
""",
    "conv3d_input": """
    Examples
    --------
    >>> import numpy as np
    >>> float(conv3d_input((1, 2, 3, 3, 3), np.ones((1, 2, 3, 3, 3)), np.ones((1, 1, 1, 1, 1))).sum())
    54.0
""",
    "conv1d_weight": """
    Examples
    --------
    >>> import numpy as np
    >>> conv1d_weight(np.array([[[1.0, 2.0, 3.0, 4.0]]]), (1, 1, 2), np.ones((1, 1, 3)))
    array([[[6., 9.]]])
""",
    "conv2d_weight": """
    Examples
    --------
    >>> import numpy as np
    >>> conv2d_weight(np.arange(9.0).reshape(1, 1, 3, 3), (1, 1, 2, 2), np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
""",
    "conv3d_weight": """
    Examples
    --------
    >>> import numpy as np
    >>> conv3d_weight(np.ones((1, 1, 3, 3, 3)), (2, 1, 2, 2, 2), np.ones((1, 2, 2, 2, 2))).shape
    (2, 1, 2, 2, 2)
""",
}

for _nd, _spatial in _SPATIAL.items():
    for _func, _doc in ((f"conv{_nd}d_input", _INPUT_DOC), (f"conv{_nd}d_weight", _WEIGHT_DOC)):
        globals()[_func].__doc__ = (
            _doc.format(nd=_nd, spatial=_spatial, kernel=_KERNEL[_nd]) + _EXAMPLES[_func]
        )
del _nd, _spatial, _func, _doc


def __dir__() -> list[str]:
    # dir() lists the API (__all__), not the helpers this module imports (PEP 562)
    return sorted(__all__)
