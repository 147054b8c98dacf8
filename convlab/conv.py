"""Plain convolution: ``conv1d``, ``conv2d``, ``conv3d`` with the semantics of ``torch.nn.functional``.

Each public function validates and prepares in plain Python (dtype, rank, int-or-tuple arguments,
padding, output shape, allocation) and then makes one call into a Numba kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _gather as _gather_module
from . import _implicit, _kernels, _kernels_depthwise
from ._args import Array, check_padding_mode, check_rank, float_array, ntuple, positive_int
from ._gather import sparse_padding
from .algorithms import (
    check_winograd,
    conv2d_fft,
    conv2d_im2col,
    conv2d_winograd,
    conv2d_winograd_dilated,
    im2col_workspace_nbytes,
    phases_apply,
)

# pad_input stays importable from here (the alias marks it as re-exported, for type checkers)
from .algorithms import pad_input as pad_input
from .config import parallel_launch
from .shapes import IntOrTuple, _output_length, padding_pairs

__all__ = ["conv1d", "conv2d", "conv3d", "ALGORITHMS"]

#: algorithms accepted by :func:`conv2d` (and :func:`conv1d`, which runs on the 2-D kernels)
ALGORITHMS = ("auto", "direct", "im2col", "implicit", "winograd", "fft")

_LAYOUT = {
    1: "(N, C, L) or (C, L)",
    2: "(N, C, H, W) or (C, H, W)",
    3: "(N, C, D, H, W) or (C, D, H, W)",
}
_DIMS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


class _Prepared:
    """Validated arguments of one convolution call (the input padded or not: see ``pairs``)."""

    __slots__ = (
        "x",
        "w",
        "b",
        "stride",
        "dilation",
        "groups",
        "out_shape",
        "unbatched",
        "pairs",
        "padding_mode",
        "sparse",
    )
    x: Array
    w: Array
    b: Array
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    out_shape: tuple[int, ...]
    unbatched: bool
    pairs: tuple[tuple[int, int], ...]
    padding_mode: str
    sparse: bool


def _check_pad_fits(
    spatial: Sequence[int],
    pairs: Sequence[tuple[int, int]],
    padding_mode: str,
    dim_names: Sequence[str],
) -> None:
    """PyTorch's limits on non-zero padding modes, checked before np.pad sees them."""
    for name, size, (before, after) in zip(dim_names, spatial, pairs, strict=True):
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


def _prepare(
    nd: int,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: IntOrTuple,
    padding: IntOrTuple | str,
    dilation: IntOrTuple,
    groups: int,
    padding_mode: str,
    dim_names: Sequence[str] | None = None,
    pad: bool = True,
) -> _Prepared:
    """Validate everything for an ``nd``-dimensional convolution and (with ``pad``) pad the input.

    ``dim_names`` names the spatial dimensions in messages (conv1d runs as a height-1 conv2d but
    its users know their dimension as L). Without ``pad`` the input is left as it is and
    ``p.pairs`` holds the ``(before, after)`` padding still to apply: conv2d's kernels that pad
    zeros as they read (depthwise, im2col, Winograd) get the unpadded input, the others call
    :func:`_pad` first. With ``pad``, ``p.pairs`` is all zeros.
    """
    x = float_array(input, "input")
    check_rank(x, (nd + 1, nd + 2), "input", _LAYOUT[nd])
    w = float_array(weight, "weight", dtype=x.dtype)
    check_rank(
        w,
        (nd + 2,),
        "weight",
        "(C_out, C_in/groups, " + ", ".join(f"k{d}" for d in _DIMS[nd]) + ")",
    )
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
        raise ValueError(
            f"out_channels ({c_out}, weight.shape[0]) must be divisible by groups ({groups})"
        )
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
    out_spatial = tuple(
        _output_length(size, k, s, d, before, after)
        for size, k, s, d, (before, after) in zip(
            spatial, kernel, stride, dilation, pairs, strict=True
        )
    )
    if 0 in spatial and x.shape[0]:
        # PyTorch's rule and message (convolution only allows an empty batch or channels)
        raise ValueError(
            f"Only zero batch or zero channel inputs are supported, but got input shape "
            f"{x.shape} with an empty spatial dimension"
        )
    if max(stride) > 1:
        # a dimension with one output never uses its stride: the kernels get 1 there, so that
        # a huge stride (a valid 1-output layer in PyTorch) sizes no buffer and no product
        stride = tuple(s if o > 1 else 1 for s, o in zip(stride, out_spatial, strict=True))

    p = _Prepared()
    p.x = np.ascontiguousarray(x)
    p.pairs = pairs
    p.padding_mode = padding_mode
    p.w, p.b = w, b
    p.stride, p.dilation, p.groups = stride, dilation, groups
    p.out_shape = (x.shape[0], c_out) + out_spatial
    p.unbatched = unbatched
    # padding far beyond what is read (with a huge stride or dilation): computed by index maps
    p.sparse = max(sum(pairs, ())) > 64 and sparse_padding(
        spatial, tuple(n + a + b for n, (a, b) in zip(spatial, pairs, strict=True)), out_spatial
    )
    if pad and not p.sparse:
        _pad(p)
    return p


def _gather(p: _Prepared) -> Array:
    """The convolution ``p`` by :mod:`convlab._gather` (``p.sparse``: no kernel can take it)."""
    return _gather_module.conv(
        p.x, p.w, p.b, p.stride, p.dilation, p.pairs, p.groups, p.out_shape, p.padding_mode
    )


def _pad(p: _Prepared) -> None:
    """Pad ``p.x`` by ``p.pairs`` in ``p.padding_mode`` (if it is not padded yet)."""
    if any(before or after for before, after in p.pairs):
        # the padded copy lives in a reused buffer: it is only read during this call
        if p.x.shape[0]:
            p.x = np.ascontiguousarray(
                pad_input(p.x, p.pairs, p.padding_mode, scratch="conv_input")
            )
        p.pairs = ((0, 0),) * len(p.pairs)


def _zero_pad_before(p: _Prepared) -> tuple[int, ...]:
    """The padding above and to the left that a kernel padding zeros as it reads gets.

    Pads ``p.x`` first unless the padding mode is zeros (the kernels only know zeros); the
    padding below and to the right follows from the input and output sizes.
    """
    if p.padding_mode != "zeros":
        _pad(p)
    return _winograd_padding(p)


def _winograd_padding(p: _Prepared) -> tuple[int, ...]:
    """The padding before the input that Winograd would get: what :func:`_zero_pad_before`
    returns, without padding anything yet."""
    if p.padding_mode != "zeros":
        return (0,) * len(p.pairs)
    return tuple(before for before, _ in p.pairs)


def _finish(p: _Prepared, out: Array) -> Array:
    return out[0] if p.unbatched else out


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}"
        )


#: "auto" uses the implicit product for stride-1 layers with at least this many output positions
#: per image (fewer: im2col's products span the images of the batch)
IMPLICIT_AUTO_MIN_POSITIONS = 64
#: ... and a sum over at least this many rows (``C_in/groups * kH * kW``) unless it is grouped;
IMPLICIT_AUTO_MIN_ROWS = 128
#: ... and, for a strided layer, a kernel of at least this many taps (a stem's 7x7)
IMPLICIT_AUTO_MIN_STRIDED_TAPS = 25
#: a dilated 2-D layer takes the implicit product (before Winograd) when the ``(kW - 1) dW``
#: positions thrown away at the end of each row are at most this share of the row ...
IMPLICIT_AUTO_MAX_DILATED_WASTE = 0.125
#: ... and a group has at most this many input channels (wider, Winograd's saving wins)
IMPLICIT_AUTO_MAX_DILATED_CHANNELS = 128

#: "auto" never lets im2col allocate more than this (bytes) for its blocks of columns
IM2COL_AUTO_LIMIT = 256 * 2**20


#: "auto" uses Winograd when a group has at least this many input and output channels ...
WINOGRAD_AUTO_MIN_CHANNELS = 48
#: ... (this many when there are several groups: each group's 16 GEMMs are that narrow) ...
WINOGRAD_AUTO_MIN_GROUP_CHANNELS = 64
#: ... and, for a dilated layer, sub-images whose outputs are at least this many rows and columns
WINOGRAD_AUTO_MIN_PHASE_SIZE = 8
#: ... and there are at least this many 2x2 output tiles (the GEMMs' width; 64 = a 16x16 map),
WINOGRAD_AUTO_MIN_TILES = 64
#: ... or at least this many tiles (a 12x12 map) when a group has this many channels or more
WINOGRAD_AUTO_MIN_TILES_WIDE = 36
WINOGRAD_AUTO_WIDE_CHANNELS = 64


def choose_algorithm(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    out_shape: Sequence[int],
    groups: int,
    itemsize: int,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    finite: bool = True,
    padding: Sequence[int] | None = None,
) -> str:
    """The algorithm ``conv2d(..., algorithm="auto")`` runs for these shapes.

    ``x_shape`` is the input's shape (padded or not: only N and C are used), ``w_shape`` the
    weight's, ``out_shape`` the output's; ``stride`` and ``dilation`` are pairs; ``finite`` says
    that input and weight hold no NaN or inf; ``padding`` is the zero padding before the input
    (a pair; only dilated layers look at it). Only shapes are looked at: nothing is allocated.
    Depthwise layers (``groups == C_in``) never get here: :func:`conv2d` sends them to the
    dedicated depthwise kernel.

    ``"auto"`` never trades accuracy for speed: it only picks an algorithm whose error is bounded
    by the output's own window for every finite input, ``|out - exact| <= n u P`` (:func:`conv2d`,
    Notes: ``P`` sums the magnitudes of the filter and of the window, ``n`` counts the terms, ``u``
    is the unit roundoff). Direct and im2col meet the tighter ``n u S`` and Winograd F(2x2, 3x3)
    meets ``n u P``; the FFT meets neither (its error follows the largest values of the whole
    plane: a bright corner gave a relative error of 1e-2 on outputs far from it, issue 13), so the
    FFT is never picked, only run when asked for. The rule, first match wins:

    0. ``"implicit"`` for a dilated 2-D layer at stride 1 whose ``(kW - 1) dW`` positions thrown
       away at the end of each row are at most ``IMPLICIT_AUTO_MAX_DILATED_WASTE`` (an eighth)
       of the row, with at most ``IMPLICIT_AUTO_MAX_DILATED_CHANNELS`` (128) input channels per
       group and the sizes of rule 2. Measured on 2 threads (ms, Winograd on sub-images /
       im2col / implicit; 3x3 kernels): 64 channels on 56x56 with dilation 2, batch 2, 2.67 /
       1.86 / 1.46; 64 on 64x64 with dilation 4 1.65 / 1.62 / 1.04; 96 on 48x48 with dilation 3
       1.71 / 1.34 / 1.17; 48 on 40x40 with dilation 2 0.35 / 0.43 / 0.31; 32 on 64x64 with
       dilation 2, batch 2, im2col 0.84 against 0.45; 128 on 28x28 with dilation 2 0.97 / 0.86 /
       0.89. Not with 256 channels (28x28, dilation 2: 2.35 / 2.45 / 2.94) nor with more waste
       (128 channels on 32x32 with dilation 4, a fifth of each row: 1.22 / 1.01 / 1.17);
    1. ``"winograd"`` for 3x3, stride 1, dilation 1 with at least ``WINOGRAD_AUTO_MIN_CHANNELS``
       (48) input and output channels (``WINOGRAD_AUTO_MIN_GROUP_CHANNELS``, 64, per group when
       there are groups) and ``WINOGRAD_AUTO_MIN_TILES`` (64) output tiles
       of 2x2, or ``WINOGRAD_AUTO_MIN_TILES_WIDE`` (36) tiles with at least
       ``WINOGRAD_AUTO_WIDE_CHANNELS`` (64) channels: 2.25x fewer multiplications. Below that its
       16 GEMMs get too few columns and the filter transform (16 values per filter, more data
       than the 9 taps) is most of the work: on 7x7 maps (16 tiles) im2col wins even at 512
       channels, and on 14x14 maps (49 tiles) it wins at 16 channels and ties at 32. The same
       with a dilation ``d`` and a padding before the input that is a multiple of it (DeepLab's
       "same" layers): Winograd then runs on the ``d * d`` interleaved sub-images, so the tiles
       are counted on those (a 64-channel 56x56 layer with dilation 2 is four 28x28 layers:
       1.0-1.3 ms against 1.7 ms by im2col, 2 threads), and each sub-image's output needs
       ``WINOGRAD_AUTO_MIN_PHASE_SIZE`` (8) rows and columns: a 128-channel 32x32 layer with
       dilation 6 is 36 sub-images of 6x6, where im2col was faster in 3 of 4 runs on 2 threads
       (1.76-3.19 ms against 1.79-4.13) while 16x16 sub-images (64 channels, 64x64, dilation 4)
       ran 1.37-1.60 ms against 1.81-2.04 by im2col. With fewer channels the implicit product
       (rule 2) is faster, because a transform costs as much per channel as the products it
       saves (2 threads, AMD Zen 5, Winograd against implicit, ms): 16 channels on 56x56 0.20
       against 0.11, 32 on 56x56 0.42 against 0.30, 32 on 28x28 0.14 against 0.12, a tie at 48
       and 64 (0.35 against 0.36 on 40x40, 0.56 against 0.54 on 56x56); in groups of 32
       channels (256 in 8 groups) 1.77 against 1.13 on 56x56 and 0.48 against 0.35 on 28x28,
       while with 64 per group Winograd won (128 in 2 groups on 28x28: 0.31 against 0.35);
    2. ``"implicit"`` (:mod:`convlab._implicit`: im2col's product without its columns, each
       tap reading its shifted rows of the input in place) when the layer is 1-D (one output
       row, a one-row kernel) or has no dilation, a kernel larger than 1x1 and at least
       ``IMPLICIT_AUTO_MIN_POSITIONS`` (64) output positions per image; at stride 1, or at any
       stride with at least ``IMPLICIT_AUTO_MIN_STRIDED_TAPS`` (25) taps; and it is grouped or
       sums over at least ``IMPLICIT_AUTO_MIN_ROWS`` (128) rows ``C_in/groups * kH * kW`` (below
       that its products are short: 8 channels 3x3 on 56x56 tie with im2col). Measured on 2
       threads (AMD Zen 5 with AVX-512, OpenBLAS 0.3.31; im2col against implicit, ms): 64
       channels 7x7 on 28x28 1.25 against 0.97, 48 channels 5x5 on 40x40 0.60 against 0.51, the
       7x7 stride-2 stem 0.88 against 0.73, a 3x3 layer of 128 channels in 8 groups on 28x28
       0.20 against 0.14 (in 32 groups on 56x56 0.68 against 0.24), a 64-channel 1-D layer of
       1024 with k = 5 0.175 against 0.133, and with dilation 8 over 2048 0.70 against 0.55.
       Where it lost it is not used: 3x3 at stride 2 (128 -> 256 channels on 28x28: 0.36
       against 0.41), a dilated 2-D layer with much waste (dilation 6 on 32x32: 0.84 against
       0.92; the ``(k - 1) d`` positions at the end of each row that it computes and throws away
       grow with the dilation; rule 0 takes those with little), 1x1 kernels (64 -> 256
       channels on 56x56: 0.27 against 0.31) and 7x7 maps (3x3, 512 channels, batch 8: 6.2
       against 8.4), where im2col's products run over the whole batch;
    3. ``"im2col"`` when the blocks of columns it works in
       (:func:`convlab.algorithms.im2col_workspace_nbytes`: a few MB per thread, growing with
       ``C_in * kH * kW``, not with the image) take at most ``IM2COL_AUTO_LIMIT`` bytes. The full
       column matrix of :func:`convlab.algorithms.im2col_buffer_nbytes` (about ``kH * kW`` times
       the input) is never built by :func:`conv2d`;
    4. ``"direct"`` otherwise: no extra memory at all.

    Winograd (1) is used only when ``finite``: it turns an inf into NaNs (``inf - inf`` inside a
    tile), where PyTorch (and im2col, implicit and direct) give +-inf or NaN only to the outputs
    whose window holds it.

    Notes
    -----
    The thresholds come from these float32 timings (ms, best of 9; CPU time of one thread is
    robust on a shared machine, wall time of two threads is what a user sees; the last column is
    what this rule picks; AMD EPYC (Zen 5) with AVX-512, 2 cores, OpenBLAS 0.3.31, Numba 0.68).
    ``python benchmarks/bench_auto_rule.py`` prints this table again on any machine ("impl" is the
    implicit product, "wino" Winograd), and ``python -m convlab.bench`` times the benchmark layers
    against PyTorch::

     layer                     direct  im2col    impl    wino     fft    im2col    impl    wino   auto
                                         ---- 1 thread, CPU time ----       - 2 threads, wall -
     1x8->8       56 3x3         0.23    0.08    0.05    0.10    0.50      0.05    0.05    0.07   im2col
     1x16->16     14 3x3         0.13    0.06    0.03    0.04    0.19      0.03    0.04    0.03   implicit
     1x16->16     56 3x3         0.70    0.14    0.09    0.18    3.90      0.11    0.07    0.12   implicit
     1x32->32     14 3x3         0.21    0.05    0.04    0.05    0.59      0.04    0.04    0.04   implicit
     1x64->64     10 3x3         0.45    0.08    0.07    0.08    1.23      0.07    0.06    0.06   implicit
     1x64->64     12 3x3         0.60    0.10    0.09    0.09    1.74      0.08    0.07    0.07   winograd
     1x64->64     14 3x3         0.77    0.12    0.11    0.11    1.94      0.09    0.08    0.07   winograd
     1x64->64     16 3x3         0.96    0.15    0.12    0.12    2.77      0.11    0.09    0.08   winograd
     1x64->64     28 3x3         2.65    0.36    0.32    0.28    7.57      0.22    0.18    0.17   winograd
     1x64->64     56 3x3        10.42    1.40    1.00    1.01   41.01      0.73    0.55    0.53   winograd
     1x128->128   14 3x3         2.98    0.34    0.34    0.29    8.63      0.19    0.19    0.17   winograd
     1x128->128   28 3x3        10.45    1.23    1.16    0.91   37.05      0.63    0.62    0.48   winograd
     1x256->256    7 3x3         4.40    0.42    0.54    0.58   13.92      0.24    0.30    0.31   im2col
     1x256->256   14 3x3        11.88    1.15    1.19    0.97   40.37      0.61    0.65    0.51   winograd
     1x256->256   28 3x3        39.64    4.13    4.49    2.94  141.01      2.42    2.52    1.58   winograd
     1x512->512    7 3x3        17.58    1.76    2.46    2.90   62.01      0.95    1.25    1.34   im2col
     8x64->64     56 3x3        85.70   11.18    8.66    9.15   76.25      6.20    4.83    4.52   winograd
     1x64->64     56 3x3 g8      1.69    0.41    0.21    0.68    4.55      0.26    0.12    0.37   implicit
     1x256->256   14 3x3 g64     0.33    0.16    0.10    0.28    0.78      0.10    0.07    0.28   implicit
     1x3->64     224 7x7 s2     16.69    1.33    1.09       -   45.43      0.72    0.59       -   implicit
     1x64->256    56 1x1         7.12    0.51    0.55       -  156.19      0.47    0.32       -   im2col
     1x256->128   28 1x1 s2      3.38    0.12    0.13       -   70.63      0.09    0.12       -   im2col
     1x64->64     28 5x5         7.74    0.98    0.80       -    8.42      0.54    0.45       -   implicit
     1x16->16     64 9x9         7.67    1.52    0.77       -    2.83      0.77    0.40       -   implicit
     1x8->8       64 15x15       5.72    1.57    0.58       -    0.90      0.83    0.36       -   implicit
     1x3->3      128 9x9         3.54    0.60    0.17       -    0.58      0.32    0.10       -   implicit
     1x1->1      256 31x31       1.73    9.88    2.12       -    0.49      4.72    1.21       -   implicit

    Winograd wins the 3x3 stride-1 layers with 48 or more channels per group from 16x16 maps up,
    and from 12x12 up with 64 or more channels (rule 1: with few tiles its threads split the
    output channels and transform their own filters); on 7x7 maps the filter transform costs more
    than the multiplications it saves. The implicit product wins the narrower 3x3 layers and the
    larger kernels (rule 2), by the most on large kernels, where im2col copies every input value
    ``kH * kW`` times: 1.2x on the 5x5 layer and the stem, 3.9x on the 31x31 one (2 threads). The
    FFT is fastest on big kernels over few channels (the last rows) but is left out for its
    accuracy: ``algorithm="fft"`` still runs it where its plane-relative error is acceptable.
    im2col keeps the 3x3 strided layers, the 1x1 kernels and the small maps, and beats the direct
    loop on every multi-channel layer, even narrow ones (with a tuned BLAS on a CPU the seed
    article's case for the direct loop only shows for depthwise layers, which have their own
    kernel).

    Examples
    --------
    >>> choose_algorithm((1, 64, 58, 58), (64, 64, 3, 3), (1, 64, 56, 56), 1, 4)
    'winograd'
    >>> choose_algorithm((1, 3, 230, 230), (64, 3, 7, 7), (1, 64, 112, 112), 1, 4, stride=(2, 2))
    'implicit'
    >>> choose_algorithm((1, 64, 56, 56), (128, 64, 3, 3), (1, 128, 28, 28), 1, 4, stride=(2, 2))
    'im2col'
    >>> choose_algorithm((1, 64, 58, 58), (64, 64, 3, 3), (1, 64, 56, 56), 1, 4, finite=False)
    'implicit'
    """
    c_per_group, kh, kw = w_shape[1], w_shape[2], w_shape[3]
    out_per_group = w_shape[0] // groups
    stride_1 = tuple(stride) == (1, 1)
    dh, dw = dilation
    # 2x2 tiles of every image, or of every sub-image of a dilated layer
    tiles = out_shape[0] * dh * dw * ((-(-out_shape[2] // dh) + 1) // 2)
    tiles *= (-(-out_shape[3] // dw) + 1) // 2
    halo = (kw - 1) * dw
    if (
        stride_1
        and tuple(dilation) != (1, 1)
        and (kh, kw) != (1, 1)
        and (groups > 1 or c_per_group * kh * kw >= IMPLICIT_AUTO_MIN_ROWS)
        and c_per_group <= IMPLICIT_AUTO_MAX_DILATED_CHANNELS
        and out_shape[2] * out_shape[3] >= IMPLICIT_AUTO_MIN_POSITIONS
        and halo <= IMPLICIT_AUTO_MAX_DILATED_WASTE * (out_shape[3] + halo)
    ):
        return "implicit"
    if (
        finite
        and stride_1
        and (kh, kw) == (3, 3)
        and (
            tuple(dilation) == (1, 1)
            or (
                phases_apply(dilation, padding)
                and min(-(-out_shape[2] // dh), -(-out_shape[3] // dw))
                >= WINOGRAD_AUTO_MIN_PHASE_SIZE
            )
        )
        and min(c_per_group, out_per_group)
        >= (WINOGRAD_AUTO_MIN_CHANNELS if groups == 1 else WINOGRAD_AUTO_MIN_GROUP_CHANNELS)
        and (
            tiles >= WINOGRAD_AUTO_MIN_TILES
            or (
                tiles >= WINOGRAD_AUTO_MIN_TILES_WIDE
                and min(c_per_group, out_per_group) >= WINOGRAD_AUTO_WIDE_CHANNELS
            )
        )
    ):
        return "winograd"
    if (
        (stride_1 or kh * kw >= IMPLICIT_AUTO_MIN_STRIDED_TAPS)
        and (groups > 1 or c_per_group * kh * kw >= IMPLICIT_AUTO_MIN_ROWS)
        and (
            (out_shape[2] == 1 and kh == 1)
            or (
                tuple(dilation) == (1, 1)
                and (kh, kw) != (1, 1)
                and out_shape[2] * out_shape[3] >= IMPLICIT_AUTO_MIN_POSITIONS
            )
        )
    ):
        return "implicit"
    nbytes = im2col_workspace_nbytes(
        x_shape[0],
        x_shape[1],
        w_shape[0],
        (kh, kw),
        out_shape[2:],
        itemsize,
        groups=groups,
        stride=stride,
        dilation=dilation,
    )
    if nbytes <= IM2COL_AUTO_LIMIT:
        return "im2col"
    return "direct"


def _conv2d_prepared(p: _Prepared, algorithm: str, out: Array | None = None) -> Array:
    """Run the 2-D convolution ``p`` (from ``_prepare(..., pad=False)``) by ``algorithm``, into
    ``out`` (C-contiguous, of shape ``p.out_shape``) when given."""
    if algorithm == "winograd":
        check_winograd(p.w.shape, p.stride, p.dilation, _winograd_padding(p))
    if out is None:
        out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size == 0:
        return out
    if algorithm in ("auto", "direct") and p.groups == p.x.shape[1]:
        # Depthwise (any multiplier K = C_out / C_in): the dedicated kernel gives the generic
        # kernel's results bit for bit, several times faster (benchmarks/bench_depthwise.py).
        # It pads zeros as it reads: no padded copy of the input.
        pad_before = _zero_pad_before(p)
        with parallel_launch():
            _kernels_depthwise._conv2d_depthwise(
                p.x, p.w, p.b, out, *p.stride, *p.dilation, *pad_before
            )
        return out
    if algorithm == "auto":
        algorithm = choose_algorithm(
            p.x.shape,
            p.w.shape,
            p.out_shape,
            p.groups,
            p.x.itemsize,
            stride=p.stride,
            dilation=p.dilation,
            padding=_winograd_padding(p),
        )
        if algorithm in ("winograd", "fft"):
            total = _run_algorithm(p, out, algorithm)
            # The FFT spreads a NaN or inf over the whole plane and Winograd turns an inf into
            # NaNs (inf - inf in a tile), where PyTorch gives +-inf or NaN only to the outputs
            # whose window holds it. Every input and weight element reaches some output of these
            # two, so a finite sum of the output proves the data finite; otherwise (rare: the sum
            # may also just overflow) the layer is computed again without the transforms.
            # Winograd's kernel sums its outputs as it writes them; the FFT's are summed here.
            if total is None:
                with np.errstate(over="ignore", invalid="ignore"):
                    total = out.sum(dtype=np.float64)
            if np.isfinite(total):
                return out
            algorithm = choose_algorithm(
                p.x.shape,
                p.w.shape,
                p.out_shape,
                p.groups,
                p.x.itemsize,
                stride=p.stride,
                dilation=p.dilation,
                finite=False,
                padding=_winograd_padding(p),
            )
    _run_algorithm(p, out, algorithm)
    return out


def _run_algorithm(p: _Prepared, out: Array, algorithm: str) -> Any:
    """Fill ``out`` with the convolution of the prepared arguments ``p`` by ``algorithm``.

    Winograd and im2col pad zeros as they read; direct and the FFT get a padded copy.
    Returns Winograd's checksum (see :func:`convlab.algorithms.conv2d_winograd`), else ``None``.
    """
    if algorithm == "implicit":
        pad_before = _zero_pad_before(p)  # first: it may replace p.x by a padded copy
        _implicit.conv(p.x, p.w, p.b, out, p.stride, p.dilation, p.groups, pad_before)
        return None
    if algorithm in ("winograd", "im2col"):
        pad_before = _zero_pad_before(p)  # first: it may replace p.x by a padded copy
        if algorithm == "winograd" and p.dilation != (1, 1):
            return conv2d_winograd_dilated(p.x, p.w, p.b, out, p.groups, pad_before, p.dilation)
        if algorithm == "winograd":
            return conv2d_winograd(p.x, p.w, p.b, out, p.groups, pad_before)
        conv2d_im2col(p.x, p.w, p.b, out, p.stride, p.dilation, p.groups, pad_before)
        return None
    _pad(p)
    if algorithm == "fft":
        conv2d_fft(p.x, p.w, p.b, out, p.stride, p.dilation, p.groups)
    else:
        with parallel_launch():
            _kernels._conv2d_direct(p.x, p.w, p.b, out, *p.stride, *p.dilation, p.groups)
    return None


def conv1d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> Array:
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
    algorithm : {"auto", "direct", "im2col", "implicit", "winograd", "fft"}
        See :func:`conv2d`; every choice gives the same result (``"winograd"`` needs a 3x3 kernel,
        so it is always rejected here).

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
    p = _prepare(
        2,
        x[..., None, :],
        w[:, :, None, :],
        bias,
        (1,) + stride,
        padding,
        (1,) + dilation,
        groups,
        padding_mode,
        dim_names=("H", "L"),
        pad=False,
    )
    out = _gather(p) if p.sparse else _conv2d_prepared(p, algorithm)
    return _finish(p, out)[..., 0, :]


def conv2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> Array:
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
    algorithm : {"auto", "direct", "im2col", "implicit", "winograd", "fft"}
        ``"direct"`` loops over the output in Numba; ``"im2col"`` copies every receptive field
        into a column matrix and does one matrix product per group; ``"implicit"`` does the same
        product without the columns, reading each tap's shifted rows of the input in place
        (:mod:`convlab._implicit`); ``"winograd"`` is
        F(2x2, 3x3) (3x3 kernels and stride 1 only; a dilation ``d`` needs a padding that is a
        multiple of ``d``, and runs on the ``d x d`` interleaved sub-images of the input;
        anything else is a ``ValueError``);
        ``"fft"`` multiplies in the frequency domain; ``"auto"`` picks by
        :func:`convlab.conv.choose_algorithm`. All give the same result to float rounding (see
        Notes: the FFT's error is relative to the whole plane, and on NaN/inf the transforms
        differ from PyTorch, so ``"auto"`` never uses the FFT and uses Winograd on finite data
        only).

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1`` and likewise ``W_out``, with the input's
        dtype.

    Raises
    ------
    ValueError, TypeError
        For any argument that breaks the rules above, before any kernel runs.

    Notes
    -----
    Accuracy, per output, with ``n = C_in/groups * kH * kW + 1`` terms, ``u`` the unit roundoff
    (``2**-24`` in float32, ``2**-53`` in float64), and two measures of the output's own window:
    ``S = |bias| + sum |w| |x|`` (the sum of the products' magnitudes) and ``P = |bias| + sum over
    input channels of sum|w| * sum|x|`` (the magnitudes of the filter and of the window, each
    summed first; ``S <= P``). ``tests/test_accuracy.py`` measures ``max |error| / (u S)`` and
    ``/ (u P)`` against a float64 reference on adversarial inputs (a corner or pixel scaled by 1e4
    or 1e6, magnitudes spread over 1e-4 to 1e4 with random signs in input and weights):

    * ``"direct"``, ``"im2col"`` and ``"implicit"``: ``|error| <= n u S``, the bound of a sum of n
      products in any order (the direct loop sums in order, BLAS in blocks, the implicit product
      in order with fused multiply-adds); measured ``<= 10 u S``;
    * ``"winograd"`` F(2x2, 3x3): ``|error| <= n u P``, measured ``<= 1.6 u P``. Its filter
      transform mixes the 9 taps and its input transform the window's pixels, so the error
      follows ``P``, not ``S`` (95 ``u S`` measured when input and weight magnitudes vary
      independently over 8 and 4 decades); but it stays inside the window: an input outside an
      output's 3x3 window never enters that output's terms (in F(2, 3) ``d0`` reaches only
      ``M0`` and ``d3`` only ``M3``, which the other output of the pair does not read), so a
      bright pixel beside a window does not leak into it (``<= 5 u S`` measured next to one);
    * ``"fft"``: no bound by the window at all; its error follows the largest values of the whole
      plane (measured ``1.7e4 u P`` next to a pixel scaled by 1e6, and a relative error of 1e-2
      on outputs away from a corner scaled by 1e4, where PyTorch has 6e-6). See
      :mod:`convlab._fft`.

    ``"auto"`` only picks an algorithm whose error is bounded by its window for every finite
    input (``n u P``): direct, im2col, implicit, Winograd, never the FFT. Non-finite input: the
    direct sum, im2col and the implicit product give +-inf or NaN exactly to the outputs whose
    window holds them, as PyTorch does;
    explicit ``"winograd"`` turns an inf into NaN in its 2x2 tile (``inf - inf``), and explicit
    ``"fft"`` makes the whole plane NaN. ``"auto"`` recomputes such data without Winograd.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d(x, np.ones((1, 1, 3, 3)))
    array([[[[45., 54.],
             [81., 90.]]]])
    """
    _check_algorithm(algorithm)
    p = _prepare(2, input, weight, bias, stride, padding, dilation, groups, padding_mode, pad=False)
    if p.sparse:
        return _finish(p, _gather(p))
    return _finish(p, _conv2d_prepared(p, algorithm))


def conv3d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Array:
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
    p = _prepare(3, input, weight, bias, stride, padding, dilation, groups, padding_mode, pad=False)
    if p.sparse:
        return _finish(p, _gather(p))
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size == 0:
        return _finish(p, out)
    if p.groups == p.x.shape[1]:
        # depthwise: the dedicated kernel, as in _conv2d_prepared, whose results
        # tests/test_depthwise.py checks bit for bit against the generic direct kernel; it pads
        # zeros as it reads
        pad_before = _zero_pad_before(p)
        with parallel_launch():
            _kernels_depthwise._conv3d_depthwise(
                p.x, p.w, p.b, out, *p.stride, *p.dilation, *pad_before
            )
    else:
        # the input's rows read by tap, no columns: convlab._implicit
        pad_before = _zero_pad_before(p)  # first: it may replace p.x by a padded copy
        _implicit.conv(p.x, p.w, p.b, out, p.stride, p.dilation, p.groups, pad_before)
    return _finish(p, out)


def _conv2d_into(
    x: Array,
    w: Array,
    b: Array,
    out: Array,
    dilation: tuple[int, ...],
    groups: int,
    pairs: tuple[tuple[int, int], ...],
) -> Array:
    """``out`` filled with the stride-1 zero-padded 2-D convolution of validated, C-contiguous
    arrays by what ``algorithm="auto"`` runs (Winograd, blocked im2col, the depthwise or the direct
    kernel); ``pairs``: the zero padding (before, after) of each spatial dimension. The transposed
    convolution's stride-1 form (:mod:`convlab.transposed`) calls it with the flipped kernel."""
    p = _Prepared()
    p.x, p.w, p.b = x, w, b
    p.stride, p.dilation, p.groups = (1, 1), dilation, groups
    p.out_shape, p.unbatched, p.pairs = out.shape, False, pairs
    p.padding_mode, p.sparse = "zeros", False
    return _conv2d_prepared(p, "auto", out)
