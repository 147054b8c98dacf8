"""What a user or packager finds around the code: the sdist carries the tests and their data, the
version is written once, the license is declared the SPDX way, the project files agree with each
other, CI runs the README's test command on pushes and pull requests, and ``tasks.py publish``
says what to configure when it cannot push.
"""

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import convlab

ROOT = Path(__file__).resolve().parents[1]
yaml = pytest.importorskip("yaml")


# --------------------------------------------------------------------------- the sdist


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The sdist built in-process by setuptools (no network, no isolated build environment)."""
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("sdist")
    code = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))\n"
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", code, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = out / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(path) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(f"{path.name[: -len('.tar.gz')]}/PKG-INFO").read().decode()
    return {"names": names, "pkg_info": pkg_info, "log": proc.stdout + proc.stderr}


def _tracked_files():
    git = shutil.which("git")
    if git is not None:
        proc = subprocess.run([git, "ls-files"], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return set(proc.stdout.split())
    # an unpacked sdist has no git: every file of tests/ must still be there
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_sdist_holds_every_tracked_file(sdist):
    """So that `pytest` runs from an unpacked sdist: conftest, case tables, naive references,
    tests/data, the chapters and the book's configuration that tests read."""
    missing = sorted(_tracked_files() - sdist["names"])
    assert not missing, f"files missing from the sdist: {missing}"
    for must in ("LICENSE", "tests/conftest.py", "tests/data/nn.npz", "convlab/py.typed"):
        assert must in sdist["names"]


def test_sdist_metadata(sdist):
    info = sdist["pkg_info"]
    assert f"Version: {convlab.__version__}\n" in info
    assert "License-Expression: MIT\n" in info
    assert "License-File: LICENSE\n" in info
    assert "Project-URL: Source, https://github.com/" in info
    assert "Classifier: Typing :: Typed\n" in info
    assert not re.search(r"^Classifier: License ::", info, re.M)  # SPDX form replaces it
    assert "SetuptoolsDeprecationWarning" not in sdist["log"]


# --------------------------------------------------------------------------- one version


def test_version_is_defined_once():
    hits = [
        str(p.relative_to(ROOT))
        for p in list((ROOT / "convlab").rglob("*.py")) + [ROOT / "pyproject.toml"]
        if re.search(r"^\s*(__version__|version)\s*=\s*['\"]\d", p.read_text(), re.M)
    ]
    assert hits == ["convlab/_version.py"]


def test_changelog_and_citation_name_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{convlab.__version__}]" in changelog
    assert "## [Unreleased]" in changelog
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["version"] == convlab.__version__
    assert cff["cff-version"] == "1.2.0"
    for key in ("title", "authors", "message", "license", "repository-code"):
        assert cff.get(key), key
    assert cff["license"] == "MIT"


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_pre_commit_ruff_matches_the_pinned_ruff():
    pinned = re.search(r'"ruff==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    revs = [r["rev"] for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    assert revs == [f"v{pinned}"]


# --------------------------------------------------------------------------- CI


def test_ci_runs_the_readme_test_command_on_pushes_and_pull_requests():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"```sh\n(python3 tasks\.py test)\n```", readme).group(1)
    run = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert run[-1] == f"exec {command}"
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert "pull_request" in triggers and "push" in triggers
    steps = workflow["jobs"]["build"]["steps"]
    assert any(s.get("run") == "bash .ci/run" and "if" not in s for s in steps)
    assert "pull_request" in workflow["jobs"]["deploy"]["if"]  # no deployment from a PR


# --------------------------------------------------------------------------- tasks.py publish


@pytest.mark.parametrize("git_init", [True, False], ids=["no-remote", "not-a-checkout"])
def test_publish_without_remote_says_what_to_configure(tmp_path, git_init):
    if git_init and shutil.which("git") is None:
        pytest.skip("git is not installed")
    shutil.copy2(ROOT / "tasks.py", tmp_path / "tasks.py")
    if git_init:
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    proc = subprocess.run(
        [sys.executable, "tasks.py", "publish"], cwd=tmp_path, capture_output=True, text=True
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in out
    if git_init:
        assert "no git remote named 'origin'" in out
        assert "git remote add origin https://github.com/" in out
    else:
        assert "is not a git checkout" in out
    assert not (tmp_path / ".venv").exists()  # said before creating anything
