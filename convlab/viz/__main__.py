"""``python -m convlab.viz DIRECTORY [NAME ...]``: write the animation gallery's GIFs.

The book's copies live in book/gallery/ (``python -m convlab.viz book/gallery``);
tests/test_gallery.py fails when they differ from what the code draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._gallery import write_gallery


def main(argv: list[str]) -> int:
    if not argv:
        print((__doc__ or "").strip())  # None only under python -OO
        return 2
    for path in write_gallery(argv[0], argv[1:] or None):
        print(f"{path}  {Path(path).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
