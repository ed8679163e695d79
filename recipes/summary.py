#!/usr/bin/env python3
"""Print the long-tail distribution of a prepared corpus and plot it.

  python recipes/summary.py PREPARED_DIR [--plot FILE]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.data.summary import load_counts, plot_counts, summary_text  # noqa: E402
from ltspk.errors import LtspkError  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prepared", help="folder holding counts.json")
    ap.add_argument("--plot", help="output image (default: PREPARED_DIR/counts.png)")
    a = ap.parse_args(argv)
    try:
        info = load_counts(Path(a.prepared) / "counts.json")
    except LtspkError as e:
        sys.exit(f"error: {e}")
    print(summary_text(info))
    print("plot:", plot_counts(info, a.plot or Path(a.prepared) / "counts.png"))


if __name__ == "__main__":
    main()
