"""Fixtures shared by several test modules.

Figures: every test runs with matplotlib's non-interactive Agg backend (set here, before any test
module imports pyplot) and the figures it opened are closed after it (``_close_figures``).

``built_site``: the Jupyter Book, built once per test session for tests/test_site.py and
tests/test_browser.py. Under pytest-xdist the first worker that asks builds it into the run's
shared temporary directory while holding a file lock; the other workers wait on the lock and reuse
the result.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest

matplotlib.use("Agg")

try:
    import fcntl
except ImportError:  # not POSIX: every worker builds its own copy
    fcntl = None

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test opened, so that hundreds of viz tests do not pile them up."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def toc_docnames(toc_path=ROOT / "_toc.yml"):
    """Docnames (paths without suffix, relative to the root) of every page in _toc.yml, in order."""
    import yaml  # PyYAML comes with jupyter-book

    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "file" in node:
                names.append(str(Path(node["file"]).with_suffix("")))
            if "glob" in node:
                for path in sorted(ROOT.glob(node["glob"])):
                    if path.suffix in (".md", ".ipynb", ".rst"):
                        names.append(str(path.relative_to(ROOT).with_suffix("")))
            for key in ("parts", "chapters", "sections", "subtrees", "entries"):
                walk(node.get(key))

    walk({key: value for key, value in toc.items() if key != "root"})
    return names


def _build(out_dir):
    """Build the book with the same flags as `python3 tasks.py book`; return a JSON-able result."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jupyter_book),
        "build",
        str(ROOT),
        "--path-output",
        str(out_dir),
        "-W",
        "-n",
        "--keep-going",
        "--all",
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return {
        "returncode": proc.returncode,
        "log": proc.stdout + proc.stderr,
        "seconds": round(time.monotonic() - start, 1),
        "html": str(out_dir / "_build" / "html"),
    }


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The book built into a temporary directory: .returncode, .log, .html (Path), .pages."""
    pytest.importorskip(
        "jupyter_book", reason="jupyter-book is not installed (pip install -e .[book])"
    )
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
        base = base.parent  # the run's temporary directory, common to all its workers
    out_dir = base / "site"
    result_file = base / "site.json"
    with open(base / "site.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if result_file.exists():
            result = json.loads(result_file.read_text())
        else:
            result = _build(out_dir)
            result_file.write_text(json.dumps(result))
    return SimpleNamespace(
        returncode=result["returncode"],
        log=result["log"],
        seconds=result["seconds"],
        html=Path(result["html"]),
        pages=toc_docnames(),
    )
