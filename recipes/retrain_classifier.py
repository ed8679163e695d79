#!/usr/bin/env python3
"""Decoupled stage 2 (Kang et al.): cRT, tau-norm, LWS and NCM on frozen embeddings of a trained run.

  python recipes/retrain_classifier.py RUN_DIR
  python recipes/retrain_classifier.py hparams/demo_tde.yaml --output_folder RUN_DIR [--data_folder DIR ...]

Embeddings are extracted once and cached in RUN_DIR/cache/ (made again when the model or the
manifest changes); the classifiers are then fitted in seconds. tau-norm's power is chosen on
spkid_valid. RUN_DIR/stage2/ is replaced whole, and RUN_DIR/results.json / results.md are
rebuilt with the stage-2 records beside the evaluation's.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.errors import LtspkError  # noqa: E402


def main(argv):
    from ltspk.experiment import trained_experiment
    from ltspk.hparams import run_folder_argument
    from ltspk.records import collect, headline
    from ltspk.retrain import run_stage2
    from ltspk.runlock import RunLock

    exp, _, _ = trained_experiment(run_folder_argument(argv))
    with RunLock(exp.hparams["output_folder"]):
        _, info = run_stage2(exp)
    folder = Path(exp.hparams["output_folder"])
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in info["seconds"].items()))
    print(headline(collect(folder)))  # the headline only, once; every record is in results.md / results.json
    print(f"results: {folder / 'results.json'} (every record: {folder / 'results.md'})")


if __name__ == "__main__":
    from ltspk.hparams import help_requested

    if help_requested(sys.argv[1:], __doc__):
        sys.exit(0)
    try:
        main(sys.argv[1:])
    except (LtspkError, RuntimeError, ValueError) as e:
        sys.exit(f"error: {e}")
