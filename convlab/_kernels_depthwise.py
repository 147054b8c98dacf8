"""Dedicated Numba kernels for depthwise convolution (``groups == in_channels``).

A depthwise layer has one input channel per group, so the generic grouped kernel
(:func:`convlab._kernels._conv2d_direct`) spends its time on bookkeeping that buys nothing: for
every kernel tap it sweeps the whole output plane once more, and its innermost loop multiplies by
a runtime stride, which stops LLVM from vectorising. The seed article on convolution layers
(``003``) reports the same effect on GPUs, where a dedicated depthwise kernel is about ten times
faster than the grouped path. A depthwise layer does 9 multiply-adds per output for a 3x3 kernel
and reads one input element per output, so it is limited by memory traffic and per-row overheads
far more than by arithmetic; the 2-D kernel is built around that.

2-D (:func:`_conv2d_depthwise`): each thread takes a contiguous run of (image, output channel)
pairs, so a layer with a channel multiplier ``K = C_out / C_in`` or a single input channel still
spreads over the threads, and for every input plane it meets

* copies the plane once into a per-thread buffer that holds the *zero-padded, polyphase* plane:
  for stride ``(sh, sw)`` it is split into phases, phase ``(py, px)`` holding padded rows ``py, py
  + sh, ...`` and columns ``px, px + sw, ...``; only the phases some tap reads are stored (at most
  ``kH * kW`` of the ``sh * sw``), so no buffer grows with the stride. Zero padding is done here,
  inside the kernel (the positions that fall in the padding are zeroed once, when the buffer is
  allocated, and never written), so the caller may pass the *unpadded* input with the padding
  amounts and skip the ``np.pad`` copy, a full extra pass over memory. In the buffer every tap
  ``(a, b)`` of every output ``(i, j)`` is a read at ``i * cols + j + offset[a, b]``: unit stride
  for any stride and dilation (stride 2 reads the deinterleaved even and odd columns);
* computes each of the plane's ``K`` output channels from the buffer, all taps of a 3x3 kernel in
  one pass with the weights in registers. When the output rows are wide (``ROWWISE_MIN_WIDTH``)
  and a multiple of 8 it writes them directly (the vector loop has no remainder); otherwise it
  runs one flat loop over the whole plane, ``oh * cols`` outputs including the few junk columns
  between rows, into a per-thread buffer, and copies the rows out: one long vector loop, whose
  independent vectors hide the latency of each output's nine dependent adds, instead of many
  short rows. Other kernel sizes take the taps up to five at a time along the kernel width, in the
  same flat layout.

Indices in the inner loops are unsigned: Numba wraps negative signed indices (``a[-1]``), and that
check on ``buf[i + offset]`` made LLVM emit gathers instead of plain vector loads.

3-D (:func:`_conv3d_depthwise`): the same units, buffers and flat loops, one output depth at a
time: output depth ``od`` is the sum over the kernel's depth ``kd`` of the 2-D products of input
plane ``od * sd + kd * dd - pd`` with the weights' slice ``kd``, added into the flat buffer.
Each thread keeps the planes in a ring of ``(KD - 1) * dd + 1`` polyphase buffers, so with a
depth stride of 1 a plane is copied once per (image, output channel), not ``KD`` times, and the
input is never padded in memory. Depth taps that read the padding are left out (their products
are zeros) unless a weight is inf or NaN, where ``0 * w`` must give the definition's NaN; then
they read a buffer of zeros. It replaced a kernel that summed ``KD * KH`` padded input rows per
output row, 16 times slower on a 64-channel 16x28x28 layer.

Every output element is accumulated in exactly the order of the generic kernel
(``bias + w[0, 0] x + w[0, 1] x + ...``, row-major over the taps, one multiply and one add per tap)
and fastmath stays off, so the results are bit-for-bit those of the generic kernel, not merely
close, whatever path a layer takes.

Besides the kernels, this module exposes two small plain-Python helpers used by the benchmark
(``benchmarks/bench_depthwise.py``) and the groups chapter to time the alternatives the dedicated
kernel replaces: :func:`conv2d_generic_grouped` (the generic grouped kernel on the same validated
arguments) and :func:`conv2d_per_group` (one :func:`convlab.conv2d` call per group, concatenated,
the way the seed says frameworks used to implement grouped convolution).
"""

import numba
import numpy as np
from numba import njit, prange, uint64

from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS

__all__ = ["conv2d_generic_grouped", "conv2d_per_group"]


# --- 2-D -----------------------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _fill_polyphase(buf, at, src, sh, sw, ph, pw, rows, cols, rvals, cvals):
    """Copy plane ``src`` (H, W) into the zero-padded polyphase buffer ``buf[at:]`` (flat).

    Only the phases some tap reads are stored: ``rvals`` (sorted) are the row phases
    ``(a * dh) % sh`` of the taps, ``cvals`` the column phases. Stored phase ``(u, v)`` (indices
    into ``rvals`` and ``cvals``) starts at ``(u * len(cvals) + v) * rows * cols``; its element
    ``(r, j)`` is ``padded[r * sh + rvals[u], j * sw + cvals[v]]`` where ``padded`` is ``src`` with
    ``ph`` zero rows above and ``pw`` zero columns to the left. So the buffer holds at most
    ``min(sh, kH) * min(sw, kW)`` phases, never ``sh * sw``: a stride of 10000 used to make every
    thread allocate 10000**2 phases (1.4 GB for an 8x8 input, issue 13). Only positions inside
    ``src`` are written (the same ones for every plane), so the padding keeps the zeros the buffer
    was allocated with; rows and columns the output never reads (past ``rows`` / ``cols``) are
    skipped.
    """
    h, w = src.shape
    block = rows * cols
    n_c = cvals.shape[0]
    all_columns = n_c == sw  # every column phase is stored, in order (stride 1 or 2, usually)
    for u in range(rvals.shape[0]):
        py = rvals[u]
        # padded rows r * sh + py, r < rows, that are input rows 0 <= i < h
        r0 = max(0, -((py - ph) // sh))
        for r in range(r0, rows):
            i = r * sh + py - ph
            if i >= h:
                break
            if all_columns and sw == 1:
                base = uint64(at + u * block + r * cols + pw)
                for j in range(uint64(max(0, min(w, cols - pw)))):
                    buf[base + j] = src[i, j]
            elif all_columns and sw == 2:
                # input column c sits at padded column c + pw: phase (c + pw) % 2, index
                # (c + pw) // 2; even and odd columns in one loop (LLVM's vector shuffles)
                even = uint64(at + ((u * 2) + pw % 2) * block + r * cols + pw // 2)
                odd = uint64(at + ((u * 2) + (pw + 1) % 2) * block + r * cols + (pw + 1) // 2)
                n = max(0, min(w // 2, cols - (pw + 1) // 2))
                for j in range(uint64(n)):
                    buf[even + j] = src[i, 2 * j]
                    buf[odd + j] = src[i, 2 * j + 1]
                for c in range(2 * n, w):
                    j = (c + pw) // 2
                    if j < cols:
                        buf[at + (u * 2 + (c + pw) % 2) * block + r * cols + j] = src[i, c]
            else:
                for v in range(n_c):
                    px = cvals[v]
                    base = at + (u * n_c + v) * block + r * cols
                    # padded columns j * sw + px that are input columns 0 <= c < w
                    j0 = max(0, -((px - pw) // sw))
                    for j in range(j0, cols):
                        c = j * sw + px - pw
                        if c >= w:
                            break
                        buf[base + j] = src[i, c]


@njit(**NJIT_OPTIONS)
def _rows_3x3(buf, at, k, bias, dst, cols, offset):
    """``dst[r, j] = bias + sum k[a, b] * buf[at + r * cols + j + offset[a, b]]``, row by row."""
    oh_n, ow_n = dst.shape
    w00, w01, w02 = k[0, 0], k[0, 1], k[0, 2]
    w10, w11, w12 = k[1, 0], k[1, 1], k[1, 2]
    w20, w21, w22 = k[2, 0], k[2, 1], k[2, 2]
    for r in range(oh_n):
        base = at + r * cols
        o00, o01, o02 = (
            uint64(base + offset[0, 0]),
            uint64(base + offset[0, 1]),
            uint64(base + offset[0, 2]),
        )
        o10, o11, o12 = (
            uint64(base + offset[1, 0]),
            uint64(base + offset[1, 1]),
            uint64(base + offset[1, 2]),
        )
        o20, o21, o22 = (
            uint64(base + offset[2, 0]),
            uint64(base + offset[2, 1]),
            uint64(base + offset[2, 2]),
        )
        for j in range(uint64(ow_n)):
            acc = bias
            acc += w00 * buf[o00 + j]
            acc += w01 * buf[o01 + j]
            acc += w02 * buf[o02 + j]
            acc += w10 * buf[o10 + j]
            acc += w11 * buf[o11 + j]
            acc += w12 * buf[o12 + j]
            acc += w20 * buf[o20 + j]
            acc += w21 * buf[o21 + j]
            acc += w22 * buf[o22 + j]
            dst[r, j] = acc


@njit(**NJIT_OPTIONS)
def _flat_3x3(buf, at, k, bias, obuf, n, offset, first):
    """``obuf[i] = s + sum k[a, b] * buf[at + i + offset[a, b]]`` for ``i < n``, taps in row-major
    order, where ``s`` is ``bias`` when ``first``, else ``obuf[i]`` (a further kernel depth)."""
    w00, w01, w02 = k[0, 0], k[0, 1], k[0, 2]
    w10, w11, w12 = k[1, 0], k[1, 1], k[1, 2]
    w20, w21, w22 = k[2, 0], k[2, 1], k[2, 2]
    o00, o01, o02 = uint64(at + offset[0, 0]), uint64(at + offset[0, 1]), uint64(at + offset[0, 2])
    o10, o11, o12 = uint64(at + offset[1, 0]), uint64(at + offset[1, 1]), uint64(at + offset[1, 2])
    o20, o21, o22 = uint64(at + offset[2, 0]), uint64(at + offset[2, 1]), uint64(at + offset[2, 2])
    if first:
        # the same loop from the bias (not a pass writing it first: 10-20% slower on 56x56)
        for i in range(uint64(n)):
            acc = bias
            acc += w00 * buf[o00 + i]
            acc += w01 * buf[o01 + i]
            acc += w02 * buf[o02 + i]
            acc += w10 * buf[o10 + i]
            acc += w11 * buf[o11 + i]
            acc += w12 * buf[o12 + i]
            acc += w20 * buf[o20 + i]
            acc += w21 * buf[o21 + i]
            acc += w22 * buf[o22 + i]
            obuf[i] = acc
        return
    for i in range(uint64(n)):
        acc = obuf[i]
        acc += w00 * buf[o00 + i]
        acc += w01 * buf[o01 + i]
        acc += w02 * buf[o02 + i]
        acc += w10 * buf[o10 + i]
        acc += w11 * buf[o11 + i]
        acc += w12 * buf[o12 + i]
        acc += w20 * buf[o20 + i]
        acc += w21 * buf[o21 + i]
        acc += w22 * buf[o22 + i]
        obuf[i] = acc


@njit(inline="always", **NJIT_OPTIONS)
def _fill_flat(obuf, n, value):
    """``obuf[:n] = value``."""
    for i in range(uint64(n)):
        obuf[i] = value


@njit(**NJIT_OPTIONS)
def _flat_general(buf, at, k, bias, obuf, n, offset, first):
    """As :func:`_flat_3x3` for any kernel: each kernel row's taps five (then four, three, two,
    one) per pass over ``obuf``, in order. Five per pass rather than three: each pass also
    loads and stores ``obuf`` once, and 5x5 planes of 14 to 56 took 18-22% less time."""
    kh_n, kw_n = k.shape
    un = uint64(n)
    if first:
        _fill_flat(obuf, n, bias)
    for a in range(kh_n):
        kb = 0
        while kb < kw_n:
            left = kw_n - kb
            p0 = uint64(at + offset[a, kb])
            w0 = k[a, kb]
            if left >= 5:
                w1, w2, w3, w4 = k[a, kb + 1], k[a, kb + 2], k[a, kb + 3], k[a, kb + 4]
                p1 = uint64(at + offset[a, kb + 1])
                p2 = uint64(at + offset[a, kb + 2])
                p3 = uint64(at + offset[a, kb + 3])
                p4 = uint64(at + offset[a, kb + 4])
                for i in range(un):
                    acc = obuf[i]
                    acc += w0 * buf[p0 + i]
                    acc += w1 * buf[p1 + i]
                    acc += w2 * buf[p2 + i]
                    acc += w3 * buf[p3 + i]
                    acc += w4 * buf[p4 + i]
                    obuf[i] = acc
                kb += 5
            elif left == 4:
                w1, w2, w3 = k[a, kb + 1], k[a, kb + 2], k[a, kb + 3]
                p1 = uint64(at + offset[a, kb + 1])
                p2 = uint64(at + offset[a, kb + 2])
                p3 = uint64(at + offset[a, kb + 3])
                for i in range(un):
                    acc = obuf[i]
                    acc += w0 * buf[p0 + i]
                    acc += w1 * buf[p1 + i]
                    acc += w2 * buf[p2 + i]
                    acc += w3 * buf[p3 + i]
                    obuf[i] = acc
                kb += 4
            elif left == 3:
                w1, w2 = k[a, kb + 1], k[a, kb + 2]
                p1 = uint64(at + offset[a, kb + 1])
                p2 = uint64(at + offset[a, kb + 2])
                for i in range(un):
                    acc = obuf[i]
                    acc += w0 * buf[p0 + i]
                    acc += w1 * buf[p1 + i]
                    acc += w2 * buf[p2 + i]
                    obuf[i] = acc
                kb += 3
            elif left == 2:
                w1 = k[a, kb + 1]
                p1 = uint64(at + offset[a, kb + 1])
                for i in range(un):
                    acc = obuf[i]
                    acc += w0 * buf[p0 + i]
                    acc += w1 * buf[p1 + i]
                    obuf[i] = acc
                kb += 2
            else:
                for i in range(un):
                    obuf[i] += w0 * buf[p0 + i]
                kb += 1


#: a 3x3 layer writes output rows directly (no flat buffer) when they are at least this wide
#: (and a multiple of 8): narrower rows are too short to keep the vector units busy. One thread,
#: ms, rows / flat: 144 channels on 56x56 0.157 / 0.123, 96 on 56x56 batch 8 0.82 / 0.66, 64 on
#: 64x64 0.087 / 0.077, 128 on 32x32 0.062 / 0.049; 32 on 112x112 0.112 / 0.116, 16 on 128x128
#: 0.071 / 0.076 (2 threads: 0.064 / 0.064, 0.045 / 0.043). The same bits either way.
ROWWISE_MIN_WIDTH = 112


@njit(**NJIT_PARALLEL_OPTIONS)
def _depthwise2d(
    x, w, b, out, sh, sw, dh, dw, ph, pw, rvals, rtap, cvals, ctap, n_threads, rowwise_min
):
    """The 2-D kernel behind :func:`_conv2d_depthwise` (see the module notes).

    ``rvals``/``cvals``: the row/column phases the taps read (sorted); ``rtap[a]`` /
    ``ctap[c]``: the index in them of tap row ``a``'s / tap column ``c``'s phase.
    ``rowwise_min``: output widths at least this write rows directly (3x3 only); ``-1`` means
    "when the width is a multiple of 8 and at least ``ROWWISE_MIN_WIDTH``", the default. Tests
    force either path with it.
    """
    n_batch, c_in = x.shape[0], x.shape[1]
    c_out, oh_n, ow_n = out.shape[1], out.shape[2], out.shape[3]
    mult = c_out // c_in
    kh_n, kw_n = w.shape[2], w.shape[3]
    rows = oh_n + ((kh_n - 1) * dh) // sh  # rows per phase that some output reads
    cols = ow_n + ((kw_n - 1) * dw) // sw
    block = rows * cols
    n_flat = oh_n * cols
    n_phases = rvals.shape[0] * cvals.shape[0]
    offset = np.empty((kh_n, kw_n), dtype=np.int64)
    for a in range(kh_n):
        for c in range(kw_n):
            ra = a * dh
            cb = c * dw
            offset[a, c] = (
                (rtap[a] * cvals.shape[0] + ctap[c]) * block + (ra // sh) * cols + cb // sw
            )
    square3 = kh_n == 3 and kw_n == 3
    if rowwise_min < 0:
        rowwise = square3 and ow_n % 8 == 0 and ow_n >= ROWWISE_MIN_WIDTH
    else:
        rowwise = square3 and ow_n >= rowwise_min
    # Work units are (image, output channel) pairs, in memory order, so that the K outputs of one
    # input plane are neighbours and a thread fills the buffer once for all of those it owns.
    # The helpers are called, not inlined (inline="always"): inlined into this prange body, a
    # helper's locals could clash with names of this function (a wrong index under
    # NUMBA_BOUNDSCHECK=1); the calls cost 2-8% on the benchmark layers.
    units = n_batch * c_out
    nt = max(1, min(n_threads, units))
    for t in prange(nt):
        buf = np.zeros(n_phases * block + cols, dtype=x.dtype)  # + cols: slack for the last taps
        obuf = np.empty(0 if rowwise else n_flat, dtype=x.dtype)
        filled = -1
        for unit in range(t * units // nt, (t + 1) * units // nt):
            n = unit // c_out
            oc = unit % c_out
            plane = unit // mult  # n * c_in + input channel
            if plane != filled:
                _fill_polyphase(buf, 0, x[n, oc // mult], sh, sw, ph, pw, rows, cols, rvals, cvals)
                filled = plane
            k = w[oc, 0]
            if rowwise:
                _rows_3x3(buf, 0, k, b[oc], out[n, oc], cols, offset)
                continue
            if oh_n == 1:
                # one output row (conv1d): the flat loop writes it in place, no junk columns
                if square3:
                    _flat_3x3(buf, 0, k, b[oc], out[n, oc, 0], ow_n, offset, True)
                else:
                    _flat_general(buf, 0, k, b[oc], out[n, oc, 0], ow_n, offset, True)
                continue
            if square3:
                _flat_3x3(buf, 0, k, b[oc], obuf, n_flat, offset, True)
            else:
                _flat_general(buf, 0, k, b[oc], obuf, n_flat, offset, True)
            for r in range(oh_n):
                base = uint64(r * cols)
                for j in range(uint64(ow_n)):
                    out[n, oc, r, j] = obuf[base + j]


def _conv2d_depthwise(x, w, b, out, sh, sw, dh, dw, ph=0, pw=0, rowwise_min=-1):
    """Depthwise 2-D cross-correlation (``groups == C_in``), zero padding done in the kernel.

    x: (N, C_in, H, W), the input *without* its zero padding, or an already padded input with
    ``ph = pw = 0``; ``ph``, ``pw``: zero rows above and zero columns to the left (the padding
    below and to the right follows from ``out``'s shape); w: (C_out, 1, KH, KW) with
    ``C_out = K * C_in``; b: (C_out,) (zeros when there is no bias); out: (N, C_out, OH, OW),
    overwritten. Output channel ``oc`` reads input channel ``oc // K``, as in PyTorch. Uses
    Numba's current thread count.
    """
    rvals, rtap = _phases(w.shape[2], sh, dh)
    cvals, ctap = _phases(w.shape[3], sw, dw)
    _depthwise2d(
        x,
        w,
        b,
        out,
        sh,
        sw,
        dh,
        dw,
        ph,
        pw,
        rvals,
        rtap,
        cvals,
        ctap,
        numba.get_num_threads(),
        rowwise_min,
    )


def _phases(taps, stride, dilation):
    """(sorted phases ``(t * dilation) % stride`` of the taps, each tap's index among them)."""
    phase = [(t * dilation) % stride for t in range(taps)]
    values = sorted(set(phase))
    index = {v: i for i, v in enumerate(values)}
    return np.array(values, dtype=np.int64), np.array([index[v] for v in phase], dtype=np.int64)


# --- 3-D -----------------------------------------------------------------------------------------


@njit(**NJIT_PARALLEL_OPTIONS)
def _depthwise3d(x, w, b, out, strides, dilations, pads, rvals, rtap, cvals, ctap, n_threads, skip):
    """The 3-D kernel behind :func:`_conv3d_depthwise`: the 2-D kernel's planes, summed over
    the kernel's depth (see the module notes).

    x: (N, C_in, D, H, W), unpadded; w: (C_out, 1, KD, KH, KW); out: (N, C_out, OD, OH, OW);
    ``strides``, ``dilations``: (depth, height, width); ``pads``: the zeros before the input
    along each (those after follow from ``out``); ``rvals`` ... ``ctap`` as in
    :func:`_depthwise2d`. ``skip``: leave out the kernel depths that read depth padding (the
    caller passes it for finite weights only, where those products are zeros).
    """
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    n_batch, c_in, d_in = x.shape[0], x.shape[1], x.shape[2]
    c_out, od_n, oh_n, ow_n = out.shape[1], out.shape[2], out.shape[3], out.shape[4]
    mult = c_out // c_in
    kd_n, kh_n, kw_n = w.shape[2], w.shape[3], w.shape[4]
    rows = oh_n + ((kh_n - 1) * dh) // sh  # rows per phase that some output reads
    cols = ow_n + ((kw_n - 1) * dw) // sw
    block = rows * cols
    n_flat = oh_n * cols
    plane_len = rvals.shape[0] * cvals.shape[0] * block  # one input plane, polyphase
    # Output depth od reads input planes z = od * sd + kd * dd - pd, which span ``span`` depths:
    # plane z kept in slot z % span never evicts another plane of the same output depth, and
    # with a depth stride of 1 each input plane is copied once per (image, output channel). A
    # last slot that stays zero stands for the depth padding when its products are kept.
    span = (kd_n - 1) * dd + 1
    zero_slot = 0 if skip or (pd == 0 and (od_n - 1) * sd + (kd_n - 1) * dd < d_in) else 1
    offset = np.empty((kh_n, kw_n), dtype=np.int64)
    for a in range(kh_n):
        for c in range(kw_n):
            offset[a, c] = (
                (rtap[a] * cvals.shape[0] + ctap[c]) * block + (a * dh // sh) * cols + c * dw // sw
            )
    square3 = kh_n == 3 and kw_n == 3
    units = n_batch * c_out  # (image, output channel) pairs, as in 2-D
    nt = max(1, min(n_threads, units))
    rows_out = out.reshape((n_batch, c_out, od_n * oh_n, ow_n))
    for t in prange(nt):
        buf = np.zeros((span + zero_slot) * plane_len + cols, dtype=x.dtype)
        held = np.full(span, -1, dtype=np.int64)  # the plane (n, c, z) in each slot
        obuf = np.empty(n_flat, dtype=x.dtype)
        for unit in range(t * units // nt, (t + 1) * units // nt):
            n = unit // c_out
            oc = unit % c_out
            plane = unit // mult  # n * c_in + input channel
            for od in range(od_n):
                first = True
                for kd in range(kd_n):
                    z = od * sd + kd * dd - pd
                    slot = span
                    if 0 <= z < d_in:
                        slot = z % span
                        if held[slot] != plane * d_in + z:
                            at = slot * plane_len
                            src = x[n, oc // mult, z]
                            _fill_polyphase(buf, at, src, sh, sw, ph, pw, rows, cols, rvals, cvals)
                            held[slot] = plane * d_in + z
                    elif skip:
                        continue
                    k = w[oc, 0, kd]
                    at = slot * plane_len
                    if square3:
                        _flat_3x3(buf, at, k, b[oc], obuf, n_flat, offset, first)
                    else:
                        _flat_general(buf, at, k, b[oc], obuf, n_flat, offset, first)
                    first = False
                if first:  # every depth tap read padding
                    _fill_flat(obuf, n_flat, b[oc])
                r0 = od * oh_n
                for r in range(oh_n):
                    base = uint64(r * cols)
                    for j in range(uint64(ow_n)):
                        rows_out[n, oc, r0 + r, j] = obuf[base + j]


def _conv3d_depthwise(x, w, b, out, sd, sh, sw, dd, dh, dw, pd=0, ph=0, pw=0):
    """Depthwise 3-D cross-correlation (``groups == C_in``), zero padding done in the kernel.

    As :func:`_conv2d_depthwise` with a depth: x: (N, C_in, D, H, W), unpadded; ``pd``, ``ph``,
    ``pw``: the zeros before it; w: (C_out, 1, KD, KH, KW); out: (N, C_out, OD, OH, OW),
    overwritten. Output depth ``od`` sums the 2-D sums of its ``KD`` input planes, depth by
    depth: the generic kernel's order.
    """
    rvals, rtap = _phases(w.shape[3], sh, dh)
    cvals, ctap = _phases(w.shape[4], sw, dw)
    # The depth padding's products are zeros only for finite weights (0 * inf is NaN); the
    # sum's finiteness proves them finite without a temporary array (a sum that overflows
    # just keeps those products in).
    skip = bool(np.isfinite(w.sum()))
    _depthwise3d(
        x,
        w,
        b,
        out,
        (sd, sh, sw),
        (dd, dh, dw),
        (pd, ph, pw),
        rvals,
        rtap,
        cvals,
        ctap,
        numba.get_num_threads(),
        skip,
    )


def conv2d_generic_grouped(
    input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """:func:`convlab.conv2d` forced onto the generic grouped kernel, for benchmarks and tests.

    ``convlab.conv2d`` sends depthwise layers (``groups == C_in``) to the dedicated kernel of this
    module; this helper validates and pads the arguments exactly as ``conv2d`` does and then runs
    :func:`convlab._kernels._conv2d_direct`, the kernel every other grouped layer uses. It exists
    so that the two can be timed and compared on the same inputs; use ``conv2d`` otherwise.

    Parameters
    ----------
    input, weight, bias, stride, padding, dilation, groups, padding_mode
        As in :func:`convlab.conv2d`.

    Returns
    -------
    numpy.ndarray
        The same array ``conv2d`` returns (bit for bit, see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> w = np.ones((2, 1, 2, 2))
    >>> conv2d_generic_grouped(x, w, groups=2)
    array([[[[ 8., 12.],
             [20., 24.]],
    <BLANKLINE>
            [[44., 48.],
             [56., 60.]]]])
    >>> np.array_equal(conv2d_generic_grouped(x, w, groups=2), convlab.conv2d(x, w, groups=2))
    True
    """
    # Imported here: conv.py imports this module to dispatch depthwise layers.
    from . import _kernels
    from .config import parallel_launch
    from .conv import _finish, _prepare

    p = _prepare(2, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    if p.sparse:  # padding far beyond what is read: see convlab._gather
        from .conv import _gather

        return _finish(p, _gather(p))
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size:
        with parallel_launch():
            _kernels._conv2d_direct(p.x, p.w, p.b, out, *p.stride, *p.dilation, p.groups)
    return _finish(p, out)


def conv2d_per_group(
    input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """A grouped convolution as ``groups`` separate :func:`convlab.conv2d` calls, concatenated.

    Group ``g`` convolves input channels ``g*C_in/G ... (g+1)*C_in/G - 1`` with output filters
    ``g*C_out/G ... (g+1)*C_out/G - 1``; the outputs are stacked along the channel axis. This is
    the definition of grouped convolution (and how, per the seed article ``003``, frameworks used
    to run it); it is here to be checked against and timed, not to be fast.

    Parameters
    ----------
    input, weight, bias, stride, padding, dilation, groups, padding_mode
        As in :func:`convlab.conv2d`.

    Returns
    -------
    numpy.ndarray
        Equal to ``convlab.conv2d(input, weight, bias, ..., groups=groups)``.

    Raises
    ------
    ValueError, TypeError
        Whatever ``convlab.conv2d`` raises for the same arguments: they are validated once, as a
        whole, before the loop.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> conv2d_per_group(x, np.ones((2, 1, 2, 2)), groups=2)[0, :, 0, 0]
    array([ 8., 44.])
    """
    from ._args import float_array
    from .conv import _prepare, conv2d

    x = float_array(input, "input")
    # Validate the grouped call as a whole first, so that a bad ``groups`` gets conv2d's message.
    # An empty batch makes _prepare check every rule without padding or copying the images.
    probe = x[:0] if x.ndim == 4 else (x[None][:0] if x.ndim == 3 else x)
    p = _prepare(2, probe, weight, bias, stride, padding, dilation, groups, padding_mode)
    w = p.w
    b = p.b if bias is not None else None
    c_in_g = w.shape[1]
    c_out_g = w.shape[0] // p.groups
    axis = x.ndim - 3  # the channel axis of (N, C, H, W) or (C, H, W)
    parts = []
    for g in range(p.groups):
        xg = x[:, g * c_in_g : (g + 1) * c_in_g] if axis == 1 else x[g * c_in_g : (g + 1) * c_in_g]
        wg = w[g * c_out_g : (g + 1) * c_out_g]
        bg = None if b is None else b[g * c_out_g : (g + 1) * c_out_g]
        parts.append(conv2d(xg, wg, bg, stride, padding, dilation, 1, padding_mode))
    return np.concatenate(parts, axis=axis)
