#!/usr/bin/env python3
"""Train a speaker embedder with a long-tail head, then evaluate it.

  python recipes/train.py hparams/demo_tde.yaml [--data_folder DIR] [--output_folder DIR] [--any_key VALUE]
  torchrun --nproc_per_node=N recipes/train.py hparams/voxceleb_tde.yaml --data_folder DIR

The corpus is prepared on first use (into <prepared_folder>), training resumes from the
latest checkpoint in <output_folder>/save, and evaluation writes results.json / results.md.
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import speechbrain as sb  # noqa: E402
from hyperpyyaml import load_hyperpyyaml  # noqa: E402

from ltspk.errors import LtspkError  # noqa: E402

log = logging.getLogger(__name__)


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides)

    from ltspk.evaluate import evaluate
    from ltspk.experiment import Experiment

    exp = Experiment(hparams, run_opts)
    exp.fit()
    if hparams.get("evaluate_after_training", True) and sb.utils.distributed.if_main_process():
        from ltspk.records import results_table

        print(results_table(evaluate(exp)))
        print(f"results: {Path(hparams['output_folder']) / 'results.json'}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except LtspkError as e:
        sys.exit(f"error: {e}")
