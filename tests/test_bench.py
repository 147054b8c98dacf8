"""The benchmark CLI (python -m convlab.bench): a quick run on tiny layers, its JSON and PNG, its
argument errors, and the arithmetic of its summary."""

import json
import math
import re
import subprocess
import sys
import types

import numpy as np
import pytest

from convlab import bench, viz
from convlab.shapes import count_macs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One real run: tiny layers, 1 repeat, one thread (a subprocess), no plot checks yet."""
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(
        [
            "--layers",
            "tiny",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--quick",
            "--settle",
            "0",
            "--no-torch",
            "--out-dir",
            str(out),
        ]
    )
    return code, out


def test_cli_runs_and_writes_valid_json(tiny_run, capsys):
    code, out = tiny_run
    assert code == 0
    data = json.loads((out / "bench.json").read_text())
    assert data["config"]["layers"] == bench.LAYER_SETS["tiny"]
    assert data["machine"]["cpu"] and data["machine"]["cores"] >= 1
    (run,) = data["runs"]
    assert run["threads"] == 1 and run["peak_gflops"] > 0 and run["bandwidth_gbs"] > 0
    assert len(run["load_average"]) == 2  # how busy the machine was, before and after
    timed = {(r["layer"], r["algorithm"]) for r in run["results"]}
    expected = {
        (layer, a)
        for layer in bench.LAYER_SETS["tiny"]
        for a in bench.ALGORITHMS
        if bench.applicable(bench.LAYERS[layer], a)
    }
    assert timed == expected  # --no-torch: no torch rows
    for r in run["results"]:
        assert 0 < r["best_s"] <= r["median_s"]
        assert r["first_call_s"] > 0 and r["jit_s"] >= 0
        assert r["ratio_torch"] is None
        layer = bench.LAYERS[r["layer"]]
        assert math.isclose(r["gflops"], layer.flops / r["best_s"] / 1e9)
        assert math.isclose(r["pct_peak"], 100 * r["gflops"] / run["peak_gflops"])


def test_percent_of_peak_uses_the_runs_kept_peak_and_gflops_are_labelled_effective(tiny_run):
    _, out = tiny_run
    data = json.loads((out / "bench.json").read_text())
    for run in data["runs"]:
        for r in run["results"]:
            assert r["pct_peak"] == pytest.approx(100 * r["gflops"] / run["peak_gflops"])
    text = bench.format_table(data)
    assert "GFLOP/s*" in text and "* effective GFLOP/s" in text
    footnote = text[text.index("* effective") :].splitlines()[:2]
    assert all(len(line) <= 88 for line in footnote)  # the book prints it in 88 columns


def test_cli_writes_a_png(tiny_run):
    import matplotlib.image

    _, out = tiny_run
    png = out / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_module_entry_point_help():
    proc = subprocess.run(
        [sys.executable, "-m", "convlab.bench", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    for option in ("--layers", "--algorithms", "--threads", "--repeats", "--out-dir"):
        assert option in proc.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--layers", "resnet_999"], r"unknown layer 'resnet_999'; choose from dense, depthwise"),
        (["--layers", ""], r"layers must not be empty"),
        (["--algorithms", "fastest"], r"unknown algorithm 'fastest'; choose from auto, direct"),
        (["--threads", "0"], r"threads must be positive integers, got 0"),
        (["--threads", "two"], r"threads must be positive integers, got 'two'"),
        (["--repeats", "0"], r"must be a positive integer, got 0"),
        (["--repeats", "many"], r"must be a positive integer, got 'many'"),
        (["--settle", "-1"], r"argument --settle: must be a number of seconds >= 0, got -1.0"),
        (["--settle", "soon"], r"argument --settle: must be a number of seconds >= 0, got 'soon'"),
        (["--block", "0"], r"argument --block: must be a positive integer, got 0"),
        (["--frobnicate"], r"unrecognized arguments: --frobnicate"),
    ],
    ids=[
        "layer",
        "empty-layers",
        "algorithm",
        "threads-zero",
        "threads-word",
        "repeats-zero",
        "repeats-word",
        "settle-negative",
        "settle-word",
        "block-zero",
        "unknown-option",
    ],
)
def test_argument_errors_are_clear(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: convlab-bench" in err
    assert re.search(message, err), err


def test_out_dir_that_is_a_file_is_an_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exc:
        bench.main(["--layers", "tiny", "--out-dir", str(blocker)])
    assert exc.value.code == 2
    assert "cannot create --out-dir" in capsys.readouterr().err


def test_layer_sets_and_arithmetic():
    assert len(bench.LAYER_SETS["dense"]) == 8 and len(bench.LAYER_SETS["depthwise"]) == 5
    assert bench.LAYER_SETS["all"] == bench.LAYER_SETS["dense"] + bench.LAYER_SETS["depthwise"]
    layer = bench.LAYERS["resnet_64x56"]
    assert layer.macs == count_macs(64, 64, 3, (56, 56), padding=1) == 115605504
    assert layer.flops == 2 * layer.macs
    assert layer.min_bytes == 4 * (64 * 56 * 56 * 2 + 64 * 64 * 9)
    stem = bench.LAYERS["stem_7x7_s2"]
    assert stem.out_size == (112, 112)
    dw = bench.LAYERS["dw_64x56_x2"]
    assert dw.macs == 128 * 56 * 56 * 9  # multiplier 2: one input channel per output channel
    assert dw.intensity < layer.intensity  # depthwise layers are memory-bound
    assert not bench.applicable(stem, "winograd") and bench.applicable(layer, "winograd")
    assert not bench.applicable(bench.LAYERS["dw_144x56_s2"], "winograd")


def _fake_run(threads, times, peak=100.0, bandwidth=10.0):
    results = []
    for (layer, algorithm), t in times.items():
        results.append(
            dict(
                layer=layer,
                kind=bench.LAYERS[layer].kind,
                algorithm=algorithm,
                threads=threads,
                best_s=t,
                median_s=t,
                first_call_s=t,
                gflops=1.0,
                pct_peak=1.0,
                ratio_torch=times[(layer, "torch")] / t,
            )
        )
    return dict(threads=threads, peak_gflops=peak, bandwidth_gbs=bandwidth, results=results)


def test_summary_geomeans_and_thread_speedup():
    layers = {name: bench.LAYERS[name] for name in ("resnet_64x56", "resnet_64x16", "dw_32x112")}
    two = _fake_run(
        2,
        {
            ("resnet_64x56", "auto"): 2.0,
            ("resnet_64x56", "im2col"): 1.0,
            ("resnet_64x56", "torch"): 1.0,
            ("resnet_64x16", "auto"): 1.0,
            ("resnet_64x16", "im2col"): 4.0,
            ("resnet_64x16", "torch"): 2.0,
            ("dw_32x112", "auto"): 1.0,
            ("dw_32x112", "torch"): 3.0,
        },
    )
    one = _fake_run(
        1,
        {
            ("resnet_64x56", "auto"): 3.6,
            ("resnet_64x56", "im2col"): 1.5,
            ("resnet_64x56", "torch"): 1.9,
            ("resnet_64x16", "auto"): 2.0,
            ("resnet_64x16", "im2col"): 8.0,
            ("resnet_64x16", "torch"): 4.0,
            ("dw_32x112", "auto"): 1.2,
            ("dw_32x112", "torch"): 3.0,
        },
    )
    s = bench.summarize([two, one], layers)
    dense = s["ratio_geomean"]["2"]["dense"]
    assert dense["auto"] == pytest.approx(math.sqrt(0.5 * 2.0))
    assert dense["im2col"] == pytest.approx(math.sqrt(1.0 * 0.5))
    assert dense["best"] == pytest.approx(math.sqrt(1.0 * 2.0))  # per layer, the fastest algorithm
    assert s["ratio_geomean"]["2"]["depthwise"]["auto"] == pytest.approx(3.0)
    # ridge = 100 / 10 = 10 FLOP/byte: both dense layers are above it, the depthwise one below
    assert s["compute_bound_layers"] == ["resnet_64x56", "resnet_64x16"]
    assert s["thread_speedup"]["threads"] == [1, 2]
    assert s["thread_speedup"]["geomean"]["auto"] == pytest.approx(math.sqrt(1.8 * 2.0))
    text = bench.format_table({"runs": [two, one], "summary": s})
    assert "geomean torch/convlab, threads=2, dense: auto 1.00" in text
    assert (
        "speed-up 2 threads vs 1 on compute-bound layers (resnet_64x56, resnet_64x16): auto 1.90x"
        in text
    )


def test_summary_without_torch_has_no_ratios():
    run = dict(
        threads=1,
        peak_gflops=1.0,
        bandwidth_gbs=1.0,
        results=[
            dict(
                layer="tiny_3x3",
                kind="tiny",
                algorithm="auto",
                threads=1,
                best_s=1.0,
                ratio_torch=None,
            )
        ],
    )
    s = bench.summarize([run], {"tiny_3x3": bench.LAYERS["tiny_3x3"]})
    assert s["ratio_geomean"]["1"]["tiny"] == {"auto": None, "best": None}
    assert "thread_speedup" not in s or not s["thread_speedup"]


def test_probes_measure_something():
    # A rate, not a speed target: a lower bound in GFLOP/s or GB/s would fail by chance on a
    # loaded machine (these tests run at nice 19 beside other work), so only its sanity is checked.
    peak = bench.measure_peak(256, repeats=2)
    bandwidth = bench.measure_bandwidth(2**20, repeats=2)
    assert np.isfinite(peak) and peak > 0
    assert np.isfinite(bandwidth) and bandwidth > 0


def test_cpu_model_is_a_string():
    assert isinstance(bench.cpu_model(), str) and bench.cpu_model()


def test_run_benchmark_in_process_times_every_applicable_algorithm(capsys):
    run = bench.run_benchmark(
        ["tiny_3x3"],
        ["winograd", "direct"],
        threads=1,
        repeats=2,
        use_torch=False,
        quick=True,
        settle=0.001,
    )
    assert [r["algorithm"] for r in run["results"]] == ["winograd", "direct"]
    err = capsys.readouterr().err
    assert "1/1 threads=1 done" in err  # the progress bar reached the end
    assert np.isfinite([r["gflops"] for r in run["results"]]).all()


def test_passes_keep_each_functions_best_call_of_the_whole_run(monkeypatch):
    """The layer suites take --passes too: every layer is timed once per pass, each function
    keeps its best call of all passes and each pass's ratio to PyTorch; the first call is the
    first pass's."""
    # pass 0: layer 0 (im2col, torch), layer 1 (im2col, torch); then pass 1 the same
    blocks = iter([[3.0], [6.0], [5.0], [5.0], [2.0], [8.0], [7.0], [4.0]])
    monkeypatch.setattr(bench, "_time_block", lambda fn, calls: next(blocks))
    monkeypatch.setattr(bench, "_torch_conv2d", lambda *args: None)  # a stand-in "torch"
    monkeypatch.setattr(
        bench,
        "_torch_module",
        lambda: types.SimpleNamespace(
            set_num_threads=lambda n: None, from_numpy=lambda a: a, __version__="stub"
        ),
    )
    run = bench.run_benchmark(
        ["tiny_3x3", "tiny_dw"],
        ["im2col"],
        threads=1,
        repeats=1,
        quick=True,
        settle=0,
        block=1,
        passes=2,
        progress=False,
    )
    rows = {(r["layer"], r["algorithm"]): r for r in run["results"]}
    assert [r["best_s"] for r in run["results"]] == [2.0, 6.0, 5.0, 4.0]
    assert rows["tiny_3x3", "im2col"]["ratio_torch"] == 3.0
    assert rows["tiny_3x3", "im2col"]["pass_ratios"] == [2.0, 4.0]
    assert rows["tiny_dw", "torch"]["pass_ratios"] == [1.0, 1.0]
    assert rows["tiny_3x3", "im2col"]["median_s"] == 2.5
    assert run["passes"] == 2


def test_cli_passes_reach_the_layer_suites(tmp_path, capsys):
    assert (
        bench.main(
            [
                "--layers",
                "tiny_3x3",
                "--algorithms",
                "im2col",
                "--threads",
                "1",
                "--repeats",
                "1",
                "--passes",
                "2",
                "--no-torch",
                "--no-plot",
                "--quick",
                "--settle",
                "0",
                "--out-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["config"]["passes"] == data["runs"][0]["passes"] == 2
    assert "--passes 2`" in viz.benchmark_provenance(data)


def test_benchmark_in_process_gives_the_json_structure():
    data = bench.benchmark_in_process(
        ["tiny_dw"], ["auto", "fft"], repeats=1, use_torch=False, quick=True, settle=0
    )
    assert set(data) >= {"machine", "config", "layers", "runs", "summary"}
    assert data["config"]["in_process"] and data["layers"]["tiny_dw"]["groups"] == 8
    assert [r["algorithm"] for r in data["runs"][0]["results"]] == ["auto", "fft"]
    json.dumps(data)  # serialisable, like bench.json


def test_bench_names_its_blas_and_warns_of_forced_openblas_kernels(monkeypatch):
    """The benchmark says which BLAS it measured with, and warns when the environment overrides
    OpenBLAS's own kernel choice (OPENBLAS_CORETYPE forces AVX2 kernels on AVX-512 machines)."""
    from convlab._blas import blas_library

    for var in bench.OPENBLAS_OVERRIDES:
        monkeypatch.delenv(var, raising=False)
    quiet = bench.blas_line()
    assert quiet.startswith("BLAS: ") and "warning" not in quiet
    if blas_library() is not None:
        assert blas_library() in quiet
    assert bench.machine_info()["openblas_overrides"] == {}
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    loud = bench.blas_line()
    assert "warning: OPENBLAS_CORETYPE=Haswell" in loud
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in loud
    assert bench.machine_info()["openblas_overrides"] == {"OPENBLAS_CORETYPE": "Haswell"}


def test_bench_says_whether_threads_are_pinned_and_notes_a_packing_scheduler(monkeypatch, tmp_path):
    """The header line on thread placement: pinned or not, and where the kernel packs threads
    onto fewer CPUs (a VM's sched_vcpu_pack) and they are not pinned, a note naming the fix."""
    from convlab import config

    pack = tmp_path / "sched_vcpu_pack"
    monkeypatch.setattr(bench, "VCPU_PACK_FILE", str(pack))
    monkeypatch.setattr(config, "PIN_THREADS", False)
    assert bench.vcpu_packing() is None
    assert bench.threads_line() == "threads: not pinned"
    pack.write_text("0\n")
    assert bench.threads_line() == "threads: not pinned"
    pack.write_text("15\n")
    line = bench.threads_line()
    assert "sched_vcpu_pack=15" in line and "CONVLAB_PIN_THREADS=1" in line
    info = bench.machine_info()
    assert info["sched_vcpu_pack"] == "15" and info["pin_threads"] is False
    monkeypatch.setattr(config, "PIN_THREADS", True)
    assert bench.threads_line() == "threads: pinned, one CPU each (CONVLAB_PIN_THREADS=1)"
