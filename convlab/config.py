"""Numba settings used by every kernel in convlab, and the guard for threaded callers.

The flags live here, not in the kernels, so that they can be changed in one place (the style of
stumpy's ``config.py``). Set them through environment variables before importing convlab:

``CONVLAB_PARALLEL``
    ``0`` compiles the kernels without ``parallel=True`` (useful for profiling). Default ``1``.
``CONVLAB_FASTMATH``
    ``1`` lets LLVM reassociate floating-point sums. Default ``0``: fastmath would change rounding
    and would let LLVM assume there are no NaN/inf values, which breaks PyTorch's NaN propagation.
``NUMBA_CACHE_DIR``
    where Numba stores compiled kernels (``cache=True``); the test command points it at a temporary
    directory.

OpenMP wait policy
------------------
Numba's ``omp`` threading layer runs on GNU OpenMP, whose idle workers keep spinning for a while
after each parallel region. Pipelines that alternate a parallel Numba kernel with a multithreaded
BLAS call (``deform_conv2d``'s sampling and matrix product) then lose a core to a spinning worker:
5-10x slower on a 2-core machine. ``OMP_WAIT_POLICY=PASSIVE`` in the environment, before the
process starts, puts idle workers to sleep at once. convlab does not set it itself: the variable is
process-wide and read once, when the OpenMP runtime loads, and PyTorch shares that runtime
(``libgomp.so.1``): on this project's 2-core machine PyTorch's convolutions ran 1.3-4x slower under
PASSIVE. The benchmarks therefore time convlab and PyTorch each in the process settings they are
meant to run in, and say which.
"""

import os
import threading

import numba

#: compile kernels with ``parallel=True`` so that ``prange`` loops use every core
PARALLEL = os.environ.get("CONVLAB_PARALLEL", "1") != "0"
#: see the module docstring: off, so that NaN/inf propagate as in PyTorch
FASTMATH = os.environ.get("CONVLAB_FASTMATH", "0") == "1"
#: keep compiled kernels on disk so that a second process does not compile again
CACHE = True

#: keyword arguments shared by every ``@njit`` in the package
NJIT_OPTIONS = dict(cache=CACHE, fastmath=FASTMATH, nogil=True)
NJIT_PARALLEL_OPTIONS = dict(NJIT_OPTIONS, parallel=PARALLEL)

# Numba's fallback threading layer, ``workqueue``, aborts the process when two Python threads
# launch parallel kernels at the same time ("Terminating: Nested parallel kernel launch detected,
# the workqueue threading layer does not supported concurrent access"). The ``omp`` and ``tbb``
# layers are thread-safe. Which layer Numba picked is only known after the first parallel launch,
# so until then, and whenever it is ``workqueue``, launches are serialised by this lock.
_LAUNCH_LOCK = threading.Lock()
_SAFE_LAYERS = ("omp", "tbb")


def _threading_layer_is_safe():
    try:
        return numba.threading_layer() in _SAFE_LAYERS
    except ValueError:  # no parallel kernel has run yet in this process
        return False


class parallel_launch:
    """Context manager around every call into a ``parallel=True`` kernel.

    A no-op once Numba runs a thread-safe threading layer (``omp`` or ``tbb``); otherwise it
    serialises the launches of concurrent Python threads so that the ``workqueue`` layer is never
    entered twice at once. A class rather than a ``contextlib`` generator: it is entered on every
    call, and the generator machinery cost about 1.5 us of serial time per call.
    """

    __slots__ = ("_locked",)

    def __enter__(self):
        self._locked = PARALLEL and not _threading_layer_is_safe()
        if self._locked:
            _LAUNCH_LOCK.acquire()
        return self

    def __exit__(self, *exc):
        if self._locked:
            _LAUNCH_LOCK.release()
        return False
