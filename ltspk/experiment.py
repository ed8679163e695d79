"""Build a training/evaluation experiment from loaded hyperparameters.

The YAML declares the pieces (features, embedder, a head *class* through ``!name:``,
optimiser, schedule); what depends on the prepared data (number of speakers, class
priors, label encoder, sampler) is built here once the data are prepared.
"""

import logging
import os
from pathlib import Path

import speechbrain as sb
from speechbrain.dataio.sampler import ReproducibleRandomSampler

from ltspk.brain import SpeakerBrain
from ltspk.checkpoints import AtomicCheckpointer
from ltspk.data.pipeline import class_counts, crop_pipeline, label_encoder, load_dataset
from ltspk.data.samplers import make_sampler
from ltspk.data.summary import load_counts
from ltspk.errors import DataError
from ltspk.fingerprint import RunIdentity, describe
from ltspk.losses import build_loss
from ltspk.rng import RNGState, loader_generator, seed_host_generators

log = logging.getLogger(__name__)


def prepare_data(hparams):
    """Prepare the corpus into ``prepared_folder`` (whole, through a temporary folder), or
    reuse a preparation made with the same corpus, data folder and options."""
    from ltspk.data.prepared import ensure_prepared

    args = [hparams["corpus"], hparams["data_folder"], hparams["prepared_folder"], hparams["prep_options"],
            hparams.get("corpus_options") or {}]
    sb.utils.distributed.run_on_main(ensure_prepared, args=args)
    return Path(hparams["prepared_folder"])


def require_training_data(train_csv):
    """The training manifest's rows; none is an error naming the file."""
    from ltspk.data.manifest import read_manifest

    rows = read_manifest(train_csv)
    if not rows:
        raise DataError(train_csv, "no training data: the manifest lists no utterance (check the corpus and "
                                   "the preparation options)")
    return rows


def require_batches(n_items, loader_opts, source, world_size=1):
    """Refuse a batch size that would give an epoch without any batch (``drop_last`` set)."""
    batch_size = int(loader_opts.get("batch_size", 1))
    per_rank = n_items // max(world_size, 1)
    if loader_opts.get("drop_last") and per_rank < batch_size:
        where = f" per process ({world_size} processes)" if world_size > 1 else ""
        raise DataError(source, f"batch_size {batch_size} is larger than the {per_rank} training utterances{where} "
                                "and drop_last is set: an epoch would have no batch; lower batch_size")


class Experiment:
    """The modules, head, checkpointer and Brain of a run on its prepared data.

    The checkpointer holds, besides the modules: ``identity`` (configuration fingerprint and
    label-encoder hash, checked first on recovery: ``ltspk.fingerprint``) and ``rng`` (random
    state, including the training loader's own generator: ``ltspk.rng``)."""

    def __init__(self, hparams, run_opts=None):
        self.hparams = hparams
        self.prepared = prepare_data(hparams)
        require_training_data(self.prepared / "train.csv")
        self.counts_info = load_counts(self.prepared / "counts.json")
        save = Path(hparams["save_folder"])
        save.mkdir(parents=True, exist_ok=True)
        encoder_file = save / "label_encoder.txt"
        sb.utils.distributed.run_on_main(label_encoder, args=[encoder_file, self.prepared / "train.csv"])
        self.encoder = label_encoder(encoder_file, self.prepared / "train.csv")
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
        seed_host_generators(hparams["seed"])
        self.loader_generator = loader_generator(hparams["seed"])
        self.identity = RunIdentity(describe(hparams, modules, head), self.encoder, encoder_file,
                                    name=hparams.get("experiment"))
        checkpointer = AtomicCheckpointer(save)
        checkpointer.add_recoverable("identity", self.identity, optional_load=True)  # checked before any weight
        checkpointer.add_recoverables({
            "embedding_model": modules["embedding_model"],
            "classifier": head,
            "normalizer": modules["mean_var_norm"],
            "counter": hparams["epoch_counter"],
        })
        checkpointer.add_recoverable("rng", RNGState(self.loader_generator), optional_load=True)
        self.brain = SpeakerBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
                                  run_opts=run_opts, checkpointer=checkpointer)
        checkpointer.remove_incomplete()
        self.brain.loss_fn = build_loss(hparams.get("loss", "ce"), hparams.get("focal_gamma", 2.0))
        self.check_checkpoint()

    def check_checkpoint(self):
        """Refuse (``CheckpointMismatch``) a latest checkpoint made under another configuration or
        label encoder, before anything is loaded from it; recovery checks it again."""
        ckpt = self.brain.checkpointer.find_checkpoint()
        if ckpt is not None and "identity" in ckpt.paramfiles:
            self.identity.load(ckpt.paramfiles["identity"], ckpt.meta["end-of-epoch"])

    def train_set(self):
        h = self.hparams
        return load_dataset(self.prepared / "train.csv", crop_pipeline(h["sample_rate"], h["crop_seconds"]), self.encoder)

    def train_loader_kwargs(self, train_set):
        h = self.hparams
        opts = dict(h["train_dataloader_options"])
        opts.setdefault("generator", self.loader_generator)
        kind = h.get("sampler")
        if kind:
            labels = [self.encoder.lab2ind[train_set.data[i]["spk_id"]] for i in train_set.data_ids]
            opts["sampler"] = make_sampler(kind, labels, seed=h["seed"], total_epochs=h["number_of_epochs"])
            opts["shuffle"] = False
        elif opts.get("shuffle"):
            # SpeechBrain's own shuffle sampler has one fixed seed: give it the run's, so that
            # seeds differ in their shuffle order too (set_epoch reshuffles it every epoch)
            opts["sampler"] = ReproducibleRandomSampler(train_set, seed=int(h["seed"]))
            opts["shuffle"] = False
        return opts

    def fit(self):
        train_set = self.train_set()
        opts = self.train_loader_kwargs(train_set)
        world = int(os.environ.get("WORLD_SIZE", 1)) if self.brain.distributed_launch else 1
        require_batches(len(train_set), opts, self.prepared / "train.csv", world)
        self.brain.fit(self.hparams["epoch_counter"], train_set, train_loader_kwargs=opts)

    def recover(self):
        """Restore the latest checkpoint (model, head state: priors and CausalNorm direction);
        ``CheckpointMismatch`` if it was made under another configuration or label encoder."""
        ckpt = self.brain.checkpointer.recover_if_possible()
        if ckpt is None:
            raise RuntimeError(f"no checkpoint in {self.hparams['save_folder']}: train first")
        return ckpt


def trained_experiment(argv):
    """For the recipes that use a trained run: parse SpeechBrain's command line
    (``HPARAMS [--run_opts] [--overrides]``), build the experiment and restore its latest
    checkpoint, refusing one of another configuration or label encoder (``CheckpointMismatch``).
    Returns (experiment, hparams file, overrides)."""
    from hyperpyyaml import load_hyperpyyaml

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    exp = Experiment(hparams, run_opts)
    exp.recover()
    return exp, hparams_file, overrides
