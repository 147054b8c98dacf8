"""``import convlab`` works anywhere, and its compiled kernels never land inside the package.

Numba would cache convlab's kernels next to its sources (``__pycache__`` in site-packages), which
``pip uninstall`` leaves behind, and raised "cannot cache function ...: no locator available" at
import when neither the package nor HOME was writable. convlab keeps its cache in
``CONVLAB_CACHE_DIR``, ``NUMBA_CACHE_DIR`` or the per-user cache directory, and compiles without a
cache (one warning) when none can be written (convlab/config.py).

Every scenario runs in a fresh subprocess, on a copy of the package (or a wheel installed into a
new virtual environment) in a temporary directory, with its own HOME. Read-only directories are
made with chmod; when the tests run as root, whom chmod does not stop, the subprocess runs without
the capabilities that let root ignore file permissions.
"""

import ctypes
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

import convlab

PACKAGE = Path(convlab.__file__).resolve().parent
ROOT = PACKAGE.parent

#: the child's report: where convlab came from, its cache settings, the warnings of the import,
#: and one conv2d checked against a plain NumPy sum
PROBE = textwrap.dedent("""
    import json, os, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import convlab
        from convlab import config
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = convlab.conv2d(x, w, padding=1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(np.float64)
    ref = np.zeros(y.shape)
    for i in range(3):
        for j in range(3):
            ref += np.einsum("nchw,oc->nohw", xp[:, :, i:i + 9, j:j + 8], w[:, :, i, j])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    print(json.dumps(dict(
        file=convlab.__file__,
        cache=config.CACHE,
        cache_dir=config.CACHE_DIR,
        warnings=[f"{w.category.__name__}: {w.message}" for w in caught],
        package_writable=os.access(os.path.dirname(convlab.__file__), os.W_OK),
    )))
""")

_ENV_VARS = ("NUMBA_CACHE_DIR", "CONVLAB_CACHE", "CONVLAB_CACHE_DIR", "XDG_CACHE_HOME", "HOME")


def _env(home, **extra):
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS and k != "PYTHONPATH"}
    env["HOME"] = str(home)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _drop_root_override():
    """Run as root without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: chmod binds again."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run(python, env, cwd, restricted=False):
    preexec = _drop_root_override if restricted and os.geteuid() == 0 else None
    proc = subprocess.run(
        [str(python), "-c", PROBE],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=preexec,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _copy_package(tmp_path):
    """convlab's sources copied to ``tmp/site/convlab``, as a non-editable install has them."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "convlab", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def _cache_files(root):
    return sorted(str(p) for p in Path(root).rglob("*") if p.suffix in (".nbi", ".nbc"))


def _make_read_only(root):
    for path in [Path(root), *Path(root).rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root):
    for path in [Path(root), *Path(root).rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def package_copy(tmp_path):
    site = _copy_package(tmp_path)
    yield site
    _make_writable(tmp_path)  # so that pytest can delete it


def _check_copy_imported(report, site):
    assert Path(report["file"]).resolve().parent == (site / "convlab").resolve(), report["file"]


def test_import_with_read_only_package_and_home(package_copy, tmp_path):
    """A container run as another user: nothing writable. Import works, one warning, no cache."""
    home = tmp_path / "home"
    home.mkdir()
    _make_read_only(package_copy)
    _make_read_only(home)
    report = _run(
        sys.executable, _env(home, PYTHONPATH=package_copy), cwd=tmp_path, restricted=True
    )
    _check_copy_imported(report, package_copy)
    assert not report["package_writable"], "could not make the package read-only here"
    assert report["cache"] is False and report["cache_dir"] is None
    assert len(report["warnings"]) == 1, report["warnings"]
    assert "RuntimeWarning" in report["warnings"][0]
    assert "CONVLAB_CACHE_DIR" in report["warnings"][0]
    assert _cache_files(tmp_path) == []


def test_read_only_package_with_a_cache_dir(package_copy, tmp_path):
    """CONVLAB_CACHE_DIR moves the cache somewhere writable: no warning, files only there."""
    home = tmp_path / "home"
    home.mkdir()
    cache = tmp_path / "my cache"
    _make_read_only(package_copy)
    _make_read_only(home)
    env = _env(home, PYTHONPATH=package_copy, CONVLAB_CACHE_DIR=cache)
    report = _run(sys.executable, env, cwd=tmp_path, restricted=True)
    _check_copy_imported(report, package_copy)
    assert report["warnings"] == []
    assert report["cache"] is True and report["cache_dir"] == str(cache)
    files = _cache_files(tmp_path)
    assert files and all(f.startswith(str(cache) + os.sep) for f in files), files


def test_convlab_cache_off(package_copy, tmp_path):
    """CONVLAB_CACHE=0: no warning and no file anywhere, even where writing was possible."""
    home = tmp_path / "home"
    home.mkdir()
    report = _run(sys.executable, _env(home, PYTHONPATH=package_copy, CONVLAB_CACHE=0), tmp_path)
    _check_copy_imported(report, package_copy)
    assert report["warnings"] == [] and report["cache"] is False
    assert _cache_files(tmp_path) == []


def test_numba_cache_dir_is_honoured(package_copy, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cache = tmp_path / "numba-cache"
    env = _env(home, PYTHONPATH=package_copy, NUMBA_CACHE_DIR=cache)
    report = _run(sys.executable, env, tmp_path)
    assert report["warnings"] == [] and report["cache_dir"] == str(cache)
    files = _cache_files(tmp_path)
    assert files and all(f.startswith(str(cache) + os.sep) for f in files), files


def test_convlab_cache_dir_wins_over_numba_cache_dir(package_copy, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = _env(
        home,
        PYTHONPATH=package_copy,
        NUMBA_CACHE_DIR=tmp_path / "numba",
        CONVLAB_CACHE_DIR=tmp_path / "convlab",
    )
    report = _run(sys.executable, env, tmp_path)
    assert report["cache_dir"] == str(tmp_path / "convlab")
    files = _cache_files(tmp_path)
    assert files and all(f.startswith(str(tmp_path / "convlab") + os.sep) for f in files)


def test_default_cache_is_per_user_not_in_the_package(package_copy, tmp_path):
    """Nothing set: the cache goes to ~/.cache/convlab/<version>, although the package is writable."""
    home = tmp_path / "home"
    home.mkdir()
    report = _run(sys.executable, _env(home, PYTHONPATH=package_copy), tmp_path)
    _check_copy_imported(report, package_copy)
    assert report["package_writable"]
    expected = home / ".cache" / "convlab"
    assert report["warnings"] == []
    assert Path(report["cache_dir"]).parent == expected
    files = _cache_files(tmp_path)
    assert files and all(f.startswith(str(expected) + os.sep) for f in files), files
    # XDG_CACHE_HOME moves it
    env = _env(home, PYTHONPATH=package_copy, XDG_CACHE_HOME=tmp_path / "xdg")
    report = _run(sys.executable, env, tmp_path)
    assert Path(report["cache_dir"]).parent == tmp_path / "xdg" / "convlab"


def _build_wheel(tmp_path):
    """convlab's wheel, built in-process by setuptools from a copy of the sources (no network)."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for path in ROOT.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, src / path.name)
    shutil.copytree(PACKAGE, src / "convlab", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(dist)], cwd=src, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dist / proc.stdout.strip().splitlines()[-1]


def test_wheel_install_leaves_no_cache_in_site_packages(tmp_path):
    """pip install the wheel into a new venv, run a convolution, pip uninstall: nothing is left."""
    wheel = _build_wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    # convlab's dependencies from this environment (a plain path entry: its .pth files, such as
    # an editable convlab's, are not processed), convlab itself from the wheel
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-index", str(wheel)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    report = _run(python, _env(home), tmp_path)
    assert Path(report["file"]).resolve().parent == (site / "convlab").resolve()
    assert report["warnings"] == []
    assert _cache_files(env_dir) == []
    assert _cache_files(home / ".cache" / "convlab"), "the kernels were not cached in HOME"
    subprocess.run([*pip, "uninstall", "-y", "convlab"], check=True)
    assert not (site / "convlab").exists(), sorted(map(str, (site / "convlab").rglob("*")))


def test_default_cache_dir_formula(monkeypatch):
    """config.user_cache_dir follows XDG (relative values ignored) on Linux."""
    from convlab import config

    if sys.platform in ("win32", "darwin"):
        pytest.skip("XDG cache directories are a Linux/BSD convention")
    monkeypatch.setenv("XDG_CACHE_HOME", "/some/where")
    assert config.user_cache_dir().startswith(os.path.join("/some/where", "convlab") + os.sep)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
    monkeypatch.setenv("HOME", "/home/reader")
    assert config.user_cache_dir().startswith("/home/reader/.cache/convlab" + os.sep)


STAMP_PROBE = """
import json
import numpy as np
from convlab import _implicit
x = np.ones((1, 2, 5, 5), np.float32)
w = np.ones((3, 2, 3, 3), np.float32)
out = np.empty((1, 3, 3, 3), np.float32)
_implicit.conv(x, w, np.zeros(3, np.float32), out, (1, 1), (1, 1), 1, (0, 0))
assert (out == 18).all()
stats = _implicit._conv_implicit.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def test_a_change_to_any_module_makes_every_cached_kernel_stale(package_copy, tmp_path):
    """Numba stamps a cached kernel with its own file only: _implicit's kernel, which calls
    _tile's, kept its machine code after _tile.py changed (and corrupted memory when a tile size
    had changed). convlab stamps every kernel with the whole package."""
    home = tmp_path / "home"
    home.mkdir()
    env = _env(home, PYTHONPATH=package_copy, CONVLAB_CACHE_DIR=tmp_path / "cache")

    def run():
        proc = subprocess.run(
            [sys.executable, "-c", STAMP_PROBE],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assert run()["misses"] == 1  # compiled and written
    assert run() == {"hits": 1, "misses": 0}  # read back
    tile = package_copy / "convlab" / "_tile.py"
    tile.write_text(tile.read_text() + "\n# changed\n")
    assert run()["misses"] == 1  # _implicit.py is unchanged, its kernel is compiled again
