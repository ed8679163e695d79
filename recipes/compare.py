#!/usr/bin/env python3
"""Compare runs: tables over seeds with intervals (Markdown + CSV) and plots.

  python recipes/compare.py RUN_DIR [RUN_DIR ...] [--out DIR] [--baseline CONFIG]

Each RUN_DIR is a run folder evaluated by train.py / evaluate.py (and optionally
retrain_classifier.py). Seeds of one configuration (experiment + imbalance factor) are
aggregated; every run keeps its own label (configuration + seed); one configuration and seed
given twice, or runs on different corpora (unless --allow-mixed-corpora), are refused. Ends with
a Recommendation per goal (few-shot and overall speaker ID, verification EER): the configuration
and inference best on validation, its test figure and its difference from the baseline with the
interval. Writes comparison.md, comparison.csv, recommendation.json, shot_groups.png,
per_speaker.png, det.png and, when the runs span several imbalance factors, imbalance.png to
--out (default: compare/).
"""

import argparse
from pathlib import Path

from ltspk.cli.entry import run
from ltspk.runtime.errors import LtspkError


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders (each evaluated)")
    ap.add_argument("--out", default="compare", help="output folder (default: %(default)s)")
    ap.add_argument("--baseline", help="configuration to compare against (default: the one AAM run without LA loss)")
    ap.add_argument("--allow-mixed-corpora", action="store_true",
                    help="compare runs on different corpora (labelled so) instead of refusing")
    ap.add_argument("--modes", nargs="+", default=["plain"], help="inference families in the per-speaker and "
                    "imbalance plots (default: %(default)s)")
    a = ap.parse_args(argv)
    from ltspk.compare.comparison import aggregate, check_runs, comparison_notes, load_run
    from ltspk.compare.plots import context, plot_det, plot_imbalance, plot_per_speaker, plot_shot_groups
    from ltspk.compare.recommend import recommend, recommendation_text
    from ltspk.compare.report import markdown, write_csv
    from ltspk.runtime.atomic import staged_folder, write_json, write_text

    runs = [load_run(r) for r in a.runs]
    check_runs(runs, a.allow_mixed_corpora)
    rows, base = aggregate(runs, a.baseline)
    known = sorted({r.mode for r in rows if r.task == "speaker_id"})
    unknown = [m for m in a.modes if m not in known]
    if unknown:
        raise LtspkError(f"--modes {' '.join(unknown)}: no such inference in these runs; they have {', '.join(known)}")
    notes = comparison_notes(runs)
    recs = recommend(rows, base)
    table = markdown(rows, runs, base, notes=notes, recommendation=recommendation_text(recs))
    out = Path(a.out)
    with staged_folder(out) as tmp:
        write_text(tmp / "comparison.md", table)
        write_csv(tmp / "comparison.csv", rows)
        write_json(tmp / "recommendation.json", {"notes": notes, "baseline": base,
                                                 "recommendations": [r.as_dict() for r in recs]})
        title = context(runs)
        plot_shot_groups(rows, tmp / "shot_groups.png", title)
        plot_per_speaker(runs, tmp / "per_speaker.png", modes=a.modes, title=title)
        plot_det(runs, tmp / "det.png", title)
        plot_imbalance(rows, runs, tmp / "imbalance.png", modes=a.modes, title=title)
    print(table)
    print("\n".join(notes))
    print(recommendation_text(recs, markdown=False))
    print(f"written: {out}/ comparison.md, comparison.csv, recommendation.json and plots")


if __name__ == "__main__":
    run(main)
