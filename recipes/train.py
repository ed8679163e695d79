#!/usr/bin/env python3
"""Train a speaker embedder with a long-tail head, then evaluate it.

  python recipes/train.py hparams/demo_tde.yaml [--data_folder DIR] [--output_folder DIR] [--any_key VALUE]
  torchrun --nproc_per_node=N recipes/train.py hparams/voxceleb_tde.yaml --data_folder DIR

The corpus is prepared on first use (into <prepared_folder>), training resumes from the
latest checkpoint in <output_folder>/save, and evaluation writes results.json / results.md
for the latest checkpoint, or the best one by validation (ckpt_min_key / ckpt_max_key), or the
average of the last N epochs' (ckpt_average_last) when the hparams choose one.
One run at a time per output folder (<output_folder>/.ltspk.lock); a checkpoint made under
another model/head configuration or label encoder, or with other training settings (seed,
preparation, optimiser, lr and schedule, sampler, crop, batch, epochs), is refused, not resumed.
To train a run for more epochs, ask for it: the extension is recorded in its checkpoints.

  python recipes/train.py hparams/demo_tde.yaml --output_folder DIR --number_of_epochs 20 --extend_epochs

Fine-tuning a pretrained embedder with any head (ltspk/train/pretrained.py), with any hparams file:

  python recipes/train.py hparams/folder_la.yaml --data_folder DIR --output_folder runs/ft \
      --pretrained_embedder MODEL_DIR|RUN_DIR [--embedder_lr_scale 0.1]

MODEL_DIR: a SpeechBrain model folder (hyperparams.yaml + embedding_model.ckpt, as
spkrec-ecapa-voxceleb, or recipes/extract.py --export_model); RUN_DIR: an ltspk run. The
configured embedding_model must have the pretrained one's shapes (refused, naming the parameter,
otherwise); the weights are loaded only when training starts from scratch.
"""

import logging
from pathlib import Path

from ltspk.cli.entry import run

log = logging.getLogger(__name__)


EXTEND = "--extend_epochs"  # train.py's own flag: a larger number_of_epochs continues the run (recorded)


def main(argv):
    import speechbrain as sb  # here, not at the top: --help needs neither SpeechBrain nor torch

    from ltspk.runtime.runlock import RunLock
    from ltspk.train.hparams import load_hparams

    argv = list(argv)
    extend = EXTEND in argv
    argv = [a for a in argv if a != EXTEND]
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams = load_hparams(hparams_file, overrides)  # unknown keys and impossible numbers refused here
    with RunLock(hparams["output_folder"], enabled=sb.utils.distributed.if_main_process()):
        train(hparams, hparams_file, run_opts, overrides, extend_epochs=extend)


def train(hparams, hparams_file, run_opts, overrides, extend_epochs=False):
    import speechbrain as sb

    out = hparams["output_folder"]
    sb.create_experiment_directory(out, overrides=overrides)

    from ltspk.evaluation.evaluate import evaluate
    from ltspk.train.experiment import Experiment
    from ltspk.train.run_folder import save_hyperparams

    exp = Experiment(hparams, run_opts, extend_epochs)  # refuses a checkpoint of another configuration or settings ...
    if sb.utils.distributed.if_main_process():
        save_hyperparams(hparams_file, overrides, out)  # ... before its hyperparams.yaml is replaced
    exp.fit()
    if hparams.get("evaluate_after_training", True) and sb.utils.distributed.if_main_process():
        from ltspk.evaluation.records import headline

        if exp.selects_checkpoint():
            exp.recover()  # the best checkpoint (ckpt_min_key / ckpt_max_key) or the average of the last N
        res = evaluate(exp)
        folder = Path(hparams["output_folder"])
        print(headline(res))  # the headline only, once; every record is in results.md / results.json
        print(f"results: {folder / 'results.json'} (every record: {folder / 'results.md'})")


if __name__ == "__main__":
    run(main, __doc__)
