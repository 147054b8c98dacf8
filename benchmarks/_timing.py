"""The timing rule shared by the benchmark scripts in this folder.

On a shared machine the minimum over repeated calls is the measurement least disturbed by other
processes, so every script reports the best of ``repeat`` warm calls. (``convlab.bench``, the
installed benchmark, has its own interleaved timing; the package cannot import from here.)
"""

import time


def best_time(func, repeat, warmup=True):
    """Minimum wall time (seconds) of ``func()`` over ``repeat`` calls.

    With ``warmup`` one untimed call comes first, so that JIT compilation (or loading Numba's
    on-disk cache) and first-touch page faults are not counted.
    """
    if warmup:
        func()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best
