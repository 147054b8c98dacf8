"""Threading layers: conv2d from several Python threads at once, and which layer convlab picks.

Numba's ``workqueue`` threading layer aborts the whole process on concurrent parallel launches;
convlab serialises launches when that layer is active (``convlab.config.parallel_launch``). Each
scenario runs in a fresh subprocess so that an abort fails the test instead of killing pytest, and
once per threading layer this machine has. Unless the user chose one, convlab asks Numba for
``tbb``, then ``workqueue`` (fork-safe, and free of the ``omp`` layer's stalls: see
convlab/config.py); a user's choice is kept.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import convlab.config  # noqa: F401 - loads the tbb wheel's library, so that tbbpool imports

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


def _tbb_available():
    return "tbb" in _available_layers()


LAYER_SCRIPT = textwrap.dedent("""
    import json, sys
    import numba
    if len(sys.argv) > 1:
        numba.config.THREADING_LAYER = sys.argv[1]  # a program's choice before the import
    from convlab import config
    print(json.dumps(dict(layer=config.threading_layer(), chosen_by=config.LAYER_CHOSEN_BY)))
""")


def _layer_report(env_extra, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-c", LAYER_SCRIPT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_default_layer_is_fork_safe():
    report = _layer_report({})
    assert report["chosen_by"] == "convlab"
    assert report["layer"] == ("tbb" if _tbb_available() else "workqueue")


@pytest.mark.parametrize("layer", _available_layers())
def test_users_layer_is_kept(layer):
    assert _layer_report({"NUMBA_THREADING_LAYER": layer}) == dict(layer=layer, chosen_by="user")
    assert _layer_report({}, layer) == dict(layer=layer, chosen_by="user")
    priority = " ".join([layer] + [x for x in ("tbb", "omp", "workqueue") if x != layer])
    report = _layer_report({"NUMBA_THREADING_LAYER_PRIORITY": priority})
    assert report == dict(layer=layer, chosen_by="user")


def test_bench_reports_the_layer():
    from convlab.bench import machine_info

    assert machine_info()["threading_layer"] in ("tbb", "omp", "workqueue")


PIN_SCRIPT = textwrap.dedent("""
    import json, os, threading
    import numpy as np
    import convlab
    from convlab import config

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 30, 30)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    y = convlab.conv2d(x, w, padding=1)  # the first parallel kernel pins, if asked to
    pinned = config.pinned_threads()
    print(json.dumps(dict(
        pinned={str(t): c for t, c in pinned.items()},
        affinity={str(t): sorted(os.sched_getaffinity(t)) for t in pinned},
        main=threading.get_native_id(),
        cpus=sorted(os.sched_getaffinity(0)) if not pinned else None,
        layer=config.threading_layer(),
        sum=float(np.float64(y).sum()),
    )))
""")


def _pin_report(flag, layer):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    env.update(CONVLAB_PIN_THREADS=flag, NUMBA_NUM_THREADS="2", NUMBA_THREADING_LAYER=layer)
    proc = subprocess.run(
        [sys.executable, "-c", PIN_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs Linux and two CPUs",
)
@pytest.mark.parametrize("layer", _available_layers())
def test_pin_threads_gives_every_thread_a_cpu_of_its_own(layer):
    """CONVLAB_PIN_THREADS=1: before the first kernel, each of Numba's workers is tied to a CPU of
    its own; without it nothing is pinned. The results are the same either way."""
    free = _pin_report("0", layer)
    assert free["pinned"] == {} and free["layer"] == layer
    pinned = _pin_report("1", layer)
    assert pinned["layer"] == layer and pinned["sum"] == free["sum"]
    cpus = {int(t): c for t, c in pinned["pinned"].items()}
    # never the main thread (threads it starts later would inherit its CPU); the worker on the
    # second CPU, leaving the first to the main thread; workqueue's two workers on both
    assert pinned["main"] not in cpus
    if layer == "workqueue":
        assert sorted(cpus.values()) == free["cpus"][:2]
    else:
        assert list(cpus.values()) == [free["cpus"][1]]
    assert all(pinned["affinity"][str(t)] == [c] for t, c in cpus.items())
