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

1. the filter transform ``U = G g G^T`` (once per call; a Numba loop over the filters);
2. the input transform ``V = B^T d B`` of every overlapping 4x4 tile (tiles step by 2): additions
   and subtractions only;
3. sixteen GEMMs ``M[k] = U[k] @ V[k]`` (BLAS);
4. the output transform ``Y = A^T M A`` of every tile plus the bias.

Steps 2-4 run in one parallel Numba kernel (:func:`_winograd_fused`): each thread takes a share of
the tile rows and pushes blocks of about a hundred tiles through all three steps, calling BLAS for
its own GEMMs on its own core (:mod:`convlab._blas`), so a block's V and M never leave the core's
cache and no thread waits for another between the steps.

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
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

from ._blas import one_blas_thread
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS, parallel_launch

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
            _POOL = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="convlab")
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
    """``G g G^T`` of every 3x3 filter ``g``, spelled out: G's entries are 0, 1/2 and 1.

    A Numba loop, not a (16 x 9) @ (9 x filters) BLAS product: the product is too small to be worth
    waking the BLAS library's threads, which then spin while the Numba kernels that follow want
    both cores (measured: a 64-channel 56x56 layer took 6 ms instead of 1 ms). u: (16, filters).
    Blocks of 64 filters are spread over the threads: for wide layers the transform is bound by
    memory traffic (256 x 256 filters: 2.4 MB read, 4 MB written), which two cores move faster.
    """
    filters = u.shape[1]
    g = w.reshape(filters, TAPS * TAPS)
    half = w.dtype.type(0.5)
    # 64 filters at a time: their taps transposed into ``gt`` (9, 64), so that every step below
    # is a unit-stride loop over 64 filters that LLVM vectorises; the 16 rows of the result are
    # then copied out one at a time (writing the 16 rows of u in lockstep is 4K-aliased whenever
    # a row is a multiple of 4 KiB: 16x slower at 256x256 channels)
    for b in prange((filters + 63) // 64):
        f0 = 64 * b
        n = min(filters, f0 + 64) - f0
        gt = np.empty((TAPS * TAPS, 64), dtype=w.dtype)
        a = np.empty((ALPHA, TAPS, 64), dtype=w.dtype)
        for q in range(n):
            for tap in range(TAPS * TAPS):
                gt[tap, q] = g[f0 + q, tap]
        # G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 of each filter, per column
        for col in range(TAPS):
            for q in range(n):
                g0, g1, g2 = gt[col, q], gt[TAPS + col, q], gt[2 * TAPS + col, q]
                a[0, col, q] = g0
                a[1, col, q] = (g0 + g1 + g2) * half
                a[2, col, q] = (g0 - g1 + g2) * half
                a[3, col, q] = g2
        # (G g) G^T: the same along each row, straight into u
        for row in range(ALPHA):
            k = row * ALPHA
            for q in range(n):
                h0, h1, h2 = a[row, 0, q], a[row, 1, q], a[row, 2, q]
                u[k, f0 + q] = h0
                u[k + 1, f0 + q] = (h0 + h1 + h2) * half
                u[k + 2, f0 + q] = (h0 - h1 + h2) * half
                u[k + 3, f0 + q] = h2


@njit(**NJIT_OPTIONS)
def _winograd_input_transform(xp, v, th_n, tw_n, r0, r1):
    """``V = B^T d B`` for every 4x4 input tile ``d`` of the tile rows ``r0 <= r < r1``.

    xp: (N, C, Hp, Wp) padded input with ``Hp >= 2 th_n + 2`` and ``Wp >= 2 tw_n + 2``; tile row
    ``r`` is row ``ti = r % th_n`` of image ``n = r // th_n``, and tile ``(ti, tj)`` has its top-left
    input element at ``(2 ti, 2 tj)``. v: (16, C, >= (r1 - r0) tw_n), overwritten;
    ``v[4 i + j, c, p]`` is entry ``(i, j)`` of the transformed tile ``p = (r - r0) tw_n + tj`` of
    channel ``c``. The innermost loop runs along a row of tiles, so each of the 16 outputs is
    written contiguously.
    """
    channels = xp.shape[1]
    for c in range(channels):
        for r in range(r0, r1):
            n = r // th_n
            ti = r % th_n
            src = xp[n, c]
            x0 = src[2 * ti]
            x1 = src[2 * ti + 1]
            x2 = src[2 * ti + 2]
            x3 = src[2 * ti + 3]
            base = (r - r0) * tw_n
            for tj in range(tw_n):
                j = 2 * tj
                # B^T d: combine the four rows of the tile (column by column)
                t00 = x0[j] - x2[j]
                t01 = x0[j + 1] - x2[j + 1]
                t02 = x0[j + 2] - x2[j + 2]
                t03 = x0[j + 3] - x2[j + 3]
                t10 = x1[j] + x2[j]
                t11 = x1[j + 1] + x2[j + 1]
                t12 = x1[j + 2] + x2[j + 2]
                t13 = x1[j + 3] + x2[j + 3]
                t20 = x2[j] - x1[j]
                t21 = x2[j + 1] - x1[j + 1]
                t22 = x2[j + 2] - x1[j + 2]
                t23 = x2[j + 3] - x1[j + 3]
                t30 = x1[j] - x3[j]
                t31 = x1[j + 1] - x3[j + 1]
                t32 = x1[j + 2] - x3[j + 2]
                t33 = x1[j + 3] - x3[j + 3]
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


@njit(**NJIT_OPTIONS)
def _winograd_output_transform(m, b, out, th_n, tw_n, r0, r1):
    """``Y = A^T M A + bias`` for every tile of the tile rows ``r0 <= r < r1``.

    m: (16, C_out, >= (r1 - r0) tw_n) products, laid out like ``v`` above; b: (C_out,);
    out: (N, C_out, H_out, W_out) with ``H_out >= 2 th_n - 1`` and ``W_out >= 2 tw_n - 1``: the
    outputs of the last tile row and column that fall outside an odd-sized ``out`` are dropped.
    Returns the sum of the outputs written (float64): finite exactly when they all are, unless it
    overflows (see :func:`conv2d_winograd`).
    """
    total = 0.0
    c_out = out.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    full_w = 2 * tw_n == ow
    for o in range(c_out):
        bias = b[o]
        for r in range(r0, r1):
            n = r // th_n
            ti = r % th_n
            plane = out[n, o]
            y0 = plane[2 * ti]
            second_row = 2 * ti + 1 < oh
            y1 = plane[2 * ti + 1] if second_row else plane[2 * ti]
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
                y0[j] = a
                y0[j + 1] = c
                total += a + c
                if second_row:
                    a = bias + (s10 + s11 + s12)
                    c = bias + (s11 - s12 - s13)
                    y1[j] = a
                    y1[j + 1] = c
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
                y0[j] = a
                total += a
                if second_row:
                    a = bias + (s10 + s11 + s12)
                    y1[j] = a
                    total += a
    return total


@njit(**NJIT_PARALLEL_OPTIONS)
def _winograd_fused(xp, u, b, out, th_n, tw_n, groups, rows_per_block, v_buf, m_buf):
    """The whole layer: every thread transforms, multiplies and transforms back its own tiles.

    The ``N * th_n`` tile rows are split into ``v_buf.shape[0]`` contiguous ranges, one per thread
    (``prange``); a thread walks its range in blocks of ``rows_per_block`` tile rows: input
    transform into its ``v`` (16, C_in, T), 16 GEMMs per group ``m[k] = u[k] @ v[k]`` (the caller
    holds BLAS to one thread: :func:`convlab._blas.one_blas_thread`), output transform
    of its ``m`` (16, C_out, T). Nothing waits between the steps and a block's ``v`` and ``m``
    stay in the thread's cache. Returns the sum of all outputs (float64; see
    :func:`_winograd_output_transform`). ``v_buf`` and ``m_buf`` are (threads, size) scratch rows; a
    block's T columns may get one zero column more (:func:`_block_columns`) so that the 16 slabs
    do not alias.
    """
    n_threads = v_buf.shape[0]
    rows = out.shape[0] * th_n
    c_in = xp.shape[1]
    c_out = out.shape[1]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    total = 0.0
    for t in prange(n_threads):
        lo = rows * t // n_threads
        hi = rows * (t + 1) // n_threads
        for r0 in range(lo, hi, rows_per_block):
            r1 = min(hi, r0 + rows_per_block)
            cols = _block_columns((r1 - r0) * tw_n, c_in, c_out, xp.itemsize)
            v = v_buf[t, :ALPHA * ALPHA * c_in * cols].reshape((ALPHA * ALPHA, c_in, cols))
            m = m_buf[t, :ALPHA * ALPHA * c_out * cols].reshape((ALPHA * ALPHA, c_out, cols))
            _winograd_input_transform(xp, v, th_n, tw_n, r0, r1)
            v[:, :, (r1 - r0) * tw_n:] = 0
            for k in range(ALPHA * ALPHA):
                for g in range(groups):
                    o0 = g * out_per_group
                    i0 = g * c_per_group
                    np.dot(u[k, o0:o0 + out_per_group], v[k, i0:i0 + c_per_group],
                           m[k, o0:o0 + out_per_group])
            total += _winograd_output_transform(m, b, out, th_n, tw_n, r0, r1)
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
    if tiles % 2 == 0 and ((c_in * tiles * itemsize) % 4096 == 0
                           or (c_out * tiles * itemsize) % 4096 == 0):
        return tiles + 1
    return tiles


def _rows_per_block(th_n, tw_n, c_in, c_out, itemsize, rows, threads):
    """Tile rows per block: about ``BLOCK_TILES`` tiles, within ``BLOCK_BYTES`` of V and M."""
    per_tile = ALPHA * ALPHA * (c_in + c_out) * itemsize
    tiles = max(MIN_BLOCK_TILES, min(BLOCK_TILES, BLOCK_BYTES // per_tile))
    per_thread = -(-rows // threads)
    return max(1, min(per_thread, round(tiles / tw_n)))


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


def conv2d_winograd(xp, w, b, out, groups, padding=(0, 0)):
    """Fill ``out`` with the stride-1, dilation-1 convolution of ``xp`` by 3x3 filters ``w``.

    ``xp`` is the padded input (N, C_in, Hp, Wp); the caller (:func:`convlab.conv2d`) has validated
    everything and checked that the filters are 3x3 with stride and dilation 1. Returns the sum of
    the outputs (float64), computed on the way: ``conv2d(algorithm="auto")`` checks it for
    non-finite values (a NaN or inf anywhere in the data makes it NaN or inf, because every input
    and weight element reaches some output) without another pass over ``out``.
    """
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out = w.shape[0]
    oh, ow = out.shape[2], out.shape[3]
    th_n, tw_n = (oh + TILE - 1) // TILE, (ow + TILE - 1) // TILE
    # An odd output size needs one more input row/column for the last tile: zeros, whose outputs
    # are dropped by the output transform.
    extra_h = TILE * th_n + TAPS - 1 - xp.shape[2] - padding[0]
    extra_w = TILE * tw_n + TAPS - 1 - xp.shape[3] - padding[1]
    if extra_h or extra_w or any(padding):
        xp = np.pad(xp, ((0, 0), (0, 0), (padding[0], extra_h), (padding[1], extra_w)))
    xp = np.ascontiguousarray(xp)
    u = winograd_weight_transform(w, workspace("winograd_u", (ALPHA * ALPHA,) + w.shape[:2], w.dtype))
    rows = n_batch * th_n
    threads = max(1, min(numba.get_num_threads(), rows))
    rpb = _rows_per_block(th_n, tw_n, c_in, c_out, xp.itemsize, rows, threads)
    cols = rpb * tw_n + 1
    v_buf = workspace("winograd_v", (threads, ALPHA * ALPHA * c_in * cols), xp.dtype)
    m_buf = workspace("winograd_m", (threads, ALPHA * ALPHA * c_out * cols), xp.dtype)
    with parallel_launch(), one_blas_thread():
        return _winograd_fused(xp, u, b, out, th_n, tw_n, groups, rpb, v_buf, m_buf)
