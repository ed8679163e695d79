#!/usr/bin/env python3
"""Evaluate a trained run again (e.g. with other TDE alphas or post-hoc taus), no retraining.

  python recipes/evaluate.py RUN_DIR [--tde_alphas "[0, 1, 2]"]
  python recipes/evaluate.py hparams/demo_tde.yaml --output_folder RUN_DIR [--data_folder DIR ...]

Given a run folder, the hyperparams.yaml that training saved there is used (no corpus paths needed).

Tunable settings are chosen on the run's spkid_valid split. Replaces RUN_DIR/evaluation/ whole
and rebuilds RUN_DIR/results.json and results.md (stage-2 records are kept).
"""

from pathlib import Path

from ltspk.cli.entry import run


def main(argv):
    from ltspk.evaluation.evaluate import evaluate
    from ltspk.evaluation.records import headline
    from ltspk.runtime.runlock import RunLock
    from ltspk.train.experiment import trained_experiment
    from ltspk.train.run_folder import run_folder_argument

    exp, _, _ = trained_experiment(run_folder_argument(argv))
    with RunLock(exp.hparams["output_folder"]):  # no training or other evaluation writes there meanwhile
        res = evaluate(exp)
    folder = Path(exp.hparams["output_folder"])
    print(checkpoint_text(exp.checkpoint_info))
    print(headline(res))  # the headline only, once; every record is in results.md / results.json
    print(f"results: {folder / 'results.json'} (every record: {folder / 'results.md'})")


def checkpoint_text(info):
    """Which checkpoint was evaluated, in words (``Experiment.checkpoint_info``)."""
    if not info:
        return "evaluated: no checkpoint information"
    what = f"evaluated: the {info.get('kind', 'latest')} checkpoint {info.get('checkpoint')}"
    if info.get("averaged_epochs"):
        what += f" (mean of epochs {info['averaged_epochs']})"
    if info.get("mid_epoch"):
        what += f", MID-EPOCH: epoch {info.get('epoch')} in progress, step {info.get('step_in_epoch')} of it"
    else:
        what += f", end of epoch {info.get('epoch')}"
    return what + f", optimizer step {info.get('optimizer_step')}"


if __name__ == "__main__":
    run(main, __doc__)
