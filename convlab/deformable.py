"""Deformable convolution v1 and v2: ``deform_conv2d`` (exactly ``torchvision.ops.deform_conv2d``)
and its gradients, ``deform_conv2d_grad``.

A deformable convolution (Dai et al. 2017) is a 2-D convolution whose kernel taps do not sit on
the regular grid: every output position ``p`` and tap ``t`` carries a learned offset
``(dy, dx)``, and the tap reads the input at the fractional point ``grid(p, t) + (dy, dx)`` by
bilinear interpolation. Deformable ConvNets v2 (Zhu et al. 2019) also multiply every sample by a
modulation scalar ``mask[p, t]``. With zero offsets and no mask the layer is ``conv2d``.

Implementation: the wrapper validates, then (1) computes the sampling plan of the whole batch in
one call, once per offset group rather than per channel
(:func:`convlab._kernels_deformable._deform_plan`), and for each image (2) runs one parallel Numba
kernel (:func:`convlab._kernels_deformable._deform_conv_forward`) in which every thread takes its
own blocks of output positions, samples a chunk of their column matrix (a deformable im2col) from
a channels-last copy of the image into a small buffer of its own, and multiplies it by the
matching slice of the weight with a single-threaded BLAS call that accumulates straight into the
output. Sampling and matrix products never wait for each other or for another thread pool, and
the column matrix exists only ``threads * block`` positions and one chunk of rows at a time
(:data:`BLOCK_BYTES` per thread), far below torchvision's full column matrix. The gradients
sample tiles of the column matrix (:data:`COLUMN_TILE_BYTES`) with channel-first kernels that
scatter onto the four neighbours (:func:`deform_conv2d_grad`).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

# On a machine with few cores, set OMP_WAIT_POLICY=PASSIVE for the fastest deform_conv2d (see the
# "OpenMP wait policy" note in convlab.config): convlab does not set it for you, because it would
# slow every other OpenMP library in the process, PyTorch's included.
import numba
import numpy as np
import numpy.typing as npt

from . import _kernels_deformable as _k
from ._args import Array, check_rank, float_array, ntuple
from ._blas import blas_gemm, one_blas_thread
from .config import parallel_launch
from .shapes import IntOrTuple, conv_output_size

__all__ = ["deform_conv2d", "deform_conv2d_grad", "DeformConv2dGrads", "COLUMN_TILE_BYTES"]

#: upper bound (bytes) on one tile of the sampled column matrix in :func:`deform_conv2d_grad` (at
#: least 256 columns, for BLAS); the bound keeps the peak memory below torchvision's, which holds
#: the whole column matrix of the batch at once
COLUMN_TILE_BYTES = 4 * 2**20
_MIN_TILE_COLUMNS = 256

#: the forward pass: bytes of sampled columns per thread (one block of positions times one chunk
#: of rows), a quarter of a core's L2 cache (2 MiB on this project's machine), so that the block
#: stays in cache between the sampling and the matrix product that reads it (256 KiB and 1 MiB
#: were as fast within the noise on the benchmark layers)
BLOCK_BYTES = 2**19
#: rows of the column matrix (channels times taps) per matrix product: fewer rows per call cost
#: more passes over the output block, more rows a larger buffer
_CHUNK_ROWS = 576
#: fewest positions per block, for BLAS
_MIN_BLOCK = 32
# sample in (tap, channel) order, which needs a reordered copy of the weight, only while that copy
# is at most 1/4 of one image's column matrix (the memory torchvision needs anyway)
_TAP_MAJOR_WEIGHT_SHARE = 4
# the thread count the work is cut for, a constant whatever the machine, so that neither
# set_num_threads() nor NUMBA_NUM_THREADS changes the cut, nor the result: 4 shares out evenly
# among 1, 2 or 4 threads (a 3-thread run is as fast as a 2-thread one on layers with few
# blocks); tests set it
_LAYOUT_THREADS = 4

# the sampling plan stores int32 indices into one padded plane
_MAX_PLANE = 2**31 - 1

DeformConv2dGrads = namedtuple("DeformConv2dGrads", ["input", "offset", "weight", "bias", "mask"])
DeformConv2dGrads.__doc__ = """Gradients of :func:`deform_conv2d`, one field per argument.

``bias`` is None when the call had no bias, ``mask`` is None when it had no mask; every other
field has the shape and dtype of the corresponding argument (in the input's dtype).
"""


class _Prepared:
    """Validated arguments of one deformable convolution."""

    __slots__ = (
        "x",
        "offset",
        "w",
        "b",
        "has_bias",
        "mask",
        "stride",
        "padding",
        "dilation",
        "groups",
        "offset_groups",
        "out_hw",
    )
    x: Array
    offset: Array
    w: Array
    b: Array
    has_bias: bool
    mask: Array | None
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    offset_groups: int
    out_hw: tuple[int, int]


def _prepare(
    input: npt.ArrayLike,
    offset: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: IntOrTuple,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    mask: npt.ArrayLike | None,
) -> _Prepared:
    x = float_array(input, "input")
    check_rank(
        x, (4,), "input", "(N, C_in, H, W) (torchvision's deform_conv2d needs a batch dimension)"
    )
    w = float_array(weight, "weight", dtype=x.dtype)
    check_rank(w, (4,), "weight", "(C_out, C_in/groups, kH, kW)")
    off = float_array(offset, "offset", dtype=x.dtype)
    check_rank(off, (4,), "offset", "(N, 2*offset_groups*kH*kW, H_out, W_out)")
    if 0 in w.shape:
        raise ValueError(f"weight must not have a zero-size dimension, got shape {w.shape}")
    stride = ntuple(stride, 2, "stride")
    padding = ntuple(padding, 2, "padding", allow_zero=True)
    dilation = ntuple(dilation, 2, "dilation")

    n_batch, c_in, height, width = x.shape
    c_out, c_per_group, kh, kw = w.shape
    taps = kh * kw
    if c_in == 0:
        raise ValueError(f"input must have at least one channel, got shape {x.shape}")
    # torchvision infers both group counts from the shapes: weight groups from C_in / weight.shape[1]
    if c_in % c_per_group:
        raise ValueError(
            f"in_channels ({c_in}) must be divisible by weight.shape[1] ({c_per_group}): the weight "
            f"groups are inferred as C_in / weight.shape[1]"
        )
    groups = c_in // c_per_group
    if c_out % groups:
        raise ValueError(
            f"out_channels ({c_out}, weight.shape[0]) must be divisible by the weight groups "
            f"({groups} = C_in {c_in} / weight.shape[1] {c_per_group})"
        )
    # ... and offset groups from the offset's channels
    if off.shape[1] == 0 or off.shape[1] % (2 * taps):
        raise ValueError(
            f"offset.shape[1] ({off.shape[1]}) must be a positive multiple of 2*kH*kW = 2*{kh}*{kw} "
            f"= {2 * taps}: one (dy, dx) pair per kernel tap and offset group"
        )
    offset_groups = off.shape[1] // (2 * taps)
    if c_in % offset_groups:
        raise ValueError(
            f"in_channels ({c_in}) must be divisible by the offset groups ({offset_groups} = "
            f"offset.shape[1] {off.shape[1]} / (2*kH*kW) {2 * taps})"
        )
    if off.shape[0] != n_batch:
        raise ValueError(f"offset has batch size {off.shape[0]} but input has {n_batch}")
    out_hw = conv_output_size((height, width), (kh, kw), stride, padding, dilation)
    if off.shape[2:] != out_hw:
        raise ValueError(
            f"offset's spatial size {off.shape[2:]} must equal the output size {out_hw} "
            f"(H_out, W_out from conv_output_size({(height, width)}, {(kh, kw)}, stride={stride}, "
            f"padding={padding}, dilation={dilation}))"
        )
    if mask is not None:
        m = float_array(mask, "mask", dtype=x.dtype)
        check_rank(m, (4,), "mask", "(N, offset_groups*kH*kW, H_out, W_out)")
        if m.shape[0] != n_batch:
            raise ValueError(f"mask has batch size {m.shape[0]} but input has {n_batch}")
        if m.shape[1] != offset_groups * taps:
            raise ValueError(
                f"mask.shape[1] ({m.shape[1]}) must equal offset_groups*kH*kW = "
                f"{offset_groups}*{kh}*{kw} = {offset_groups * taps}"
            )
        if m.shape[2:] != out_hw:
            raise ValueError(
                f"mask's spatial size {m.shape[2:]} must equal the output size {out_hw}"
            )
    else:
        m = None
    if bias is not None:
        b = float_array(bias, "bias", dtype=x.dtype)
        if b.shape != (c_out,):
            raise ValueError(f"bias must have shape (C_out,) = ({c_out},), got {b.shape}")
    else:
        b = np.zeros(c_out, dtype=x.dtype)
    if (height + 3) * (width + 2) > _MAX_PLANE:
        raise ValueError(
            f"input planes of {height} x {width} are too large (the sampling plan uses int32 indices)"
        )

    p = _Prepared()
    p.x, p.offset, p.w, p.b, p.has_bias, p.mask = x, off, w, b, bias is not None, m
    p.stride, p.padding, p.dilation = stride, padding, dilation
    p.groups, p.offset_groups, p.out_hw = groups, offset_groups, out_hw
    return p


class _Sampler:
    """Sampling plan and padded image shared by the forward and backward passes over one call's images.

    ``channels_last`` (the forward pass) keeps a padded ``(Hp*Wp, C)`` copy of each image: the
    four neighbours of a point are then four contiguous runs of channels, so sampling needs no
    gathers. The backward pass uses the channel-first layout ``(C, Hp*Wp)`` and tiles ``(C*T, L)``
    of the column matrix (``cols``, ``tiles()``, ``sample()``) that its scatter kernels expect.
    """

    def __init__(self, p: _Prepared, channels_last: bool) -> None:
        x = p.x
        n_batch, c_in, height, width = x.shape
        kh, kw = p.w.shape[2:]
        oh, ow = p.out_hw
        self.height, self.width, self.taps = height, width, kh * kw
        self.positions = oh * ow
        self.wp = width + 2
        self.channels_last = channels_last
        dtype = x.dtype
        # base sampling coordinates oy*s - p + i*d, stored in the input's dtype (torchvision adds
        # the offset to this int converted to scalar_t)
        self.ybase = (
            np.arange(oh)[None, :] * p.stride[0]
            - p.padding[0]
            + np.arange(kh)[:, None] * p.dilation[0]
        ).astype(dtype)
        self.xbase = (
            np.arange(ow)[None, :] * p.stride[1]
            - p.padding[1]
            + np.arange(kw)[:, None] * p.dilation[1]
        ).astype(dtype)
        g, t, pos = p.offset_groups, self.taps, self.positions
        # the sampling plan of the whole batch, in one serial call (12 bytes per point)
        self.idx = np.empty((n_batch, g, t, pos), dtype=np.int32)
        self.lh = np.empty((n_batch, g, t, pos), dtype=dtype)
        self.lw = np.empty((n_batch, g, t, pos), dtype=dtype)
        self.offsets = p.offset.reshape(n_batch, g, t, 2, pos)
        _k._deform_plan(
            self.offsets, self.ybase, self.xbase, height, width, self.idx, self.lh, self.lw
        )
        self.use_mask = p.mask is not None
        self.masks = (
            p.mask.reshape(n_batch, g, t, pos)
            if p.mask is not None  # self.use_mask, spelled so that mypy sees the narrowing
            else np.zeros((n_batch, 1, 1, 1), dtype=dtype)
        )
        # one padded image at a time: 1 zero row/column before, 2 rows / 1 column after (only the
        # border is zeroed: load() overwrites the inside)
        if channels_last:
            self.xp = np.empty((height + 3, width + 2, c_in), dtype=dtype)
            self.xp[0] = 0
            self.xp[height + 1 :] = 0
            self.xp[:, 0] = 0
            self.xp[:, width + 1] = 0
        else:
            rows = c_in * t
            tile = max(_MIN_TILE_COLUMNS, COLUMN_TILE_BYTES // (rows * x.itemsize))
            self.tile = min(pos, tile)
            self.xp = np.zeros((c_in, height + 3, width + 2), dtype=dtype)
            self.cols = np.empty((rows, self.tile), dtype=dtype)
        self.x = x

    def load(self, n: int) -> None:
        """Copy image ``n`` into the padded buffer."""
        if self.channels_last:
            self.xp[1 : self.height + 1, 1 : self.width + 1] = self.x[n].transpose(1, 2, 0)
        else:
            self.xp[:, 1 : self.height + 1, 1 : self.width + 1] = self.x[n]

    def tiles(self) -> Iterator[tuple[int, int]]:
        for p0 in range(0, self.positions, self.tile):
            yield p0, min(self.positions, p0 + self.tile)

    def sample(self, n: int, p0: int, p1: int) -> Array:
        """The deformable im2col columns (channel-first) of image ``n`` for positions ``p0:p1``."""
        cols = self.cols[:, : p1 - p0]
        with parallel_launch():
            _k._deform_im2col(
                self.xp.reshape(self.xp.shape[0], -1),
                self.wp,
                self.idx[n],
                self.lh[n],
                self.lw[n],
                self.masks[n],
                self.use_mask,
                cols,
                p0,
            )
        return cols


def _forward_layout(
    c_in: int,
    c_per_group: int,
    c_out: int,
    groups: int,
    taps: int,
    positions: int,
    itemsize: int,
) -> tuple[bool, int, int, int, int]:
    """How :func:`deform_conv2d` cuts one image's work: ``(tap_major, chunk, ld, block, k_parts)``.

    ``tap_major``: sample in (tap, channel) order (fastest) against a reordered copy of the weight,
    while that copy is small (:data:`_TAP_MAJOR_WEIGHT_SHARE`); ``chunk``: taps (tap-major) or
    channels (each with all its taps) per matrix product, about :data:`_CHUNK_ROWS` rows; ``ld``:
    the stride of a buffer row, padded so that it is never a multiple of 1 KiB (rows that far
    apart share L1 sets, and BLAS reads 16 of them at once); ``block``: positions per block, so
    that a block's chunk fills about :data:`BLOCK_BYTES`, but at least one per output channel of a
    group (BLAS packs the group's weight for every block: with fewer positions than that, packing
    the weight would cost more than the product), at least :data:`_MIN_BLOCK`, all blocks but the
    last the same size; ``k_parts``: when there are fewer blocks than threads, the chunks of every
    group are split into that many parts (split-K) so that every thread gets work, else 1.

    Depends on the shapes only, not on the current number of threads, so that the sums (and the
    result) do not either.
    """
    out_per_group = c_out // groups
    weight_bytes = c_out * c_per_group * taps * itemsize
    tap_major = weight_bytes * _TAP_MAJOR_WEIGHT_SHARE <= c_in * taps * positions * itemsize
    # chunks of equal size (a last chunk of one tap would be a slow, thin matrix product)
    if tap_major:
        n_chunks = -(-taps // max(1, min(taps, _CHUNK_ROWS // c_per_group)))
        chunk = -(-taps // n_chunks)
        ld = chunk * c_per_group
    else:
        n_chunks = -(-c_per_group // max(1, min(c_per_group, _CHUNK_ROWS // taps)))
        chunk = -(-c_per_group // n_chunks)
        ld = chunk * taps
    if (ld * itemsize) % 1024 == 0:
        ld += 64 // itemsize
    block = max(_MIN_BLOCK, BLOCK_BYTES // (ld * itemsize), out_per_group)
    n_blocks = -(-positions // block)
    threads = _LAYOUT_THREADS
    k_parts = 1
    if n_blocks < threads:
        k_parts = min(-(-threads // n_blocks), n_chunks)
        if n_blocks * k_parts < threads:
            n_blocks = max(n_blocks, min(-(-threads // k_parts), -(-positions // _MIN_BLOCK)))
    else:  # a multiple of the threads, so that they all get the same number of blocks
        n_blocks = min(-(-n_blocks // threads) * threads, max(n_blocks, positions // _MIN_BLOCK))
    block = -(-positions // n_blocks)
    return tap_major, chunk, ld, block, k_parts


def deform_conv2d(
    input: npt.ArrayLike,
    offset: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    mask: npt.ArrayLike | None = None,
) -> Array:
    """Deformable 2-D convolution, exactly ``torchvision.ops.deform_conv2d``.

    Output position ``(oy, ox)`` and kernel tap ``(i, j)`` read input channel ``c`` at the point
    ``y = oy*sh - ph + i*dh + dy``, ``x = ox*sw - pw + j*dw + dx``, where ``(dy, dx)`` is the
    offset of that tap, position and offset group, by bilinear interpolation; the sample is
    multiplied by ``mask`` (v2) if given, then by the weight, and summed as in :func:`conv2d`.

    Parameters
    ----------
    input : array_like, shape (N, C_in, H, W)
        A batch dimension is required, as in torchvision.
    offset : array_like, shape (N, 2 * offset_groups * kH * kW, H_out, W_out)
        Channel ``2*(g*kH*kW + i*kW + j)`` holds ``dy`` and the next one ``dx`` of tap ``(i, j)``
        in offset group ``g``. The number of offset groups is inferred from the channels; input
        channel ``c`` uses group ``c // (C_in / offset_groups)``. A NaN offset gives NaN samples
        (as torchvision does).
    weight : array_like, shape (C_out, C_in / groups, kH, kW)
        The weight groups are inferred as ``C_in / weight.shape[1]``.
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of 2 ints, positive
    padding : int or tuple of 2 ints, non-negative
        Only moves the regular grid (``- ph``): the image is never padded with values; points
        outside it read 0.
    mask : array_like, shape (N, offset_groups * kH * kW, H_out, W_out), optional
        Modulation scalars of Deformable ConvNets v2, one per tap, position and offset group.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out)
        ``H_out, W_out`` from :func:`convlab.conv_output_size`; the input's dtype (float32 or
        float64; integers compute in float64).

    Raises
    ------
    ValueError, TypeError
        For wrong ranks, offset channels that are not a multiple of ``2*kH*kW``, offset or mask
        sizes that do not match the output, mask channels other than ``offset_groups*kH*kW``,
        channels not divisible by the groups, batch mismatches; before any kernel runs.

    Notes
    -----
    Bilinear interpolation follows torchvision's ``bilinear_interpolate``: a point with
    ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` reads 0; otherwise the value is
    ``hh*hw*v(y0, x0) + hh*lw*v(y0, x0+1) + lh*hw*v(y0+1, x0) + lh*lw*v(y0+1, x0+1)`` with
    ``y0 = floor(y)``, ``lh = y - y0``, ``hh = 1 - lh`` (likewise ``x``), and a neighbour outside
    the image counts as 0. References: Dai et al., *Deformable Convolutional Networks*, ICCV 2017;
    Zhu et al., *Deformable ConvNets v2*, CVPR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2))
    >>> deform_conv2d(x, np.zeros((1, 8, 3, 3)), w)[0, 0]       # zero offsets: a plain conv
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    >>> off = np.zeros((1, 8, 3, 3)); off[:, 1::2] = 0.5          # every tap half a pixel right
    >>> deform_conv2d(x, off, w)[0, 0, 0]     # the last window's right taps half leave the image
    array([12., 16., 14.])
    """
    p = _prepare(input, offset, weight, bias, stride, padding, dilation, mask)
    n_batch = p.x.shape[0]
    c_out, c_per_group, kh, kw = p.w.shape
    oh, ow = p.out_hw
    out = np.empty((n_batch, c_out, oh, ow), dtype=p.x.dtype)
    if out.size == 0:
        return out
    s = _Sampler(p, channels_last=True)
    taps = kh * kw
    positions = oh * ow
    c_in = p.x.shape[1]
    tap_major, chunk, ld, block, k_parts = _forward_layout(
        c_in, c_per_group, c_out, p.groups, taps, positions, p.x.itemsize
    )
    if tap_major:  # the weight flattened in the columns' (tap, channel) order: a small copy
        w2 = np.ascontiguousarray(p.w.transpose(0, 2, 3, 1)).reshape(c_out, -1)
    else:  # a view: the columns follow the weight's own (channel, tap) order
        w2 = p.w.reshape(c_out, -1)
    threads = max(1, min(numba.get_num_threads(), -(-positions // block) * k_parts))
    cols_buf = np.empty((threads, block * ld), dtype=p.x.dtype)
    tmp_buf = np.empty((threads, 0 if tap_major else taps * chunk), dtype=p.x.dtype)
    partial = np.empty((k_parts - 1, c_out, positions), dtype=p.x.dtype)
    out3 = out.reshape(n_batch, c_out, positions)
    xph = s.xp.reshape(-1)
    gemm = blas_gemm(p.x.dtype)
    for n in range(n_batch):
        s.load(n)
        with parallel_launch(), one_blas_thread():
            _k._deform_conv_forward(
                gemm,
                xph,
                c_in,
                s.wp,
                s.idx[n],
                s.lh[n],
                s.lw[n],
                s.masks[n],
                s.use_mask,
                w2,
                tap_major,
                p.groups,
                p.b,
                p.has_bias,
                out3[n],
                block,
                chunk,
                k_parts,
                partial,
                cols_buf,
                tmp_buf,
            )
    return out


def deform_conv2d_grad(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    offset: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    mask: npt.ArrayLike | None = None,
) -> DeformConv2dGrads:
    """Gradients of :func:`deform_conv2d` with respect to all its arrays, given ``grad_output``.

    Computes what ``torch.autograd`` returns for ``torchvision.ops.deform_conv2d``: for a scalar
    loss ``L`` with ``grad_output = dL/d(output)``, the derivatives of ``L`` with respect to
    ``input``, ``offset``, ``weight``, ``bias`` and ``mask``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, H_out, W_out)
        The gradient flowing back into the layer's output.
    input, offset, weight, bias, stride, padding, dilation, mask
        Exactly the arguments of the forward call (see :func:`deform_conv2d`).

    Returns
    -------
    DeformConv2dGrads
        Named tuple ``(input, offset, weight, bias, mask)``; ``bias`` is None without a bias and
        ``mask`` is None without a mask.

    Raises
    ------
    ValueError, TypeError
        For arguments :func:`deform_conv2d` rejects, or a ``grad_output`` whose shape is not the
        output's.

    Notes
    -----
    With the columns ``C[c*T + t, p] = mask * bilinear(x[c], point(t, p))`` of the forward pass
    and ``G = grad_output`` (per weight group):

    * ``dW = G @ C.T`` and ``db = sum(G)``;
    * ``dC = W.T @ G``, which is scattered back onto the four neighbours of every point with
      their bilinear weights times the mask to give ``d input`` (the adjoint of the sampling);
    * ``d mask = sum_c dC * bilinear(x[c], point)`` over the channels of the offset group;
    * ``d offset_y = sum_c dC * mask * (lw*(v11 - v01) + (1-lw)*(v10 - v00))`` (and likewise along
      ``x``), the derivative of the bilinear formula inside its cell. The bilinear value is
      piecewise linear, so at integer coordinates this is the one-sided derivative towards
      larger coordinates, as in torchvision (``get_coordinate_weight``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> off = np.zeros((1, 8, 3, 3)); off[:, 1::2] = 0.5
    >>> g = deform_conv2d_grad(np.ones((1, 1, 3, 3)), x, off, np.ones((1, 1, 2, 2)))
    >>> g.weight[0, 0]                            # sum of the samples each tap saw
    array([[49.5, 46.5],
           [85.5, 76.5]])
    >>> g.offset[0, 1]                            # d/d(dx) of tap (0, 0): the slope along x is 1
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    p = _prepare(input, offset, weight, bias, stride, padding, dilation, mask)
    n_batch, c_in, height, width = p.x.shape
    c_out, c_per_group, kh, kw = p.w.shape
    oh, ow = p.out_hw
    gout = float_array(grad_output, "grad_output", dtype=p.x.dtype)
    if gout.shape != (n_batch, c_out, oh, ow):
        raise ValueError(
            f"grad_output must have the output's shape (N, C_out, H_out, W_out) = "
            f"{(n_batch, c_out, oh, ow)}, got {gout.shape}"
        )
    dtype = p.x.dtype
    gx = np.zeros_like(p.x)
    goff = np.zeros_like(p.offset)
    gw = np.zeros_like(p.w)
    gb = gout.sum(axis=(0, 2, 3)) if p.has_bias else None
    gm = np.zeros_like(p.mask) if p.mask is not None else None
    if gout.size == 0:
        return DeformConv2dGrads(gx, goff, gw, gb, gm)

    s = _Sampler(p, channels_last=False)
    taps = kh * kw
    rows = c_per_group * taps
    w2 = p.w.reshape(c_out, rows)
    gw2 = gw.reshape(c_out, rows)
    g3 = gout.reshape(n_batch, c_out, oh * ow)
    gcols_buf = np.empty_like(s.cols)
    gxp = np.empty_like(s.xp)
    gxp_flat = gxp.reshape(c_in, -1)
    goffsets = goff.reshape(n_batch, p.offset_groups, taps, 2, oh * ow)
    gmasks = (
        gm.reshape(n_batch, p.offset_groups, taps, oh * ow)
        if gm is not None
        else np.zeros((n_batch, 1, 1, 1), dtype=dtype)
    )
    xp_flat = s.xp.reshape(c_in, -1)
    gemm, threads = blas_gemm(dtype), numba.get_num_threads()
    for n in range(n_batch):
        s.load(n)
        gxp[...] = 0
        for p0, p1 in s.tiles():
            s.sample(n, p0, p1)  # into s.cols
            gcols = gcols_buf[:, : p1 - p0]
            with parallel_launch(), one_blas_thread():
                _k._deform_backward_products(
                    gemm, threads, g3[n], p0, p1 - p0, s.cols, w2, p.groups, gw2, gcols_buf
                )
                _k._deform_col2im(
                    gcols, s.wp, s.idx[n], s.lh[n], s.lw[n], s.masks[n], s.use_mask, gxp_flat, p0
                )
                _k._deform_coord_grad(
                    xp_flat,
                    s.wp,
                    gcols,
                    s.offsets[n],
                    s.ybase,
                    s.xbase,
                    height,
                    width,
                    s.masks[n],
                    s.use_mask,
                    goffsets[n],
                    gmasks[n],
                    p0,
                )
        gx[n] = gxp[:, 1 : height + 1, 1 : width + 1]
    return DeformConv2dGrads(gx, goff, gw, gb, gm)
