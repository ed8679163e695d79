#!/usr/bin/env python3
"""The TDE study over CausalNorm runs: cos(x, d) by shot group, alpha chosen vs the paper's rule,
and TDE - plain accuracy with intervals (``ltspk.compare.tde_study``).

  python recipes/tde_study.py RUN_DIR [RUN_DIR ...] --out DIR     # writes DIR/tde_study.md, DIR/tde_study.png
"""

import argparse
from pathlib import Path

from ltspk.cli.entry import run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="evaluated CausalNorm run folders (seeds of one or more configurations)")
    ap.add_argument("--out", default="tde_study", help="output folder (default: %(default)s)")
    a = ap.parse_args(argv)
    from ltspk.compare.comparison import load_run
    from ltspk.compare.plots import context
    from ltspk.compare.tde_study import markdown, plot, study
    from ltspk.runtime.atomic import staged_folder, write_text

    runs = [load_run(r) for r in a.runs]
    rows = study(runs)
    table = markdown(rows, synthetic=any(r.info.get("synthetic") for r in runs))
    with staged_folder(Path(a.out)) as tmp:
        write_text(tmp / "tde_study.md", table)
        plot(rows, tmp / "tde_study.png", "TDE study: " + context(runs))
    print(table)


if __name__ == "__main__":
    run(main)
