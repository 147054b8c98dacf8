"""Record the reference tensors in ``tests/data/`` from PyTorch / torchvision.

Run it in a virtual environment that has torch (and torchvision for the deformable references):

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchvenv/bin/python tests/record_references.py            # every recorder it can run
    /tmp/torchvenv/bin/python tests/record_references.py conv       # only tests/recorders/record_conv.py

Each ``tests/recorders/record_<family>.py`` defines ``record(out_dir)`` and writes one or more
``.npz`` files holding the inputs, the arguments and torch's outputs. The tests read those files
and never import torch. The inputs are generated from fixed seeds and stored too, so a test does
not depend on NumPy's random streams staying the same.
"""

import importlib.util
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE / "data"


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    wanted = set(argv)
    DATA.mkdir(exist_ok=True)
    failed = []
    for path in sorted((HERE / "recorders").glob("record_*.py")):
        family = path.stem[len("record_") :]
        if wanted and family not in wanted:
            continue
        try:
            module = _load(path)
        except ImportError as exc:  # e.g. torchvision missing in a torch-only venv
            print(f"skipping {family}: {exc}")
            failed.append(family)
            continue
        print(f"recording {family} ...")
        module.record(DATA)
    return 1 if (wanted and failed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
