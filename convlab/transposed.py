"""Transposed convolution: ``conv_transpose1d/2d/3d`` with the semantics of ``torch.nn.functional``.

A transposed convolution is the adjoint of a convolution with the same ``stride``, ``padding``,
``dilation`` and ``groups``: if ``y = conv(x)`` then ``<conv(x), y> = <x, conv_transpose(y)>``,
which is why it is the backward pass of a convolution with respect to its input
(:func:`convlab.grad.conv2d_input`) and why, as a matrix, it is ``W'^T`` where ``W'`` is the
convolution's matrix (:func:`convlab.conv_matrix`). It maps a size ``i`` to
``(i - 1) s - 2p + d (k - 1) + a + 1`` (:func:`convlab.shapes.conv_transpose_output_size`).

Two algorithms compute it, both without building a dense matrix or inserting zeros:

``"direct"``
    a Numba kernel that scatters every input element times every tap into the output; each
    parallel task owns one (image, output channel) plane, so there are no write races. In 2-D the
    task scatters into its plane split by stride phase, so that reads and writes are contiguous.
``"gemm"``
    matrix products ``cols = W_g^T @ x_g`` (every input pixel times every tap of a block of
    output channels of one image), each folded into its output planes (``col2im``, cropping the
    padding on the fly; with a stride and at least two taps in every stride phase, through a
    buffer of the phases, so that every add runs along consecutive elements) by the thread that
    computed it, while the columns are in its cache; the columns take one block per thread
    (:func:`gemm_buffer_nbytes`), not the whole layer. BLAS
    does the multiplications near peak speed. With stride 1, ``"auto"`` runs it gathered
    instead: as the convolution with the flipped, channel-swapped kernel that it equals there,
    by blocks of columns and single-threaded BLAS (:func:`convlab._engine.conv_transpose_gather`),
    with no scatter at all. With a stride (and all but the tiniest outputs), ``"auto"`` runs it
    gathered too, as one stride-1 convolution per output phase (:mod:`convlab._phases`,
    :func:`phases_apply`).

Weights are laid out as in PyTorch: ``(C_in, C_out / groups, *kernel)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import numpy.typing as npt

from . import _engine, _phases
from . import _kernels_transposed as _kernels
from ._args import Array, check_rank, float_array, ntuple, positive_int
from ._blas import blas_gemm, one_blas_thread
from ._gather import sparse_padding
from ._winograd import workspace
from .config import parallel_launch
from .shapes import IntOrTuple, conv_transpose_output_padding, conv_transpose_output_size

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "ALGORITHMS",
    "choose_algorithm",
]

#: algorithms accepted by the ``conv_transpose*`` functions
ALGORITHMS = ("auto", "direct", "gemm")

#: "auto" never lets the GEMM form allocate more than this (bytes) for its column blocks
GEMM_AUTO_LIMIT = 256 * 2**20
#: the GEMM form's products compute at least this many rows (output channels x taps) at once
#: when a group has that many ...
GEMM_ROWS = 128
#: ... unless one thread's columns would then take more than this (bytes)
GEMM_BLOCK_BYTES = 2**21

_LAYOUT = {
    1: "(N, C_in, L) or (C_in, L)",
    2: "(N, C_in, H, W) or (C_in, H, W)",
    3: "(N, C_in, D, H, W) or (C_in, D, H, W)",
}
_KERNEL_DIMS = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


class _Prepared:
    """Validated arguments of one transposed-convolution call."""

    __slots__ = (
        "x",
        "w",
        "b",
        "stride",
        "padding",
        "dilation",
        "groups",
        "out_shape",
        "unbatched",
        "sparse",
    )
    x: Array
    w: Array
    b: Array
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    out_shape: tuple[int, ...]
    unbatched: bool
    sparse: bool


def _is_int(value: object) -> TypeIs[int | np.integer[Any]]:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}"
        )


def _requested_spatial_size(
    output_size: IntOrTuple, nd: int, leading: Sequence[int]
) -> tuple[int, ...]:
    """The spatial part of ``output_size``: ``nd`` ints, or the full shape as PyTorch accepts it.

    ``leading`` is ``(N, C_out)`` for batched input, ``(C_out,)`` for unbatched input; when the
    full shape is given its non-spatial entries must match them.
    """
    if _is_int(output_size):
        return ntuple(output_size, nd, "output_size", allow_negative=True)
    if isinstance(output_size, (str, bytes)):
        raise TypeError(f"output_size must be an int or a sequence of ints, got {output_size!r}")
    try:
        items = tuple(output_size)
    except TypeError:
        raise TypeError(
            f"output_size must be an int or a sequence of ints, got {output_size!r}"
        ) from None
    full = len(leading) + nd
    if len(items) == full:
        given = tuple(
            ntuple(items[: len(leading)], len(leading), "output_size", allow_negative=True)
        )
        if given != tuple(leading):
            raise ValueError(
                f"output_size {tuple(items)} is a full shape whose leading entries {given} do not "
                f"match the output's {tuple(leading)} (batch and channels)"
            )
        items = items[len(leading) :]
    elif len(items) != nd:
        raise ValueError(
            f"output_size must have {nd} entries (the spatial size) or {full} (the full output "
            f"shape), got {output_size!r} with {len(items)}"
        )
    return ntuple(items, nd, "output_size", allow_negative=True)


def _prepare(
    nd: int,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: IntOrTuple,
    padding: IntOrTuple,
    output_padding: IntOrTuple,
    groups: int,
    dilation: IntOrTuple,
    output_size: IntOrTuple | None,
) -> _Prepared:
    """Validate everything for an ``nd``-dimensional transposed convolution."""
    x = float_array(input, "input")
    check_rank(x, (nd + 1, nd + 2), "input", _LAYOUT[nd])
    w = float_array(weight, "weight", dtype=x.dtype)
    check_rank(w, (nd + 2,), "weight", f"(C_in, C_out/groups, {_KERNEL_DIMS[nd]})")
    if 0 in w.shape:
        raise ValueError(f"weight must not have a zero-size dimension, got shape {w.shape}")
    groups = positive_int(groups, "groups")
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    if isinstance(padding, str):
        raise ValueError(
            f"padding must be an int or a tuple of {nd} ints for a transposed convolution "
            f"(PyTorch has no 'same'/'valid' here; see convlab.shapes.tf_conv_transpose_output_size "
            f"for TensorFlow's conventions), got {padding!r}"
        )
    padding = ntuple(padding, nd, "padding", allow_zero=True)
    kernel = w.shape[2:]

    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    c_in = x.shape[1]
    if c_in % groups:
        raise ValueError(f"in_channels ({c_in}) must be divisible by groups ({groups})")
    if w.shape[0] != c_in:
        raise ValueError(
            f"input has {c_in} channels but weight.shape[0] is {w.shape[0]}: a transposed "
            f"convolution's weight must be (C_in, C_out/groups, *kernel)"
        )
    c_out = w.shape[1] * groups
    if bias is None:
        b = np.zeros(c_out, dtype=x.dtype)
    else:
        b = float_array(bias, "bias", dtype=x.dtype)
        if b.shape != (c_out,):
            raise ValueError(
                f"bias must have shape (C_out,) = ({c_out},) (weight.shape[1] * groups = "
                f"{w.shape[1]} * {groups}), got {b.shape}"
            )
    spatial = x.shape[2:]
    if 0 in spatial:
        raise ValueError(f"input must have non-empty spatial dimensions, got shape {x.shape[2:]}")

    if output_size is not None:
        if ntuple(output_padding, nd, "output_padding", allow_zero=True) != (0,) * nd:
            raise ValueError(
                f"give either output_padding ({output_padding!r}) or output_size "
                f"({output_size!r}), not both: output_size determines the output padding"
            )
        leading = (c_out,) if unbatched else (x.shape[0], c_out)
        size = _requested_spatial_size(output_size, nd, leading)
        output_padding = conv_transpose_output_padding(
            tuple(spatial), size, kernel, stride, padding, dilation
        )
    out_spatial = conv_transpose_output_size(
        tuple(spatial), kernel, stride, padding, output_padding, dilation
    )

    if max(stride) > 1:
        # an input of size 1 never uses its stride: the kernels get 1 there (a huge stride on it
        # is a valid layer in PyTorch), so no buffer or product is sized by it
        stride = tuple(s if i > 1 else 1 for s, i in zip(stride, spatial, strict=True))

    p = _Prepared()
    p.x, p.w, p.b = x, w, b
    p.stride, p.padding, p.dilation, p.groups = stride, padding, dilation, groups
    p.out_shape = (x.shape[0], c_out) + tuple(out_spatial)
    p.unbatched = unbatched
    # cropping far more than it keeps (a huge padding with a huge stride or dilation): the
    # direct kernel's uncropped buffer would be sized by the padding, the GEMM's fold crops as
    # it adds, so such a call always takes the GEMM (see convlab._gather)
    p.sparse = max(padding) > 64 and sparse_padding(
        spatial,
        tuple(o + 2 * q for o, q in zip(out_spatial, padding, strict=True)),
        tuple(out_spatial),
    )
    return p


def gemm_plan(x_shape: Sequence[int], w_shape: Sequence[int], itemsize: int) -> int:
    """Output channels per unit of the GEMM form (:func:`convlab._kernels_transposed._gemm_fold`).

    Enough channels that one product computes at least ``GEMM_ROWS`` rows (channels x taps),
    BLAS's efficient range, but no more than keep one thread's columns within
    ``GEMM_BLOCK_BYTES`` (at least one channel, whatever its columns take). Shapes only.
    """
    out_per_group = w_shape[1]
    taps = math.prod(w_shape[2:])
    per_channel = taps * math.prod(x_shape[2:]) * itemsize
    block = min(out_per_group, -(-GEMM_ROWS // taps))
    return max(1, min(block, GEMM_BLOCK_BYTES // max(1, per_channel)))


def gemm_buffer_nbytes(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    groups: int,
    itemsize: int,
    threads: int | None = None,
    out_spatial: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    padding: Sequence[int] | None = None,
    dilation: Sequence[int] | None = None,
) -> int:
    """Bytes of the buffers of the GEMM form on ``threads`` threads (default: Numba's count):
    one block of ``gemm_plan`` output channels x taps x input positions per thread that gets
    work, and, given the output's spatial size, the ``stride`` and the ``padding`` (and the
    ``dilation``, default 1) of a strided layer, each such thread's buffer of stride phases of
    one output channel (:func:`convlab._kernels_transposed.phase_buffer_size`). It grows with
    one image and the threads, not with the batch or the channels."""
    if threads is None:
        threads = numba.get_num_threads()
    block = gemm_plan(x_shape, w_shape, itemsize)
    units = x_shape[0] * groups * -(-w_shape[1] // block)
    per_thread = block * math.prod(w_shape[2:]) * math.prod(x_shape[2:])
    if out_spatial is not None and stride is not None and padding is not None:
        kernel = tuple(w_shape[2:])
        dilation = (1,) * len(kernel) if dilation is None else dilation
        per_thread += _kernels.phase_buffer_size(out_spatial, stride, padding, kernel, dilation)
    return max(1, min(threads, units)) * per_thread * itemsize


def choose_algorithm(
    x_shape: Sequence[int], w_shape: Sequence[int], groups: int, itemsize: int
) -> str:
    """The algorithm ``algorithm="auto"`` runs for a batched input and weight of these shapes,
    among ``"direct"`` and ``"gemm"``. (Where a gathered form applies, ``auto`` runs that
    instead: the convolution it is the adjoint of at stride 1, the output phases
    (:func:`phases_apply`) with a stride.)

    The GEMM form multiplies ``(C_out/g * prod(k), C_in/g) @ (C_in/g, prod(spatial))`` per group;
    it pays off when the inner dimension ``C_in/g`` is large enough for BLAS to beat the direct
    kernel's register-held taps (not for depthwise layers) and one thread's block of columns
    stays within ``GEMM_AUTO_LIMIT`` (counted for one thread: the choice, and so the result,
    must not depend on the thread count).
    """
    in_per_group = x_shape[1] // groups
    rows = w_shape[1] * math.prod(w_shape[2:])
    block = gemm_buffer_nbytes(x_shape, w_shape, groups, itemsize, threads=1)
    small_enough = block <= GEMM_AUTO_LIMIT
    if in_per_group >= 8 and rows >= 16 and small_enough:
        return "gemm"
    return "direct"


#: "auto" runs a strided transposed convolution by output phases when its output (the whole
#: batch) has at least this many values; below, the scatter's smaller fixed cost wins
PHASES_MIN_OUTPUT = 16384
#: ... and, unless the layer is depthwise, at least this much work per image and channel: output
#: positions times kernel taps per phase (``prod(k) / prod(stride)``). The phases multiply over
#: one image's rows, each phase with its own share of the taps, so small maps and few taps per
#: phase make short products, where the GEMM form wins. 2 threads, batch 16, GEMM form / phases,
#: ms: 4x4 taps on 14x14 outputs (784) 32 -> 32 channels 0.43 / 0.22, 128 -> 128 2.5 / 2.1; 3x3
#: taps on 14x14 (441) 64 -> 32 0.22 / 0.36; on 24x24 (1296) 0.45 / 0.43; 4x4 taps on 8x8 (256)
#: 64 -> 32 0.24 / 0.40. (The first rule, 1024 output positions whatever the kernel, was measured
#: while the tile still ran narrow products in plain loops, and kept 14x14 upsampling layers on
#: the slower GEMM form.)
PHASES_MIN_WORK = 512


def phases_apply(
    out_shape: Sequence[int],
    stride: Sequence[int],
    depthwise: bool = False,
    taps_per_phase: float = 1.0,
) -> bool:
    """Whether ``"auto"`` computes a transposed convolution by output phases
    (:mod:`convlab._phases`): a stride above 1 and at least ``PHASES_MIN_OUTPUT`` output values;
    and, unless the layer is ``depthwise``, output positions per image and channel times
    ``taps_per_phase`` (the kernel's taps over the stride's phases) of at least
    ``PHASES_MIN_WORK``. Depthwise layers (one input channel per group) have no product: their
    phases add whole planes, and win on maps of any size (batch 32 of 64 channels 4x4 -> 7x7
    0.33 -> 0.18).

    2 threads, ms, the GEMM form or the scatter it replaced -> phases (PyTorch): 96 -> 48 on
    24x24, 4x4 at stride 2 0.32-0.36 -> 0.29-0.33 (0.28); batch 4, 64 -> 32 on 32x32 1.16 ->
    0.84; 128 -> 64 on 28x28, 3x3, 0.49-0.52 -> 0.39-0.43 (0.42); 1-D 96 -> 48, L 1024, 0.24 ->
    0.12 (0.16); 3-D 32 -> 16 on 8x16x16 0.94 -> 0.48 (0.53); batch 16, 256 -> 128 on 8x8 4.4 ->
    3.8 (2.5). Few channels per group, where the scatter ran: depthwise 144 channels on 28x28
    -> 56x56 (a strided depthwise layer's input gradient) 0.51 -> 0.16 (0.17); 32 groups of 4
    channels 0.64 -> 0.12; one channel to 16 on 64x64 0.28 -> 0.05. A 2x2 kernel at stride 2 (one
    tap per phase) runs about as fast either way (0.59 / 0.64); a layer with 243 output values
    took 0.013 by the scatter and 0.022 by phases."""
    return (
        any(s > 1 for s in stride)
        and math.prod(out_shape) >= PHASES_MIN_OUTPUT
        and (depthwise or math.prod(out_shape[2:]) * taps_per_phase >= PHASES_MIN_WORK)
    )


def _gemm_fold(x: Array, w: Array, b: Array, p: _Prepared, out: Array) -> None:
    """Fill ``out`` by the GEMM form: per unit (image, group, block of output channels) one
    single-threaded BLAS product and the fold of its columns (2-D arrays as depth-1 3-D ones)."""
    nd = x.ndim - 2
    lift = (1,) * (3 - nd)
    x5 = x.reshape(x.shape[:2] + lift + x.shape[2:])
    out5 = out.reshape(out.shape[:2] + lift + out.shape[2:])
    kernel = lift + w.shape[2:]
    c_in = x.shape[1]
    w2 = w.reshape(c_in, -1)
    block = gemm_plan(x.shape, w.shape, x.itemsize)
    units = x.shape[0] * p.groups * -(-w.shape[1] // block)
    threads = max(1, min(numba.get_num_threads(), units))
    per_thread = block * math.prod(kernel) * math.prod(x.shape[2:])
    stride = (1,) * (3 - nd) + p.stride
    pad = (0,) * (3 - nd) + p.padding
    dilation = (1,) * (3 - nd) + p.dilation
    phase = _kernels.phase_buffer_size(out5.shape[2:], stride, pad, kernel, dilation)
    buf = workspace("transposed", (threads * (per_thread + phase),), x.dtype)
    cols = buf[: threads * per_thread].reshape(threads, per_thread)
    phase_buf = buf[threads * per_thread :].reshape(threads, phase)
    with parallel_launch(), one_blas_thread():
        _kernels._gemm_fold(
            blas_gemm(x.dtype),
            x5,
            w2,
            b,
            out5,
            cols,
            block,
            p.groups,
            kernel,
            stride,
            pad,
            dilation,
            threads,
            phase_buf,
        )


def _gather2d(p: _Prepared, out: Array) -> Array:
    """A stride-1 2-D transposed convolution as the convolution with the flipped kernel, its
    channel axes swapped per group, and zero padding ``d (k - 1) - p`` before (the padding after
    follows from ``out``'s size), computed by :func:`convlab.conv.conv2d`'s own algorithms."""
    from .conv import _conv2d_into

    c_in, out_per_group = p.w.shape[:2]
    in_per_group = c_in // p.groups
    wg = p.w.reshape((p.groups, in_per_group, out_per_group) + p.w.shape[2:]).swapaxes(1, 2)
    w_conv = np.ascontiguousarray(
        wg.reshape((p.groups * out_per_group, in_per_group) + p.w.shape[2:])[:, :, ::-1, ::-1]
    )
    pairs = []
    for i, (q, d, k) in enumerate(zip(p.padding, p.dilation, p.w.shape[2:], strict=True)):
        before = d * (k - 1) - q
        pairs.append((before, out.shape[2 + i] + d * (k - 1) - p.x.shape[2 + i] - before))
    x = np.ascontiguousarray(p.x)
    return _conv2d_into(x, w_conv, p.b, out, p.dilation, p.groups, tuple(pairs))


def _run(p: _Prepared, algorithm: str) -> Array:
    """Allocate the output and fill it with the chosen kernel (2-D or 3-D arrays)."""
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size == 0:
        return out
    if algorithm == "auto":
        algorithm = choose_algorithm(p.x.shape, p.w.shape, p.groups, p.x.itemsize)
        # The gathers below (stride 1 as a convolution, strided layers by output phases) also
        # multiply the zeros around the input by the weight: with an inf or NaN weight that is a
        # NaN where the definition (the scatter, and PyTorch) adds nothing, so such a weight
        # keeps the scatter.
        finite = bool(np.isfinite(p.w).all())
        gather = finite and _engine.gather_applies(p.stride, p.padding, p.dilation, p.w.shape[2:])
        depthwise = p.x.shape[1] == p.groups
        if gather and p.x.ndim == 4 and (algorithm == "gemm" or depthwise):
            # stride 1: the convolution it is the adjoint of, with no scatter, in 2-D (and 1-D)
            # by what conv2d's "auto" runs for it: Winograd for wide 3x3 kernels, the implicit
            # product for larger ones, the depthwise kernel for one input channel per group
            # (2 threads, ms, scatter -> depthwise kernel: 144 channels on 56x56 0.56 -> 0.11,
            # 32 on 112x112 0.48 -> 0.08; a few dense channels stay with the scatter, 4 on
            # 64x64 0.046 against 0.066 gathered)
            return _gather2d(p, out)
        if gather and (algorithm == "gemm" or depthwise):
            # in 3-D by the implicit product (convlab._implicit), or with one input channel per
            # group by the depthwise kernel on the flipped weight (2 threads, 64 channels on
            # 16x28x28: 3.7 ms by the scatter, 0.34 gathered)
            gathered: Array = _engine.conv_transpose_gather(
                p.x, p.w, p.b, out, p.padding, p.dilation, p.groups
            )
            return gathered
        if finite and phases_apply(
            out.shape,
            p.stride,
            depthwise and p.x.ndim == 4,
            math.prod(p.w.shape[2:]) / math.prod(p.stride),
        ):
            if depthwise and p.x.ndim == 4:
                # one input channel per group: no product to tile, each phase's taps added
                # along the row (convlab._phases._depthwise_phases)
                dw: Array = _phases.depthwise_conv_transpose(
                    p.x, p.w, p.b, out, p.stride, p.padding, p.dilation
                )
                return dw
            # strided: one stride-1 convolution per output phase, gathered (convlab._phases)
            phased: Array = _phases.conv_transpose(
                p.x, p.w, p.b, out, p.stride, p.padding, p.dilation, p.groups
            )
            return phased
    x = np.ascontiguousarray(p.x)
    w = np.ascontiguousarray(p.w)
    nd = x.ndim - 2
    if algorithm == "gemm":
        _gemm_fold(x, w, p.b, p, out)
    else:
        with parallel_launch():
            if nd == 2:
                _kernels._conv_transpose2d_phases(
                    x, w, p.b, out, *p.stride, *p.padding, *p.dilation, p.groups
                )
            else:
                _kernels._conv_transpose3d_scatter(
                    x, w, p.b, out, *p.stride, *p.padding, *p.dilation, p.groups
                )
    return out


def _lift_1d(p: _Prepared) -> _Prepared:
    """A 1-D transposed convolution is a 2-D one over a height-1 image with a height-1 kernel."""
    p.x = p.x[:, :, None, :]
    p.w = p.w[:, :, None, :]
    p.stride, p.padding, p.dilation = (1,) + p.stride, (0,) + p.padding, (1,) + p.dilation
    p.out_shape = p.out_shape[:2] + (1,) + p.out_shape[2:]
    return p


def conv_transpose1d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    output_size: IntOrTuple | None = None,
    algorithm: str = "auto",
) -> Array:
    """1-D transposed convolution, exactly ``torch.nn.functional.conv_transpose1d``.

    Parameters
    ----------
    input : array_like, shape (N, C_in, L) or (C_in, L)
    weight : array_like, shape (C_in, C_out / groups, k)
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation, output_size, algorithm
        As in :func:`conv_transpose2d`, with 1-tuples (or ints).

    Returns
    -------
    numpy.ndarray, shape (N, C_out, L_out) or (C_out, L_out)
        ``L_out = (L - 1) s - 2p + d (k - 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose1d([[[1.0, 2.0, 3.0]]], [[[1.0, 10.0]]], stride=2)
    array([[[ 1., 10.,  2., 20.,  3., 30.]]])
    """
    _check_algorithm(algorithm)
    p = _lift_1d(
        _prepare(
            1, input, weight, bias, stride, padding, output_padding, groups, dilation, output_size
        )
    )
    out = _run(p, "gemm" if p.sparse else algorithm)[:, :, 0, :]
    return out[0] if p.unbatched else out


def conv_transpose2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    output_size: IntOrTuple | None = None,
    algorithm: str = "auto",
) -> Array:
    """2-D transposed convolution, exactly ``torch.nn.functional.conv_transpose2d``.

    Every input element ``x[n, ci, ih, iw]`` adds ``x * weight[ci, oc, kh, kw]`` to output
    ``(ih*s - p + kh*d, iw*s - p + kw*d)`` of every output channel ``oc`` of its group: the adjoint
    (transpose) of :func:`convlab.conv2d` with the same stride, padding, dilation and groups, which
    upsamples by the stride. It is sometimes called "deconvolution", but it does not invert a
    convolution: it restores the *shape* of the convolution's input, not its values.

    Parameters
    ----------
    input : array_like, shape (N, C_in, H, W) or (C_in, H, W)
    weight : array_like, shape (C_in, C_out / groups, kH, kW)
        PyTorch's layout for transposed convolutions (input channels first).
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of 2 ints, positive
    padding : int or tuple of 2 ints, non-negative
        The padding of the convolution being transposed: ``p`` rows/columns are *removed* from each
        side of the full result.
    output_padding : int or tuple of 2 ints, non-negative
        Rows/columns added at the bottom/right. Each must be smaller than its stride or its
        dilation (PyTorch's rule). A convolution with stride ``s`` maps ``s`` different input sizes
        to the same output size; ``output_padding`` says which one to go back to.
    groups : int
        Must divide ``C_in``; ``C_out = weight.shape[1] * groups``.
    output_size : int or sequence of ints, optional
        The wanted output size instead of ``output_padding``, as in
        ``torch.nn.ConvTranspose2d.forward(x, output_size)`` and TensorFlow's ``output_shape``:
        ``(H_out, W_out)`` or the full shape ``(N, C_out, H_out, W_out)`` (``(C_out, H_out, W_out)``
        for unbatched input). The output padding is derived from it with
        :func:`convlab.shapes.conv_transpose_output_padding`; an unreachable size is an error.
    algorithm : {"auto", "direct", "gemm"}
        ``"direct"`` scatters in a Numba kernel; ``"gemm"`` does one matrix product per group and
        folds the columns; ``"auto"`` picks by :func:`convlab.transposed.choose_algorithm`. All give
        the same result to float rounding.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out = (H - 1) s - 2p + d (kH - 1) + output_padding + 1`` and likewise ``W_out``
        (:func:`convlab.shapes.conv_transpose_output_size`), with the input's dtype (float32 or
        float64; integer input is computed in float64).

    Raises
    ------
    ValueError, TypeError
        For any argument that breaks the rules above, before any kernel runs.

    Notes
    -----
    Seed 001 computes a transposed convolution by inserting ``s - 1`` zeros between input elements,
    padding by ``d(k - 1) - p`` and running a stride-1 convolution with the flipped kernel; that
    is a good way to *see* it and a wasteful way to compute it, since most of the products are
    with zeros. Neither algorithm here does that (Dumoulin & Visin 2016, section 4).

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), stride=2)[0, 0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
    >>> conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), stride=2, output_size=(6, 6)).shape
    (1, 1, 6, 6)
    """
    _check_algorithm(algorithm)
    p = _prepare(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation, output_size
    )
    out = _run(p, "gemm" if p.sparse else algorithm)
    return out[0] if p.unbatched else out


def conv_transpose3d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    output_size: IntOrTuple | None = None,
    algorithm: str = "auto",
) -> Array:
    """3-D transposed convolution, exactly ``torch.nn.functional.conv_transpose3d``.

    Parameters
    ----------
    input : array_like, shape (N, C_in, D, H, W) or (C_in, D, H, W)
    weight : array_like, shape (C_in, C_out / groups, kD, kH, kW)
    bias : array_like, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation, output_size, algorithm
        As in :func:`conv_transpose2d`, with 3-tuples (or ints).

    Returns
    -------
    numpy.ndarray, shape (N, C_out, D_out, H_out, W_out) or (C_out, D_out, H_out, W_out)

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose3d(np.ones((1, 1, 1, 1, 1)), np.ones((1, 2, 2, 2, 2))).shape
    (1, 2, 2, 2, 2)
    """
    _check_algorithm(algorithm)
    p = _prepare(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation, output_size
    )
    out = _run(p, "gemm" if p.sparse else algorithm)
    return out[0] if p.unbatched else out
