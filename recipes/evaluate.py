#!/usr/bin/env python3
"""Evaluate a trained run again (e.g. with other TDE alphas or post-hoc tau), no retraining.

  python recipes/evaluate.py hparams/demo_tde.yaml --output_folder RUN_DIR [--tde_alphas "[0, 1, 2]"]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import speechbrain as sb  # noqa: E402
from hyperpyyaml import load_hyperpyyaml  # noqa: E402

from ltspk.errors import LtspkError  # noqa: E402


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)

    from ltspk.evaluate import evaluate, results_table
    from ltspk.experiment import Experiment

    exp = Experiment(hparams, run_opts)
    exp.recover()
    print(results_table(evaluate(exp)))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (LtspkError, RuntimeError) as e:
        sys.exit(f"error: {e}")
