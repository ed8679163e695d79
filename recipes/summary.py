#!/usr/bin/env python3
"""Print the long-tail distribution of a prepared corpus and plot it.

  python recipes/summary.py PREPARED_DIR [--plot FILE]
"""

import argparse
from pathlib import Path

from ltspk.cli.entry import run
from ltspk.data.summary import load_counts, plot_counts, summary_text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prepared", help="folder holding counts.json")
    ap.add_argument("--plot", help="output image (default: PREPARED_DIR/counts.png)")
    a = ap.parse_args(argv)
    info = load_counts(Path(a.prepared) / "counts.json")
    print(summary_text(info))
    print("plot:", plot_counts(info, a.plot or Path(a.prepared) / "counts.png"))


if __name__ == "__main__":
    run(main)
