"""Walking corpus trees of the form ``<root>/<speaker>/<session>/<file>``."""

import os
from pathlib import Path


def scan_tree(root, extensions, depth=3):
    """Sorted relative paths (POSIX) of files ``depth`` levels below ``root`` with one of
    ``extensions`` (lower-case, with dot)."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        level = len(rel.parts)
        if level >= depth - 1:
            dirnames[:] = []
        else:
            dirnames.sort()
        if level == depth - 1:
            for name in filenames:
                if os.path.splitext(name)[1].lower() in extensions:
                    found.append((rel / name).as_posix())
    return sorted(found)


def strip_suffix(rel):
    return os.path.splitext(rel)[0]
