"""Matrix products inside parallel Numba kernels, one BLAS thread per Numba thread.

The fast algorithms (Winograd, im2col, deformable) are "transform a block of the input, multiply
it by the weights, transform the result back". Done as three separate steps, each parallel on its
own, that pipeline alternates two thread pools: Numba's workers for the transforms and the BLAS
library's workers for the GEMMs. Both pools busy-wait for a while after each job, so on a machine
with few cores the one that is idle steals time from the one that works, and the many short GEMMs
of a layer scale badly (measured on 2 cores: 16 Winograd GEMMs of 64x64x784 went from 0.91 ms on
one thread to only 0.74 ms on two).

The kernels here instead split the *output* among Numba's threads (``prange`` over the threads)
and let every thread run its whole pipeline on its own blocks: transform, a matrix product
(:func:`gemm_call`, which takes leading dimensions, or :func:`matmul_into`), transform back, with
the block still in the thread's cache.

Which BLAS: both NumPy's and SciPy's wheels bundle an OpenBLAS, often of different versions.
:func:`blas_gemm` takes SciPy's (what Numba's ``np.dot`` calls, through
``scipy.linalg.cython_blas``) unless NumPy's is a newer OpenBLAS with a thread setter; see its
docstring for the measurement behind that rule.

Each of these BLAS calls must run on the calling thread only. OpenBLAS (0.3.27 and
later) and MKL have ``*_set_num_threads_local`` for this. It is thread-local in MKL and in OpenMP
builds of OpenBLAS, but in the pthreads build the wheels ship it sets the *global* count
(measured: a second Python thread sees the value the first one set). Called on every kernel
thread, set-and-restore pairs would race: the first thread to finish would give the other one's
GEMMs OpenBLAS's own worker again, and the last one could leave the BLAS at one thread for the
rest of the process.

So the kernels do not set it themselves. :func:`one_blas_thread` is held around every launch of
a kernel that calls BLAS: the first caller sets one thread, the last concurrent caller to leave
restores the previous count, so concurrent convlab calls from several Python threads share one
hold. :func:`blas_threads_setter` finds the setter in the chosen library (and, when that is
NumPy's, SciPy's as well, for any ``np.dot`` in a kernel); when the library has none (another
BLAS), a no-op is used and the BLAS library decides its own threading (the results are the same
either way).
"""

import ctypes
import functools
import glob
import os
import re
import sys
import threading
import warnings

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS

__all__ = [
    "blas_config",
    "blas_threads_setter",
    "blas_library",
    "one_blas_thread",
    "blas_gemm",
    "matmul_into",
]

# the ``*_set_num_threads_local`` setters, newest first; each takes the thread count and returns
# the previous one
_SETTERS = (
    "openblas_set_num_threads_local",
    "scipy_openblas_set_num_threads_local",
    "mkl_set_num_threads_local",
    "MKL_Set_Num_Threads_Local",
)

# OpenBLAS's build description ("OpenBLAS 0.3.31 ... Haswell ..."), by the names its builds use
_CONFIGS = (
    "scipy_openblas_get_config64_",
    "openblas_get_config64_",
    "scipy_openblas_get_config",
    "openblas_get_config",
)

_LOCK = threading.Lock()
_CACHE = {}
_WARNED = [False]  # the missing-setter warning is given once per process

_SETTER_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)


@_SETTER_TYPE
def _no_setter(threads):
    """Stand-in when SciPy's BLAS has no setter of its own: changes nothing."""
    return 0


def _candidate_libraries():
    """Paths of the BLAS shared libraries that SciPy ships or links, most likely first."""
    try:
        import scipy
    except ImportError:  # pragma: no cover - scipy is a dependency
        return []
    root = os.path.dirname(scipy.__file__)
    patterns = [
        os.path.join(root, os.pardir, "scipy.libs", "*openblas*"),  # Linux and Windows wheels
        os.path.join(root, ".dylibs", "*openblas*"),  # macOS wheels
        os.path.join(root, os.pardir, "scipy.libs", "*mkl_rt*"),
    ]
    found = []
    for pattern in patterns:
        found.extend(sorted(glob.glob(pattern)))
    return found


def _open_loaded(path):
    """``ctypes.CDLL`` of an already loaded library, without loading anything new."""
    mode = getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL
    try:
        return ctypes.CDLL(path, mode=mode)
    except OSError:
        return None


def _setter_of(lib):
    """``(setter, name)`` of the first ``*_set_num_threads_local`` in ``lib``, or ``None``."""
    for name in _SETTERS:
        if getattr(lib, name, None) is not None:
            return _SETTER_TYPE((name, lib)), name
    return None


def _openblas_config(lib):
    """OpenBLAS's build description (``"OpenBLAS 0.3.31 ... Haswell ..."``), or ``None``."""
    for name in _CONFIGS:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            return (fn() or b"").decode(errors="replace").strip() or None
    return None


def _openblas_version(lib):
    """OpenBLAS's version as a tuple of ints, from its ``*get_config`` string; ``()`` if unknown."""
    words = (_openblas_config(lib) or "").split()
    if len(words) >= 2 and words[0] == "OpenBLAS":
        return tuple(int(part) for part in re.findall(r"\d+", words[1])[:3])
    return ()


def _scipy_gemm(dtype):
    """SciPy's ``cython_blas`` ``sgemm``/``dgemm`` (LP64: C ints), the functions Numba's ``np.dot``
    calls, as a :data:`_GEMM_TYPE` function."""
    from scipy.linalg import cython_blas

    name = "sgemm" if dtype == np.float32 else "dgemm"
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    signature = get_name(capsule)
    if signature.count(b"int *") != 6:  # m, n, k, lda, ldb, ldc as C ints (LP64)
        raise RuntimeError(f"unexpected scipy.linalg.cython_blas.{name} signature {signature!r}")
    return _GEMM_TYPE(get_pointer(capsule, signature))


def _numpy_openblas():
    """NumPy's own OpenBLAS (its wheels bundle one, ILP64): ``(lib, path, symbol prefix, suffix)``
    or ``None`` (another BLAS, a big-endian machine, no thread setter)."""
    if sys.byteorder != "little":  # gemm_call's 64-bit integers are little-endian pairs
        return None
    root = os.path.dirname(np.__file__)
    patterns = [
        os.path.join(root, os.pardir, "numpy.libs", "*openblas*"),  # Linux and Windows wheels
        os.path.join(root, ".dylibs", "*openblas*"),  # macOS wheels
    ]
    for path in sorted(p for pattern in patterns for p in glob.glob(pattern)):
        lib = _open_loaded(path)
        if lib is None or _setter_of(lib) is None:
            continue
        for prefix, suffix in (("scipy_", "_64_"), ("", "_64_"), ("scipy_", "_"), ("", "_")):
            if getattr(lib, f"{prefix}sgemm{suffix}", None) is not None:
                return lib, path, prefix, suffix
    return None


def _numpy_gemm(found, dtype):
    """``sgemm``/``dgemm`` of NumPy's OpenBLAS (``found``: :func:`_numpy_openblas`'s result) as a
    :data:`_GEMM_TYPE` function."""
    lib, _, prefix, suffix = found
    letter = "s" if dtype == np.float32 else "d"
    fn = getattr(lib, f"{prefix}{letter}gemm{suffix}")
    return _GEMM_TYPE(ctypes.cast(fn, ctypes.c_void_p).value)


def _choose():
    """Pick the BLAS library convlab multiplies with (once per process; see :func:`blas_gemm`)."""
    # Numba's np.dot binds to scipy.linalg.cython_blas; importing it loads SciPy's BLAS.
    import scipy.linalg.cython_blas  # noqa: F401

    scipy_lib = scipy_setter = scipy_path = None
    for path in _candidate_libraries():
        lib = _open_loaded(path)
        scipy_setter = None if lib is None else _setter_of(lib)
        if scipy_setter is not None:
            scipy_lib, scipy_path = lib, path
            break
    if scipy_setter is None:
        # MKL or a system BLAS linked by name (conda): look in the process itself
        scipy_setter = _setter_of(ctypes.CDLL(None))
        scipy_path = "process"
    choice = {
        "config": _openblas_config(scipy_lib) if scipy_lib is not None else None,
        "gemm": _scipy_gemm,
        "setters": [scipy_setter[0]] if scipy_setter else [],
        "library": f"{os.path.basename(scipy_path)}:{scipy_setter[1]}" if scipy_setter else None,
    }
    wanted = os.environ.get("CONVLAB_BLAS", "").strip().lower()
    if wanted not in ("", "numpy", "scipy"):
        raise ValueError(f"CONVLAB_BLAS={wanted!r}: expected 'numpy', 'scipy' or unset")
    found = None if wanted == "scipy" else _numpy_openblas()
    if found is not None:
        lib, path, prefix, suffix = found
        newer = _openblas_version(lib) > (_openblas_version(scipy_lib) if scipy_lib else ())
        if wanted == "numpy" or (newer and scipy_setter is not None):
            setter, name = _setter_of(lib)
            choice = {
                "config": _openblas_config(lib),
                "gemm": functools.partial(_numpy_gemm, found),
                # Numba's np.dot (none in convlab's kernels, but in a user's) still uses SciPy's
                "setters": [setter] + choice["setters"],
                "library": f"{os.path.basename(path)}:{name}",
            }
    return choice


def _find_setter():
    """``(setter, "library:function")`` of the chosen BLAS, or ``(no-op, None)``."""
    choice = _chosen()
    setters = choice["setters"]
    if not setters:
        return _no_setter, None
    if len(setters) == 1:
        return setters[0], choice["library"]

    def both(threads, setters=tuple(setters)):
        previous = setters[0](threads)
        for other in setters[1:]:
            other(threads)
        return previous

    return both, choice["library"]


def _chosen():
    with _CHOICE_LOCK:
        if "choice" not in _CHOICE:
            _CHOICE["choice"] = _choose()
        return _CHOICE["choice"]


_CHOICE_LOCK = threading.Lock()
_CHOICE = {}


def blas_threads_setter():
    """The ctypes function ``set(threads) -> previous`` of convlab's BLAS (its ``*_local`` setter).

    Global or per thread depending on the build (see the module docstring), so code should hold
    it through :func:`one_blas_thread` rather than call it. Found once per process; a no-op
    function when the BLAS library has no such setter.
    """
    with _LOCK:
        if "setter" not in _CACHE:
            _CACHE["setter"], _CACHE["library"] = _find_setter()
            if _CACHE["library"] is None and not _WARNED[0]:
                _WARNED[0] = True
                warnings.warn(
                    "convlab: SciPy's BLAS has no thread-count setter (*_set_num_threads_local: "
                    "OpenBLAS >= 0.3.27, as in recent SciPy wheels, or MKL), so the matrix "
                    "products inside convlab's parallel kernels may start BLAS threads of their "
                    "own and run slower on few cores; results are the same. Upgrade SciPy "
                    "(pip install -U scipy) or set OPENBLAS_NUM_THREADS=1.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return _CACHE["setter"]


def blas_library():
    """``"library:function"`` of the setter in use, or ``None`` if there is none."""
    blas_threads_setter()
    return _CACHE["library"]


def blas_config():
    """The build description of the OpenBLAS convlab multiplies with (version, kernels in use,
    e.g. ``"OpenBLAS 0.3.31 ... Haswell MAX_THREADS=64"``), or ``None`` for another BLAS."""
    return _chosen()["config"]


_HOLD_LOCK = threading.Lock()
_HOLD = {"depth": 0, "previous": 0}


class one_blas_thread:
    """Hold convlab's BLAS to one thread while the ``with`` block runs (see the module docstring).

    Re-entrant and shared by all Python threads: the first to enter sets one thread, the last to
    leave restores the count found on entry. (A class, not a ``contextlib`` generator: it is
    entered on every convolution call.)
    """

    __slots__ = ()

    def __enter__(self):
        setter = _CACHE.get("setter") or blas_threads_setter()
        with _HOLD_LOCK:
            if _HOLD["depth"] == 0:
                _HOLD["previous"] = setter(1)
            _HOLD["depth"] += 1
        return self

    def __exit__(self, *exc):
        with _HOLD_LOCK:
            _HOLD["depth"] -= 1
            if _HOLD["depth"] == 0:
                _CACHE["setter"](_HOLD["previous"])
        return False


_GEMM_LOCK = threading.Lock()
_GEMM = {}
#: every BLAS gemm as convlab calls it: 13 pointers (flags, sizes and scalars by reference)
_GEMM_TYPE = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))


def blas_gemm(dtype):
    """The BLAS ``sgemm`` (float32) or ``dgemm`` (float64) convlab multiplies with, for Numba.

    A kernel takes it as an argument and calls it through :func:`gemm_call`, whose
    leading-dimension arguments let it multiply a slice of the weight into a strided block of the
    output in place. The library: SciPy's (``scipy.linalg.cython_blas``, what Numba's ``np.dot``
    calls), unless NumPy's wheel bundles a newer OpenBLAS, which is then used instead. Measured
    on a 2-core AMD EPYC (Zen 3, OpenBLAS's Haswell kernels), single-threaded sgemm of the
    shapes convlab's blocks multiply (256 x 64 x 576 ... 512 x 64 x 3136) ran at 61-68 GFLOP/s
    in SciPy 1.17's OpenBLAS 0.3.30 and 82-87 GFLOP/s in NumPy 2.4's 0.3.31. ``CONVLAB_BLAS=scipy``
    (or ``numpy``) in the environment forces the choice. Fortran convention: every argument by
    reference.
    """
    dtype = np.dtype(dtype)
    with _GEMM_LOCK:
        if dtype not in _GEMM:
            _GEMM[dtype] = _chosen()["gemm"](dtype)
        return _GEMM[dtype]


@njit(**NJIT_OPTIONS)
def gemm_call(gemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """One call of ``gemm`` (:func:`blas_gemm`'s ``sgemm``/``dgemm``) from inside a Numba kernel.

    BLAS's column-major convention: ``C = alpha op(A) op(B) + beta C`` with ``op(A)`` m x k,
    ``op(B)`` k x n and ``C`` m x n; ``trans_a``/``trans_b`` are ``"N"`` or ``"T"``; ``a``, ``b``,
    ``c`` are 1-D arrays starting at the matrix's first element (a slice of a flattened array) and
    ``lda``, ``ldb``, ``ldc`` their leading dimensions, which let a product read or write a strided
    block of a larger array in place. A row-major (rows x cols) block with row length ``ld`` is the
    column-major (cols x rows) matrix with leading dimension ``ld``. BLAS takes every argument by
    reference, so they are copied into three small arrays here (a few hundred nanoseconds, next to
    the microseconds of any product worth a BLAS call). The caller holds BLAS to one thread
    (:func:`one_blas_thread`).
    """
    flags = np.empty(2, dtype=np.int8)
    flags[0] = ord(trans_a)
    flags[1] = ord(trans_b)
    # each integer in 8 bytes, low word first: read as a C int by an LP64 BLAS (SciPy's) and as
    # a 64-bit integer by an ILP64 one (NumPy's), on the little-endian machines the latter is
    # chosen on (blas_gemm)
    dims = np.zeros(12, dtype=np.int32)
    dims[0] = m
    dims[2] = n
    dims[4] = k
    dims[6] = lda
    dims[8] = ldb
    dims[10] = ldc
    scalars = np.empty(2, dtype=c.dtype)
    scalars[0] = alpha
    scalars[1] = beta
    gemm(
        flags[0:].ctypes,
        flags[1:].ctypes,
        dims[0:].ctypes,
        dims[2:].ctypes,
        dims[4:].ctypes,
        scalars[0:].ctypes,
        a.ctypes,
        dims[6:].ctypes,
        b.ctypes,
        dims[8:].ctypes,
        scalars[1:].ctypes,
        c.ctypes,
        dims[10:].ctypes,
    )


@njit(**NJIT_OPTIONS)
def matmul_into(gemm, a, b, c):
    """``c[...] = a @ b`` for 2-D arrays whose rows are contiguous (slices of C-ordered arrays).

    Row-major ``c (m x n) = a (m x k) @ b (k x n)`` is column-major ``c^T = b^T a^T``: one
    :func:`gemm_call` with the arrays' row strides as leading dimensions. What ``np.dot(a, b, c)``
    computes, in convlab's BLAS (:func:`blas_gemm`) rather than the one Numba's ``np.dot`` binds.
    """
    m, k = a.shape
    n = b.shape[1]
    size = c.itemsize
    gemm_call(
        gemm,
        "N",
        "N",
        n,
        m,
        k,
        1.0,
        b,
        b.strides[0] // size,
        a,
        a.strides[0] // size,
        0.0,
        c,
        c.strides[0] // size,
    )


#: kernels that cut a product among threads cut it into this many ranges whatever the thread
#: count (:func:`unit_range`): 12 splits evenly over 1, 2, 3, 4 and 6 threads
UNITS = 12


@njit(**NJIT_OPTIONS)
def unit_range(size, u, units):
    """``(lo, hi)`` of range ``u`` of ``units`` over ``0 .. size``, in whole runs of 16.

    The cut depends on the shape only, and each thread takes whole ranges, so every BLAS call is
    the same on any thread count, and so are the bits: OpenBLAS's result for an element can
    depend on where a call's edge falls (its Haswell kernels, cut by the thread count instead,
    gave outputs that differed by up to 1e-5 between 1 and 2 threads).
    """
    runs = -(-size // 16)
    return min(size, 16 * (runs * u // units)), min(size, 16 * (runs * (u + 1) // units))
