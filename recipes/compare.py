#!/usr/bin/env python3
"""Compare runs: tables over seeds with intervals (Markdown + CSV) and plots.

  python recipes/compare.py RUN_DIR [RUN_DIR ...] [--out DIR] [--baseline CONFIG]

Each RUN_DIR is a run folder evaluated by train.py / evaluate.py (and optionally
retrain_classifier.py). Seeds of one configuration (experiment + imbalance factor) are
aggregated; every run keeps its own label (configuration + seed). Writes comparison.md,
comparison.csv, shot_groups.png, per_speaker.png, det.png and, when the runs span several
imbalance factors, imbalance.png to --out (default: compare/).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.errors import LtspkError  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders (each evaluated)")
    ap.add_argument("--out", default="compare", help="output folder (default: %(default)s)")
    ap.add_argument("--baseline", help="configuration to compare against (default: the one AAM run without LA loss)")
    ap.add_argument("--modes", nargs="+", default=["plain"], help="inference families in the per-speaker and "
                    "imbalance plots (default: %(default)s)")
    a = ap.parse_args(argv)
    from ltspk.atomic import staged_folder, write_text
    from ltspk.comparison import aggregate, load_run
    from ltspk.plots import plot_det, plot_imbalance, plot_per_speaker, plot_shot_groups
    from ltspk.report import markdown, write_csv

    try:
        runs = [load_run(r) for r in a.runs]
        rows, base = aggregate(runs, a.baseline)
        table = markdown(rows, runs, base, synthetic=any(r.info.get("synthetic") for r in runs))
        out = Path(a.out)
        with staged_folder(out) as tmp:
            write_text(tmp / "comparison.md", table)
            write_csv(tmp / "comparison.csv", rows)
            plot_shot_groups(rows, tmp / "shot_groups.png")
            plot_per_speaker(runs, tmp / "per_speaker.png", modes=a.modes)
            plot_det(runs, tmp / "det.png")
            plot_imbalance(rows, runs, tmp / "imbalance.png", modes=a.modes)
    except LtspkError as e:
        sys.exit(f"error: {e}")
    print(table)
    print(f"written: {out}/ comparison.md, comparison.csv and plots")


if __name__ == "__main__":
    main()
