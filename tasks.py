#!/usr/bin/env python3
"""The project's two commands (and a third to publish). Standard library only, any python3 >= 3.10.

    python3 tasks.py book              build the Jupyter Book into _build/html; warnings are errors
    python3 tasks.py test [ARGS...]    every test: pytest over tests/, nbval over every chapter
                                       notebook in book/, then the kernel tests again with
                                       NUMBA_BOUNDSCHECK=1; ARGS go to pytest (e.g. -k conv)
    python3 tasks.py publish           build the book, then push _build/html to the gh-pages branch
    python3 tasks.py colab [ARGS...]   every chapter, in a venv with Google Colab's versions
                                       (Python 3.12, numpy 2.0, numba 0.60, ipywidgets 7.7, ...)
    python3 tasks.py minimums [ARGS...]
                                       the test suite with the lowest versions pyproject.toml
                                       allows (numpy, numba, scipy, matplotlib)

book, test and publish set up ``.venv`` first: it is created if missing, and
``pip install -e .[book,test]`` runs whenever pyproject.toml changed since the last install (a
stamp file in .venv records its hash). colab and minimums build their own venvs (``.venv-colab``,
``.venv-minimums``) with pinned versions; they are separate jobs, not part of ``test``.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = "book,test"
STAMP = VENV / ".convlab-install-stamp"
BUILD_DIR = ROOT / "_build" / "html"
SANITIZE = ROOT / "tests" / "sanitize.cfg"
MIN_PYTHON = (3, 10)  # pyproject.toml: requires-python = ">=3.10"

# pytest's exit codes (pytest.ExitCode), spelled out because pytest is not importable here
PYTEST_OK, PYTEST_NO_TESTS = 0, 5


def say(msg):
    print(f"[tasks] {msg}", flush=True)


# --------------------------------------------------------------------------- the virtualenv


def venv_bin(name, venv=VENV):
    """Path of an executable inside a venv (bin/ on POSIX, Scripts/ on Windows)."""
    sub = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return venv / sub / f"{name}{suffix}"


def install_key():
    """What the installed environment depends on: pyproject.toml, the extras and the Python."""
    h = hashlib.sha256()
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(f"\nextras={EXTRAS}\npython={sys.version_info[:2]}\n".encode())
    return h.hexdigest()


def ensure_venv():
    """Create .venv if needed and install the project into it; return the venv's python."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(
            f"[tasks] convlab needs Python >= {'.'.join(map(str, MIN_PYTHON))}; "
            f"this is {sys.version.split()[0]} ({sys.executable})."
        )
    python = venv_bin("python")
    if not python.exists():
        # Debian/Ubuntu ship `venv` without `ensurepip` unless python3-venv is installed;
        # `python3 -m venv` then fails with a long message, so say it plainly first.
        missing = [m for m in ("venv", "ensurepip") if importlib.util.find_spec(m) is None]
        if missing:
            sys.exit(
                f"[tasks] {sys.executable} cannot create a virtual environment: the module(s) "
                f"{', '.join(missing)} are missing. On Debian/Ubuntu: "
                f"apt-get install python3-venv (or python{sys.version_info[0]}."
                f"{sys.version_info[1]}-venv), then run this command again."
            )
        say(f"creating {VENV.relative_to(ROOT)} with {sys.executable}")
        rc = subprocess.call([sys.executable, "-m", "venv", str(VENV)])
        if rc != 0 or not python.exists():
            sys.exit(f"[tasks] `{sys.executable} -m venv {VENV}` failed (exit code {rc}).")
        STAMP.unlink(missing_ok=True)

    key = install_key()
    if STAMP.exists() and STAMP.read_text().strip() == key:
        return python

    say(f"installing convlab and its [{EXTRAS}] extras into .venv (quiet; errors are shown)")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    # editable installs from pyproject.toml need pip >= 21.3 (PEP 660); a satisfied requirement
    # costs no download
    steps = [pip + ["pip>=21.3"], pip + ["-e", f".[{EXTRAS}]"]]
    for cmd in steps:
        rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0:
            sys.exit(
                f"[tasks] installation failed (exit code {rc}): {' '.join(cmd[2:])}\n"
                f"[tasks] the error is above; if .venv itself is broken, delete it and rerun"
            )
    STAMP.write_text(key + "\n")
    return python


def venv_env(venv=VENV):
    """The environment for every command run inside a venv (.venv unless told)."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(venv_bin("python", venv).parent) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONHOME", None)
    # jupyter_core warns (DeprecationWarning) until this opt-in to its future directory layout
    env.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    # debugpy, imported by ipykernel, prints a "frozen modules" warning at every kernel start
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


# --------------------------------------------------------------------------- book


def build_book(python):
    """jupyter-book build . -W -n --keep-going: every warning (incl. broken references) fails it.

    --all: Sphinx reports a page's warnings only when it rebuilds that page, so an incremental
    build after a failed one could pass with the warnings still there. With execution off
    (_config.yml) a full build takes seconds.
    """
    env = venv_env()
    cmd = [str(venv_bin("jupyter-book")), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"]
    say("$ " + " ".join(["jupyter-book"] + cmd[1:]))
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    if rc == 0:
        say(f"book built: {(BUILD_DIR / 'index.html').relative_to(ROOT)}")
    else:
        say(f"book build FAILED (exit code {rc})")
    return rc


def cmd_book(args):
    if args:
        sys.exit(f"[tasks] `book` takes no arguments (got {' '.join(args)})")
    return build_book(ensure_venv())


def _remote_name(args):
    """The git remote ghp-import will push to: its -r/--remote argument, else origin."""
    for i, arg in enumerate(args):
        if arg in ("-r", "--remote") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--remote="):
            return arg.split("=", 1)[1]
        if arg.startswith("-r") and len(arg) > 2:
            return arg[2:]
    return "origin"


def publish_problem(remote):
    """None if this checkout can push to ``remote``'s gh-pages branch, else what to configure."""
    git = shutil.which("git")
    if git is None:
        return "git is not installed: publishing pushes the built book to a git remote"
    inside = subprocess.run(
        [git, "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True
    )
    if inside.returncode != 0:
        return (
            f"{ROOT} is not a git checkout: publishing pushes _build/html to the gh-pages branch "
            f"of the repository's remote. Clone the repository (git clone <url>) and publish "
            f"from the clone."
        )
    url = subprocess.run(
        [git, "remote", "get-url", remote], cwd=ROOT, capture_output=True, text=True
    )
    if url.returncode != 0:
        known = subprocess.run([git, "remote"], cwd=ROOT, capture_output=True, text=True)
        names = known.stdout.split()
        return (
            f"this checkout has no git remote named {remote!r}"
            + (f" (it has: {', '.join(names)})" if names else " (it has none)")
            + ". Configure the GitHub repository to publish to, e.g.\n"
            + f"    git remote add {remote} https://github.com/OWNER/convlab.git\n"
            + "or name another remote: python3 tasks.py publish -r NAME. Then, once, in the "
            "repository's Settings > Pages: Source 'Deploy from a branch', branch gh-pages, "
            "folder / (root)."
        )
    return None


def cmd_publish(args):
    """Build the book (a broken book is never published), then push it with ghp-import."""
    remote = _remote_name(args)
    problem = publish_problem(remote)  # before the slow build: say at once what is missing
    if problem:
        say(f"cannot publish: {problem}")
        return 2
    python = ensure_venv()
    rc = build_book(python)
    if rc != 0:
        return rc
    # -n: add .nojekyll (GitHub Pages would otherwise hide _static/ and _images/); -p: push;
    # -f: force-push, gh-pages holds only the latest build
    cmd = [str(venv_bin("ghp-import")), "-n", "-p", "-f", *args, str(BUILD_DIR)]
    say("$ " + " ".join(["ghp-import"] + cmd[1:]))
    rc = subprocess.call(cmd, cwd=ROOT, env=venv_env())
    if rc != 0:
        say(
            f"publishing FAILED (exit code {rc}): the book was built, but ghp-import could not "
            f"push to the remote {remote!r}; check that `git push {remote}` works from this "
            f"checkout (credentials, write access)"
        )
    return rc


# --------------------------------------------------------------------------- test


def warm_up(python, env):
    """Do the one-time work whose messages would otherwise land in a notebook's stored outputs.

    On a fresh machine the first ``import matplotlib`` prints "Matplotlib is building the font
    cache" to stderr; inside a chapter kernel that line becomes an output nbval does not expect.
    """
    subprocess.call(
        [str(python), "-c", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_env(cache_dir, venv=VENV):
    env = venv_env(venv)
    # a fresh Numba cache: every kernel is compiled by this run, none is loaded from an old build
    env["NUMBA_CACHE_DIR"] = cache_dir
    # performance hints (e.g. parallel=True without a prange) are for developers, not for the
    # chapters' stored outputs: nbval compares stderr too
    env["NUMBA_DISABLE_PERFORMANCE_WARNINGS"] = "1"
    # colour escapes in tracebacks differ between terminals and CI logs
    env.setdefault("NUMBA_COLOR_SCHEME", "no_color")
    return env


def pytest_cmd(python, *args):
    return [str(python), "-m", "pytest", *args]


def run_all_tests(python, extra):
    """pytest over tests/ plus nbval over book/*.ipynb, two workers."""
    with tempfile.TemporaryDirectory(prefix="convlab-numba-cache-") as cache:
        env = test_env(cache)
        warm_up(python, env)
        # --dist loadscope keeps the tests of one module, and the cells of one notebook (nbval
        # names them book/NAME.ipynb::Cell N), on one worker: a notebook's cells share a kernel
        # and must run in order (nbval's docs: "use --dist loadscope" with pytest-xdist).
        # --nbval-current-env: run notebooks in this venv's kernel, whatever kernelspec they name.
        cmd = pytest_cmd(
            python,
            "-n",
            "2",
            "--dist",
            "loadscope",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            str(SANITIZE.relative_to(ROOT)),
            *extra,
        )
        say("$ " + " ".join(["pytest"] + cmd[3:]) + "   (NUMBA_CACHE_DIR=<fresh tmp>)")
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
    if rc == PYTEST_NO_TESTS:
        say("pytest collected no tests at all: that is a failure here")
    return rc


def run_boundscheck_tests(python, extra):
    """The tests marked `kernels` again, with Numba's bounds checking on in every kernel.

    Returns (exit code, note). Nothing marked yet is a note, not a failure; the collection is
    done quietly first so that pytest's closing line stays that of a run that ran tests.
    """
    if any(a.endswith(".ipynb") for a in extra):
        return PYTEST_OK, "skipped: the arguments name notebooks, which are not kernel tests"
    with tempfile.TemporaryDirectory(prefix="convlab-numba-cache-bc-") as cache:
        env = test_env(cache)
        env["NUMBA_BOUNDSCHECK"] = "1"
        probe = subprocess.run(
            pytest_cmd(python, "-m", "kernels", "--collect-only", "-q", *extra),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if probe.returncode == PYTEST_NO_TESTS:
            return PYTEST_OK, (
                "no test is marked `kernels` (pytestmark = pytest.mark.kernels) "
                "or none matches the arguments: nothing to re-run"
            )
        if probe.returncode != PYTEST_OK:
            sys.stdout.write(probe.stdout)
            sys.stderr.write(probe.stderr)
            return probe.returncode, "collecting the `kernels` tests failed"
        cmd = pytest_cmd(python, "-n", "2", "--dist", "loadscope", "-m", "kernels", *extra)
        say(
            "$ NUMBA_BOUNDSCHECK=1 "
            + " ".join(["pytest"] + cmd[3:])
            + "   (NUMBA_CACHE_DIR=<fresh tmp>)"
        )
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
    return rc, ("passed" if rc == PYTEST_OK else f"FAILED (exit code {rc})")


def cmd_test(extra):
    python = ensure_venv()
    rc_all = run_all_tests(python, extra)
    rc_bc, note = run_boundscheck_tests(python, extra)
    say(f"tests + notebooks: {'passed' if rc_all == PYTEST_OK else f'FAILED (exit code {rc_all})'}")
    say(f"NUMBA_BOUNDSCHECK=1 kernel tests: {note}")
    return rc_all or rc_bc


# --------------------------------------------------------------------------- pinned environments

# Google Colab's stack, as issue 16 lists it: Python 3.12, numpy 2.0, numba 0.60, ipywidgets 7.7,
# matplotlib 3.x; IPython 7.34 and ipykernel 6.17 are the kernel Colab runs them in (an old
# IPython: ipywidgets 7 widgets display through _ipython_display_, not _repr_mimebundle_).
# `pip install git+<repo>` on Colab keeps what is installed when it satisfies convlab's ranges,
# so these are the versions the chapters meet there.
COLAB = {
    "python": "3.12",
    "pins": [
        "numpy==2.0.2",
        "numba==0.60.0",
        "scipy==1.14.1",
        "matplotlib==3.10.0",
        "ipywidgets==7.7.1",
        "ipython==7.34.0",
        "ipykernel==6.17.1",
        "scikit-learn==1.6.1",  # Colab preinstalls it; chapter 8 reads its digits
    ],
    # what runs the chapters; installed under the same pins (-c), so none of them upgrades a pin
    "tools": ["pytest>=8", "pytest-xdist>=3", "nbval>=0.11"],
    "install": "wheel",
}

# The lower bounds of pyproject.toml's dependencies, on the oldest Python it allows.
MINIMUMS = {
    "python": "3.10",
    "pins": ["numpy==1.24.0", "numba==0.60.0", "scipy==1.13.0", "matplotlib==3.7.0"],
    "tools": [],  # the suite's own tools come with the test extra
    "install": "editable-test",
}


def find_python(version):
    """An interpreter for ``version`` ("3.12"): python3.12 on PATH, pyenv's or uv's; else None."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    uv = shutil.which("uv")
    if uv:
        found = subprocess.run([uv, "python", "find", version], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(found.stdout.strip())
    for cand in candidates:
        if not cand:
            continue
        probe = subprocess.run(
            [str(cand), "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )  # a pyenv shim for a version pyenv does not activate fails here
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return str(cand)
    return None


def ensure_pinned_venv(name, spec):
    """Create .venv-NAME with spec's Python and pins (again only when they or pyproject change)."""
    venv = ROOT / f".venv-{name}"
    python = venv_bin("python", venv)
    stamp = venv / ".convlab-install-stamp"
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + repr(sorted(spec.items())).encode()
    ).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == key:
        return venv
    base = find_python(spec["python"])
    if base is None:
        sys.exit(
            f"[tasks] `{name}` needs Python {spec['python']}, which is not on this machine. "
            f"Install it, e.g. `uv python install {spec['python']}`, `pyenv install "
            f"{spec['python']}`, or your OS's python{spec['python']} and "
            f"python{spec['python']}-venv packages, then run this command again."
        )
    if venv.exists():
        shutil.rmtree(venv)
    say(f"creating {venv.name} with {base}")
    if subprocess.call([base, "-m", "venv", str(venv)]) != 0:
        sys.exit(f"[tasks] `{base} -m venv {venv}` failed")
    constraints = venv / "constraints.txt"
    constraints.write_text("\n".join(spec["pins"]) + "\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    steps = [pip + ["pip>=21.3"], pip + spec["pins"]]
    if spec["install"] == "wheel":
        # as `pip install git+<repo>` does: a built (non-editable) convlab
        steps.append(pip + ["-c", str(constraints), str(ROOT)])
    else:
        steps.append(pip + ["-c", str(constraints), "-e", f"{ROOT}[test]"])
    if spec["tools"]:
        steps.append(pip + ["-c", str(constraints), *spec["tools"]])
    for cmd in steps:
        say("$ pip " + " ".join(cmd[5:]))
        rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0:
            sys.exit(f"[tasks] installation into {venv.name} failed (exit code {rc}); see above")
    stamp.write_text(key + "\n")
    return venv


def report_versions(venv):
    code = (
        "import sys, importlib.metadata as m\n"
        "names = ['numpy', 'numba', 'llvmlite', 'scipy', 'matplotlib', 'ipywidgets', 'ipython',"
        " 'ipykernel', 'convlab']\n"
        "found = []\n"
        "for n in names:\n"
        "    try: found.append(f'{n} {m.version(n)}')\n"
        "    except m.PackageNotFoundError: pass\n"
        "print('Python', sys.version.split()[0] + ':', ', '.join(found))\n"
    )
    out = subprocess.run(
        [str(venv_bin("python", venv)), "-c", code], capture_output=True, text=True
    ).stdout.strip()
    say(out)


def cmd_colab(extra):
    """Every chapter under nbval in Colab's versions, run as a Colab user runs it.

    The notebooks are copied into an empty directory first: on Colab a chapter opened from GitHub
    runs outside any checkout, with convlab installed from the repository, so it must not read
    files next to it or import the checkout's sources.
    """
    venv = ensure_pinned_venv("colab", COLAB)
    report_versions(venv)
    python = venv_bin("python", venv)
    chapters = sorted((ROOT / "book").glob("[0-9]*.ipynb"))
    with (
        tempfile.TemporaryDirectory(prefix="convlab-colab-") as work,
        tempfile.TemporaryDirectory(prefix="convlab-numba-cache-") as cache,
    ):
        for nb in chapters:
            shutil.copy2(nb, work)
        shutil.copy2(SANITIZE, Path(work) / "sanitize.cfg")
        env = test_env(cache, venv)
        warm_up(python, env)
        cmd = pytest_cmd(
            python,
            "-n",
            "2",
            "--dist",
            "loadscope",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            work,
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            "sanitize.cfg",
            *extra,
            *(nb.name for nb in chapters),
        )
        say(f"$ cd {work} && pytest " + " ".join(cmd[3:]))
        rc = subprocess.call(cmd, cwd=work, env=env)
    say(f"chapters on Colab's versions: {'passed' if rc == PYTEST_OK else f'FAILED ({rc})'}")
    return rc


def cmd_minimums(extra):
    """The test suite (tests/, not the chapters) with the lowest declared dependency versions."""
    venv = ensure_pinned_venv("minimums", MINIMUMS)
    report_versions(venv)
    python = venv_bin("python", venv)
    with tempfile.TemporaryDirectory(prefix="convlab-numba-cache-") as cache:
        env = test_env(cache, venv)
        warm_up(python, env)
        cmd = pytest_cmd(
            python,
            "-n",
            "2",
            "--dist",
            "loadscope",
            "-p",
            "no:cacheprovider",
            *(extra or ["tests"]),
        )
        say("$ pytest " + " ".join(cmd[3:]) + "   (NUMBA_CACHE_DIR=<fresh tmp>)")
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
    say(f"suite on the minimum versions: {'passed' if rc == PYTEST_OK else f'FAILED ({rc})'}")
    return rc


# --------------------------------------------------------------------------- main

COMMANDS = {
    "book": cmd_book,
    "test": cmd_test,
    "publish": cmd_publish,
    "colab": cmd_colab,
    "minimums": cmd_minimums,
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help", "help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
