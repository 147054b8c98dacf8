"""Matrix products inside parallel Numba kernels, one BLAS thread per Numba thread.

The fast algorithms (Winograd, im2col, deformable) are "transform a block of the input, multiply
it by the weights, transform the result back". Done as three separate steps, each parallel on its
own, that pipeline alternates two thread pools: Numba's workers for the transforms and the BLAS
library's workers for the GEMMs. Both pools busy-wait for a while after each job, so on a machine
with few cores the one that is idle steals time from the one that works, and the many short GEMMs
of a layer scale badly (measured on 2 cores: 16 Winograd GEMMs of 64x64x784 went from 0.91 ms on
one thread to only 0.74 ms on two).

The kernels here instead split the *output* among Numba's threads (``prange`` over the threads)
and let every thread run its whole pipeline on its own blocks: transform, a matrix product in
SciPy's BLAS (``np.dot``, which Numba compiles to such a call, or :func:`gemm_call`, which also
takes leading dimensions), transform back, with the block still in the thread's cache.
For that, each of these BLAS calls must run on the calling thread only. OpenBLAS (0.3.27 and
later) and MKL have ``*_set_num_threads_local`` for this. It is thread-local in MKL and in OpenMP
builds of OpenBLAS, but in the pthreads build SciPy's wheels ship it sets the *global* count
(measured: a second Python thread sees the value the first one set). Called on every kernel
thread, set-and-restore pairs would race: the first thread to finish would give the other one's
GEMMs OpenBLAS's own worker again, and the last one could leave SciPy's BLAS at one thread for
the rest of the process.

So the kernels do not set it themselves. :func:`one_blas_thread` is held around every launch of
a kernel that calls BLAS: the first caller sets one thread, the last concurrent caller to leave
restores the previous count, so concurrent convlab calls from several Python threads share one
hold. :func:`blas_threads_setter` finds the setter in the BLAS library SciPy's ``cython_blas``
uses; when the library has none (another BLAS), a no-op is used and the BLAS library decides its
own threading (the results are the same either way).
"""

import ctypes
import glob
import os
import threading
import warnings

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS

__all__ = ["blas_threads_setter", "blas_library", "one_blas_thread", "blas_gemm"]

# the ``*_set_num_threads_local`` setters, newest first; each takes the thread count and returns
# the previous one
_SETTERS = (
    "openblas_set_num_threads_local",
    "scipy_openblas_set_num_threads_local",
    "mkl_set_num_threads_local",
    "MKL_Set_Num_Threads_Local",
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


def _find_setter():
    # Numba's np.dot binds to scipy.linalg.cython_blas; importing it loads SciPy's BLAS.
    import scipy.linalg.cython_blas  # noqa: F401

    for path in _candidate_libraries():
        lib = _open_loaded(path)
        if lib is None:
            continue
        for name in _SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                setter = _SETTER_TYPE((name, lib))
                return setter, f"{os.path.basename(path)}:{name}"
    # MKL or a system BLAS linked by name (conda): look in the process itself
    process = ctypes.CDLL(None)
    for name in _SETTERS:
        if getattr(process, name, None) is not None:
            return _SETTER_TYPE((name, process)), f"process:{name}"
    return _no_setter, None


def blas_threads_setter():
    """The ctypes function ``set(threads) -> previous`` of SciPy's BLAS (its ``*_local`` setter).

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


_HOLD_LOCK = threading.Lock()
_HOLD = {"depth": 0, "previous": 0}


class one_blas_thread:
    """Hold SciPy's BLAS to one thread while the ``with`` block runs (see the module docstring).

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


def blas_gemm(dtype):
    """SciPy's BLAS ``sgemm`` (float32) or ``dgemm`` (float64) as a ctypes function.

    These are the functions Numba's ``np.dot`` calls (``scipy.linalg.cython_blas``), in the BLAS
    library :func:`one_blas_thread` holds to one thread; a kernel takes one as an argument and calls
    it directly because their leading-dimension arguments let a kernel multiply a slice of the weight
    into a strided block of the output, which ``np.dot`` (contiguous arrays only) cannot. Fortran
    convention: every argument by reference, ``char`` flags passed as ``int8``.
    """
    dtype = np.dtype(dtype)
    with _GEMM_LOCK:
        if dtype not in _GEMM:
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
                raise RuntimeError(
                    f"unexpected scipy.linalg.cython_blas.{name} signature {signature!r}"
                )
            real = ctypes.POINTER(ctypes.c_float if dtype == np.float32 else ctypes.c_double)
            flag, integer = ctypes.POINTER(ctypes.c_int8), ctypes.POINTER(ctypes.c_int)
            prototype = ctypes.CFUNCTYPE(
                None,
                flag,
                flag,
                integer,
                integer,
                integer,
                real,
                real,
                integer,
                real,
                integer,
                real,
                real,
                integer,
            )
            _GEMM[dtype] = prototype(get_pointer(capsule, signature))
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
    dims = np.empty(6, dtype=np.int32)
    dims[0] = m
    dims[1] = n
    dims[2] = k
    dims[3] = lda
    dims[4] = ldb
    dims[5] = ldc
    scalars = np.empty(2, dtype=c.dtype)
    scalars[0] = alpha
    scalars[1] = beta
    gemm(
        flags[0:].ctypes,
        flags[1:].ctypes,
        dims[0:].ctypes,
        dims[1:].ctypes,
        dims[2:].ctypes,
        scalars[0:].ctypes,
        a.ctypes,
        dims[3:].ctypes,
        b.ctypes,
        dims[4:].ctypes,
        scalars[1:].ctypes,
        c.ctypes,
        dims[5:].ctypes,
    )
