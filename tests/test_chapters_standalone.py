"""A chapter runs on its own, as on Google Colab: opened from GitHub, with only ``pip install
convlab`` done, no MyST-NB (the book's build tool) and no file next to the notebook.

``python3 tasks.py colab`` runs every chapter that way in Colab's versions; these tests say why a
chapter would fail there without running one: they read the chapters' code. Before this, chapters
3 to 7 imported ``glue`` from ``myst_nb`` (ModuleNotFoundError on Colab) and chapters 3 and 7 read
``data/bench.json`` next to the notebook (FileNotFoundError).
"""

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from convlab import _breadth, viz

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9]*.ipynb"))

# what a Colab runtime has after `pip install convlab`: convlab, its dependencies, matplotlib's
# Pillow and the kernel's IPython/ipywidgets. Anything else (torch, torchvision) is imported under
# try/except ImportError, and the chapter runs without it.
# scikit-learn (chapter 8's digits) is preinstalled on Colab too, as in the book's extra.
AVAILABLE = {
    "convlab",
    "numpy",
    "numba",
    "scipy",
    "matplotlib",
    "PIL",
    "IPython",
    "ipywidgets",
    "sklearn",
}


def _code(nb_path):
    """The chapter's code cells as one parsed module (IPython magics and shell lines dropped)."""
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    sources = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            sources.append("\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!"))))
    return ast.parse("\n\n".join(sources))


def _guarded(tree):
    """Imports inside a ``try`` whose handlers catch ImportError: the chapter runs without them."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        guarded.add(id(sub))
    return guarded


def missing_imports(nb_path):
    """Top-level modules the chapter imports that a Colab runtime lacks."""
    tree = _code(nb_path)
    guarded = _guarded(tree)
    missing = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in AVAILABLE:
                continue
            if id(node) in guarded:
                continue
            missing.add(top)
    return sorted(missing)


def files_named(nb_path, folder):
    """Strings in the chapter's code that name a file or folder of ``folder`` (the chapter's)."""
    return [
        node.value
        for node in ast.walk(_code(nb_path))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and 0 < len(node.value) < 200
        and "\n" not in node.value
        and node.value.strip(" ./")
        and (folder / node.value).exists()
    ]


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_imports_only_what_colab_has(nb_path):
    assert missing_imports(nb_path) == []


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_reads_no_file_next_to_it(nb_path):
    """On Colab the notebook is alone: no string in its code names something of book/."""
    assert files_named(nb_path, BOOK) == []


def test_the_checks_see_the_old_failures(tmp_path):
    """What chapters 3-7 did before is caught: MyST-NB's glue, and data/bench.json."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bench.json").write_text("{}")
    source = [
        "import json\n",
        "from pathlib import Path\n",
        "from myst_nb import glue\n",
        "try:\n",
        "    import torch\n",
        "except ImportError:\n",
        "    torch = None\n",
        "import pandas\n",
        'bench_data = json.loads(Path("data/bench.json").read_text())\n',
    ]
    path = tmp_path / "probe.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}]}))
    assert missing_imports(path) == ["myst_nb", "pandas"]
    assert files_named(path, tmp_path) == ["data/bench.json"]


# run in a fresh interpreter: format_display_data creates IPython's InteractiveShell singleton,
# which would change how display() behaves in the other tests of this worker
GLUE_PARITY = """
import json, sys
import IPython.display
import myst_nb.ext.glue as theirs_mod
from convlab import viz

values = [3.9187028494454315, 12, "`im2col`", IPython.display.Markdown("`winograd` or `im2col`")]
out = []
for display in (False, True):
    for value in values:
        ours, theirs = [], []
        IPython.display.display = lambda *a, **k: ours.append([a, k])
        viz.glue("name", value, display=display)
        theirs_mod.ipy_display = lambda *a, **k: theirs.append([a, k])
        theirs_mod.glue("name", value, display=display)
        out.append({"display": display, "ours": ours, "theirs": theirs})
print(json.dumps(out))
"""


def test_glue_writes_what_myst_nb_glue_writes():
    """The book's build reads the glued output, so it must be MyST-NB's, key for key."""
    pytest.importorskip("myst_nb")
    pytest.importorskip("IPython")

    proc = subprocess.run(
        [sys.executable, "-c", GLUE_PARITY], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == 8
    for r in results:
        assert r["ours"] == r["theirs"] and len(r["ours"]) == 1
        (bundle,), kwargs = r["ours"][0]
        assert kwargs == {"raw": True, "metadata": kwargs["metadata"]}
        assert kwargs["metadata"]["scrapbook"]["name"] == "name"
        assert bundle and all(
            k.startswith("application/papermill.record/") != r["display"] for k in bundle
        )


def test_recorded_benchmark_is_the_installed_bench_json():
    data = viz.recorded_benchmark()
    assert data == json.loads((ROOT / "convlab" / "data" / "bench.json").read_text())
    assert data["runs"] and data["summary"]["ratio_geomean"]
    assert viz.benchmark_rows(data)  # what chapters 3 and 7 draw from it


def test_recorded_breadth_is_the_installed_breadth_json():
    data = viz.recorded_breadth()
    assert data == json.loads((ROOT / "convlab" / "data" / "breadth.json").read_text())
    assert data["config"]["layers"] == ["breadth"]
    run = max(data["runs"], key=lambda r: r["threads"])
    assert {r["op"] for r in run["results"]} == set(_breadth.BY_NAME)  # every row, as run now
    assert all(r["ratio_torch"] for r in run["results"])  # recorded with PyTorch
    assert "--layers breadth" in viz.benchmark_provenance(data)


def test_the_wheel_installs_the_recorded_benchmark(tmp_path):
    """`pip install git+<repo>` builds a wheel: bench.json must be in it (package data)."""
    pytest.importorskip("setuptools")
    code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel = tmp_path / proc.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "convlab/data/bench.json" in names
    assert "convlab/data/breadth.json" in names
    assert "convlab/py.typed" in names
