"""A child forked after convlab has run computes what its parent computes.

Python's multiprocessing forks by default on Linux (up to 3.13), and so do data-loader workers.
Numba's ``omp`` layer (GNU OpenMP) kills such a child at its first parallel kernel, so convlab asks
Numba for ``tbb`` or ``workqueue`` (convlab/config.py); and its own thread pool (the FFT's) and
launch lock must not outlive the fork. Each scenario runs in a fresh subprocess, so that a killed
or hung child fails the test instead of the test run; the parent uses multiprocessing's fork
start method explicitly.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

import convlab.config  # noqa: F401 - loads the tbb wheel's library, so that tbbpool imports

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")

SCRIPT = textwrap.dedent("""
    import json, os, sys, threading
    import multiprocessing as mp
    import numpy as np
    import numba
    import convlab

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 20, 19)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    wd = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    wt = rng.standard_normal((8, 4, 4, 4)).astype(np.float32)
    wf = rng.standard_normal((4, 8, 7, 7)).astype(np.float32)
    off = rng.standard_normal((2, 18, 20, 19)).astype(np.float32)
    pw = rng.standard_normal((12, 8)).astype(np.float32)

    CALLS = {
        "auto": lambda: convlab.conv2d(x, w, padding=1),
        "winograd": lambda: convlab.conv2d(x, w, padding=1, algorithm="winograd"),
        "im2col": lambda: convlab.conv2d(x, w, stride=2, algorithm="im2col"),
        "direct": lambda: convlab.conv2d(x, w, padding=1, algorithm="direct"),
        "fft": lambda: convlab.conv2d(x, wf, padding=3, algorithm="fft"),
        "depthwise": lambda: convlab.conv2d(x, wd, padding=1, groups=8),
        "transposed": lambda: convlab.conv_transpose2d(x, wt, stride=2, padding=1),
        "deformable": lambda: convlab.deform_conv2d(x, off, w, padding=1),
        "separable": lambda: convlab.depthwise_separable_conv2d(x, wd, pw, padding=1),
    }

    def run_all():
        return {name: call() for name, call in CALLS.items()}

    def child(queue, n_threads):
        try:
            mine = run_all()
            # several Python threads at once in the child
            results, errors = [None] * n_threads, []
            def work(i):
                try:
                    results[i] = run_all()
                except Exception as exc:
                    errors.append(repr(exc))
            threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
            for t in threads: t.start()
            for t in threads: t.join()
            if errors:
                raise RuntimeError(errors[0])
            same = all(
                np.array_equal(r[k], parent[k]) for r in [mine] + results for k in parent
            )
            queue.put(("ok", same, numba.threading_layer()))
        except Exception as exc:
            queue.put(("error", repr(exc), None))

    if __name__ == "__main__":
        parent = run_all()  # the parent has started its threads, pools and BLAS
        if "{held}" == "1":
            # fork while convlab's own locks are held (as by another thread in the middle of a
            # call): the child must not inherit them locked
            from convlab import _winograd, config
            held = [config._LAUNCH_LOCK, _winograd._POOL_LOCK]
            for lock in held:
                lock.acquire()
        ctx = mp.get_context("fork")
        report = []
        for n_threads in (1, 3):
            queue = ctx.Queue()
            proc = ctx.Process(target=child, args=(queue, n_threads))
            proc.start()
            proc.join(300)
            if proc.is_alive():
                proc.kill()
                report.append(dict(exitcode="hung"))
                continue
            got = queue.get(timeout=10) if proc.exitcode == 0 else None
            report.append(dict(exitcode=proc.exitcode, result=got))
        if "{held}" == "1":
            for lock in held:
                lock.release()
        again = run_all()  # the parent still works after the forks
        same = all(np.array_equal(again[k], parent[k]) for k in parent)
        print(json.dumps(dict(layer=numba.threading_layer(), children=report, parent_same=same)))
""")


def _layers():
    layers = [None, "workqueue"]  # None: convlab's choice
    if importlib.util.find_spec("numba.np.ufunc.tbbpool") is not None:
        try:
            from numba.np.ufunc import tbbpool  # noqa: F401

            layers.append("tbb")
        except ImportError:
            pass
    return layers


def _run(layer, held="0"):
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("{held}", held)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.parametrize("layer", _layers(), ids=lambda layer: layer or "default")
def test_forked_child_computes_like_its_parent(layer):
    report, stderr = _run(layer)
    if layer is not None:
        assert report["layer"] == layer
    else:
        assert report["layer"] in ("tbb", "workqueue"), report["layer"]
    for child in report["children"]:
        assert child["exitcode"] == 0, (child, stderr[-3000:])
        status, same, child_layer = child["result"]
        assert status == "ok", same
        assert same, "the child's results differ from the parent's"
        assert child_layer == report["layer"]
    assert report["parent_same"]


def test_fork_while_convlab_locks_are_held():
    """convlab's launch lock (workqueue) and thread-pool lock, held at fork, are new in the child.

    Forking while another thread is inside a call is what the locks stand for here; doing that for
    real also races with the BLAS and pocketfft thread pools, which convlab does not own (Python
    3.12 warns about any fork of a multi-threaded process), so the locks are taken by hand.
    """
    report, stderr = _run("workqueue", held="1")
    for child in report["children"]:
        assert child["exitcode"] == 0, (child, stderr[-3000:])
        assert child["result"][0] == "ok" and child["result"][1], child
    assert report["parent_same"]


def test_omp_child_gets_an_explanation_not_a_kill():
    """With the omp layer chosen by the user, a forked child raises instead of dying by SIGTERM."""
    try:
        from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        pytest.skip("Numba's omp layer is not available here")
    report, stderr = _run("omp")
    assert report["layer"] == "omp"
    for child in report["children"]:
        assert child["exitcode"] == 0, (child, stderr[-3000:])
        status, message, _ = child["result"]
        assert status == "error" and "fork-safe layer" in message, child
    assert report["parent_same"]
