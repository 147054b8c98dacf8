"""im2col / col2im (``torch.nn.functional.unfold`` / ``fold``) and convolution as a matrix product.

im2col copies every receptive field of the input into one column of a matrix with
``C * kH * kW`` rows and ``H_out * W_out`` columns (Chellapilla et al. 2006). A convolution is then
``weight.reshape(C_out, -1) @ columns``: one GEMM per group, which BLAS runs near peak speed, at the
price of a buffer about ``kH * kW`` times the size of the input.

The other fast algorithms :func:`convlab.conv2d` can run live in their own modules and are
re-exported here: Winograd F(2x2, 3x3) (``_winograd.py``, Lavin & Gray 2016) and the FFT
(``_fft.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import numba
import numpy as np
import numpy.typing as npt

from . import _gather, _kernels
from ._args import Array, check_rank, float_array, ntuple
from ._blas import blas_gemm, one_blas_thread
from ._fft import conv2d_fft
from ._winograd import conv2d_winograd, conv2d_winograd_dilated, workspace
from .config import parallel_launch
from .shapes import IntOrTuple, conv_output_size

__all__ = [
    "im2col",
    "col2im",
    "im2col_buffer_nbytes",
    "im2col_workspace_nbytes",
    "conv2d_im2col",
    "conv2d_winograd",
    "conv2d_winograd_dilated",
    "conv2d_fft",
    "check_winograd",
    "pad_input",
]


# np.pad's names for PyTorch's padding modes (torch.nn.ConvNd pads with F.pad, whose 'replicate'
# is NumPy's 'edge' and whose 'circular' is NumPy's 'wrap').
_NUMPY_PAD_MODE: dict[str, Literal["constant", "reflect", "edge", "wrap"]] = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def pad_input(
    x: Array,
    pairs: Sequence[tuple[int, int]],
    padding_mode: str,
    scratch: str | None = None,
) -> Array:
    """Pad the spatial dimensions of ``x`` (N, C, *spatial) as ``torch.nn.ConvNd`` does.

    ``pairs`` holds one ``(before, after)`` per spatial dimension; ``padding_mode`` is one of
    ``zeros``, ``reflect``, ``replicate``, ``circular``. The caller has checked the sizes.

    With ``scratch`` (a :func:`convlab._winograd.workspace` slot name), zero padding goes into
    that reused per-thread buffer (borders zeroed, the inside copied) instead of a new array: a
    fresh array of a few MB costs page faults on every call, about as much as the copy itself.
    The result is then only valid until the same thread asks for that slot again.
    """
    if all(before == 0 and after == 0 for before, after in pairs):
        return x
    if scratch is not None and padding_mode == "zeros":
        shape = x.shape[:2] + tuple(
            size + before + after for size, (before, after) in zip(x.shape[2:], pairs, strict=True)
        )
        xp: Array = workspace(scratch, shape, x.dtype)
        inside = [slice(None), slice(None)]
        for axis, (before, after) in enumerate(pairs, start=2):
            edge = [slice(None)] * xp.ndim
            if before:
                edge[axis] = slice(0, before)
                xp[tuple(edge)] = 0
            if after:
                edge[axis] = slice(xp.shape[axis] - after, None)
                xp[tuple(edge)] = 0
            inside.append(slice(before, before + x.shape[axis]))
        xp[tuple(inside)] = x
        return xp
    width = ((0, 0), (0, 0)) + tuple(pairs)
    return np.pad(x, width, mode=_NUMPY_PAD_MODE[padding_mode])


def im2col_buffer_nbytes(
    batch: int,
    channels: int,
    kernel_size: Sequence[int],
    output_size: Sequence[int],
    itemsize: int,
) -> int:
    """Bytes of the column matrix im2col builds: ``N * C * kH * kW * H_out * W_out * itemsize``."""
    return batch * channels * math.prod(kernel_size) * math.prod(output_size) * itemsize


def _unfold_geometry(
    spatial: Sequence[int],
    kernel_size: IntOrTuple,
    dilation: IntOrTuple,
    padding: IntOrTuple,
    stride: IntOrTuple,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    ks = ntuple(kernel_size, 2, "kernel_size")
    ds = ntuple(dilation, 2, "dilation")
    ps = ntuple(padding, 2, "padding", allow_zero=True)
    ss = ntuple(stride, 2, "stride")
    out = conv_output_size(tuple(spatial), ks, ss, ps, ds)
    # a dimension with one output never uses its stride: 1 there, so a huge one sizes nothing
    ss = tuple(s if o > 1 else 1 for s, o in zip(ss, out, strict=True))
    return ks, ds, ps, ss, out


def _sparse(spatial: Sequence[int], padding: Sequence[int], out: Sequence[int]) -> bool:
    """Padding far beyond what is read: see :mod:`convlab._gather`."""
    return max(padding) > 64 and _gather.sparse_padding(
        spatial, tuple(n + 2 * q for n, q in zip(spatial, padding, strict=True)), out
    )


def im2col(
    input: npt.ArrayLike,
    kernel_size: IntOrTuple,
    dilation: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    stride: IntOrTuple = 1,
) -> Array:
    """Extract sliding local blocks into columns, exactly ``torch.nn.functional.unfold``.

    Parameters
    ----------
    input : array_like, shape (N, C, H, W) or (C, H, W)
    kernel_size, dilation, stride : int or tuple of 2 ints, positive
    padding : int or tuple of 2 ints, non-negative (zeros)

    Returns
    -------
    numpy.ndarray, shape (N, C * kH * kW, L) or (C * kH * kW, L)
        Row ``(c * kH + i) * kW + j`` holds kernel tap ``(i, j)`` of channel ``c``; column
        ``oh * W_out + ow`` is the block of output position ``(oh, ow)``; ``L = H_out * W_out``
        from :func:`convlab.conv_output_size`.

    Examples
    --------
    >>> import numpy as np
    >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2)
    array([[[0., 1., 3., 4.],
            [1., 2., 4., 5.],
            [3., 4., 6., 7.],
            [4., 5., 7., 8.]]])
    """
    x = float_array(input, "input")
    check_rank(x, (3, 4), "input", "(N, C, H, W) or (C, H, W)")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    ks, ds, ps, ss, (oh, ow) = _unfold_geometry(x.shape[2:], kernel_size, dilation, padding, stride)
    pairs = ((ps[0], ps[0]), (ps[1], ps[1]))
    if _sparse(x.shape[2:], ps, (oh, ow)):
        # padding far beyond what is read (a huge stride or dilation): by index maps
        cols = _gather.unfold(x, ks, ss, ds, pairs, (oh, ow))
        cols = np.ascontiguousarray(cols.reshape(x.shape[0], -1, oh * ow))
        return cols[0] if unbatched else cols
    xp = pad_input(x, pairs, "zeros")
    cols = np.empty((x.shape[0], x.shape[1] * ks[0] * ks[1], oh * ow), dtype=x.dtype)
    if cols.size:
        with parallel_launch():
            _kernels._im2col(
                np.ascontiguousarray(xp), cols, ks[0], ks[1], ss[0], ss[1], ds[0], ds[1], oh, ow
            )
    return cols[0] if unbatched else cols


def col2im(
    cols: npt.ArrayLike,
    output_size: IntOrTuple,
    kernel_size: IntOrTuple,
    dilation: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    stride: IntOrTuple = 1,
) -> Array:
    """Sum columns back into an image, exactly ``torch.nn.functional.fold``.

    The adjoint of :func:`im2col`: overlapping blocks add up, so ``col2im(im2col(x))`` is ``x``
    times the number of blocks covering each pixel, not ``x``.

    Parameters
    ----------
    cols : array_like, shape (N, C * kH * kW, L) or (C * kH * kW, L)
    output_size : int or tuple of 2 ints
        ``(H, W)`` of the image to rebuild; ``L`` must equal the number of blocks in it.
    kernel_size, dilation, padding, stride
        As in :func:`im2col`.

    Returns
    -------
    numpy.ndarray, shape (N, C, H, W) or (C, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> col2im(np.ones((1, 4, 4)), 3, 2)
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    """
    c = float_array(cols, "cols")
    check_rank(c, (2, 3), "cols", "(N, C*kH*kW, L) or (C*kH*kW, L)")
    unbatched = c.ndim == 2
    if unbatched:
        c = c[None]
    size = ntuple(output_size, 2, "output_size")
    ks, ds, ps, ss, (oh, ow) = _unfold_geometry(size, kernel_size, dilation, padding, stride)
    taps = ks[0] * ks[1]
    if c.shape[1] % taps:
        raise ValueError(
            f"cols.shape[-2] ({c.shape[1]}) must be divisible by kH * kW = {ks[0]} * {ks[1]} = {taps}"
        )
    if c.shape[2] != oh * ow:
        raise ValueError(
            f"cols.shape[-1] ({c.shape[2]}) must equal the number of blocks {oh} * {ow} = {oh * ow} "
            f"for output_size={size}, kernel_size={ks}, dilation={ds}, padding={ps}, stride={ss}"
        )
    channels = c.shape[1] // taps
    if _sparse(size, ps, (oh, ow)):
        out = _gather.fold(c, size, ks, ss, ds, ps)  # see im2col
        return out[0] if unbatched else out
    outp = np.zeros((c.shape[0], channels, size[0] + 2 * ps[0], size[1] + 2 * ps[1]), dtype=c.dtype)
    if outp.size and c.size:
        with parallel_launch():
            _kernels._col2im(c, outp, ks[0], ks[1], ss[0], ss[1], ds[0], ds[1], oh, ow)
    out = outp[:, :, ps[0] : ps[0] + size[0], ps[1] : ps[1] + size[1]]
    out = np.ascontiguousarray(out)
    return out[0] if unbatched else out


def conv2d_im2col(
    x: Array,
    w: Array,
    b: Array,
    out: Array,
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    padding: Sequence[int] = (0, 0),
) -> None:
    """Fill ``out`` with the convolution of ``x``: im2col, then one GEMM per group.

    ``padding`` is the zero padding above and to the left of ``x``; below and to the right it
    follows from ``out``'s size. ``x`` is the unpadded input: the kernel writes the zeros straight into
    the columns (:func:`convlab._kernels._im2col_block`), so there is no padded copy of the input.

    Arguments are already validated by :func:`convlab.conv2d`. One parallel kernel does all the
    work (:func:`convlab._kernels._im2col_gemm`): every thread builds the columns of a block of
    output positions and multiplies them by the weight matrix straight into that block of
    ``out`` (one single-threaded BLAS ``gemm`` per group), so the column buffer holds ``threads
    * block`` columns (about ``IM2COL_BLOCK_BYTES`` of columns and output per thread), not the
    whole ``C_in * kH * kW x H_out * W_out`` matrix that :func:`im2col_buffer_nbytes` counts, and
    there is no buffer of products to copy into ``out``. The work is cut into pieces of every
    image's positions; on layers with too few positions for that (a 14x14 map) the input channels
    are cut in two instead, and the partial sums added (:func:`_im2col_plan`). The cut depends on
    the layer's shapes only, so the result does not depend on the number of threads. A 1x1 kernel
    with stride 1 and no padding builds no columns: BLAS reads the input in place.
    """
    n_batch = x.shape[0]
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    w2 = np.ascontiguousarray(w.reshape(c_out, c_per_group * kh * kw))
    in_place = (
        (kh, kw) == (1, 1)
        and tuple(stride) == (1, 1)
        and not any(padding)
        and (oh, ow) == x.shape[2:]
    )
    # the input rows and columns the outputs read (what the small-map path copies)
    used = [
        max(0, min(x.shape[2 + d], _span(out.shape[2 + d], k, stride[d], dilation[d]) - padding[d]))
        for d, k in enumerate((kh, kw))
    ]
    images = _images_buffers(
        n_batch,
        c_per_group,
        c_out,
        groups,
        (kh, kw),
        oh * ow,
        used,
        stride[1],
        x.itemsize,
        numba.get_num_threads(),
    )
    if images is not None and not in_place:
        # small maps: the columns of several whole images in one product
        per_block, threads, (n_cols, n_prod, n_images) = images
        cols = workspace("im2col", (threads, n_cols), x.dtype)
        prod = workspace("im2col_products", (threads, n_prod), x.dtype)
        last = workspace("im2col_images", (threads, n_images), x.dtype)
        with parallel_launch(), one_blas_thread():
            _kernels._im2col_gemm_images(
                blas_gemm(x.dtype),
                np.ascontiguousarray(x),
                w2,
                b,
                out,
                kh,
                kw,
                stride[0],
                stride[1],
                dilation[0],
                dilation[1],
                padding[0],
                padding[1],
                groups,
                per_block,
                cols,
                prod,
                last,
            )
        return
    threads, block, k_parts, k_rows, pieces, segments = _im2col_plan(
        n_batch,
        x.shape[1],
        c_out,
        (kh, kw),
        (oh, ow),
        x.itemsize,
        groups,
        numba.get_num_threads(),
        in_place,
    )
    cols_size = threads * k_rows * block
    chunk = k_rows // (kh * kw) if k_rows else c_per_group  # input channels per GEMM
    split = _split_size(x.shape[2:], (oh, ow), (kh, kw), stride, dilation, block, chunk)
    split_size = threads * split
    part_size = (k_parts - 1) * out.size  # the partial sums of split-K
    buf = workspace("im2col", (cols_size + split_size + part_size,), x.dtype)
    cols_buf = buf[:cols_size].reshape(threads, k_rows * block)
    split_buf = buf[cols_size : cols_size + split_size].reshape(threads, split)
    if k_parts > 1:
        partial = buf[cols_size + split_size :].reshape(k_parts - 1, out.size)
    else:
        partial = _NO_PARTIAL[x.dtype]  # conv2d's inputs are float32 or float64
    with parallel_launch(), one_blas_thread():
        _kernels._im2col_gemm(
            blas_gemm(x.dtype),
            np.ascontiguousarray(x),
            w2,
            b,
            out,
            kh,
            kw,
            stride[0],
            stride[1],
            dilation[0],
            dilation[1],
            padding[0],
            padding[1],
            groups,
            block,
            k_parts,
            pieces,
            segments,
            chunk,
            cols_buf,
            partial,
            split_buf,
        )


#: maps with fewer output positions than this (per image; 7x7 has 49) take the columns of
#: several images into one product (:func:`convlab._kernels._im2col_gemm_images`) when the
#: batch gives at least ``IMAGES_MIN_PER_BLOCK`` images per product. 2 threads, ms, a product
#: per image -> per block of images (PyTorch): 32 x 32 channels, 4x4 -> 2x2 at stride 2 0.177 ->
#: 0.054-0.061 (0.047); batch 128, 128 -> 256 channels, 8x8 -> 4x4 at stride 2, 6.6 -> 4.1
#: (2.1); 32 x 64 channels 12x12 -> 6x6 1.23 -> 0.73; 16 x 64, 14x14 -> 7x7 0.69 -> 0.52; 16 x
#: 128, 7x7 at stride 1 1.42 -> 1.15. Larger maps gain less or lose (16 x 128, 9x9 at stride 1
#: 1.95 -> 2.27), and so do blocks of two images (8 x 64, 6x6, 0.24 -> 0.32).
IMAGES_MAX_POSITIONS = 64
IMAGES_MIN_PER_BLOCK = 4
#: ... about this many positions per product (whole images), at most ``IMAGES_BLOCK_BYTES`` of
#: columns, and at least 4 products when the batch allows (the threads' share of the work)
IMAGES_TARGET = 256
IMAGES_BLOCK_BYTES = 2**20
IMAGES_MIN_BLOCKS = 4


def _images_width(width: int, stride: int) -> int:
    """Elements of an input row in the small-map path's copy: split into ``stride`` phases of
    ``ceil(width / stride)`` (at most ``stride - 1`` more than ``width``)."""
    return stride * -(-width // stride)


def _images_buffers(
    batch: int,
    c_per_group: int,
    c_out: int,
    groups: int,
    kernel: Sequence[int],
    positions: int,
    used: Sequence[int],
    stride_w: int,
    itemsize: int,
    threads: int,
) -> tuple[int, int, tuple[int, int, int]] | None:
    """The small-map path of :func:`conv2d_im2col`, or None when the layer does not take it:
    ``(per_block, threads, (columns, products, images))``, the last three the elements of each
    thread's buffers. ``used``: the input rows and columns the outputs read (or more: an upper
    bound gives an upper bound)."""
    k_rows = c_per_group * math.prod(kernel)
    inputs = c_per_group * used[0] * _images_width(used[1], stride_w)
    per_block, q_max = _images_plan(batch, k_rows, positions, itemsize, groups, inputs)
    if not per_block:
        return None
    threads = max(1, min(threads, -(-batch // per_block) * groups))
    return per_block, threads, (k_rows * q_max, c_out // groups * q_max, inputs * per_block)


def _images_plan(
    batch: int, k_rows: int, positions: int, itemsize: int, groups: int = 1, inputs: int = 0
) -> tuple[int, int]:
    """``(per_block, columns)``: the images per product of :func:`conv2d_im2col`'s small-map
    path and the most columns a product has, or ``(0, 0)`` when the layer does not take it
    (one image, or maps of ``IMAGES_MAX_POSITIONS`` positions or more). ``k_rows``: rows of the
    columns (``C_in/groups * kH * kW``); ``inputs``: the input values of one image and group the
    outputs read. A block's columns, and its copy of the input, stay within
    ``IMAGES_BLOCK_BYTES``. From the shapes only: the result does not depend on the number of
    threads."""
    if batch < 2 or positions >= IMAGES_MAX_POSITIONS or positions == 0:
        return 0, 0
    per_block = -(-IMAGES_TARGET // positions)
    largest = max(k_rows * positions, inputs) * itemsize  # bytes per image
    per_block = min(per_block, max(1, IMAGES_BLOCK_BYTES // largest))
    per_block = min(per_block, max(1, -(-batch * groups // IMAGES_MIN_BLOCKS) // groups), batch)
    if per_block < IMAGES_MIN_PER_BLOCK:
        return 0, 0
    # blocks of one size, not full ones and a remainder, when that keeps the minimum: a batch of
    # 128 in blocks of 14 left 2 images to the last block, so one of 2 threads got 70 images and
    # the other 58 (blocks of 13: 65 and 63; 128 -> 256 channels 8x8 at stride 2, 2 threads:
    # 3.55-3.63 -> 3.31-3.43 ms)
    even = -(-batch // -(-batch // per_block))
    if even >= IMAGES_MIN_PER_BLOCK:
        per_block = even
    return per_block, per_block * positions


def _split_size(
    in_size: Sequence[int],
    out_size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    block: int,
    chunk: int,
) -> int:
    """Elements of one thread's buffer of split input rows in :func:`conv2d_im2col`, 0 for none.

    With stride 2 across and a kernel wider than 1, every tap reads every other input column;
    the kernel then copies the rows a block reads once, even columns first and odd ones after
    (:func:`convlab._kernels._split_rows`), and builds the columns from those with copies of
    consecutive elements: the stem's 7x7 stride-2 columns were a sixth of its time as copies of
    every second element. ``in_size`` is the input's (H, W); only inputs no wider than the
    output reads are split, so the buffer never exceeds what :func:`im2col_workspace_nbytes`
    counts from the output's size.
    """
    (h, w), (oh, ow), (kh, kw) = in_size, out_size, kernel
    reach = _span(ow, kw, stride[1], dilation[1])  # input columns the output spans
    if stride[1] != 2 or kw < 2 or w > reach:
        return 0
    # a block of `block` positions spans at most this many output rows, and these input rows
    out_rows = min(oh, -(-block // ow) + 1)
    rows = min(h, _span(out_rows, kh, stride[0], dilation[0]))
    return chunk * rows * 2 * ((w + 1) // 2)


def _span(out: int, k: int, stride: int, dilation: int) -> int:
    """Input elements that ``out`` outputs of a ``k``-tap kernel read along one dimension."""
    return (out - 1) * stride + (k - 1) * dilation + 1


# what conv2d_im2col passes as the (unused) partial sums when the threads split the positions
_NO_PARTIAL = {np.dtype(t): np.empty((0, 0), dtype=t) for t in (np.float32, np.float64)}


def _im2col_plan(
    batch: int,
    c_in: int,
    c_out: int,
    kernel_size: Sequence[int],
    output_size: Sequence[int],
    itemsize: int,
    groups: int = 1,
    threads: int | None = None,
    in_place: bool = False,
) -> tuple[int, int, int, int, int, int]:
    """(threads, block, k_parts, k_rows, pieces, segments) of :func:`conv2d_im2col`.

    The work is ``N * pieces * k_parts`` items (:func:`convlab._kernels._im2col_gemm`): every
    image's output positions in ``pieces`` pieces (12, 4, 2 or 1: the most that leaves every
    piece ``IM2COL_MIN_BLOCK`` positions; 12 and 4 share out evenly among 1, 2, 3, 4 or 6
    threads), times ``k_parts`` parts of each group's input channels (split-K: 2 when a layer of
    small images would give an odd number of pieces, fewer than 8, and a group has at least 2
    channels; else 1). ``segments``: blocks per piece, so that a block holds about
    ``IM2COL_BLOCK_BYTES`` of columns and output, but at least ``IM2COL_MIN_BLOCK`` positions;
    ``block``: the most positions in a block (blocks start at multiples of 16 positions);
    ``k_rows``: rows of the column buffer per thread (0 for a 1x1 kernel read in place);
    ``threads``: the threads that get work, at most ``threads`` (default
    ``numba.get_num_threads()``). Everything but ``threads`` depends on the layer's shapes only:
    the blocks, the matrix products and the order of the partial sums are the same on any number
    of threads, and so is the result.
    """
    if threads is None:
        threads = numba.get_num_threads()
    return _plan(
        batch,
        c_in,
        c_out,
        tuple(kernel_size),
        tuple(output_size),
        itemsize,
        groups,
        threads,
        in_place,
        IM2COL_MIN_BLOCK,
        IM2COL_BLOCK_BYTES,
        IM2COL_CHUNK_BYTES,
        IM2COL_CHUNK_ROWS,
    )


@functools.lru_cache(maxsize=256)
def _plan(
    batch: int,
    c_in: int,
    c_out: int,
    kernel_size: tuple[int, ...],
    output_size: tuple[int, ...],
    itemsize: int,
    groups: int,
    threads: int,
    in_place: bool,
    min_block: int,
    block_bytes: int,
    chunk_bytes: int,
    chunk_rows: int,
) -> tuple[int, int, int, int, int, int]:
    # cached: this arithmetic was a microsecond of every call's serial Python time
    positions = math.prod(output_size)
    taps = math.prod(kernel_size)
    c_per_group = c_in // groups
    pieces = next(r for r in (12, 4, 2, 1) if r == 1 or positions >= r * min_block)
    items = batch * pieces
    k_parts = 2 if items % 2 == 1 and items < 8 and c_per_group >= 2 and positions > 1 else 1
    # the columns and the block of output they produce stay in cache; the input rows a 1x1
    # kernel reads in place stream through once
    per_position = c_out + (0 if in_place else c_in * taps)
    block = max(min_block, block_bytes // (per_position * itemsize))
    segments = max(1, positions // pieces // block)
    units = -(-positions // 16)  # blocks start at multiples of 16 positions
    block = min(positions, 16 * -(-units // (pieces * segments)))
    # a part's channels in equal chunks whose columns stay in L2 while BLAS packs them
    per_part = -(-c_per_group // k_parts)
    chunk = max(-(-chunk_rows // taps), chunk_bytes // (taps * block * itemsize))
    chunks = -(-per_part // max(1, chunk))
    k_rows = 0 if in_place else -(-per_part // chunks) * taps
    return max(1, min(threads, items * k_parts)), block, k_parts, k_rows, pieces, segments


def im2col_workspace_nbytes(
    batch: int,
    c_in: int,
    c_out: int,
    kernel_size: Sequence[int],
    output_size: Sequence[int],
    itemsize: int,
    threads: int | None = None,
    groups: int = 1,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
) -> int:
    """Bytes of the buffers :func:`convlab.conv2d`'s im2col path allocates.

    ``threads`` defaults to ``numba.get_num_threads()``. Every thread gets ``block`` columns of
    a chunk of one group's input channels at a time (about ``IM2COL_CHUNK_BYTES``, at least
    ``IM2COL_CHUNK_ROWS`` rows; the products go straight into the output), so the buffer grows
    with the kernel, not with the image, unlike the full matrix of :func:`im2col_buffer_nbytes`.
    ``c_out`` enters through the block width, which keeps the columns and the block of output
    they produce in a core's cache. Layers with fewer than ``2 * IM2COL_MIN_BLOCK`` positions
    cut the channels in two instead, and add one output-sized buffer of partial sums.
    With ``stride`` 2 across (``stride`` and ``dilation`` are pairs), each thread also gets the
    input rows of a block split into even and odd columns. An upper bound for a 1x1 kernel with
    stride 1 and no padding, which needs no columns. Small maps with a batch (:func:`_images_plan`)
    take a block of whole images per thread instead: their columns, products and input values
    (as many as the outputs can read without padding: an upper bound).

    Examples
    --------
    >>> im2col_buffer_nbytes(1, 64, (3, 3), (56, 56), 4) / 2**20          # the whole matrix, MiB
    6.890625
    >>> im2col_workspace_nbytes(1, 64, 64, (3, 3), (56, 56), 4, threads=2) / 2**20
    0.410888671875
    >>> im2col_workspace_nbytes(1, 256, 256, (3, 3), (14, 14), 4, threads=2) / 2**20  # split-K
    0.6220703125
    """
    spans = tuple(map(_span, output_size, kernel_size, stride, dilation))
    images = _images_buffers(
        batch,
        c_in // groups,
        c_out,
        groups,
        kernel_size,
        math.prod(output_size),
        spans,  # the input an output block can read, without padding: an upper bound
        stride[1],
        itemsize,
        numba.get_num_threads() if threads is None else threads,
    )
    if images is not None:  # small maps: columns, products and images of a block per thread
        _, n, sizes = images
        return n * sum(sizes) * itemsize
    threads, block, k_parts, k_rows, _, _ = _im2col_plan(
        batch, c_in, c_out, kernel_size, output_size, itemsize, groups, threads
    )
    partial = (k_parts - 1) * batch * c_out * math.prod(output_size)
    taps = math.prod(kernel_size)
    chunk = k_rows // taps if k_rows else c_in // groups
    # the widest input a split reads (_split_size), and all its rows
    split = _split_size(spans, output_size, kernel_size, stride, dilation, block, chunk)
    return (threads * (k_rows * block + split) + partial) * itemsize


#: bytes of columns and output one thread works on at a time in :func:`conv2d_im2col`: well
#: inside a core's L2 (2 MiB on this project's machine), so the GEMM reads columns that the im2col
#: step has just written, and adds to the block of output that was just filled with the bias ...
IM2COL_BLOCK_BYTES = 2**19
#: ... but never fewer positions than this: every block reads the whole weight matrix again
#: (2.4 MB for 256 -> 256 channels, 3x3), so wide layers need wide blocks (measured on 2 threads:
#: a 256-channel 28x28 layer took 5.9 ms with 64-position blocks and 4.2 ms with 256). Layers with
#: fewer than twice this many positions cut the input channels in two instead (split-K): a
#: 256-channel 14x14 layer took 1.10 ms on two threads split by positions (98 x 256 x 2304
#: GEMMs) and 0.94 ms split by channels (196 x 256 x 1152), 1.84 ms on one
IM2COL_MIN_BLOCK = 256
#: A block's columns are built and multiplied a chunk of input channels at a time, the chunks'
#: products summed in the output (BLAS's ``beta = 1``): a chunk's columns take about this many
#: bytes, so they are still in L2 when BLAS packs them (a 64-channel 7x7 layer's block is 5 MB of
#: columns in one piece) ...
IM2COL_CHUNK_BYTES = 2**18
#: ... but a chunk is at least this many rows (K of the GEMM): thinner products run slower
IM2COL_CHUNK_ROWS = 128


def check_winograd(
    w_shape: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    padding: Sequence[int] | None = None,
) -> None:
    """Raise ``ValueError`` unless Winograd F(2x2, 3x3) applies: 3x3 filters, stride 1, and
    dilation 1 or a ``padding`` before the input (a pair) that is a multiple of the dilation.

    ``w_shape`` is the weight's shape (C_out, C_in/groups, kH, kW); ``stride`` and ``dilation`` are
    pairs. A dilated filter runs on the input's interleaved sub-images
    (:func:`convlab._winograd.conv2d_winograd_dilated`), which needs that padding. Called by
    :func:`convlab.conv2d` before anything is computed.
    """
    kernel = tuple(w_shape[2:])
    if kernel != (3, 3):
        raise ValueError(
            f"algorithm='winograd' implements F(2x2, 3x3) and needs a 3x3 kernel, got kernel size "
            f"{kernel[0]}x{kernel[1]}; use 'direct', 'im2col', 'implicit', 'fft' or 'auto'"
        )
    if tuple(stride) != (1, 1):
        raise ValueError(
            f"algorithm='winograd' needs stride 1, got stride={tuple(stride)}; use 'direct', "
            f"'im2col', 'implicit', 'fft' or 'auto'"
        )
    if tuple(dilation) != (1, 1) and not phases_apply(dilation, padding):
        raise ValueError(
            f"algorithm='winograd' needs dilation 1, or a padding before the input that is a "
            f"multiple of the dilation (it then runs on the input's interleaved sub-images), got "
            f"dilation={tuple(dilation)} with padding={None if padding is None else tuple(padding)}"
            f"; use 'direct', 'im2col', 'implicit', 'fft' or 'auto'"
        )


def phases_apply(dilation: Sequence[int], padding: Sequence[int] | None) -> bool:
    """Whether a dilated 3x3 layer splits into sub-images for Winograd: the padding before the
    input (a pair, ``None`` if unknown) is a multiple of the dilation."""
    return padding is not None and all(p % d == 0 for p, d in zip(padding, dilation, strict=True))
