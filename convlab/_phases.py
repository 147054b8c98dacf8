"""A strided transposed convolution as one stride-1 convolution per output phase, on the implicit
product (:mod:`convlab._implicit`), all phases of a block in one pass.

With stride ``s``, output position ``o = s q + r`` (phase ``r``) receives input ``i`` through tap
``t`` when ``i s + t d - p = o``, that is ``i = q + delta_t`` with ``delta_t = (r + p - t d) / s``
for the taps whose ``r + p - t d`` is a multiple of ``s``. So each output phase is a stride-1
convolution of the input with its own taps of the kernel (a quarter of them for a 4x4 kernel at
stride 2), and the scatter of the GEMM form (every input value times every tap, added into the
output) becomes gathers with no columns and no adds into memory.

A thread takes a block of phase positions ``q`` (rows and columns, as the implicit product cuts
them), copies the input rows every phase of the block reads once (:func:`convlab._implicit._fill`,
zero-padded by the most negative shift), computes each phase's products into its block of
products by :func:`convlab._tile.tile_matmul` (each phase its own packed weights and table of
offsets), and then writes the output rows, interleaving the phases' columns, so that every output
row is written once, contiguously, while its products are in the cache.
"""

import functools
import itertools
import math

import numba
import numpy as np
from numba import njit, prange

from ._implicit import _as3d, _fill, implicit_plan, unit_of
from ._kernels import _copy_run, _zero_run
from ._tile import TILES_ROWS, panel_rows, tile_matmul
from ._winograd import workspace
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS, parallel_launch


def phase_shifts(k, s, d, p):
    """Per output phase ``r < s`` of one dimension: the taps ``t`` it reads and their input
    shifts ``delta_t = (r + p - t d) / s``."""
    out = []
    for r in range(s):
        taps = [t for t in range(k) if (r + p - t * d) % s == 0]
        out.append((taps, [(r + p - t * d) // s for t in taps]))
    return out


def shift_range(phases):
    """``(lo, span)`` of one dimension's :func:`phase_shifts`: the most negative shift and the
    number of input positions from it to the largest (``(0, 1)`` when no phase has a tap)."""
    shifts = [v for _, sh in phases for v in sh] or [0]
    return min(shifts), max(shifts) - min(shifts) + 1


def phase_plan(x_shape, w_shape, stride, padding, dilation, groups, out_spatial, itemsize):
    """Everything :func:`_conv_transpose_phases` needs from the shapes: ``(plan, q_spatial, span,
    lo, phases)``; (depth, height, width) triples. ``phases`` lists, per output phase
    ``(rd, rh, rw)``, its taps per dimension and their shifts."""
    kernel = _as3d(w_shape[2:])
    per_dim = [phase_shifts(*a) for a in zip(kernel, stride, dilation, padding, strict=True)]
    lo, span = zip(*(shift_range(dim) for dim in per_dim), strict=True)
    q_spatial = tuple(-(-o // s) for o, s in zip(out_spatial, stride, strict=True))
    c_out = w_shape[1] * groups
    n_ph = math.prod(stride)
    plan = implicit_plan(
        x_shape[0],
        x_shape[1],
        c_out,
        tuple(span),
        (1, 1, 1),
        (1, 1, 1),
        q_spatial,
        itemsize,
        groups,
        phases=n_ph,
    )
    return plan, q_spatial, tuple(span), tuple(lo), per_dim


@njit(inline="always", **NJIT_OPTIONS)
def _interleave_row(dst, d0, step, src, s0, count, bias):
    """``dst[d0 + j * step] = src[s0 + j] + bias`` for ``j < count``, unsigned indices."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    st = np.uint64(step)
    for j in range(np.uint64(max(0, count))):
        dst[d + j * st] = src[s + j] + bias


@njit(inline="always", **NJIT_OPTIONS)
def _interleave2(dst, d0, src, e0, o0, pairs, bias):
    """``dst[d0 + 2 j] = src[e0 + j] + bias``, ``dst[d0 + 2 j + 1] = src[o0 + j] + bias`` for
    ``j < pairs``: both values of each pair written, so LLVM stores whole vectors."""
    d = np.uint64(d0)
    e = np.uint64(e0)
    o = np.uint64(o0)
    two = np.uint64(2)
    for j in range(np.uint64(max(0, pairs))):
        even = src[e + j] + bias
        odd = src[o + j] + bias
        dst[d + two * j] = even
        dst[d + two * j + np.uint64(1)] = odd


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv_transpose_phases(
    x, w2, b, out, ap, tables, stride, lo, span, groups, plan, q_spatial, bufs, cbufs
):
    """``out = b + conv_transpose(x, w)`` by output phases (see the module docstring).

    x: (N, C_in, D, H, W); w2: the weight, (C_in * C_out/groups, KD*KH*KW); out: (N, C_out, OD,
    OH, OW), overwritten; ``tables`` from :func:`phase_layout` (phase ``P`` numbered ``(rd *
    sh + rh) * sw + rw``); the threads first pack every phase's weights into ``ap``
    (:func:`_pack_phases`), then take units of blocks as :func:`convlab._implicit.conv` does.
    """
    n_threads = bufs.shape[0]
    n_batch, c_in = x.shape[0], x.shape[1]
    c_out = out.shape[1]
    od_n, oh_n, ow_n = out.shape[2], out.shape[3], out.shape[4]
    qd_n, qh_n, qw_n = q_spatial
    sd, sh, sw = stride
    shape, col_blocks, col_w, row_blocks, rows, parts, rq, wq, kc = plan
    cpg = c_in // groups
    opg = c_out // groups
    mr = TILES_ROWS[shape]
    panels = (opg + mr - 1) // mr
    n_ph = sd * sh * sw
    taps, tap_off, boff, k_off, ap_off = tables
    n_panels = n_ph * groups * panels
    for t in prange(n_threads):
        _pack_phases(
            w2,
            cpg,
            opg,
            mr,
            taps,
            tap_off,
            ap_off,
            ap,
            n_panels * t // n_threads,
            n_panels * (t + 1) // n_threads,
        )
    plane_size = od_n * oh_n * ow_n
    out_flat = out.reshape(-1)
    pad = (-lo[0], -lo[1], -lo[2])
    ones = (1, 1, 1)
    units = n_batch * groups * qd_n * row_blocks * col_blocks * parts
    for t in prange(n_threads):
        buf = bufs[t]
        cb = cbufs[t]
        filled = -1
        for u in range(units * t // n_threads, units * (t + 1) // n_threads):
            block, part, n, g, qd, rb, cbk = unit_of(u, parts, col_blocks, row_blocks, qd_n, groups)
            r0 = rb * rows
            r1 = min(qh_n, r0 + rows)
            c0 = cbk * col_w
            c1 = min(qw_n, c0 + col_w)
            if block != filled:
                _fill(x, n, g * cpg, cpg, qd, r0, c0, buf, rq, wq, span, ones, ones, pad)
                filled = block
            p0 = panels * part // parts
            p1 = panels * (part + 1) // parts
            m = min(opg, p1 * mr) - p0 * mr
            if m <= 0:
                continue
            n_flat = (r1 - r0 - 1) * wq + (c1 - c0)
            for ph in range(n_ph):
                k = k_off[ph + 1] - k_off[ph]
                tile_matmul(
                    shape,
                    m,
                    n_flat,
                    k,
                    kc,
                    ap,
                    ap_off[ph] + (g * panels + p0) * k * mr,
                    k * mr,
                    buf,
                    0,
                    boff[k_off[ph] :],
                    cb,
                    ph * m * n_flat,
                    n_flat,
                    0,
                )
            oc0 = g * opg + p0 * mr
            for o in range(m):
                bias = b[oc0 + o]
                chan = (n * c_out + oc0 + o) * plane_size
                for rd in range(sd):
                    z = qd * sd + rd
                    if z >= od_n:
                        continue
                    for i in range(r1 - r0):
                        for rh in range(sh):
                            y = (r0 + i) * sh + rh
                            if y >= oh_n:
                                continue
                            row = chan + (z * oh_n + y) * ow_n
                            first = ((rd * sh + rh) * sw) * m * n_flat + o * n_flat + i * wq
                            x0 = c0 * sw  # output column of the block's first phase position
                            if sw == 2:
                                pairs = min(c1 - c0, (ow_n - x0) // 2)
                                _interleave2(
                                    out_flat, row + x0, cb, first, first + m * n_flat, pairs, bias
                                )
                                if pairs < c1 - c0 and x0 + 2 * pairs < ow_n:
                                    out_flat[row + x0 + 2 * pairs] = cb[first + pairs] + bias
                                continue
                            for rw in range(sw):
                                count = min(c1 - c0, (ow_n - x0 - rw + sw - 1) // sw)
                                _interleave_row(
                                    out_flat,
                                    row + x0 + rw,
                                    sw,
                                    cb,
                                    first + rw * m * n_flat,
                                    count,
                                    bias,
                                )


@functools.lru_cache(maxsize=128)
def phase_layout(x_shape, w_shape, stride, padding, dilation, groups, out_spatial, itemsize):
    """:func:`phase_plan` and the tables :func:`_conv_transpose_phases` reads, from the shapes
    (cached: a training loop asks for the same few layers again and again; read-only arrays).

    ``tables = (taps, tap_off, boff, k_off, ap_off)``: phase ``P``'s kernel taps (flat indices)
    are ``taps[tap_off[P]:tap_off[P + 1]]``; its ``k_off[P + 1] - k_off[P]`` rows of the sum
    (``(c, tap)``, the tap fastest) start in the buffer at ``boff[k_off[P]:]``; its packed
    weights at ``ap[ap_off[P]:]``. Also returns the sizes of a thread's buffers."""
    plan, q_spatial, span, lo, per_dim = phase_plan(
        x_shape, w_shape, stride, padding, dilation, groups, out_spatial, itemsize
    )
    shape, _, col_w, _, rows, parts, rq, wq, _ = plan
    kd_n, kh_n, kw_n = w_shape[2:]
    cpg, opg = x_shape[1] // groups, w_shape[1]
    mr = panel_rows(shape)
    panels = -(-opg // mr)
    taps, tap_off, boff, k_off, ap_off = [], [0], [], [0], [0]
    for (td, dd), (th, dh), (tw, dw) in itertools.product(*per_dim):
        shifts = [
            ((a - lo[0]) * rq + (b - lo[1])) * wq + (c - lo[2])
            for a, b, c in itertools.product(dd, dh, dw)
        ]
        taps += [(a * kh_n + b) * kw_n + c for a, b, c in itertools.product(td, th, tw)]
        tap_off.append(len(taps))
        plane = span[0] * rq * wq
        boff += [c * plane + shift for c in range(cpg) for shift in shifts]
        k_off.append(len(boff))
        ap_off.append(ap_off[-1] + groups * panels * mr * cpg * len(shifts))
    tables = tuple(
        np.array(v if v else [0], np.int64) for v in (taps, tap_off, boff, k_off, ap_off)
    )
    for table in tables:
        table.setflags(write=False)
    buf_size = cpg * span[0] * rq * wq
    out_size = math.prod(stride) * -(-panels // parts) * mr * ((rows - 1) * wq + col_w)
    return plan, q_spatial, span, lo, tables, buf_size, out_size


@njit(**NJIT_OPTIONS)
def _pack_phases(w2, cpg, opg, mr, taps, tap_off, ap_off, ap, q0, q1):
    """Panels ``q0 <= q < q1`` (numbered over phases, groups and panels) of every phase's weights:
    ``ap[ap_off[P] + ((g * panels + p) * k + kk) * mr + i]`` = the weight of output channel ``p
    * mr + i`` of group ``g`` and row ``kk = c * nt + j`` (input channel ``c``, the phase's tap
    ``j``), 0 past the group's channels. w2: (C_in * C_out/groups, taps), PyTorch's layout."""
    groups = w2.shape[0] // (cpg * opg)
    panels = (opg + mr - 1) // mr
    for q in range(q0, q1):
        ph = q // (groups * panels)
        rest = q - ph * groups * panels
        g = rest // panels
        p = rest - g * panels
        nt = tap_off[ph + 1] - tap_off[ph]
        k = cpg * nt
        base = ap_off[ph] + (g * panels + p) * k * mr
        for c in range(cpg):
            for j in range(nt):
                tap = taps[tap_off[ph] + j]
                dst = base + (c * nt + j) * mr
                for i in range(mr):
                    o = p * mr + i
                    ap[dst + i] = w2[(g * cpg + c) * opg + o, tap] if o < opg else 0.0


def workspace_nbytes(
    x_shape, w_shape, stride, padding, dilation, groups, out_spatial, itemsize, threads
):
    """Bytes :func:`conv_transpose` allocates besides its output on ``threads`` threads (shapes
    and (depth, height, width) triples as it takes them): each thread's buffer of input rows and
    block of every phase's products, and the packed weights."""
    _, _, _, _, tables, buf_size, out_size = phase_layout(
        x_shape, w_shape, stride, padding, dilation, groups, out_spatial, itemsize
    )
    return (threads * (buf_size + out_size) + int(tables[4][-1])) * itemsize


def conv_transpose(x, w, b, out, stride, padding, dilation, groups):
    """Fill ``out`` with the transposed convolution of ``x`` by ``w`` (PyTorch's layout,
    ``(C_in, C_out / groups, *K)``), 1, 2 or 3 spatial dimensions; ``padding`` the cropping before
    each dimension (the output's size says the rest). Arguments validated by the caller."""
    nd = x.ndim - 2
    lift = (1,) * (3 - nd)
    x5 = np.ascontiguousarray(x).reshape(x.shape[:2] + lift + x.shape[2:])
    out5 = out.reshape(out.shape[:2] + lift + out.shape[2:])
    w_shape = w.shape[:2] + lift + w.shape[2:]
    plan, q_spatial, span, lo, tables, buf_size, out_size = phase_layout(
        x5.shape,
        w_shape,
        _as3d(stride),
        _as3d(padding, 0),
        _as3d(dilation),
        groups,
        out5.shape[2:],
        x.itemsize,
    )
    threads = numba.get_num_threads()
    ap_size = int(tables[4][-1])
    space = workspace("implicit", (threads * (buf_size + out_size) + ap_size,), x.dtype)
    bufs = space[: threads * buf_size].reshape(threads, buf_size)
    cbufs = space[threads * buf_size : threads * (buf_size + out_size)].reshape(threads, out_size)
    with parallel_launch():
        _conv_transpose_phases(
            x5,
            np.ascontiguousarray(w).reshape(w.shape[0] * w.shape[1], -1),
            np.ascontiguousarray(b),
            out5,
            space[threads * (buf_size + out_size) :],
            tables,
            _as3d(stride),
            lo,
            span,
            groups,
            plan,
            q_spatial,
            bufs,
            cbufs,
        )
    return out


@functools.lru_cache(maxsize=128)
def depthwise_tables(kernel, stride, padding, dilation):
    """Per dimension of a 2-D layer (height, width): ``(taps, shifts, counts, lo, span)`` of
    :func:`phase_shifts` as arrays (phase ``r``'s taps in row ``r``, ``counts[r]`` of them), the
    most negative shift and the shifts' span. Cached; read-only arrays."""
    out = []
    for k, s, d, p in zip(kernel, stride, dilation, padding, strict=True):
        phases = phase_shifts(k, s, d, p)
        width = max(1, max(len(t) for t, _ in phases))
        taps = np.zeros((s, width), np.int64)
        shifts = np.zeros((s, width), np.int64)
        counts = np.array([len(t) for t, _ in phases], np.int64)
        for r, (t, sh) in enumerate(phases):
            taps[r, : len(t)] = t
            shifts[r, : len(t)] = sh
        for a in (taps, shifts, counts):
            a.setflags(write=False)
        out.append((taps, shifts, counts, *shift_range(phases)))
    return tuple(out)


@njit(**NJIT_PARALLEL_OPTIONS)
def _depthwise_phases(x, w, b, out, stride, tables_h, tables_w, bufs, segs):
    """The strided transposed convolution of a layer with one input channel per group (2-D):
    for each output plane (one thread's), the input plane is copied once, zero-padded by the
    phases' shifts; each phase's plane is computed at once on the buffer's row length (every
    tap one shifted add over the whole plane, vectorised), and every output row is then written
    once with the phases interleaved. x: (N, C, H, W); w: (C, m, KH, KW); out: (N, C m, OH, OW)."""
    n_threads = bufs.shape[0]
    n_b, ch, h_in, w_in = x.shape
    c_out, oh_n, ow_n = out.shape[1], out.shape[2], out.shape[3]
    mult = c_out // ch
    sh, sw = stride
    taps_h, shifts_h, counts_h, lo_h, span_h = tables_h
    taps_w, shifts_w, counts_w, lo_w, span_w = tables_w
    qh_n = (oh_n + sh - 1) // sh
    qw_n = (ow_n + sw - 1) // sw
    rows = qh_n + span_h - 1
    cols = qw_n + span_w - 1
    planes = n_b * c_out
    out_flat = out.reshape(-1)
    x_flat = x.reshape(-1)
    for t in prange(n_threads):
        buf = bufs[t]
        seg = segs[t]
        _zero_run(buf, 0, rows * cols)
        filled = -1
        for plane in range(planes * t // n_threads, planes * (t + 1) // n_threads):
            n = plane // c_out
            o = plane - n * c_out
            c = o // mult
            j = o - c * mult
            if n * ch + c != filled:  # the input plane, its rows at shift lo
                for r in range(rows):
                    ih = r + lo_h
                    if ih < 0 or ih >= h_in:
                        continue
                    q0 = max(0, -lo_w)
                    q1 = max(q0, min(cols, w_in - lo_w))
                    # one run per row with unsigned indices (_copy_run): a loop over q indexing
                    # x in 4-D checked every index (1 thread, 32 channels 112x112 at stride 2:
                    # the layer 0.16 -> 0.11 ms)
                    src = ((n * ch + c) * h_in + ih) * w_in + q0 + lo_w
                    _copy_run(buf, r * cols + q0, x_flat, src, q1 - q0, 1)
                filled = n * ch + c
            # each phase's plane at once, on the buffer's row length: a tap is then one shift
            # of the whole plane (its last span_w - 1 columns are computed and not kept)
            flat = qh_n * cols
            for rh in range(sh):
                for rw in range(sw):
                    base = (rh * sw + rw) * flat
                    _fill_value(seg, base, flat, b[o])
                    for a in range(counts_h[rh]):
                        for e in range(counts_w[rw]):
                            wt = w[c, j, taps_h[rh, a], taps_w[rw, e]]
                            shift = (shifts_h[rh, a] - lo_h) * cols + shifts_w[rw, e] - lo_w
                            _axpy(seg, base, buf, shift, (qh_n - 1) * cols + qw_n, wt)
            for y in range(oh_n):
                q = y // sh
                rh = y - q * sh
                dst = (plane * oh_n + y) * ow_n
                src = rh * sw * flat + q * cols
                if sw == 2:
                    pairs = ow_n // 2
                    _interleave2(out_flat, dst, seg, src, src + flat, pairs, 0.0)
                    if ow_n % 2:
                        out_flat[dst + ow_n - 1] = seg[src + pairs]
                else:
                    for rw in range(sw):
                        count = (ow_n - rw + sw - 1) // sw
                        _interleave_row(out_flat, dst + rw, sw, seg, src + rw * flat, count, 0.0)


@njit(inline="always", **NJIT_OPTIONS)
def _fill_value(a, a0, count, value):
    """``a[a0 + i] = value`` for ``i < count``, unsigned indices."""
    first = np.uint64(a0)
    for i in range(np.uint64(count)):
        a[first + i] = value


@njit(inline="always", **NJIT_OPTIONS)
def _axpy(y, y0, x, x0, count, a):
    """``y[y0 + i] += a * x[x0 + i]`` for ``i < count``, unsigned indices (vectorised)."""
    yi = np.uint64(y0)
    xi = np.uint64(x0)
    for i in range(np.uint64(count)):
        y[yi + i] += a * x[xi + i]


def depthwise_conv_transpose(x, w, b, out, stride, padding, dilation):
    """:func:`_depthwise_phases` (2-D; arguments as :func:`conv_transpose` takes them, one input
    channel per group)."""
    tables_h, tables_w = depthwise_tables(
        tuple(w.shape[2:]), tuple(stride), tuple(padding), tuple(dilation)
    )
    sh, sw = stride
    qh = -(-out.shape[2] // sh)
    qw = -(-out.shape[3] // sw)
    threads = numba.get_num_threads()
    size = (qh + tables_h[4] - 1) * (qw + tables_w[4] - 1)
    # two arrays, not two views of one: LLVM then knows that they do not overlap, and
    # vectorises the adds into a segment
    bufs = workspace("implicit", (threads, size), x.dtype)
    segs = workspace("phases", (threads, sh * sw * qh * (qw + tables_w[4] - 1)), x.dtype)
    with parallel_launch():
        _depthwise_phases(
            np.ascontiguousarray(x),
            np.ascontiguousarray(w),
            np.ascontiguousarray(b),
            out,
            tuple(stride),
            tables_h,
            tables_w,
            bufs,
            segs,
        )
    return out
