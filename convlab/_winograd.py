"""Winograd minimal filtering F(2x2, 3x3): a 3x3, stride-1 convolution with 2.25x fewer multiplications.

Lavin & Gray (2016) apply Winograd's minimal filtering algorithm to convolution layers. For one
output row of two values and a 3-tap filter, F(2, 3) needs 4 multiplications instead of 6::

    m1 = (d0 - d2) g0                 m2 = (d1 + d2) (g0 + g1 + g2) / 2
    m3 = (d2 - d1) (g0 - g1 + g2) / 2  m4 = (d1 - d3) g2
    y0 = m1 + m2 + m3                  y1 = m2 - m3 - m4

In matrix form ``y = A^T [(G g) * (B^T d)]`` with ``*`` the elementwise product, and nested in two
dimensions ``Y = A^T [(G g G^T) * (B^T d B)] A`` turns a 4x4 input tile ``d`` and a 3x3 filter
``g`` into a 2x2 output tile with 16 multiplications instead of 2 * 2 * 9 = 36.

A layer sums such products over the input channels. Because the transforms are linear, the sum can
be taken in the transformed domain: for each of the 16 positions ``(i, j)`` of the 4x4 tile,
``M[i, j] = U[i, j] @ V[i, j]``, a matrix product of the transformed filters ``U`` (C_out x C_in)
and the transformed input tiles ``V`` (C_in x tiles). So the layer becomes:

1. the filter transform ``U = G g G^T`` (once per call; Numba loops over the filters);
2. the input transform ``V = B^T d B`` of every overlapping 4x4 tile (tiles step by 2): additions
   and subtractions only;
3. sixteen GEMMs ``M[k] = U[k] @ V[k]`` (BLAS);
4. the output transform ``Y = A^T M A`` of every tile plus the bias.

Steps 2-4 run in one parallel Numba kernel that calls BLAS for each thread's own GEMMs on its own
core (:mod:`convlab._blas`), in one of two ways:

* by tiles (:func:`_winograd_fused`, layers with more than ``CHANNEL_SPLIT_TILES`` tiles): each
  thread takes a run of blocks of about a hundred tiles (whole tile rows) and pushes each block
  through all three steps, so a block's V and M never leave the core's cache; U is made
  beforehand by a parallel pass over the filters;
* by output channels (:func:`_winograd_by_channels`, few tiles): the threads first share out the
  input transform, then each takes a run of blocks of output channels and transforms a block's
  filters right before the GEMMs that use them. With few tiles the filters are most of
  the data (a 256-channel 14x14 layer has 49 tiles and 65,536 filters), so splitting by tiles
  would have every thread read all of U, and each GEMM would get only a couple of dozen columns.

Neither makes a padded copy of the input: the input transform reads zeros outside the image.

Thread-count independence: both cut the work into blocks (of tile rows, or of output channels)
whose boundaries depend on the layer's shape only, and each thread takes a run of whole blocks.
A block's transforms and GEMMs are then the same calls, with the same sizes, whichever thread
makes them, so the result is bit for bit the same on 1, 2 or 16 threads. (When the threads' own
shares were the blocks, ``numba.set_num_threads(1)`` changed results by up to 3e-5: a GEMM's
result for one column can change with the number of columns computed with it.) The checksum is
added block by block in block order, not by a parallel reduction.

Accuracy: F(2x2, 3x3) needs no looser tolerance than the direct loop. Its transforms use only
0, +-1 and 1/2, which are exact in binary floating point, and each transformed value adds at most
four terms, so a result carries a handful of extra roundings on top of the GEMM's sum over
channels (measured: largest error below 1e-6 of the largest output in float32, no worse than the
direct loop, whose sequential sum over ``9 C_in`` terms rounds more). Larger tiles (F(4x4, 3x3),
F(6x6, 3x3)) need transform points like 2 and 1/4 and lose accuracy fast; they are not
implemented. The performance chapter measures the error against float64.

Non-finite values: a NaN reaches exactly the outputs whose window holds it (the transforms add
and subtract, they never multiply by zero), but an inf becomes NaN wherever a tile combines it with
itself (``inf - inf``), where PyTorch gives +-inf. ``algorithm="auto"`` uses Winograd only on
finite data.
"""

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

from ._blas import blas_gemm, matmul_into, one_blas_thread
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS, parallel_launch

# fmt: off
#: F(2, 3) input transform B^T (4 x 4), Lavin & Gray (2016), eq. (8)
BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]], dtype=np.float64)
#: F(2, 3) filter transform G (4 x 3)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
#: F(2, 3) output transform A^T (2 x 4)
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]], dtype=np.float64)
# fmt: on

#: output tile size m, filter size r and input tile size alpha = m + r - 1 of F(m x m, r x r)
TILE, TAPS, ALPHA = 2, 3, 4


_WORKSPACE = threading.local()


def workspace(slot, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype`` that is reused across calls.

    Fresh multi-megabyte buffers cost more than the arithmetic done in them: the kernel has to map
    and zero every page on first touch (a 64-channel 56x56 Winograd layer ran in 4.4 ms with new
    buffers per call and in 1.7 ms with reused ones). Each Python thread keeps one buffer per
    ``slot`` name, grown when a larger one is needed, so concurrent calls from several threads
    never share memory. The caller must be done with the array before it asks for the same slot
    again.
    """
    buffers = _WORKSPACE.__dict__
    size = math.prod(shape)
    buf = buffers.get(slot)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        buffers[slot] = buf
    return buf[:size].reshape(shape)


_POOL = None
_POOL_LOCK = threading.Lock()


def _forget_pool():
    """In a forked child: the parent's pool threads do not exist there, so start a new pool.

    Without this, the first FFT in a child forked after the parent ran one waited forever for
    work handed to the parent's threads.
    """
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def split_launch(kernel, n_tasks, *args):
    """Run ``kernel(*args, start, stop)`` over ``[0, n_tasks)`` split across threads; wait for all.

    The FFT's channel sums are serial, ``nogil`` Numba functions over a range of tasks, run by the
    calling thread and a small pool of Python threads (as many threads in all as
    ``numba.get_num_threads()``), not by Numba's ``parallel=True`` machinery, because they
    alternate with NumPy's FFTs: Numba's OpenMP workers busy-wait after each parallel region, and
    alternating them with another library's threads on a two-core machine made a 64-channel 56x56
    Winograd layer 10x slower (24 ms instead of 2.3 ms) back when Winograd was built that way.
    Idle Python threads sleep. (im2col and Winograd now call BLAS from inside one parallel Numba
    kernel instead: :mod:`convlab._blas`.)
    """
    threads = min(numba.get_num_threads(), n_tasks)
    if threads <= 1:
        kernel(*args, 0, n_tasks)
        return
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1), thread_name_prefix="convlab"
            )
        pool = _POOL
    bounds = [n_tasks * i // threads for i in range(threads + 1)]
    futures = [pool.submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    try:
        kernel(*args, bounds[0], bounds[1])
    finally:
        for future in futures:
            future.result()


def winograd_weight_transform(w, out=None):
    """``U = G g G^T`` for every filter: (C_out, C_in/groups, 3, 3) -> (16, C_out, C_in/groups).

    Row ``i * 4 + j`` of the result is position ``(i, j)`` of the transformed 4x4 filter tile,
    computed in ``w``'s dtype (C-contiguous ``w`` expected); ``out``, if given, is a C-contiguous
    array of that shape and dtype to write into.
    """
    if out is None:
        out = np.empty((ALPHA * ALPHA, w.shape[0], w.shape[1]), dtype=w.dtype)
    with parallel_launch():
        _weight_transform(np.ascontiguousarray(w), out.reshape(ALPHA * ALPHA, -1))
    return out


@njit(**NJIT_PARALLEL_OPTIONS)
def _weight_transform(w, u):
    """``G g G^T`` of every 3x3 filter ``g`` into u (16, filters), blocks of filters per thread.

    A Numba loop, not a (16 x 9) @ (9 x filters) BLAS product: the product is too small to be worth
    waking the BLAS library's threads, which then spin while the Numba kernels that follow want
    both cores (measured: a 64-channel 56x56 layer took 6 ms instead of 1 ms). Each block is
    transformed into a small scratch whose rows are not 4 KiB apart (:func:`_transform_filters`)
    and then copied out one row at a time: writing the 16 rows of ``u`` in lockstep is 4K-aliased
    whenever a row is a multiple of 4 KiB (10x slower at 64 x 64 channels).
    """
    filters = u.shape[1]
    g = w.reshape(filters, TAPS * TAPS)
    block = WEIGHT_BLOCK
    for i in prange((filters + block - 1) // block):
        f0 = i * block
        f1 = min(filters, f0 + block)
        scratch = np.empty((ALPHA * ALPHA, block + 16), dtype=w.dtype)
        _transform_filters(g, scratch, f0, f1)
        for k in range(ALPHA * ALPHA):
            dst = u[k, f0:f1]
            src = scratch[k]
            for q in range(f1 - f0):
                dst[q] = src[q]


#: filters per block of :func:`_weight_transform`
WEIGHT_BLOCK = 1024


@njit(**NJIT_OPTIONS)
def _transform_filters(g, u, f0, f1):
    """``u[:, f - f0] = G g_f G^T`` (16 entries, row-major 4x4) for the filters ``f0 <= f < f1``.

    g: (filters, 9) taps. G's entries are 0, 1/2 and 1, so each entry is spelled out with adds and
    one halving. ``u``'s rows should not be a multiple of 4 KiB apart: the 16 rows are written in
    lockstep (with 16 KiB rows this loop ran 10x slower).
    """
    half = g.dtype.type(0.5)
    for f in range(f0, f1):
        a0, a1, a2 = g[f, 0], g[f, 1], g[f, 2]
        a3, a4, a5 = g[f, 3], g[f, 4], g[f, 5]
        a6, a7, a8 = g[f, 6], g[f, 7], g[f, 8]
        # G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 of the filter
        b0, b1, b2 = (a0 + a3 + a6) * half, (a1 + a4 + a7) * half, (a2 + a5 + a8) * half
        c0, c1, c2 = (a0 - a3 + a6) * half, (a1 - a4 + a7) * half, (a2 - a5 + a8) * half
        # (G g) G^T: the same along each row
        q = f - f0
        u[0, q] = a0
        u[1, q] = (a0 + a1 + a2) * half
        u[2, q] = (a0 - a1 + a2) * half
        u[3, q] = a2
        u[4, q] = b0
        u[5, q] = (b0 + b1 + b2) * half
        u[6, q] = (b0 - b1 + b2) * half
        u[7, q] = b2
        u[8, q] = c0
        u[9, q] = (c0 + c1 + c2) * half
        u[10, q] = (c0 - c1 + c2) * half
        u[11, q] = c2
        u[12, q] = a6
        u[13, q] = (a6 + a7 + a8) * half
        u[14, q] = (a6 - a7 + a8) * half
        u[15, q] = a8


@njit(**NJIT_OPTIONS)
def _winograd_input_transform(x, v, th_n, tw_n, r0, r1, ph, pw, even, odd, c0, c1):
    """``V = B^T d B`` for every 4x4 input tile ``d`` of the tile rows ``r0 <= r < r1``.

    x: (N, C, H, W) input, read as if padded with ``ph`` zero rows above and ``pw`` zero columns
    to the left (and with zeros below and to the right as far as the tiles reach); tile row ``r``
    is row ``ti = r % th_n`` of image ``n = r // th_n``, and tile ``(ti, tj)`` has its top-left
    element at padded position ``(2 ti, 2 tj)``. v: (16, C, >= (r1 - r0) tw_n), overwritten;
    ``v[4 i + j, c, p]`` is entry ``(i, j)`` of the transformed tile ``p = (r - r0) tw_n + tj``
    of channel ``c``; only the channels ``c0 <= c < c1`` are done. ``even`` and ``odd`` are
    scratch, each at least (2 min(th_n, r1 - r0) + 2, tw_n + 1).

    Tiles overlap by two columns and step by two, so a direct loop over tiles reads every row
    with stride 2 and LLVM does not vectorise it. The padded rows a run of tile rows needs are
    therefore first split into their even and odd columns (``even[i, q]`` is padded column
    ``2 q`` of padded row ``i``, zeros where that falls outside the input: no padded copy of the
    input is made); the transform then reads ``even`` and ``odd`` with unit stride.
    """
    height, width = x.shape[2], x.shape[3]
    half_w = tw_n + 1
    for c in range(c0, c1):
        r = r0
        while r < r1:
            n = r // th_n
            first = r % th_n
            stop = min(r1, (n + 1) * th_n)  # tile rows r ... stop - 1 are in image n
            # padded rows 2 first ... 2 (first + stop - r) + 1, split into even and odd columns.
            # x is indexed in full, never sliced: a view of an array all threads share updates
            # its reference count atomically, and two cores doing that in a loop lose most of
            # their speed-up to the contended cache line (even, odd and v's rows are the
            # thread's own)
            for i in range(2 * (stop - r) + 2):
                ih = 2 * first + i - ph
                e = even[i]
                o = odd[i]
                if 0 <= ih < height:
                    for q in range(half_w):
                        col = 2 * q - pw
                        e[q] = x[n, c, ih, col] if 0 <= col < width else 0
                        o[q] = x[n, c, ih, col + 1] if 0 <= col + 1 < width else 0
                else:
                    for q in range(half_w):
                        e[q] = 0
                        o[q] = 0
            for rr in range(r, stop):
                i = 2 * (rr - r)
                e0, o0 = even[i], odd[i]
                e1, o1 = even[i + 1], odd[i + 1]
                e2, o2 = even[i + 2], odd[i + 2]
                e3, o3 = even[i + 3], odd[i + 3]
                base = (rr - r0) * tw_n
                for tj in range(tw_n):
                    # tile columns 2 tj ... 2 tj + 3 are e[tj], o[tj], e[tj + 1], o[tj + 1]
                    # B^T d: combine the four rows of the tile (column by column)
                    t00 = e0[tj] - e2[tj]
                    t01 = o0[tj] - o2[tj]
                    t02 = e0[tj + 1] - e2[tj + 1]
                    t03 = o0[tj + 1] - o2[tj + 1]
                    t10 = e1[tj] + e2[tj]
                    t11 = o1[tj] + o2[tj]
                    t12 = e1[tj + 1] + e2[tj + 1]
                    t13 = o1[tj + 1] + o2[tj + 1]
                    t20 = e2[tj] - e1[tj]
                    t21 = o2[tj] - o1[tj]
                    t22 = e2[tj + 1] - e1[tj + 1]
                    t23 = o2[tj + 1] - o1[tj + 1]
                    t30 = e1[tj] - e3[tj]
                    t31 = o1[tj] - o3[tj]
                    t32 = e1[tj + 1] - e3[tj + 1]
                    t33 = o1[tj + 1] - o3[tj + 1]
                    # (B^T d) B: the same combination along each row
                    p = base + tj
                    v[0, c, p] = t00 - t02
                    v[1, c, p] = t01 + t02
                    v[2, c, p] = t02 - t01
                    v[3, c, p] = t01 - t03
                    v[4, c, p] = t10 - t12
                    v[5, c, p] = t11 + t12
                    v[6, c, p] = t12 - t11
                    v[7, c, p] = t11 - t13
                    v[8, c, p] = t20 - t22
                    v[9, c, p] = t21 + t22
                    v[10, c, p] = t22 - t21
                    v[11, c, p] = t21 - t23
                    v[12, c, p] = t30 - t32
                    v[13, c, p] = t31 + t32
                    v[14, c, p] = t32 - t31
                    v[15, c, p] = t31 - t33
            r = stop


@njit(**NJIT_OPTIONS)
def _winograd_output_transform(m, b, out, th_n, tw_n, r0, r1, o0):
    """``Y = A^T M A + bias`` for every tile of the tile rows ``r0 <= r < r1``.

    m: (16, channels, >= (r1 - r0) tw_n) products of the output channels ``o0 ...
    o0 + channels - 1``, laid out like ``v`` above; b: (C_out,); out: (N, C_out, H_out, W_out)
    with ``H_out >= 2 th_n - 1`` and ``W_out >= 2 tw_n - 1``: the outputs of the last tile row and
    column that fall outside an odd-sized ``out`` are dropped. Returns the sum of the outputs
    written (float64): finite exactly when they all are, unless it overflows (see
    :func:`conv2d_winograd`).
    """
    total = 0.0
    oh, ow = out.shape[2], out.shape[3]
    full_w = 2 * tw_n == ow
    for o in range(m.shape[1]):
        bias = b[o0 + o]
        for r in range(r0, r1):
            n = r // th_n
            ti = r % th_n
            # out is indexed in full, never sliced (see _winograd_input_transform)
            oc = o0 + o
            i0 = 2 * ti
            second_row = i0 + 1 < oh
            base = (r - r0) * tw_n
            last = tw_n if full_w else tw_n - 1
            for tj in range(last):
                p = base + tj
                # A^T M: rows 0 + 1 + 2 and 1 - 2 - 3 of the 4x4 product tile
                s00 = m[0, o, p] + m[4, o, p] + m[8, o, p]
                s01 = m[1, o, p] + m[5, o, p] + m[9, o, p]
                s02 = m[2, o, p] + m[6, o, p] + m[10, o, p]
                s03 = m[3, o, p] + m[7, o, p] + m[11, o, p]
                s10 = m[4, o, p] - m[8, o, p] - m[12, o, p]
                s11 = m[5, o, p] - m[9, o, p] - m[13, o, p]
                s12 = m[6, o, p] - m[10, o, p] - m[14, o, p]
                s13 = m[7, o, p] - m[11, o, p] - m[15, o, p]
                # (A^T M) A: the same along each row
                j = 2 * tj
                a = bias + (s00 + s01 + s02)
                c = bias + (s01 - s02 - s03)
                out[n, oc, i0, j] = a
                out[n, oc, i0, j + 1] = c
                total += a + c
                if second_row:
                    a = bias + (s10 + s11 + s12)
                    c = bias + (s11 - s12 - s13)
                    out[n, oc, i0 + 1, j] = a
                    out[n, oc, i0 + 1, j + 1] = c
                    total += a + c
            if not full_w:
                # odd width: the last tile of the row has one output column
                p = base + tw_n - 1
                s00 = m[0, o, p] + m[4, o, p] + m[8, o, p]
                s01 = m[1, o, p] + m[5, o, p] + m[9, o, p]
                s02 = m[2, o, p] + m[6, o, p] + m[10, o, p]
                s10 = m[4, o, p] - m[8, o, p] - m[12, o, p]
                s11 = m[5, o, p] - m[9, o, p] - m[13, o, p]
                s12 = m[6, o, p] - m[10, o, p] - m[14, o, p]
                j = 2 * (tw_n - 1)
                a = bias + (s00 + s01 + s02)
                out[n, oc, i0, j] = a
                total += a
                if second_row:
                    a = bias + (s10 + s11 + s12)
                    out[n, oc, i0 + 1, j] = a
                    total += a
    return total


@njit(**NJIT_PARALLEL_OPTIONS)
def _winograd_fused(gemm, x, u, b, out, th_n, tw_n, groups, n_blocks, v_buf, m_buf, ph, pw):
    """The whole layer: every thread transforms, multiplies and transforms back its own tiles.

    The ``N * th_n`` tile rows are cut into ``n_blocks`` blocks of consecutive rows (block ``k``
    is rows ``rows * k // n_blocks`` up to the next block's first), a cut that depends on the
    layer only (:func:`_tile_row_blocks`); thread ``t`` of ``v_buf.shape[0]`` (``prange``) takes
    a contiguous run of blocks and pushes each through the input transform into its ``v``
    (16, C_in, T), 16 GEMMs per group ``m[k] = u[k] @ v[k]`` (the caller holds BLAS to one
    thread: :func:`convlab._blas.one_blas_thread`) and the output transform of its ``m``
    (16, C_out, T). Nothing waits between the steps and a block's ``v`` and ``m`` stay in the
    thread's cache. Every block is computed the same way whichever thread runs it, so the result
    does not depend on the thread count, bit for bit. Returns the sum of all outputs (float64;
    see :func:`_winograd_output_transform`), added block by block in block order. ``v_buf`` and
    ``m_buf`` are (threads, size) scratch rows; a block's T columns may get one zero column more
    (:func:`_block_columns`) so that the 16 slabs do not alias.
    """
    n_threads = v_buf.shape[0]
    rows = out.shape[0] * th_n
    c_in = x.shape[1]
    c_out = out.shape[1]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    max_rows = -(-rows // n_blocks)
    totals = np.zeros(n_blocks)
    for t in prange(n_threads):
        even = np.empty((2 * min(th_n, max_rows) + 2, tw_n + 1), dtype=x.dtype)
        odd = np.empty_like(even)
        for blk in range(n_blocks * t // n_threads, n_blocks * (t + 1) // n_threads):
            r0 = rows * blk // n_blocks
            r1 = rows * (blk + 1) // n_blocks
            cols = _block_columns((r1 - r0) * tw_n, c_in, c_out, x.itemsize)
            v = v_buf[t, : ALPHA * ALPHA * c_in * cols].reshape((ALPHA * ALPHA, c_in, cols))
            m = m_buf[t, : ALPHA * ALPHA * c_out * cols].reshape((ALPHA * ALPHA, c_out, cols))
            _winograd_input_transform(x, v, th_n, tw_n, r0, r1, ph, pw, even, odd, 0, c_in)
            v[:, :, (r1 - r0) * tw_n :] = 0
            for k in range(ALPHA * ALPHA):
                for g in range(groups):
                    o0 = g * out_per_group
                    i0 = g * c_per_group
                    matmul_into(
                        gemm,
                        u[k, o0 : o0 + out_per_group],
                        v[k, i0 : i0 + c_per_group],
                        m[k, o0 : o0 + out_per_group],
                    )
            totals[blk] = _winograd_output_transform(m, b, out, th_n, tw_n, r0, r1, 0)
    total = 0.0
    for blk in range(n_blocks):
        total += totals[blk]
    return total


@njit(**NJIT_PARALLEL_OPTIONS)
def _winograd_by_channels(
    gemm, x, w, b, out, th_n, tw_n, groups, n_blocks, v_buf, u_buf, m_buf, ph, pw
):
    """The whole layer, split by output channels: for layers with few tiles and many channels.

    First the threads (``prange`` over ``u_buf.shape[0]``) share out the input channels and
    transform every tile into the common ``v`` (16, C_in, tiles) in ``v_buf``. Then the output
    channels are cut into ``n_blocks`` blocks of consecutive channels (block ``k`` starts at
    channel ``C_out * k // n_blocks``; :func:`_channel_blocks`), and thread ``t`` takes a
    contiguous run of blocks: filter transform of the block's filters into its ``u``
    (:func:`_transform_filters`), 16 GEMMs per group into its ``m``, output transform. A block's U
    is used while it is in cache and never shared, so no thread reads what another wrote, and the
    filter transform needs no separate parallel pass over all filters (at 256 x 256 channels that
    pass moves 4 MB through memory). The cut depends on the layer only, so the result does not
    depend on the thread count. Returns the sum of all outputs, as :func:`_winograd_fused`.
    """
    n_threads = u_buf.shape[0]
    rows = out.shape[0] * th_n
    c_in, c_out = x.shape[1], out.shape[1]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    g = w.reshape(c_out * c_per_group, TAPS * TAPS)
    tiles = rows * tw_n
    cols = _block_columns(tiles, c_in, -(-c_out // n_blocks), x.itemsize)
    u_stride = u_buf.shape[1] // (ALPHA * ALPHA)
    v = v_buf[: ALPHA * ALPHA * c_in * cols].reshape((ALPHA * ALPHA, c_in, cols))
    # first every thread transforms a share of the input channels (the GEMMs below need all);
    # each channel's transform is the same whoever makes it
    for t in prange(n_threads):
        even = np.empty((2 * th_n + 2, tw_n + 1), dtype=x.dtype)
        odd = np.empty_like(even)
        c_lo = c_in * t // n_threads
        c_hi = c_in * (t + 1) // n_threads
        _winograd_input_transform(x, v, th_n, tw_n, 0, rows, ph, pw, even, odd, c_lo, c_hi)
        v[:, c_lo:c_hi, tiles:] = 0
    totals = np.zeros(n_blocks)
    for t in prange(n_threads):
        u = u_buf[t].reshape((ALPHA * ALPHA, u_stride))
        for blk in range(n_blocks * t // n_threads, n_blocks * (t + 1) // n_threads):
            o0 = c_out * blk // n_blocks
            o1 = c_out * (blk + 1) // n_blocks
            _transform_filters(g, u, o0 * c_per_group, o1 * c_per_group)
            m = m_buf[t, : ALPHA * ALPHA * (o1 - o0) * cols].reshape((ALPHA * ALPHA, o1 - o0, cols))
            for k in range(ALPHA * ALPHA):
                # the block's channels, one piece per group they belong to
                a = o0
                while a < o1:
                    gi = a // out_per_group
                    e = min(o1, (gi + 1) * out_per_group)
                    i0 = gi * c_per_group
                    matmul_into(
                        gemm,
                        u[k, (a - o0) * c_per_group : (e - o0) * c_per_group].reshape(
                            (e - a, c_per_group)
                        ),
                        v[k, i0 : i0 + c_per_group],
                        m[k, a - o0 : e - o0],
                    )
                    a = e
            totals[blk] = _winograd_output_transform(m, b, out, th_n, tw_n, 0, rows, o0)
    total = 0.0
    for blk in range(n_blocks):
        total += totals[blk]
    return total


@njit(**NJIT_OPTIONS)
def _block_columns(tiles, c_in, c_out, itemsize):
    """Columns of a block's (16, C, T) slabs: ``tiles``, or one more if the slabs would alias.

    The transforms write (or read) the 16 slabs in lockstep. When a slab's size is a multiple of
    4 KiB the 16 streams compete for the same L1 sets and 4K-aliasing stalls every store: a
    64-channel 56x56 layer ran 3-10x slower in the input transform with 112- or 784-tile blocks
    than with 56-tile ones. An odd column count fixes it whenever ``C * itemsize`` is not itself a
    multiple of 4 KiB (then nothing would). The extra column is zeroed and its products dropped.
    """
    if tiles % 2 == 0 and (
        (c_in * tiles * itemsize) % 4096 == 0 or (c_out * tiles * itemsize) % 4096 == 0
    ):
        return tiles + 1
    return tiles


def _tile_row_blocks(th_n, tw_n, c_in, c_out, itemsize, rows):
    """Blocks of :func:`_winograd_fused`: about ``BLOCK_TILES`` tiles, within ``BLOCK_BYTES``.

    A function of the layer's shape only, never of the thread count: the same blocks give the
    same GEMMs, and so the same bits, on 1 or 16 threads (a GEMM's result for one column can
    change with the number of columns it is computed with). An even number of blocks when
    there is more than one, so that two threads get equal shares.
    """
    per_tile = ALPHA * ALPHA * (c_in + c_out) * itemsize
    tiles = max(MIN_BLOCK_TILES, min(BLOCK_TILES, BLOCK_BYTES // per_tile))
    per_block = max(1, min(rows, round(tiles / tw_n)))
    n_blocks = -(-rows // per_block)
    if n_blocks % 2 and n_blocks < rows:
        n_blocks += 1
    return n_blocks


def _channel_blocks(c_out, c_per_group, itemsize):
    """Blocks of output channels of :func:`_winograd_by_channels`, from the shape only.

    Each block's transformed filters fit in ``U_BLOCK_BYTES``; at least two blocks, and an even
    number, so that two threads get equal shares (see :func:`_tile_row_blocks` for why the
    thread count must not decide).
    """
    per_filter = ALPHA * ALPHA * c_per_group * itemsize
    n_blocks = max(-(-c_out // max(1, U_BLOCK_BYTES // per_filter)), min(c_out, 2))
    if n_blocks % 2 and n_blocks < c_out:
        n_blocks += 1
    return n_blocks


#: tiles per block a thread works on: enough columns for the GEMMs to run near full speed ...
BLOCK_TILES = 128
#: ... as long as V and M of a block fit in this many bytes. Not a core's L2 (2 MiB here): every
#: block reads all of U again (4 MiB for 256 x 256 channels), so wide layers gain more from fewer,
#: larger blocks than from V and M staying in L2 (measured on 2 threads: a 256-channel 28x28
#: layer took 4.8 ms with 1 MiB blocks and 3.1 ms with 8 MiB ones; 64-channel layers did not
#: change) ...
BLOCK_BYTES = 8 * 2**20
#: ... but never fewer tiles than this (wide layers: the GEMMs need columns more than cache)
MIN_BLOCK_TILES = 32


def conv2d_winograd(x, w, b, out, groups, padding=(0, 0)):
    """Fill ``out`` with the stride-1, dilation-1 convolution of ``x`` by 3x3 filters ``w``.

    ``x`` is the input (N, C_in, H, W), read as if padded with ``padding = (ph, pw)`` zero rows
    above and columns to the left, and with zeros below and to the right as far as ``out``'s size
    needs (an odd output size also reads one row or column more for its last tile, whose extra
    outputs are dropped). The caller (:func:`convlab.conv2d`) has validated everything and checked
    that the filters are 3x3 with stride and dilation 1. Returns the sum of the outputs (float64),
    computed on the way: ``conv2d(algorithm="auto")`` checks it for non-finite values (a NaN or
    inf anywhere in the data makes it NaN or inf, because every input and weight element reaches
    some output) without another pass over ``out``.
    """
    n_batch, c_in = x.shape[0], x.shape[1]
    c_out = w.shape[0]
    oh, ow = out.shape[2], out.shape[3]
    th_n, tw_n = (oh + TILE - 1) // TILE, (ow + TILE - 1) // TILE
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    ph, pw = int(padding[0]), int(padding[1])
    rows = n_batch * th_n
    if rows * tw_n <= CHANNEL_SPLIT_TILES:
        c_per_group = w.shape[1]
        n_blocks = _channel_blocks(c_out, c_per_group, x.itemsize)
        threads = max(1, min(numba.get_num_threads(), n_blocks))
        o_block = -(-c_out // n_blocks)
        cols = rows * tw_n + 1
        u_stride = o_block * c_per_group
        if (u_stride * x.itemsize) % 4096 == 0:  # 16 rows written in lockstep: no 4K aliasing
            u_stride += 16
        v_buf = workspace("winograd_v", (ALPHA * ALPHA * c_in * cols,), x.dtype)
        u_buf = workspace("winograd_u", (threads, ALPHA * ALPHA * u_stride), x.dtype)
        m_buf = workspace("winograd_m", (threads, ALPHA * ALPHA * o_block * cols), x.dtype)
        with parallel_launch(), one_blas_thread():
            return _winograd_by_channels(
                blas_gemm(x.dtype),
                x,
                w,
                b,
                out,
                th_n,
                tw_n,
                groups,
                n_blocks,
                v_buf,
                u_buf,
                m_buf,
                ph,
                pw,
            )
    u = winograd_weight_transform(
        w, workspace("winograd_u", (ALPHA * ALPHA,) + w.shape[:2], w.dtype)
    )
    n_blocks = _tile_row_blocks(th_n, tw_n, c_in, c_out, x.itemsize, rows)
    threads = max(1, min(numba.get_num_threads(), n_blocks))
    cols = -(-rows // n_blocks) * tw_n + 1
    v_buf = workspace("winograd_v", (threads, ALPHA * ALPHA * c_in * cols), x.dtype)
    m_buf = workspace("winograd_m", (threads, ALPHA * ALPHA * c_out * cols), x.dtype)
    with parallel_launch(), one_blas_thread():
        return _winograd_fused(
            blas_gemm(x.dtype), x, u, b, out, th_n, tw_n, groups, n_blocks, v_buf, m_buf, ph, pw
        )


def conv2d_winograd_dilated(x, w, b, out, groups, padding, dilation):
    """:func:`conv2d_winograd` of a 3x3 filter with ``dilation = (dh, dw)``, on sub-images.

    Output ``(ah + dh i, aw + dw j)`` reads only input rows ``ah + dh k`` and columns ``aw + dw l``
    (given a padding ``padding = (ph, pw)`` that is a multiple of the dilation, which the caller
    has checked), and with the filter's taps ``dh`` rows apart those are neighbouring rows of that
    sub-image: the dilated convolution of the input is, phase by phase, the undilated convolution
    of its ``dh * dw`` interleaved sub-images, padded by ``ph / dh`` and ``pw / dw`` (the
    space-to-batch form in which TensorFlow computes ``atrous_conv2d``). The sub-images go into
    one batch of
    ``dh * dw * N`` images (zeros where a phase is one row or column shorter), one Winograd call
    computes them all, and the outputs are put back in their places. Returns the Winograd sum.
    """
    n_batch, c_in, h, w_in = x.shape
    oh, ow = out.shape[2], out.shape[3]
    dh, dw = int(dilation[0]), int(dilation[1])
    phases = dh * dw
    xs = workspace(
        "winograd_phases_in", (phases * n_batch, c_in, -(-h // dh), -(-w_in // dw)), x.dtype
    )
    ys = workspace(
        "winograd_phases_out", (phases * n_batch, out.shape[1], -(-oh // dh), -(-ow // dw)), x.dtype
    )
    with parallel_launch():
        _to_phases(np.ascontiguousarray(x), xs, dh, dw)
    total = conv2d_winograd(xs, w, b, ys, groups, (padding[0] // dh, padding[1] // dw))
    with parallel_launch():
        _from_phases(ys, out, dh, dw)
    return total


@njit(inline="always", **NJIT_OPTIONS)
def _phase_row(t, channels, n_batch, dw):
    """Row ``t`` of the sub-images' ``(phases * N) x channels`` planes: ``(c, r, n, ah, aw)``, the
    channel, the sub-image's index in the batch, its image and its phase."""
    c = t % channels
    r = t // channels
    return c, r, r % n_batch, r // n_batch // dw, r // n_batch % dw


@njit(**NJIT_PARALLEL_OPTIONS)
def _to_phases(x, xs, dh, dw):
    """``xs[(ah dw + aw) N + n, c, i, j] = x[n, c, ah + dh i, aw + dw j]``, 0 past the input."""
    n_batch, channels, h, w = x.shape
    hs, ws = xs.shape[2], xs.shape[3]
    for t in prange(xs.shape[0] * channels):
        c, r, n, ah, aw = _phase_row(t, channels, n_batch, dw)
        for i in range(hs):
            ih = ah + dh * i
            for j in range(ws):
                iw = aw + dw * j
                xs[r, c, i, j] = x[n, c, ih, iw] if ih < h and iw < w else 0


@njit(**NJIT_PARALLEL_OPTIONS)
def _from_phases(ys, out, dh, dw):
    """``out[n, c, ah + dh i, aw + dw j] = ys[(ah dw + aw) N + n, c, i, j]`` inside ``out``."""
    n_batch, channels, oh, ow = out.shape
    for t in prange(ys.shape[0] * channels):
        c, r, n, ah, aw = _phase_row(t, channels, n_batch, dw)
        for i in range(-(-(oh - ah) // dh)):
            for j in range(-(-(ow - aw) // dw)):
                out[n, c, ah + dh * i, aw + dw * j] = ys[r, c, i, j]


#: layers with at most this many 2x2 output tiles (all images) are split between the threads by
#: output channels (:func:`_winograd_by_channels`), larger ones by tiles (:func:`_winograd_fused`)
CHANNEL_SPLIT_TILES = 128
#: bytes of transformed filters a thread makes and uses at a time in :func:`_winograd_by_channels`
U_BLOCK_BYTES = 2**19


def winograd_matrices(dtype=np.float64):
    """The transform matrices ``(B^T, G, A^T)`` of Winograd's F(2x2, 3x3), as new arrays.

    ``conv2d(..., algorithm="winograd")`` computes a 2x2 output tile ``Y`` of a 4x4 input tile
    ``d`` and a 3x3 filter ``g`` as ``Y = A^T [(G g G^T) * (B^T d B)] A`` (Lavin & Gray 2016):
    ``B^T`` is 4 x 4, ``G`` 4 x 3 and ``A^T`` 2 x 4. Their entries are 0, +-1 and 1/2, which are
    exact in binary floating point.

    Examples
    --------
    >>> import numpy as np
    >>> BT, G, AT = winograd_matrices()
    >>> d, g = np.arange(4.0), np.array([1.0, 2.0, 3.0])
    >>> AT @ ((G @ g) * (BT @ d))  # the two outputs of a 3-tap filter on 4 inputs
    array([ 8., 14.])
    """
    return BT.astype(dtype), G.astype(dtype), AT.astype(dtype)
