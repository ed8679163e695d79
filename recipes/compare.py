#!/usr/bin/env python3
"""Compare runs: one table (Markdown + CSV) of every head and inference mode, and plots.

  python recipes/compare.py RUN_DIR [RUN_DIR ...] [--out DIR]

Each RUN_DIR holds a results.json written by train.py / evaluate.py. Writes comparison.md,
comparison.csv, shot_groups.png, per_speaker.png and det.png to --out (default: compare/).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.errors import LtspkError  # noqa: E402
from ltspk.report import (  # noqa: E402
    comparison_rows,
    load_run,
    markdown,
    plot_det,
    plot_per_speaker,
    plot_shot_groups,
    write_csv,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders (each with results.json)")
    ap.add_argument("--out", default="compare", help="output folder")
    ap.add_argument("--modes", nargs="+", default=["plain"], help="inference modes in the per-speaker plot")
    a = ap.parse_args(argv)
    try:
        runs = [load_run(r) for r in a.runs]
        out = Path(a.out)
        rows = comparison_rows(runs)
        table = markdown(rows, synthetic=any(r.get("synthetic") for r in runs))
        from ltspk.atomic import write_text

        write_text(out / "comparison.md", table)
        write_csv(out / "comparison.csv", rows)
        plot_shot_groups(rows, out / "shot_groups.png")
        counts = {}
        for r in runs:
            f = Path(r["_dir"]) / "prepared" / "counts.json"
            if f.is_file():
                counts.update(json.loads(f.read_text())["counts"])
        plot_per_speaker(runs, counts, out / "per_speaker.png", modes=a.modes)
        plot_det(runs, out / "det.png")
    except LtspkError as e:
        sys.exit(f"error: {e}")
    print(table)
    print(f"written: {out}/comparison.md, comparison.csv, shot_groups.png, per_speaker.png, det.png")


if __name__ == "__main__":
    main()
