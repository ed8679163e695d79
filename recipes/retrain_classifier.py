#!/usr/bin/env python3
"""Decoupled stage 2 (Kang et al.): cRT, tau-norm, LWS and NCM on frozen embeddings of a trained run.

  python recipes/retrain_classifier.py RUN_DIR
  python recipes/retrain_classifier.py hparams/demo_tde.yaml --output_folder RUN_DIR [--data_folder DIR ...]

Embeddings are extracted once and cached in RUN_DIR/cache/ (made again when the model or the
manifest changes); the classifiers are then fitted in seconds. tau-norm's power is chosen on
spkid_valid. RUN_DIR/stage2/ is replaced whole, and RUN_DIR/results.json / results.md are
rebuilt with the stage-2 records beside the evaluation's.
"""

from pathlib import Path

from ltspk.cli.entry import run


def main(argv):
    from ltspk.evaluation.records import collect, headline
    from ltspk.longtail.stage2 import run_stage2
    from ltspk.runtime.runlock import RunLock
    from ltspk.train.experiment import trained_experiment
    from ltspk.train.run_folder import run_folder_argument

    exp, _, _ = trained_experiment(run_folder_argument(argv))
    with RunLock(exp.hparams["output_folder"]):
        _, info = run_stage2(exp)
    folder = Path(exp.hparams["output_folder"])
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in info["seconds"].items()))
    print(headline(collect(folder)))  # the headline only, once; every record is in results.md / results.json
    print(f"results: {folder / 'results.json'} (every record: {folder / 'results.md'})")


if __name__ == "__main__":
    run(main, __doc__)
