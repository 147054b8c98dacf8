"""Numba settings used by every kernel in convlab: flags, kernel cache, threading layer, fork.

The flags live here, not in the kernels, so that they can be changed in one place (the style of
stumpy's ``config.py``). Set them through environment variables before importing convlab:

``CONVLAB_PARALLEL``
    ``0`` compiles the kernels without ``parallel=True`` (useful for profiling). Default ``1``.
``CONVLAB_FASTMATH``
    ``1`` lets LLVM reassociate floating-point sums. Default ``0``: fastmath would change rounding
    and would let LLVM assume there are no NaN/inf values, which breaks PyTorch's NaN propagation.
``CONVLAB_CACHE``
    ``0``: compile the kernels in every process and write nothing to disk. Default ``1``.
``CONVLAB_CACHE_DIR``
    where convlab's compiled kernels are stored (see below).
``NUMBA_CACHE_DIR``
    Numba's own switch: where every Numba cache goes, convlab's too unless ``CONVLAB_CACHE_DIR``
    is set. The test command points it at a temporary directory.
``NUMBA_THREADING_LAYER``
    Numba's own switch: ``tbb``, ``omp`` or ``workqueue``; unset, convlab chooses (see below).

Kernel cache
------------
Compiling convlab's kernels takes seconds per kernel and dtype, so they are compiled with
``cache=True`` and later processes load the machine code. Numba would put those files next to the
sources (``__pycache__`` inside site-packages), where ``pip uninstall`` leaves them behind and
where a read-only installation (a container run as another user) makes ``import convlab`` fail
("cannot cache function ...: no locator available"). convlab therefore adds its own cache locator
to Numba's list (``CacheImpl._locator_classes``, the hook Numba's own locators use; Numba has no
public one, numba/numba#9350) that claims convlab's files only and keeps them in

1. ``CONVLAB_CACHE_DIR`` if set, else
2. ``NUMBA_CACHE_DIR`` if set (laid out as Numba lays it out), else
3. the user's cache directory: ``$XDG_CACHE_HOME/convlab/<version>`` (``~/.cache/...``; on macOS
   ``~/Library/Caches/...``, on Windows ``%LOCALAPPDATA%\\...``),

in a subdirectory per installation (Numba's: the package directory's name and a hash of its
path). :data:`CACHE_DIR` holds the choice. If the directory cannot be created or written, convlab
warns once and compiles in memory only: importing convlab never fails because of the cache.

Threading layer
---------------
Numba runs ``prange`` loops on one of three layers. ``omp`` (GNU OpenMP, Numba's choice when TBB is
missing) kills a forked child that runs a parallel kernel ("fork() called from a process already
using GNU OpenMP"), and Python's multiprocessing forks by default on Linux, as data loaders do; on
a 2-core VM its workers also stalled for 8-16 ms per call for hundreds of calls in some processes
(benchmarks/bench_threading_layers.py measures it). Unless the user picked a layer
(``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY`` in the environment, a changed
``numba.config.THREADING_LAYER``, or a layer already started), convlab asks Numba for ``tbb``
first, then ``workqueue``, then ``omp``: both are fork-safe. TBB comes from the ``tbb`` wheel, whose
library pip puts in ``<prefix>/lib``, off the loader's path, where Numba does not find it
(numba/numba#9555); convlab loads it from there first. ``workqueue`` is not thread-safe: it aborts
the process when two Python threads launch parallel kernels at once, so :class:`parallel_launch`
serialises launches unless the layer is ``tbb`` or ``omp``. With ``omp`` chosen by the user, a
forked child gets a ``RuntimeError`` that says so instead of being killed.

Thread placement
----------------
``CONVLAB_PIN_THREADS=1`` pins each of Numba's worker threads to a CPU of its own before the first
parallel kernel runs; :func:`pin_threads` does the same on demand. Off by default: a library should
not decide where a program's threads run. It is for machines whose scheduler moves an idle worker
onto the CPU of the thread that wakes it. On this project's 2-core VM (a kernel with
``/proc/sys/kernel/sched_vcpu_pack`` set), TBB's worker, which sleeps between kernels, was put
beside the main thread for stretches of hundreds of calls, and the main thread then ran the whole
kernel alone: a stride-2 layer took 0.65 ms, its one-thread time, in about half the blocks of 20
calls, and 0.36 ms in the others (median over 25 blocks 0.45-0.47 ms); with the worker pinned, the
median was 0.39-0.43 ms (with the main thread pinned too, 0.36-0.37, but the main thread is left
alone: see :func:`pin_threads`). PyTorch's OpenMP workers spin between regions, so the scheduler
sees them busy and leaves them where they are.

OpenMP wait policy
------------------
GNU OpenMP's idle workers keep spinning for a while after each parallel region. Pipelines that
alternate a parallel Numba kernel with a multithreaded BLAS call (``deform_conv2d``'s sampling and
matrix product) then lose a core to a spinning worker under ``omp``: 5-10x slower on a 2-core
machine. ``OMP_WAIT_POLICY=PASSIVE`` in the environment, before the process starts, puts idle
workers to sleep at once. convlab does not set it itself: the variable is process-wide and read
once, when the OpenMP runtime loads, and PyTorch shares that runtime (``libgomp.so.1``): on this
project's 2-core machine PyTorch's convolutions ran 1.3-4x slower under PASSIVE.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any, Literal, cast

import numba

from ._version import __version__ as _VERSION

#: compile kernels with ``parallel=True`` so that ``prange`` loops use every core
PARALLEL = os.environ.get("CONVLAB_PARALLEL", "1") != "0"
#: see the module docstring: off, so that NaN/inf propagate as in PyTorch
FASTMATH = os.environ.get("CONVLAB_FASTMATH", "0") == "1"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- the kernel cache


def user_cache_dir() -> str:
    """The per-user cache directory convlab uses by default: ``.../convlab/<version>``."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(
            os.path.expanduser("~"), "AppData", "Local"
        )
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(base):  # the XDG spec: relative values are ignored
            base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "convlab", _VERSION)


def _requested_cache_dir() -> str | None:
    """The directory the environment asks for, or None for 'no cache' (``CONVLAB_CACHE=0``)."""
    if os.environ.get("CONVLAB_CACHE", "1").strip() == "0":
        return None
    return (
        os.environ.get("CONVLAB_CACHE_DIR")
        or getattr(numba.config, "CACHE_DIR", "")
        or user_cache_dir()
    )


def _make_locator_class() -> type[Any]:
    """The locator class, made here so that a Numba without these names fails inside the probe."""
    from numba.core.caching import _CacheLocator, _SourceFileBackedLocatorMixin

    # numba's classes are Any to mypy (pyproject.toml)
    class ConvlabCacheLocator(_SourceFileBackedLocatorMixin, _CacheLocator):  # type: ignore[misc]
        """Numba cache locator for convlab's own source files: they are cached in ``root``."""

        root: str | None = None  # set by _enable_cache

        def __init__(self, py_func: Callable[..., Any], py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            # root is set: from_function creates no locator without it
            root = cast(str, self.root)
            self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self) -> str:
            return self._cache_path

        def get_source_stamp(self) -> tuple[float, int]:
            # Numba stamps a cached kernel with its own file only, so a kernel that calls one
            # from another module kept the old machine code after that module changed (a
            # changed tile size in _tile.py corrupted memory through _implicit.py's cached
            # kernel): every convlab kernel is stamped with the whole package instead
            return _package_stamp()

        @classmethod
        def from_function(
            cls, py_func: Callable[..., Any], py_file: str
        ) -> ConvlabCacheLocator | None:
            path = os.path.abspath(py_file)
            if cls.root is None or not path.startswith(_PACKAGE_DIR + os.sep):
                return None  # not convlab's: Numba's own locators decide
            # the mixin: None if the file is missing or the directory cannot be written
            locator: ConvlabCacheLocator | None = super().from_function(py_func, py_file)
            return locator

    return ConvlabCacheLocator


@functools.lru_cache(maxsize=1)
def _package_stamp() -> tuple[float, int]:
    """(latest modification time, total size) of convlab's Python files: any change to any of
    them makes every cached kernel stale."""
    latest, total = 0.0, 0
    for folder, _, files in os.walk(_PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                latest = max(latest, st.st_mtime)
                total += st.st_size
    return latest, total


def _cache_probe() -> None:  # pragma: no cover - never called, only located
    """A function in convlab's package that the cache set-up locates as the kernels will be."""


def _enable_cache() -> str | None:
    """Register convlab's cache locator and check that it works; returns the cache directory.

    ``None`` (no caching, ``cache=False`` for every kernel) when ``CONVLAB_CACHE=0`` or when the
    directory cannot be used, then after one warning.
    """
    directory = _requested_cache_dir()
    if directory is None:
        return None
    directory = os.path.abspath(os.path.expanduser(directory))
    try:
        from numba.core.caching import FunctionCache

        impl = FunctionCache._impl_class
        locator = next(
            (cls for cls in impl._locator_classes if cls.__name__ == "ConvlabCacheLocator"), None
        )
        if locator is None:
            locator = _make_locator_class()
            impl._locator_classes.insert(0, locator)
        locator.root = directory
        # exactly what @njit(cache=True) does for each kernel below: it raises "no locator
        # available" if nothing can be written, which would otherwise fail the import
        where = FunctionCache(_cache_probe).cache_path
    except Exception as exc:  # any failure means: compile without a cache
        warnings.warn(
            f"convlab cannot use {directory!r} for its compiled kernels ({exc}); they will be "
            "compiled again in every process. Set CONVLAB_CACHE_DIR (or NUMBA_CACHE_DIR) to a "
            "writable directory, or CONVLAB_CACHE=0 to compile in memory without this warning.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    # NUMBA_CACHE_LOCATOR_CLASSES replaces Numba's list: the user's locators decide then
    return directory if where.startswith(directory + os.sep) else os.path.dirname(where)


#: the directory under which convlab's compiled kernels are kept, or None if they are not cached
CACHE_DIR = _enable_cache()
#: keep compiled kernels on disk so that a second process does not compile again
CACHE = CACHE_DIR is not None

#: keyword arguments shared by every ``@njit`` in the package
NJIT_OPTIONS = dict(cache=CACHE, fastmath=FASTMATH, nogil=True)
NJIT_PARALLEL_OPTIONS = dict(NJIT_OPTIONS, parallel=PARALLEL)


# --------------------------------------------------------------------------- threading layer

#: Numba's default order, which convlab replaces unless the user changed it
_NUMBA_DEFAULT_PRIORITY = ["tbb", "omp", "workqueue"]
#: convlab's order: the fork-safe layers first (see the module docstring)
LAYER_PRIORITY = ["tbb", "workqueue", "omp"]


def _layer_started() -> str | None:
    try:
        layer: str = numba.threading_layer()
        return layer
    except ValueError:  # no parallel kernel has run yet in this process
        return None


def _tbb_library_paths() -> list[str]:
    """Where pip puts TBB's shared library: ``<data dir>/lib`` (``Library/bin`` on Windows)."""
    if sys.platform == "win32":
        relative = os.path.join("Library", "bin", "tbb12.dll")
    elif sys.platform == "darwin":
        relative = os.path.join("lib", "libtbb.12.dylib")
    else:
        relative = os.path.join("lib", "libtbb.so.12")
    roots = [sys.prefix]
    try:
        import site

        if site.ENABLE_USER_SITE:
            roots.append(site.getuserbase())  # pip install --user
    except Exception:  # a frozen or embedded interpreter
        pass
    return [os.path.join(root, relative) for root in roots]


def _load_pip_tbb() -> bool:
    """Load the ``tbb`` wheel's library so that Numba finds it by name; True if one was loaded."""
    for path in _tbb_library_paths():
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
                return True
            except OSError:
                continue
    return False


def _choose_threading_layer() -> str:
    """Ask Numba for a fork-safe layer unless the user chose; returns who chose: user/convlab."""
    user_set = (
        "NUMBA_THREADING_LAYER" in os.environ
        or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ
        or str(numba.config.THREADING_LAYER).lower() != "default"
        or list(numba.config.THREADING_LAYER_PRIORITY) != _NUMBA_DEFAULT_PRIORITY
    )
    if _layer_started() is not None:
        return "user"
    requested = str(numba.config.THREADING_LAYER).lower()
    if PARALLEL and requested not in ("omp", "workqueue"):
        _load_pip_tbb()  # also when the user asked for tbb (or "safe"): Numba looks by name only
    if user_set:
        return "user"
    if PARALLEL:
        numba.config.THREADING_LAYER_PRIORITY = list(LAYER_PRIORITY)
    return "convlab"


#: ``"convlab"`` when convlab set Numba's layer priority (:data:`LAYER_PRIORITY`), ``"user"`` when
#: the environment or the program had chosen a layer before convlab was imported
LAYER_CHOSEN_BY = _choose_threading_layer()


def threading_layer() -> str:
    """The name of the threading layer Numba runs (``"tbb"``, ``"omp"`` or ``"workqueue"``).

    Starts Numba's threads if no parallel kernel has run yet (that is when Numba picks the layer).
    """
    numba.get_num_threads()  # starts the threading layer, runs nothing
    layer: str = numba.threading_layer()
    return layer


# --------------------------------------------------------------------------- thread placement

#: pin Numba's worker threads before the first parallel kernel (see the module docstring)
PIN_THREADS = os.environ.get("CONVLAB_PIN_THREADS", "0").strip() == "1"
#: {native thread id: CPU} of the workers :func:`pin_threads` pinned in this process
_pinned: dict[int, int] = {}
_pin_tried = False


def _native_thread_id_function() -> Any:
    """``(syscall, SYS_gettid)``: libc's ``syscall`` as a ctypes function Numba can call and the
    gettid number for this machine, or ``(None, None)`` off Linux x86-64/aarch64."""
    numbers = {"x86_64": 186, "aarch64": 178, "AMD64": 186}
    import platform

    number = numbers.get(platform.machine())
    if not sys.platform.startswith("linux") or number is None:
        return None, None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None, None
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long]
    return fn, number


def _probe_kernel() -> Any:
    """A parallel kernel whose iterations record the native id of the thread that ran them."""
    gettid, number = _native_thread_id_function()
    if gettid is None:
        return None

    @numba.njit(parallel=True, cache=False)  # type: ignore[untyped-decorator]
    def probe(out: Any, spin: int) -> None:  # pragma: no cover - compiled
        for i in numba.prange(out.size):
            s = 0.0
            for j in range(spin):  # long enough for every worker to join in
                s += (j * 0.5) % 3.0
            out[i] = gettid(number) + (0 if s >= 0 else 1)

    return probe


def pin_threads(attempts: int = 200) -> dict[int, int]:
    """Pin each of Numba's worker threads to one CPU of this process's set; returns ``{native
    thread id: CPU}`` (also kept: later calls pin nothing more).

    Runs a small parallel kernel until it has seen every worker (all of Numba's threads but the
    calling one; at most ``attempts`` times), then gives the ``k``-th worker it saw the ``k +
    1``-th allowed CPU (modulo their number), leaving the first to the calling thread, which
    computes beside them; under the ``workqueue`` layer, whose calling thread only waits, the
    workers take the CPUs from the first on. The calling thread itself is never pinned: every
    thread it starts later inherits its set, and a pool started after it was pinned would crowd
    onto one CPU (PyTorch's OpenMP threads ran 30-200 times slower so). Linux only (elsewhere,
    and with one allowed CPU, it pins nothing and returns ``{}``). See the module docstring.
    """
    global _pin_tried
    if _pinned or not PARALLEL:
        return dict(_pinned)
    _pin_tried = True
    if not hasattr(os, "sched_setaffinity"):
        return {}
    cpus = sorted(os.sched_getaffinity(0))
    probe = _probe_kernel()
    if len(cpus) < 2 or probe is None:
        return {}
    import numpy as np

    main = threading.get_native_id()
    total = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(total)
    seen: list[int] = []
    try:
        out = np.zeros(4 * total, dtype=np.int64)
        for _ in range(attempts):
            probe(out, 20000)
            for tid in out.tolist():
                if tid != main and tid not in seen:
                    seen.append(tid)
            if len(seen) >= total - 1 and (threading_layer() != "workqueue" or len(seen) >= total):
                break
    finally:
        numba.set_num_threads(previous)
    # the calling thread computes beside its workers except under workqueue: leave it a CPU
    first = 0 if threading_layer() == "workqueue" else 1
    for k, tid in enumerate(seen):
        cpu = cpus[(k + first) % len(cpus)]
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:  # the thread has ended, or the CPU was taken away
            continue
        _pinned[tid] = cpu
    return dict(_pinned)


def pinned_threads() -> dict[int, int]:
    """``{native thread id: CPU}`` of the worker threads convlab pinned (empty if none)."""
    return dict(_pinned)


# --------------------------------------------------------------------------- parallel launches

# Numba's ``workqueue`` layer aborts the process when two Python threads launch parallel kernels
# at the same time ("Terminating: Nested parallel kernel launch detected, the workqueue threading
# layer does not supported concurrent access"). The ``omp`` and ``tbb`` layers are thread-safe.
# Which layer Numba picked is only known after its threads start, so until then, and whenever it
# is ``workqueue``, launches are serialised by this lock.
_LAUNCH_LOCK = threading.Lock()
_SAFE_LAYERS = ("omp", "tbb")
#: None until the layer is known, then whether launches may run concurrently
_layer_is_safe: bool | None = None
#: set in a child forked from a process that had started the ``omp`` layer
_forked_from_omp = False


def _check_layer() -> bool:
    """Whether concurrent launches are safe; remembers the answer once the layer is known."""
    global _layer_is_safe
    if PIN_THREADS and not _pin_tried:
        pin_threads()
    layer = _layer_started()
    if layer is None:
        return False
    if _forked_from_omp and layer == "omp":
        raise RuntimeError(
            "convlab: this process was forked from one that had already run parallel Numba "
            "kernels on the 'omp' threading layer (GNU OpenMP), which cannot run in a forked "
            "child. Use a fork-safe layer (leave NUMBA_THREADING_LAYER unset to get convlab's "
            "choice, tbb or workqueue; `pip install tbb` for tbb), or start child processes with "
            "multiprocessing's 'spawn' or 'forkserver' method."
        )
    _layer_is_safe = layer in _SAFE_LAYERS
    return _layer_is_safe


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: forget the parent's lock holders."""
    global _LAUNCH_LOCK, _layer_is_safe, _forked_from_omp, _pin_tried
    _LAUNCH_LOCK = threading.Lock()
    _layer_is_safe = None
    _pinned.clear()  # the parent's workers do not exist here; the child's are pinned anew
    _pin_tried = False
    if _layer_started() == "omp":
        _forked_from_omp = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class parallel_launch:
    """Context manager around every call into a ``parallel=True`` kernel.

    A no-op once Numba runs a thread-safe threading layer (``omp`` or ``tbb``); otherwise it
    serialises the launches of concurrent Python threads so that the ``workqueue`` layer is never
    entered twice at once. In a child forked from a process running ``omp`` it raises a
    ``RuntimeError`` that explains, where the kernel would have killed the process. A class rather
    than a ``contextlib`` generator: it is entered on every call, and the generator machinery cost
    about 1.5 us of serial time per call.
    """

    __slots__ = ("_lock",)
    _lock: threading.Lock | None

    def __enter__(self) -> parallel_launch:
        safe = _layer_is_safe
        if safe is None:
            safe = _check_layer()
        if PARALLEL and not safe:
            self._lock = _LAUNCH_LOCK
            self._lock.acquire()
        else:
            self._lock = None
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        if self._lock is not None:
            self._lock.release()
        return False
