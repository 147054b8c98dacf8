"""``mypy --strict`` over the annotated public modules (configuration: pyproject.toml [tool.mypy]).

CHECKED grows as modules are annotated; a module not in it yet is listed in pyproject's
``ignore_errors`` override and ``untyped_calls_exclude`` instead. mypy is pinned in the ``test``
extra so that a new release cannot turn the tree red.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKED = [
    "convlab",  # __init__: the re-exports
    "convlab._version",
    "convlab.nn",
    "convlab.shapes",
    "convlab.warmup",
    "convlab.matrix",
    "convlab._args",
    "convlab._gather",
    "convlab.config",
    "convlab.conv",
    "convlab.transposed",
    "convlab.grad",
    "convlab.deformable",
    "convlab.separable",
    "convlab.algorithms",
    "convlab.viz",  # __init__: the re-exports
    "convlab.viz.__main__",
    "convlab.viz._page",
    "convlab.viz._exercises",
    "convlab.viz._groups",
    "convlab.viz._dilation",
    "convlab.viz._deformable",
    "convlab.viz._separable",
    "convlab.viz._performance",
    "convlab.viz._transposed",
    "convlab.viz._sliding",
    "convlab.viz._gallery",
    "convlab.viz._volume",
]


def _mypy():
    exe = Path(sys.executable).with_name("mypy")
    if exe.exists():
        return str(exe)
    found = shutil.which("mypy")
    if found is None:
        pytest.skip("mypy is not installed (pip install -e .[test])")
    return found


def test_mypy_strict(tmp_path):
    args = [arg for module in CHECKED for arg in ("-m", module)]
    # a fresh cache per run: the result must not depend on an earlier run's state
    cmd = [_mypy(), "--strict", "--cache-dir", str(tmp_path / "mypy-cache"), *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"mypy --strict found problems:\n{proc.stdout}{proc.stderr}"


def test_py_typed_marker_is_shipped():
    assert (ROOT / "convlab" / "py.typed").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^convlab = \[[^\]]*"py\.typed"', text, re.MULTILINE)  # package data


def test_every_checked_module_is_not_ignored():
    """A module in CHECKED must not also sit in pyproject's ignore_errors list."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    ignored = {m for o in config["overrides"] if o.get("ignore_errors") for m in o["module"]}
    assert not ignored & set(CHECKED)
