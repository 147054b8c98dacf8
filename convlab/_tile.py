"""convlab's own register-tiled matrix product, for the products BLAS runs far from its peak.

A convolution's products are thin: a few dozen output channels times a block of a few hundred
output positions, summed over ``C_in * taps`` rows of columns. OpenBLAS packs both operands
into its own layout for every call and, on such shapes, reaches 55-75% of the peak it reaches on
large square matrices (one thread of a Zen 5 core: 130-190 GFLOP/s on 64 x 1024 x 576, against
252 on 2048^3). The product here packs nothing per call:

* ``A`` (the weights, ``m x k``) is packed once per layer into panels of ``MR`` rows
  (:func:`pack_panels`: element ``(i, kk)`` of a panel at ``kk * MR + i``), so one step of the
  sum reads ``MR`` consecutive values;
* ``B`` (``k x n``) is read where it lies: row ``kk`` at ``b[b_off + boff[kk]]``, unit stride
  along ``n``, a table of offsets saying where each row starts (for a convolution, the input's
  rows shifted by each tap: :mod:`convlab._implicit` builds no columns at all);
* ``C`` (the output, ``m x n``) is written in place, row ``i`` at ``c[c_off + i * ldc]``: a block
  of an NCHW output is exactly that.

The innermost step is one tile of ``MR x NR`` outputs (:func:`_tile`, written in LLVM IR so that
its ``MR * NV`` accumulators are vector registers; Numba's loops would keep them in memory): for
every ``kk``, ``NV`` vectors of ``B``'s row are loaded, each of the ``MR`` values of ``A``'s
panel is broadcast, and ``MR * NV`` fused multiply-adds update the accumulators, which are
written to ``C`` (stored or added) once, after the whole sum. With 32 vector registers (AVX-512)
the tiles are 8 x 3 or 4 x 4 vectors; with 16 (AVX2, SSE) 4 x 3 or 2 x 4.
:func:`tile_shape` picks one per product from ``m`` alone.

Every output element is the same fused multiply-adds in the order of ``kk``, whichever tile and
thread computes it (a last, partial strip of columns is computed as a full strip that overlaps
the one before, into a scratch tile, and only its new columns are kept): the results do not
depend on the number of threads.

Numba does not check these reads and writes: :func:`tile_matmul` checks once per call that
every index it will touch lies inside its arrays and raises ``IndexError`` otherwise.
"""

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .config import NJIT_OPTIONS

#: bytes of one vector register: 64 where the CPU has AVX-512, else 32 (AVX2; on older CPUs
#: LLVM splits each vector into two, correct and slower)
VECTOR_BYTES = 64 if llvm.get_host_cpu_features().get("avx512f", False) else 32
#: (rows, vectors per row) of the two tiles, for 32 or 16 vector registers: accumulators,
#: the row of B and one broadcast value fit in the register file
TILES = ((8, 3), (4, 4)) if VECTOR_BYTES == 64 else ((4, 3), (2, 4))
#: relative speed of the tiles (one thread, float32, Zen 5, 16-64 rows by 768 positions by
#: 144-1152 rows of columns: 8x3 at 200-255 GFLOP/s, 4x4 at 150-230), to choose the one that
#: wastes the least on the padding of ``m`` to a multiple of the rows
TILE_SPEED = (1.0, 0.75)
#: :data:`TILES` as two tuples that Numba reads as constants
TILES_ROWS = tuple(t[0] for t in TILES)
TILES_VECTORS = tuple(t[1] for t in TILES)


def _typed_lanes(floats, offsets):
    """The typing rule of the intrinsics: ``floats`` arrays of one float dtype and an int64
    ``offsets`` array give the vector lanes of that dtype; anything else None (no match)."""
    if not all(isinstance(a, types.Array) for a in (*floats, offsets)):
        return None
    dtype = floats[0].dtype
    if any(a.dtype != dtype for a in floats) or dtype not in (types.float32, types.float64):
        return None
    if offsets.dtype != types.int64:
        return None
    return VECTOR_BYTES // (4 if dtype == types.float32 else 8)


def _make_tile(mr, nv):
    """The intrinsic computing one ``mr x (nv * lanes)`` tile (see :func:`_tile`)."""

    @intrinsic
    def tile(typingctx, k, ap, ai, b, bi, boff, c, ci, ldc, rows, accumulate):
        lanes = _typed_lanes((ap, b, c), boff)
        if lanes is None:
            return None
        sig = types.void(k, ap, ai, b, bi, boff, c, ci, ldc, rows, accumulate)

        def codegen(context, builder, signature, args):
            k_, ap_, ai_, b_, bi_, boff_, c_, ci_, ldc_, rows_, acc_ = args
            i64 = ir.IntType(64)
            fty = context.get_value_type(signature.args[1].dtype)
            vty = ir.VectorType(fty, lanes)
            ints = [
                context.cast(builder, args[j], signature.args[j], types.int64)
                for j in (0, 2, 4, 7, 8, 9)
            ]
            k_, ai_, bi_, ci_, ldc_, rows_ = ints
            data = [
                context.make_array(signature.args[j])(context, builder, value=args[j]).data
                for j in (1, 3, 5, 6)
            ]
            pa, pb, po, pc = data
            fma = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(vty, [vty, vty, vty]),
                f"llvm.fma.v{lanes}{'f32' if fty == ir.FloatType() else 'f64'}",
            )
            zero = ir.Constant(vty, [0.0] * lanes)
            accs = [
                [cgutils.alloca_once_value(builder, zero) for _ in range(nv)] for _ in range(mr)
            ]
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            with cgutils.for_range(builder, k_) as loop:
                kk = loop.index
                row = builder.add(bi_, builder.load(builder.gep(po, [kk])))
                bv = [
                    builder.load(
                        builder.bitcast(
                            builder.gep(pb, [builder.add(row, ir.Constant(i64, v * lanes))]),
                            vty.as_pointer(),
                        ),
                        align=1,
                    )
                    for v in range(nv)
                ]
                panel = builder.add(ai_, builder.mul(kk, ir.Constant(i64, mr)))
                for i in range(mr):
                    s = builder.load(builder.gep(pa, [builder.add(panel, ir.Constant(i64, i))]))
                    sv = builder.insert_element(
                        ir.Constant(vty, ir.Undefined), s, ir.Constant(ir.IntType(32), 0)
                    )
                    sv = builder.shuffle_vector(sv, ir.Constant(vty, ir.Undefined), splat)
                    for v in range(nv):
                        builder.store(
                            builder.call(fma, [sv, bv[v], builder.load(accs[i][v])]), accs[i][v]
                        )
            add = builder.icmp_signed(
                "!=",
                context.cast(builder, acc_, signature.args[10], types.int64),
                ir.Constant(i64, 0),
            )
            for i in range(mr):
                keep = builder.icmp_signed("<", ir.Constant(i64, i), rows_)
                with builder.if_then(keep):
                    crow = builder.add(ci_, builder.mul(ir.Constant(i64, i), ldc_))
                    for v in range(nv):
                        ptr = builder.bitcast(
                            builder.gep(pc, [builder.add(crow, ir.Constant(i64, v * lanes))]),
                            vty.as_pointer(),
                        )
                        value = builder.load(accs[i][v])
                        old = builder.load(ptr, align=1)
                        value = builder.select(add, builder.fadd(old, value), value)
                        builder.store(value, ptr, align=1)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_TILE0 = _make_tile(*TILES[0])
_TILE1 = _make_tile(*TILES[1])


@njit(**NJIT_OPTIONS)
def _tile(shape, k, ap, ai, b, bi, boff, c, ci, ldc, rows, accumulate):
    """One tile of :data:`TILES` ``[shape]``: ``C[i, j] (+)= sum over kk < k of A[i, kk] B[kk, j]``
    for ``i < rows`` (at most the tile's rows) and every ``j`` of the tile's columns.

    ``A[i, kk] = ap[ai + kk * MR + i]`` (a packed panel), ``B[kk, j] = b[bi + boff[kk] + j]``,
    ``C[i, j] = c[ci + i * ldc + j]``; ``accumulate`` nonzero adds the sums to ``C``, zero
    stores them. Unchecked: :func:`tile_matmul` checks the bounds.
    """
    if shape == 0:
        _TILE0(k, ap, ai, b, bi, boff, c, ci, ldc, rows, accumulate)
    else:
        _TILE1(k, ap, ai, b, bi, boff, c, ci, ldc, rows, accumulate)


def tile_shape(m):
    """Index into :data:`TILES` of the tile :func:`tile_matmul` uses for ``m`` rows: the one
    with the least time per useful row, counting the zero rows that pad ``m`` to its height."""
    costs = [-(-m // mr) * mr / speed for (mr, _), speed in zip(TILES, TILE_SPEED, strict=True)]
    return costs.index(min(costs))


def panel_rows(shape):
    """Rows of one panel of :func:`pack_panels` for tile ``shape``."""
    return TILES[shape][0]


def tile_columns(shape, itemsize):
    """Columns of one tile ``shape`` for elements of ``itemsize`` bytes."""
    return TILES[shape][1] * VECTOR_BYTES // itemsize


def pack_panels(a, groups, shape):
    """``a`` (``groups * m`` x ``k``) as ``groups`` x ``ceil(m / MR)`` panels of ``k x MR``.

    Each group's ``m`` rows are packed on their own, zero rows padding the last panel; the
    result is C-contiguous, of shape ``(groups, panels, k, MR)``: :func:`tile_matmul` reads
    group ``g``'s panels at ``a_off = g * panels * k * MR`` with a panel stride of ``k * MR``
    (and the sums over ``kk >= k0`` from ``a_off + k0 * MR``). Packed by :func:`pack_range`,
    which the kernels call on their threads' shares.
    """
    mr = panel_rows(shape)
    a = np.ascontiguousarray(a)
    rows, k = a.shape
    panels = -(-(rows // groups) // mr)
    out = np.empty((groups, panels, k, mr), dtype=a.dtype)
    pack_range(a, groups, mr, out.reshape(-1), 0, groups * panels)
    return out


@njit(**NJIT_OPTIONS)
def pack_range(a, groups, mr, ap, p0, p1):
    """Panels ``p0 <= p < p1`` (numbered over all groups) of :func:`pack_panels` into ``ap``
    (flat), from ``a`` (``groups * m`` x ``k``, C-contiguous): for a kernel whose threads each pack
    a share."""
    rows, k = a.shape
    m = rows // groups
    panels = (m + mr - 1) // mr
    af = a.reshape(-1)
    for q in range(p0, p1):
        g = q // panels
        p = q - g * panels
        pack_panel(af, (g * m + p * mr) * k, k, k, mr, min(mr, m - p * mr), ap, q * k * mr)


@njit(**NJIT_OPTIONS)
def pack_panel(af, first, lda, k, mr, rows, ap, base):
    """One panel of ``mr`` rows: ``af[first + i * lda + kk]`` (``i < rows``, ``kk < k``) into
    ``ap[base + kk * mr + i]``, zeros for ``rows <= i < mr``."""
    if rows == mr == 8:
        _pack_full(af, first, lda, k, ap, base, 8)
    elif rows == mr == 4:
        _pack_full(af, first, lda, k, ap, base, 4)
    elif rows == mr == 2:
        _pack_full(af, first, lda, k, ap, base, 2)
    else:
        for kk in range(k):
            dst = base + kk * mr
            for i in range(rows):
                ap[dst + i] = af[first + i * lda + kk]
            for i in range(rows, mr):
                ap[dst + i] = 0


@njit(**NJIT_OPTIONS)
def _pack_full(af, first, lda, k, ap, base, mr):
    """One full panel of ``mr`` rows (``af[first + i * lda + kk]``) into ``ap[base + kk * mr +
    i]``, compiled once per ``mr`` (a literal, so the row count is a constant). With the count a
    constant and the indices unsigned (no wraparound test on every access), LLVM vectorises it
    along ``kk`` as an interleaved store: 30 us for 256 x 1152 float32 in 8-row panels on one
    Zen 5 thread, where the loop with a variable row count took 170 (and 12-row panels, which
    LLVM does not interleave, 150: the reason the tiles have 8 or 4 rows, not 12)."""
    numba.literally(mr)
    rows = np.uint64(mr)
    kn = np.uint64(k)
    ld = np.uint64(lda)
    b0 = np.uint64(base)
    f0 = np.uint64(first)
    for kk in range(kn):
        dst = b0 + kk * rows
        src = f0 + kk
        for i in range(rows):
            ap[dst + i] = af[src + i * ld]


@njit(**NJIT_OPTIONS)
def tile_matmul(shape, m, n, k, kc, ap, a_off, a_stride, b, b_off, boff, c, c_off, ldc, accumulate):
    """``C (+)= A @ B`` for ``A`` (m x k, packed), ``B`` (k x n, rows anywhere) and ``C`` (m x n).

    ``A``: panel ``p`` (rows ``p * MR ..``) at ``ap[a_off + p * a_stride]``, element ``(i, kk)``
    at ``+ kk * MR + i`` (:func:`pack_panels`); ``B[kk, j] = b[b_off + boff[kk] + j]`` (a table
    of row offsets: rows of columns ``kk * ld`` apart, or shifted views of one input); ``C[i,
    j] = c[c_off + i * ldc + j]``. ``accumulate`` nonzero adds to ``C`` (BLAS's ``beta = 1``),
    zero overwrites it (``beta = 0``). ``shape`` indexes :data:`TILES` (:func:`tile_shape`).

    The columns are cut into strips of the tile's width; a last, narrower strip is computed as a
    full strip ending at ``n`` into a scratch tile, of which the columns the previous strip did
    not cover are kept. Fewer columns than one strip: plain loops, in the same order of ``kk``.
    """
    if m <= 0 or n <= 0:
        return
    if kc <= 0:
        raise ValueError("tile_matmul: kc must be positive")
    mr = TILES_ROWS[shape]
    nr = TILES_VECTORS[shape] * (VECTOR_BYTES // c.itemsize)
    panels = (m + mr - 1) // mr
    # every index the tiles touch, checked once (Numba does not check the intrinsic's)
    if k > boff.size:
        raise IndexError("tile_matmul: an operand is smaller than its sizes (k > boff.size)")
    if k > 0:
        lo = boff[0]
        hi = boff[0]
        for kk in range(1, k):
            lo = min(lo, boff[kk])
            hi = max(hi, boff[kk])
        if (
            a_off < 0
            or a_stride < k * mr
            or a_off + (panels - 1) * a_stride + k * mr > ap.size
            or b_off + lo < 0
            or b_off + hi + n > b.size
        ):
            raise IndexError("tile_matmul: an operand is smaller than its sizes")
    if c_off < 0 or ldc < n or c_off + (m - 1) * ldc + n > c.size:
        raise IndexError("tile_matmul: the output is smaller than its sizes")
    if k == 0:
        for i in range(0 if accumulate else m):
            for j in range(n):
                c[c_off + i * ldc + j] = 0
        return
    if n < nr:
        _narrow(shape, m, n, k, kc, ap, a_off, a_stride, b, b_off, boff, c, c_off, ldc, accumulate)
        return
    full = n - n % nr
    scratch = np.empty(mr * nr if full < n else 0, dtype=c.dtype)
    j0 = n - nr
    for k0 in range(0, k, kc):
        kn = min(kc, k - k0)
        add = accumulate if k0 == 0 else 1
        offsets = boff[k0 : k0 + kn]
        for j in range(0, full, nr):
            for p in range(panels):
                _tile(
                    shape,
                    kn,
                    ap,
                    a_off + p * a_stride + k0 * mr,
                    b,
                    b_off + j,
                    offsets,
                    c,
                    c_off + p * mr * ldc + j,
                    ldc,
                    min(mr, m - p * mr),
                    add,
                )
        if full == n:
            continue
        for p in range(panels):
            rows = min(mr, m - p * mr)
            _tile(
                shape,
                kn,
                ap,
                a_off + p * a_stride + k0 * mr,
                b,
                b_off + j0,
                offsets,
                scratch,
                0,
                nr,
                rows,
                0,
            )
            for i in range(rows):
                dst = c_off + (p * mr + i) * ldc
                for j in range(full, n):
                    v = scratch[i * nr + j - j0]
                    c[dst + j] = c[dst + j] + v if add else v


@njit(**NJIT_OPTIONS)
def _narrow(shape, m, n, k, kc, ap, a_off, a_stride, b, b_off, boff, c, c_off, ldc, accumulate):
    """:func:`tile_matmul` for fewer columns than one strip (``n < nr``): each pass's ``kc`` rows
    of ``B`` are copied into one zero-padded strip, multiplied by the same tiles, and the first
    ``n`` columns kept. (Plain loops here ran at 3-4 GFLOP/s: a strided transposed convolution's
    phases of a 12x12 output, 8 images of 128 channels, took 25 ms on one thread, the GEMM form
    0.6 ms.) The caller has checked the bounds."""
    mr = TILES_ROWS[shape]
    nr = TILES_VECTORS[shape] * (VECTOR_BYTES // c.itemsize)
    panels = (m + mr - 1) // mr
    rows_b = min(kc, k)
    strip = np.zeros(rows_b * nr, dtype=b.dtype)
    offsets = np.arange(rows_b) * nr
    scratch = np.empty(mr * nr, dtype=c.dtype)
    for k0 in range(0, k, kc):
        kn = min(kc, k - k0)
        add = accumulate if k0 == 0 else 1
        for kk in range(kn):
            src = b_off + boff[k0 + kk]
            for j in range(n):
                strip[kk * nr + j] = b[src + j]
        for p in range(panels):
            rows = min(mr, m - p * mr)
            _tile(
                shape,
                kn,
                ap,
                a_off + p * a_stride + k0 * mr,
                strip,
                0,
                offsets,
                scratch,
                0,
                nr,
                rows,
                0,
            )
            for i in range(rows):
                dst = c_off + (p * mr + i) * ldc
                for j in range(n):
                    v = scratch[i * nr + j]
                    c[dst + j] = c[dst + j] + v if add else v


#: most taps :func:`tap_dots` sums in one pass (one vector register each, plus the gradient's
#: vector and one of the input: nine fit even in AVX2's 16 registers)
TAP_DOTS_MAX = 9


def vector_lanes(itemsize):
    """Elements of ``itemsize`` bytes in one vector register."""
    return VECTOR_BYTES // itemsize


def _make_tap_dots(nt, rows):
    """The intrinsic computing :func:`tap_dots` (``rows`` 1) or :func:`tap_dots2` (2) for ``nt``
    taps."""

    @intrinsic
    def dots(typingctx, n, g, gi, gs, x, xi, offs, oi, out, ri, rs):
        lanes = _typed_lanes((g, x, out), offs)
        if lanes is None:
            return None
        sig = types.void(n, g, gi, gs, x, xi, offs, oi, out, ri, rs)

        def codegen(context, builder, signature, args):
            i64 = ir.IntType(64)
            n_, gi_, gs_, xi_, oi_, ri_, rs_ = [
                context.cast(builder, args[j], signature.args[j], types.int64)
                for j in (0, 2, 3, 5, 7, 9, 10)
            ]
            pg, px, po, pr = [
                context.make_array(signature.args[j])(context, builder, value=args[j]).data
                for j in (1, 4, 6, 8)
            ]
            fty = context.get_value_type(signature.args[1].dtype)
            vty = ir.VectorType(fty, lanes)
            suffix = f"v{lanes}{'f32' if fty == ir.FloatType() else 'f64'}"
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.{suffix}"
            )
            # without the reassoc flag LLVM adds the lanes in order, after the start value
            reduce = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(fty, [fty, vty]),
                f"llvm.vector.reduce.fadd.{suffix}",
            )
            zero = ir.Constant(vty, [0.0] * lanes)
            accs = [
                [cgutils.alloca_once_value(builder, zero) for _ in range(nt)] for _ in range(rows)
            ]
            starts = [
                builder.add(
                    xi_, builder.load(builder.gep(po, [builder.add(oi_, ir.Constant(i64, t))]))
                )
                for t in range(nt)
            ]
            g_rows = [builder.add(gi_, builder.mul(gs_, ir.Constant(i64, r))) for r in range(rows)]

            def vector(ptr, index):
                return builder.load(
                    builder.bitcast(builder.gep(ptr, [index]), vty.as_pointer()), align=1
                )

            with cgutils.for_range(builder, n_) as loop:
                pos = builder.mul(loop.index, ir.Constant(i64, lanes))
                gv = [vector(pg, builder.add(g_rows[r], pos)) for r in range(rows)]
                for t in range(nt):
                    xv = vector(px, builder.add(starts[t], pos))
                    for r in range(rows):
                        acc = accs[r][t]
                        builder.store(builder.call(fma, [gv[r], xv, builder.load(acc)]), acc)
            for r in range(rows):
                row = builder.add(ri_, builder.mul(rs_, ir.Constant(i64, r)))
                for t in range(nt):
                    ptr = builder.gep(pr, [builder.add(row, ir.Constant(i64, t))])
                    value = builder.call(reduce, [builder.load(ptr), builder.load(accs[r][t])])
                    builder.store(value, ptr)
            return context.get_dummy_value()

        return sig, codegen

    return dots


_D1, _D2, _D3, _D4, _D5, _D6, _D7, _D8, _D9 = (
    _make_tap_dots(nt, 1) for nt in range(1, TAP_DOTS_MAX + 1)
)
_P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8, _P9 = (
    _make_tap_dots(nt, 2) for nt in range(1, TAP_DOTS_MAX + 1)
)
#: most taps :func:`tap_dots2` sums in one pass: two accumulators per tap, two vectors of the
#: gradient and one of the input in 32 registers (AVX-512), in 16 at most six taps
TAP_DOTS2_MAX = TAP_DOTS_MAX if VECTOR_BYTES == 64 else 6


@njit(**NJIT_OPTIONS)
def tap_dots(n, g, gi, x, xi, offs, oi, out, ri, nt):
    """``out[ri + t] += sum over p < n * lanes of g[gi + p] * x[xi + offs[oi + t] + p]`` for the
    ``nt <= TAP_DOTS_MAX`` taps ``t``: several dot products of one vector ``g`` with shifted
    windows of ``x``, ``lanes`` (:func:`vector_lanes`) at a time.

    Each tap's sum stays in a vector register for the whole pass (Numba's loops without fastmath
    would not vectorise a sum): each step loads ``g``'s vector once and one vector of ``x`` per
    tap, ``nt`` fused multiply-adds. Lane ``l`` sums the products ``p = l (mod lanes)`` in order
    of ``p``, and the lanes are added to ``out`` in order: fixed by ``n`` alone. Unchecked: the
    caller sizes the arrays so that every index read exists.
    """
    _dispatch(1, n, g, gi, 0, x, xi, offs, oi, out, ri, 0, nt)


@njit(**NJIT_OPTIONS)
def tap_dots2(n, g, gi, gs, x, xi, offs, oi, out, ri, rs, nt):
    """:func:`tap_dots` for two vectors at once, ``g[gi:]`` into ``out[ri:]`` and ``g[gi + gs:]``
    into ``out[ri + rs:]``, ``nt <= TAP_DOTS2_MAX``: each vector of ``x`` loaded serves both, so
    a step issues ``2 nt`` fused multiply-adds for ``nt + 2`` loads. Every sum is made exactly as
    :func:`tap_dots` makes it (the same bits)."""
    _dispatch(2, n, g, gi, gs, x, xi, offs, oi, out, ri, rs, nt)


@njit(inline="always", **NJIT_OPTIONS)
def _dispatch(rows, n, g, gi, gs, x, xi, offs, oi, out, ri, rs, nt):
    """The intrinsic for ``rows`` and ``nt`` (a chain of branches: Numba calls each by name)."""
    a = (n, g, gi, gs, x, xi, offs, oi, out, ri, rs)
    if rows == 1:
        if nt == 9:
            _D9(*a)
        elif nt == 8:
            _D8(*a)
        elif nt == 7:
            _D7(*a)
        elif nt == 6:
            _D6(*a)
        elif nt == 5:
            _D5(*a)
        elif nt == 4:
            _D4(*a)
        elif nt == 3:
            _D3(*a)
        elif nt == 2:
            _D2(*a)
        elif nt == 1:
            _D1(*a)
    elif nt == 9:
        _P9(*a)
    elif nt == 8:
        _P8(*a)
    elif nt == 7:
        _P7(*a)
    elif nt == 6:
        _P6(*a)
    elif nt == 5:
        _P5(*a)
    elif nt == 4:
        _P4(*a)
    elif nt == 3:
        _P3(*a)
    elif nt == 2:
        _P2(*a)
    elif nt == 1:
        _P1(*a)
