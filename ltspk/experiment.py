"""Build a training/evaluation experiment from loaded hyperparameters.

The YAML declares the pieces (features, embedder, a head *class* through ``!name:``,
optimiser, schedule); what depends on the prepared data (number of speakers, class
priors, label encoder, sampler) is built here once the data are prepared.
"""

import logging
from pathlib import Path

import speechbrain as sb

from ltspk.brain import SpeakerBrain
from ltspk.checkpoints import AtomicCheckpointer
from ltspk.data.pipeline import class_counts, crop_pipeline, label_encoder, load_dataset
from ltspk.data.samplers import make_sampler
from ltspk.data.summary import load_counts
from ltspk.losses import build_loss

log = logging.getLogger(__name__)


def prepare_data(hparams):
    """Prepare the corpus into ``prepared_folder`` (whole, through a temporary folder), or
    reuse a preparation made with the same corpus, data folder and options."""
    from ltspk.data.prepared import ensure_prepared

    args = [hparams["corpus"], hparams["data_folder"], hparams["prepared_folder"], hparams["prep_options"],
            hparams.get("corpus_options") or {}]
    sb.utils.distributed.run_on_main(ensure_prepared, args=args)
    return Path(hparams["prepared_folder"])


class Experiment:
    def __init__(self, hparams, run_opts=None):
        self.hparams = hparams
        self.prepared = prepare_data(hparams)
        self.counts_info = load_counts(self.prepared / "counts.json")
        save = Path(hparams["save_folder"])
        save.mkdir(parents=True, exist_ok=True)
        sb.utils.distributed.run_on_main(label_encoder, args=[save / "label_encoder.txt", self.prepared / "train.csv"])
        self.encoder = label_encoder(save / "label_encoder.txt", self.prepared / "train.csv")
        counts = class_counts(self.encoder, self.counts_info["counts"], self.prepared / "counts.json")
        self.class_counts = counts

        head = hparams["classifier"](in_dim=hparams["emb_dim"], n_classes=len(counts))
        head.set_priors(counts)
        modules = {
            "compute_features": hparams["compute_features"],
            "mean_var_norm": hparams["mean_var_norm"],
            "embedding_model": hparams["embedding_model"],
            "classifier": head,
        }
        checkpointer = AtomicCheckpointer(save, recoverables={
            "embedding_model": modules["embedding_model"],
            "classifier": head,
            "normalizer": modules["mean_var_norm"],
            "counter": hparams["epoch_counter"],
        })
        self.brain = SpeakerBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
                                  run_opts=run_opts, checkpointer=checkpointer)
        checkpointer.remove_incomplete()
        self.brain.loss_fn = build_loss(hparams.get("loss", "ce"), hparams.get("focal_gamma", 2.0))

    def train_set(self):
        h = self.hparams
        return load_dataset(self.prepared / "train.csv", crop_pipeline(h["sample_rate"], h["crop_seconds"]), self.encoder)

    def train_loader_kwargs(self, train_set):
        h = self.hparams
        opts = dict(h["train_dataloader_options"])
        kind = h.get("sampler")
        if kind:
            labels = [self.encoder.lab2ind[train_set.data[i]["spk_id"]] for i in train_set.data_ids]
            opts["sampler"] = make_sampler(kind, labels, seed=h["seed"], total_epochs=h["number_of_epochs"])
            opts["shuffle"] = False
        return opts

    def fit(self):
        train_set = self.train_set()
        self.brain.fit(self.hparams["epoch_counter"], train_set, train_loader_kwargs=self.train_loader_kwargs(train_set))

    def recover(self):
        """Restore the latest checkpoint (model, head state: priors and CausalNorm direction)."""
        ckpt = self.brain.checkpointer.recover_if_possible()
        if ckpt is None:
            raise RuntimeError(f"no checkpoint in {self.hparams['save_folder']}: train first")
        return ckpt


def trained_experiment(argv):
    """For the recipes that use a trained run: parse SpeechBrain's command line
    (``HPARAMS [--run_opts] [--overrides]``), build the experiment and restore its latest
    checkpoint. Returns (experiment, hparams file, overrides)."""
    from hyperpyyaml import load_hyperpyyaml

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    exp = Experiment(hparams, run_opts)
    exp.recover()
    return exp, hparams_file, overrides
