"""conv2d called from several Python threads at once: correct results, no abort.

Numba's ``workqueue`` threading layer aborts the whole process on concurrent parallel launches;
convlab serialises launches when that layer is active (``convlab.config.parallel_launch``). Each
scenario runs in a fresh subprocess so that an abort fails the test instead of killing pytest, and
once per threading layer this machine has.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, threading
    import numpy as np
    import convlab
    from convlab.config import parallel_launch

    rng = np.random.default_rng(0)
    jobs = []
    for i in range(8):
        x = rng.standard_normal((2, 4, 20 + i, 18))
        w = rng.standard_normal((6, 2, 3, 3))
        jobs.append((x, w))
    expected = None
    if "{warm}" == "1":
        expected = [convlab.conv2d(x, w, padding=1, groups=2, algorithm="direct") for x, w in jobs]
    results = [None] * len(jobs) * 4
    errors = []
    barrier = threading.Barrier(4)

    def worker(t):
        try:
            barrier.wait()
            for j, (x, w) in enumerate(jobs):
                algorithm = ("direct", "im2col")[(t + j) % 2]
                results[t * len(jobs) + j] = convlab.conv2d(x, w, padding=1, groups=2, algorithm=algorithm)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors, errors
    import numba
    from naive import convnd
    for t in range(4):
        for j, (x, w) in enumerate(jobs):
            ref = convnd(x[:1, :, :6, :6], w, padding=1, groups=2)
            got = results[t * len(jobs) + j]
            np.testing.assert_allclose(got[:1, :, :5, :5], ref[:, :, :5, :5], rtol=1e-10, atol=1e-10)
            if expected is not None:
                np.testing.assert_allclose(got, expected[j], rtol=1e-12, atol=1e-12)
    print("layer", numba.threading_layer())
""")


def _available_layers():
    layers = ["workqueue"]
    try:
        from numba.np.ufunc import omppool  # noqa: F401

        layers.append("omp")
    except ImportError:
        pass
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401

        layers.append("tbb")
    except ImportError:
        pass
    return layers


@pytest.mark.parametrize("warm", ["0", "1"], ids=["cold-start", "after-warm-up"])
@pytest.mark.parametrize("layer", _available_layers())
def test_concurrent_conv2d(layer, warm, tmp_path):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    tests_dir = os.path.dirname(__file__)
    env["PYTHONPATH"] = tests_dir + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("{warm}", warm)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-3000:]}"
    )
    assert f"layer {layer}" in proc.stdout
