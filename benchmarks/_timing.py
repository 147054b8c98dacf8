"""The timing rule and thread setup shared by the benchmark scripts in this folder.

On a shared machine the minimum over repeated calls is the measurement least disturbed by other
processes, so every script reports the best of ``repeat`` warm calls. (``convlab.bench``, the
installed benchmark, has its own interleaved timing; the package cannot import from here.)
"""

import time


def best_time(func, repeat, warmup=True, clock=time.perf_counter):
    """Minimum time (seconds) of ``func()`` over ``repeat`` calls, by ``clock`` (wall time).

    With ``warmup`` one untimed call comes first, so that JIT compilation (or loading Numba's
    on-disk cache) and first-touch page faults are not counted. ``clock=time.process_time``
    measures the CPU time of the process instead.
    """
    if warmup:
        func()
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        func()
        best = min(best, clock() - start)
    return best


def set_threads(threads):
    """Give Numba and (when installed) PyTorch ``threads`` threads; return ``torch`` or ``None``.

    BLAS reads its own count from the environment when NumPy loads, so scripts set that first.
    """
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        import torch
    except ImportError:
        print("torch is not installed: printing convlab times only")
        return None
    torch.set_num_threads(threads)
    return torch
