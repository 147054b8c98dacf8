"""The code is lint-clean and formatted: ruff with the rule set chosen in pyproject.toml.

ruff is pinned in the ``test`` extra, so a new ruff release cannot turn a clean tree red. Both
checks read the whole repository (package, tests, benchmarks and the chapters' code cells).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff():
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return str(exe)
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e .[test])")
    return found


@pytest.mark.parametrize(
    "args", [["check", "--no-cache"], ["format", "--check", "--no-cache"]], ids=["check", "format"]
)
def test_ruff(args):
    proc = subprocess.run([_ruff(), *args, "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, (
        f"ruff {' '.join(args)} found problems:\n{proc.stdout}{proc.stderr}"
    )
