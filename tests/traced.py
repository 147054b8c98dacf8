"""Measure what a call allocates, not what the first call in a process happens to allocate.

``tracemalloc`` counts every Python-level allocation made while it runs: a Numba compile (tens of
MB of LLVM objects and type caches), the first BLAS lookup, a new ``functools.lru_cache`` entry, a
thread's first parallel launch. Those happen once per process or once per thread, so a test that
traces a first call passes or fails depending on which tests ran before it in the same process
(issue 13: ``-k conv2d`` traced 19-23 MB against a 2.5 MB bound, and a fresh machine traced 18 KB
more than a warm one). :func:`traced_peak` therefore

1. runs the exact call once in a throwaway thread (compiles its kernels for these exact types,
   fills every process-wide cache it uses), then
2. in a new thread, whose reused per-thread buffers (:func:`convlab._winograd.workspace`) start
   empty, runs ``thread_warmup`` (a tiny call on the same code path: the thread's own one-time
   set-up, such as its first parallel launch and its workspace dictionary, happens there), and
3. only then traces the exact call.

What is left in the traced peak is what the call itself allocates: its result and the buffers it
asks the workspace for, plus a few small Python objects (array headers, views, argument tuples),
which is the slack each test states and explains.

Two things outside the call can still land in the traced window, and both only add to the peak:
tracemalloc counts every thread of the process, so whatever another Python thread allocates
meanwhile is counted too (under pytest-xdist, each worker has execnet's receiver thread, which
reads the controller's messages while a test runs); and a garbage collection triggered inside
the window runs the finalizers of earlier tests' objects. Full CI runs (two xdist workers)
occasionally traced about 18.7 KB more than the call allocates, never a run of the test alone
(issue 13).
So the collector is run before the window and paused inside it, and the measurement is repeated
in fresh threads: the call is deterministic, so the smallest of the peaks is what it allocates.
"""

import gc
import threading
import tracemalloc

import numba

#: traced measurements per call; the smallest peak is kept (noise from other threads only adds)
REPEATS = 3


def _in_new_thread(func, threads):
    result = {}

    def run():
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)  # per thread in Numba: the caller's count is untouched
        try:
            result["value"] = func()
        except BaseException as exc:  # re-raised in the caller, which pytest reports
            result["error"] = exc
        finally:
            numba.set_num_threads(previous)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def traced_peak(call, thread_warmup=None, threads=1):
    """``(peak traced bytes, result)`` of ``call()`` run warm in a fresh thread with ``threads``.

    ``thread_warmup`` (optional) runs first in the same fresh thread, untraced; it should take the
    same code path as ``call`` on a tiny input, so that it leaves the workspace buffers small.
    """
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    _in_new_thread(call, threads)  # step 1: compile and fill the process-wide caches

    def measured():
        if thread_warmup is not None:
            thread_warmup()
        gc.collect()
        was_enabled = gc.isenabled()
        gc.disable()
        tracemalloc.start()
        try:
            value = call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            if was_enabled:
                gc.enable()
        return peak, value

    # steps 2 and 3, REPEATS times, each in a new thread (whose workspace starts empty again)
    runs = [_in_new_thread(measured, threads) for _ in range(REPEATS)]
    return min(runs, key=lambda run: run[0])
