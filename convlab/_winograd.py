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

1. the filter transform ``U = G g G^T`` (once per call, one small matrix product);
2. the input transform ``V = B^T d B`` of every overlapping 4x4 tile (tiles step by 2): a Numba
   kernel, additions and subtractions only;
3. sixteen GEMMs ``M[k] = U[k] @ V[k]`` (BLAS, via ``numpy.matmul``);
4. the output transform ``Y = A^T M A`` of every tile plus the bias: a Numba kernel.

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

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from .config import NJIT_OPTIONS

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
_G_KRON_G = np.kron(G, G)
#: bytes of transformed tiles (input and products) processed at once; see conv2d_winograd
CHUNK_BYTES = 8 * 2**20


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
    size = int(np.prod(shape))
    dtype = np.dtype(dtype)
    buf = buffers.get(slot)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        buffers[slot] = buf
    return buf[:size].reshape(shape)


_POOL = None
_POOL_LOCK = threading.Lock()


def split_launch(kernel, n_tasks, *args):
    """Run ``kernel(*args, start, stop)`` over ``[0, n_tasks)`` split across threads; wait for all.

    The kernels of the BLAS-based algorithms (im2col, Winograd, FFT) are serial, ``nogil`` Numba
    functions over a range of tasks, run by the calling thread and a small pool of Python threads
    (as many threads in all as ``numba.get_num_threads()``), not by Numba's ``parallel=True``
    machinery. The reason is measured: Numba's OpenMP workers busy-wait after each parallel
    region, and so do OpenBLAS's workers after each GEMM (for up to ~0.1 s), so alternating the
    two pools on a two-core machine made a 64-channel 56x56 Winograd layer 10x slower (24 ms
    instead of 2.3 ms). Idle Python threads sleep, so the GEMMs always find the cores free.
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


def _row_length(columns, itemsize):
    """Row length (elements) of a ``(channels, 16, row)`` buffer whose 16 rows do not alias in L1.

    The transform kernels write (or read) the 16 rows of one channel in lockstep. When the rows
    are a multiple of 1 KiB apart, the 16 streams fall into at most four L1 cache sets and evict
    each other (with planes a multiple of 4 KiB apart, a 64-channel 56x56 layer's input transform
    ran ten times slower per element than a 14x14 one); a few elements of padding per row break
    the alignment.
    """
    length = columns
    while (length * itemsize) % 1024 == 0:
        length += 16
    return length


def winograd_weight_transform(w, out=None):
    """``U = G g G^T`` for every filter: (C_out, C_in/groups, 3, 3) -> (16, C_out, C_in/groups).

    Row ``i * 4 + j`` of the result is position ``(i, j)`` of the transformed 4x4 filter tile,
    computed in ``w``'s dtype (C-contiguous ``w`` expected); ``out``, if given, is a C-contiguous
    array of that shape and dtype to write into.
    """
    # vec(G g G^T) = (G kron G) vec(g) for row-major vec: one (16 x 9) @ (9 x filters) product.
    # G's entries (0, 1/2, 1) and the 16 x 9 product's sums of at most 9 terms are exact enough in
    # the weight's own precision.
    g = w.reshape(w.shape[0] * w.shape[1], TAPS * TAPS)
    if out is None:
        out = np.empty((ALPHA * ALPHA, w.shape[0], w.shape[1]), dtype=w.dtype)
    np.matmul(_G_KRON_G.astype(w.dtype), g.T, out=out.reshape(ALPHA * ALPHA, g.shape[0]))
    return out


@njit(**NJIT_OPTIONS)
def _winograd_input_transform(xp, v, th_n, tw_n, start, stop):
    """``V = B^T d B`` for every 4x4 input tile ``d`` (tiles step by 2).

    xp: (N, C, Hp, Wp) padded input with ``Hp >= 2 th_n + 2`` and ``Wp >= 2 tw_n + 2``;
    v: (C, 16, >= N * th_n * tw_n), overwritten; ``v[c, 4 i + j, t]`` is entry ``(i, j)`` of the
    transformed tile ``t = (n * th_n + ti) * tw_n + tj``, whose top-left input element is
    ``(2 ti, 2 tj)``. Tasks ``start <= task < stop`` of the
    ``N * C`` (image, channel) planes (:func:`split_launch`); the innermost loop runs along a row
    of tiles, so each of the 16 outputs is written contiguously.
    """
    channels = xp.shape[1]
    tiles = th_n * tw_n
    for task in range(start, stop):
        n = task // channels
        c = task % channels
        src = xp[n, c]
        for ti in range(th_n):
            r0 = src[2 * ti]
            r1 = src[2 * ti + 1]
            r2 = src[2 * ti + 2]
            r3 = src[2 * ti + 3]
            base = n * tiles + ti * tw_n
            for tj in range(tw_n):
                j = 2 * tj
                # B^T d: combine the four rows of the tile (column by column)
                t00 = r0[j] - r2[j]
                t01 = r0[j + 1] - r2[j + 1]
                t02 = r0[j + 2] - r2[j + 2]
                t03 = r0[j + 3] - r2[j + 3]
                t10 = r1[j] + r2[j]
                t11 = r1[j + 1] + r2[j + 1]
                t12 = r1[j + 2] + r2[j + 2]
                t13 = r1[j + 3] + r2[j + 3]
                t20 = r2[j] - r1[j]
                t21 = r2[j + 1] - r1[j + 1]
                t22 = r2[j + 2] - r1[j + 2]
                t23 = r2[j + 3] - r1[j + 3]
                t30 = r1[j] - r3[j]
                t31 = r1[j + 1] - r3[j + 1]
                t32 = r1[j + 2] - r3[j + 2]
                t33 = r1[j + 3] - r3[j + 3]
                # (B^T d) B: the same combination along each row
                p = base + tj
                v[c, 0, p] = t00 - t02
                v[c, 1, p] = t01 + t02
                v[c, 2, p] = t02 - t01
                v[c, 3, p] = t01 - t03
                v[c, 4, p] = t10 - t12
                v[c, 5, p] = t11 + t12
                v[c, 6, p] = t12 - t11
                v[c, 7, p] = t11 - t13
                v[c, 8, p] = t20 - t22
                v[c, 9, p] = t21 + t22
                v[c, 10, p] = t22 - t21
                v[c, 11, p] = t21 - t23
                v[c, 12, p] = t30 - t32
                v[c, 13, p] = t31 + t32
                v[c, 14, p] = t32 - t31
                v[c, 15, p] = t31 - t33


@njit(**NJIT_OPTIONS)
def _winograd_output_transform(m, b, out, th_n, tw_n, start, stop):
    """``Y = A^T M A + bias`` for every tile: the 2x2 outputs of the 16 products.

    m: (C_out, 16, >= N * th_n * tw_n) products, laid out like ``v`` above; b: (C_out,); out: (N, C_out, 2 th_n, 2 tw_n),
    overwritten. Tasks ``start <= task < stop`` of the ``N * C_out`` (image, output channel)
    planes.
    """
    c_out = out.shape[1]
    tiles = th_n * tw_n
    for task in range(start, stop):
        n = task // c_out
        o = task % c_out
        bias = b[o]
        plane = out[n, o]
        for ti in range(th_n):
            y0 = plane[2 * ti]
            y1 = plane[2 * ti + 1]
            base = n * tiles + ti * tw_n
            for tj in range(tw_n):
                p = base + tj
                # A^T M: rows 0 + 1 + 2 and 1 - 2 - 3 of the 4x4 product tile
                s00 = m[o, 0, p] + m[o, 4, p] + m[o, 8, p]
                s01 = m[o, 1, p] + m[o, 5, p] + m[o, 9, p]
                s02 = m[o, 2, p] + m[o, 6, p] + m[o, 10, p]
                s03 = m[o, 3, p] + m[o, 7, p] + m[o, 11, p]
                s10 = m[o, 4, p] - m[o, 8, p] - m[o, 12, p]
                s11 = m[o, 5, p] - m[o, 9, p] - m[o, 13, p]
                s12 = m[o, 6, p] - m[o, 10, p] - m[o, 14, p]
                s13 = m[o, 7, p] - m[o, 11, p] - m[o, 15, p]
                # (A^T M) A: the same along each row
                j = 2 * tj
                y0[j] = bias + (s00 + s01 + s02)
                y0[j + 1] = bias + (s01 - s02 - s03)
                y1[j] = bias + (s10 + s11 + s12)
                y1[j + 1] = bias + (s11 - s12 - s13)


def conv2d_winograd(xp, w, b, out, groups):
    """Fill ``out`` with the stride-1, dilation-1 convolution of ``xp`` by 3x3 filters ``w``.

    ``xp`` is the padded input (N, C_in, Hp, Wp); the caller (:func:`convlab.conv2d`) has validated
    everything and checked that the filters are 3x3 with stride and dilation 1.
    """
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out, c_per_group = w.shape[0], w.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    th_n, tw_n = (oh + TILE - 1) // TILE, (ow + TILE - 1) // TILE
    # An odd output size needs one more input row/column for the last tile: zeros, whose outputs
    # are computed and dropped.
    extra_h = TILE * th_n + TAPS - 1 - xp.shape[2]
    extra_w = TILE * tw_n + TAPS - 1 - xp.shape[3]
    if extra_h or extra_w:
        xp = np.pad(xp, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)))
    u = winograd_weight_transform(w, workspace("winograd_u", (ALPHA * ALPHA,) + w.shape[:2], w.dtype))
    full = out if (oh, ow) == (TILE * th_n, TILE * tw_n) else np.empty(
        (n_batch, c_out, TILE * th_n, TILE * tw_n), dtype=out.dtype)
    # Images go through in chunks whose transformed tiles (V and M) take about CHUNK_BYTES, so
    # that the buffers are reused while still in cache (a batch of 8 64-channel 56x56 images at
    # once was 1.6x slower than one image at a time).
    per_image = (c_in + c_out) * ALPHA * ALPHA * th_n * tw_n * xp.itemsize
    chunk = max(1, min(n_batch, CHUNK_BYTES // per_image))
    for start in range(0, n_batch, chunk):
        stop = min(n_batch, start + chunk)
        _winograd_chunk(xp[start:stop], u, b, full[start:stop], groups, th_n, tw_n)
    if full is not out:
        out[...] = full[:, :, :oh, :ow]


def _winograd_chunk(xp, u, b, out, groups, th_n, tw_n):
    """Input transform, 16 GEMMs and output transform for the images of ``xp`` (contiguous)."""
    n_batch, c_in = xp.shape[0], xp.shape[1]
    c_out, c_per_group = u.shape[1], u.shape[2]
    tiles = n_batch * th_n * tw_n
    # (channel, position, tile) layout, rows padded (see _row_length); the GEMMs see the
    # (position, channel, tile) views, which BLAS takes as matrices with a leading dimension.
    v = workspace("winograd_v", (c_in, ALPHA * ALPHA, _row_length(tiles, xp.itemsize)), xp.dtype)
    split_launch(_winograd_input_transform, n_batch * c_in, xp, v, th_n, tw_n)
    m = workspace("winograd_m", (c_out, ALPHA * ALPHA, v.shape[2]), xp.dtype)
    vk = v.transpose(1, 0, 2)[:, :, :tiles]
    mk = m.transpose(1, 0, 2)[:, :, :tiles]
    out_per_group = c_out // groups
    for g in range(groups):
        o = slice(g * out_per_group, (g + 1) * out_per_group)
        i = slice(g * c_per_group, (g + 1) * c_per_group)
        np.matmul(u[:, o], vk[:, i], out=mk[:, o])
    split_launch(_winograd_output_transform, n_batch * c_out, m, b, out, th_n, tw_n)
