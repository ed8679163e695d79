"""Build a training/evaluation experiment from loaded hyperparameters.

The YAML declares the pieces (features, embedder, a head *class* through ``!name:``,
optimiser, schedule, loss, augmentation); what depends on the prepared data (number of
speakers, class priors, label encoder, sampler, validation set) is built here once the data
are prepared.

Optional keys (absent: the behaviour of every earlier run): ``sentence_len`` (SpeechBrain's
name for the training crop; ``crop_seconds`` in older files), ``compute_cost``,
``wav_augment``, ``valid_during_training`` (+ ``valid_dataloader_options``), ``ckpt_min_key`` /
``ckpt_max_key``, ``ckpt_average_last``, ``margin_schedule`` (``ltspk.train.brain`` says what each does),
``tensorboard`` (``tensorboard_logger``), ``pretrained_embedder`` + ``embedder_lr_scale`` (fine-tuning from a pretrained embedder:
``ltspk.train.pretrained``; the weights are loaded by ``Experiment.fit`` when training starts from scratch).
"""

import logging
import os
from pathlib import Path

import speechbrain as sb
from speechbrain.dataio.sampler import ReproducibleRandomSampler
from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook

from ltspk.data.corpora import options_from_hparams
from ltspk.data.manifest import read_manifest
from ltspk.data.pipeline import class_counts, crop_pipeline, full_pipeline, label_encoder, load_dataset
from ltspk.data.prepared import ensure_prepared, preparation_record
from ltspk.data.samplers import make_sampler
from ltspk.data.summary import load_counts
from ltspk.embedding.embedders import ModuleEmbedder, check_device
from ltspk.runtime.averaging import average_into, write_averaged
from ltspk.runtime.checkpoints import AtomicCheckpointer, describe_checkpoint
from ltspk.runtime.errors import CheckpointError, DataError, HparamsError
from ltspk.runtime.fingerprint import RunIdentity, RunSettings, describe, training_settings
from ltspk.runtime.rng import RNGState, loader_generator, seed_host_generators
from ltspk.train.augment import summary
from ltspk.train.brain import SpeakerBrain
from ltspk.train.hparams import load_hparams
from ltspk.train.losses import build_loss
from ltspk.train.options import TrainOptions
from ltspk.train.pretrained import check_pretrained_embedder, load_pretrained_embedder

log = logging.getLogger(__name__)


def prepare_data(hparams):
    """Prepare the corpus into ``prepared_folder`` (whole, through a temporary folder), or
    reuse a preparation made with the same corpus, data folder and options."""

    sb.utils.distributed.run_on_main(ensure_prepared, args=list(options_from_hparams(hparams)))
    return Path(hparams["prepared_folder"])


def require_training_data(train_csv):
    """The training manifest's rows; none is an error naming the file."""

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


def tensorboard_logger(hparams, create=True):
    """SpeechBrain's ``TensorboardLogger`` when ``tensorboard`` is ``True`` (into ``<output_folder>/tensorboard``)
    or a folder, else None; a clear error when TensorBoard is not installed. ``create=False`` only checks
    (before long work) and writes no event file: evaluation and stage 2 log nothing there."""
    where = hparams.get("tensorboard")
    if where is None or where is False:
        return None
    if where is True:
        where = Path(hparams["output_folder"]) / "tensorboard"
    elif not isinstance(where, (str, Path)):
        raise HparamsError(f"tensorboard: {where!r} is neither true/false nor a folder")
    try:
        import torch.utils.tensorboard  # noqa: F401  (what SpeechBrain's logger needs)
        from speechbrain.utils.train_logger import TensorboardLogger

        return TensorboardLogger(str(where)) if create else None
    except ImportError as e:
        raise HparamsError(f"tensorboard is set but TensorBoard is not installed ({e}): pip install tensorboard, "
                           "or set tensorboard: false") from None


def write_training_curves(hparams):
    """``<output_folder>/training_curves.png`` from ``train_log.txt`` (``ltspk.train.curves.plot_training_curves``);
    the path, or None when there is no log or matplotlib is missing (a warning)."""
    log_file = Path(hparams.get("train_log") or Path(hparams["output_folder"]) / "train_log.txt")
    if not log_file.is_file():
        return None
    try:
        from ltspk.train.curves import plot_training_curves
    except ImportError as e:
        log.warning("no training_curves.png: %s", e)
        return None
    title = f"{hparams.get('experiment', '')} seed {hparams.get('seed')}"
    return plot_training_curves(log_file, Path(hparams["output_folder"]) / "training_curves.png", title=title)


class Experiment:
    """The modules, head, checkpointer and Brain of a run on its prepared data.

    The checkpointer holds, besides the modules: ``identity`` (configuration fingerprint and
    label-encoder hash, checked first on recovery: ``ltspk.runtime.fingerprint``), ``settings`` (every
    setting that shapes training, checked next: ``ltspk.runtime.fingerprint.RunSettings``; ``extend_epochs``
    accepts and records a larger ``number_of_epochs``) and ``rng`` (random state, including the
    training loader's own generator: ``ltspk.runtime.rng``).

    ``checkpoint_info``: what the model in memory is (``ltspk.runtime.checkpoints.describe_checkpoint``), set
    by ``recover`` and ``fit``; evaluation records it."""

    def __init__(self, hparams, run_opts=None, extend_epochs=False):
        self.hparams = hparams
        check_device((run_opts or {}).get("device", "cpu"))
        self.options = TrainOptions.from_hparams(hparams)  # read and checked once, before any work
        self.settings = RunSettings(training_settings(hparams, self.options.crop_seconds), extend_epochs)
        self.checkpoint_info = None
        self.check_settings(skip=("preparation", "head"))  # before any preparation (the head: identity's check)
        self.pretrained = self.check_pretrained()  # (state, what): read once, loaded by fit
        self.prepare()
        self.encoder, self.class_counts = self.make_label_encoder()
        self.modules = self.make_modules()
        seed_host_generators(hparams["seed"])
        self.loader_generator = loader_generator(hparams["seed"])
        self.identity = RunIdentity(describe(hparams, self.modules, self.modules["classifier"]), self.encoder,
                                    self.encoder_file, name=hparams.get("experiment"))
        self.brain = self.make_brain(self.make_checkpointer(), run_opts)
        tensorboard_logger(hparams, create=False)  # refused here, before long work; made when training starts
        self.check_checkpoint()

    def prepare(self):
        """Prepare the corpus (or reuse its preparation), record it in the settings, read the training
        manifest and counts."""

        self.prepared = prepare_data(self.hparams)
        self.settings.settings["preparation"] = preparation_record(self.prepared)
        self.train_rows = require_training_data(self.prepared / "train.csv")  # read and checked once
        self.counts_info = load_counts(self.prepared / "counts.json")

    def make_label_encoder(self):
        """The label encoder (``<save_folder>/label_encoder.txt``, written once) and the training count of
        every class index."""
        save = Path(self.hparams["save_folder"])
        save.mkdir(parents=True, exist_ok=True)
        self.encoder_file = save / "label_encoder.txt"
        sb.utils.distributed.run_on_main(label_encoder, args=[self.encoder_file, self.prepared / "train.csv"])
        encoder = label_encoder(self.encoder_file, self.prepared / "train.csv")
        return encoder, class_counts(encoder, self.counts_info["counts"], self.prepared / "counts.json")

    def make_modules(self):
        """Features, normaliser, embedder and the head, sized to the speakers and given their priors."""
        h, counts = self.hparams, self.class_counts
        head = h["classifier"](in_dim=h["emb_dim"], n_classes=len(counts))
        head.set_priors(counts)
        return {"compute_features": h["compute_features"], "mean_var_norm": h["mean_var_norm"],
                "embedding_model": h["embedding_model"], "classifier": head}

    def make_checkpointer(self):
        """The checkpointer: identity and settings (checked before any weight), the modules, the epoch
        counter, the random state and a stateful schedule."""
        modules = self.modules
        checkpointer = AtomicCheckpointer(Path(self.hparams["save_folder"]))
        checkpointer.add_recoverable("identity", self.identity, optional_load=True)  # checked before any weight
        checkpointer.add_recoverable("settings", self.settings, optional_load=True)  # older checkpoints lack it
        checkpointer.add_recoverables({
            "embedding_model": modules["embedding_model"],
            "classifier": modules["classifier"],
            "normalizer": modules["mean_var_norm"],
            "counter": self.hparams["epoch_counter"],
        })
        checkpointer.add_recoverable("rng", RNGState(self.loader_generator), optional_load=True)
        schedule = self.options.lr_schedule
        if schedule is not None and get_default_hook(schedule, DEFAULT_SAVE_HOOKS) is not None:
            # a stateful schedule (CyclicLRScheduler's clr_iterations, ...) resumes where it was
            checkpointer.add_recoverable("lr_annealing", schedule, optional_load=True)  # older checkpoints lack it
        return checkpointer

    def make_brain(self, checkpointer, run_opts):
        """The Brain, given the options, the loss (the one named by ``loss`` for files without
        ``compute_cost``) and the shot group of every class."""
        h = self.hparams
        loss_fn = build_loss(h.get("loss", "ce"), h.get("focal_gamma", 2.0)) if h.get("compute_cost") is None else None
        groups = self.counts_info.get("shot_groups") or {}
        class_groups = [groups.get(self.encoder.ind2lab[i], "") for i in range(len(self.class_counts))]
        brain = SpeakerBrain(modules=self.modules, opt_class=h["opt_class"], hparams=h, run_opts=run_opts,
                             checkpointer=checkpointer, options=self.options, loss_fn=loss_fn,
                             class_groups=class_groups)
        checkpointer.remove_incomplete()
        return brain

    def check_checkpoint(self):
        """Refuse (``CheckpointMismatch``) a latest checkpoint made under another configuration or
        label encoder (recovery checks it again), or with other training settings, before anything
        is loaded from it."""
        ckpt = self.brain.checkpointer.find_checkpoint()
        if ckpt is not None and "identity" in ckpt.paramfiles:
            self.identity.load(ckpt.paramfiles["identity"], ckpt.meta["end-of-epoch"])
        if ckpt is not None:
            self.settings.check(ckpt, describe_checkpoint(ckpt))

    def check_settings(self, skip=()):
        """``check_checkpoint``'s settings check, before the data are prepared and the model is built
        (the preparation and the head are checked with the rest once they are)."""
        save = Path(self.hparams["save_folder"])
        ckpt = AtomicCheckpointer(save).find_checkpoint() if save.is_dir() else None
        if ckpt is not None:
            self.settings.check(ckpt, describe_checkpoint(ckpt), skip)

    def train_set(self):
        h = self.hparams
        return load_dataset(self.prepared / "train.csv", crop_pipeline(h["sample_rate"], self.options.crop_seconds), self.encoder,
                            rows=self.train_rows)

    def valid_set(self):
        """The speaker-ID validation split (whole utterances up to ``eval_max_seconds``, sorted by
        duration to pad little), or None when validation during training is off."""
        h = self.hparams
        if not h.get("valid_during_training"):
            return None

        path = self.prepared / "spkid_valid.csv"
        rows = read_manifest(path) if path.is_file() else []
        known = [u for u in rows if u.spk_id in self.encoder.lab2ind]
        if not known:
            raise DataError(path, "validation during training needs the speaker-ID validation split, and this "
                                  "preparation has none: prepare with valid_per_speaker > 0, or set "
                                  "valid_during_training: False")
        if len(known) < len(rows):
            log.warning("%d validation utterance(s) of speakers without training data left out", len(rows) - len(known))
        ds = load_dataset(path, full_pipeline(h["sample_rate"], h.get("eval_max_seconds")), self.encoder, rows=known)
        return ds.filtered_sorted(sort_key="duration")

    def valid_loader_kwargs(self):
        h = self.hparams
        return dict(h.get("valid_dataloader_options") or {"batch_size": h.get("eval_batch_size", 16)})

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

    def check_pretrained(self):
        """When fine-tuning a run that has no checkpoint yet: refuse a pretrained embedder that is
        missing or does not fit the configured embedding model, before the data are prepared. Returns
        the weights read and what they are (``init_from_pretrained`` loads them), or None."""

        finetune = self.options.finetune
        save = Path(self.hparams["save_folder"])
        if finetune is None or (save.is_dir() and AtomicCheckpointer(save).find_checkpoint() is not None):
            return None
        return check_pretrained_embedder(self.hparams["embedding_model"], finetune.source)

    def init_from_pretrained(self):
        """Load ``pretrained_embedder``'s embedding model into this run's when fine-tuning and training
        starts from scratch (no checkpoint to resume: a resumed run continues from its own weights).
        Returns what was loaded, or None."""

        finetune = self.options.finetune
        if finetune is None:
            return None
        ckpt = self.brain.checkpointer.find_checkpoint()
        if ckpt is not None:
            log.info("resuming from %s: the embedding model is the checkpoint's (pretrained_embedder is only "
                     "loaded when training starts from scratch)", ckpt.path)
            return None
        what = load_pretrained_embedder(self.modules["embedding_model"], finetune.source, self.pretrained)
        self.pretrained = None  # in the model now
        log.info("fine-tuning %s, at %g x the learning rate of the head", what, finetune.lr_scale)
        return what

    def fit(self):
        if sb.utils.distributed.if_main_process():
            self.brain.tensorboard_logger = tensorboard_logger(self.hparams)
        self.init_from_pretrained()
        train_set = self.train_set()
        opts = self.train_loader_kwargs(train_set)
        world = int(os.environ.get("WORLD_SIZE", 1)) if self.brain.distributed_launch else 1
        require_batches(len(train_set), opts, self.prepared / "train.csv", world)
        valid_set = self.valid_set()
        augment = self.options.augment
        if augment is not None:

            log.info(summary(augment))
            for note in getattr(augment, "ltspk_off", []):
                log.warning("augmentation: %s", note)
        if valid_set is None:
            self.brain.fit(self.hparams["epoch_counter"], train_set, train_loader_kwargs=opts)
        else:
            self.brain.fit(self.hparams["epoch_counter"], train_set, valid_set, train_loader_kwargs=opts,
                           valid_loader_kwargs=self.valid_loader_kwargs())
        latest = self.brain.checkpointer.find_checkpoint()  # the model in memory: the last one saved
        self.checkpoint_info = describe_checkpoint(latest, "latest") if latest is not None else None
        if sb.utils.distributed.if_main_process():
            curves = write_training_curves(self.hparams)
            if curves is not None:
                log.info("training curves: %s", curves)

    def embedder(self):
        """The run's embedder as it is in memory (features, normaliser, embedding model): what evaluation,
        stage 2 and extraction embed with (``ltspk.embedding.cache.ManifestEmbeddings``)."""
        return ModuleEmbedder(self.brain.modules, self.brain.device)

    @property
    def shows_progress(self):
        """Whether progress bars are shown: not with ``--noprogressbar``, and only in the main process."""
        return not self.brain.noprogressbar and sb.utils.distributed.if_main_process()

    def selects_checkpoint(self):
        """Whether evaluation uses another model than the latest checkpoint (best or averaged)."""
        return self.options.checkpoints.selects

    def recover(self):
        """Restore the model evaluation uses (model, head state: priors and CausalNorm direction):
        the mean of the last ``ckpt_average_last`` epoch checkpoints when that is > 1, else the best
        checkpoint by ``ckpt_min_key`` / ``ckpt_max_key`` when one is set (SpeechBrain's
        ``recover_if_possible(min_key=...)``), else the latest (``ltspk.runtime.checkpoint_policy``).
        ``CheckpointMismatch`` if it was made under another configuration or label encoder."""
        kind, found, how = self.options.checkpoints.evaluation_checkpoints(self.brain.checkpointer)
        if not found:
            raise CheckpointError(self.hparams["save_folder"], "no checkpoint: train first")
        if kind == "average":
            self.checkpoint_info = {**describe_checkpoint(found[0], kind), "averaged": [c.path.name for c in found],
                                    "averaged_epochs": [c.meta["epoch"] for c in found]}
            return self.average_checkpoints(found, how)
        self.brain.checkpointer.load_checkpoint(found[0])
        self.checkpoint_info = describe_checkpoint(found[0], kind)
        if kind == "best":
            log.info("evaluating the %s", how)
        return found[0]

    def average_checkpoints(self, found, how):
        """Load the mean of the epoch checkpoints ``found`` into the model (WeSpeaker's model averaging:
        ``ltspk.runtime.averaging``) and write it to ``<save_folder>/averaged``, a SpeechBrain checkpoint (never
        resumed from). Returns that checkpoint."""

        self.brain.checkpointer.load_checkpoint(found[0])  # the latest: normaliser, identity check
        average_into(self.modules, found)  # the raw modules (the Brain's, or inside its DDP wrappers)
        log.info("evaluating the %s", how)
        recoverables = {"embedding_model": self.modules["embedding_model"], "classifier": self.modules["classifier"],
                        "normalizer": self.modules["mean_var_norm"], "identity": self.identity}
        epochs = [c.meta["epoch"] for c in found]
        return write_averaged(Path(self.hparams["save_folder"]) / "averaged", recoverables,
                              {"averaged_epochs": epochs, "num_avg": len(found)}, f"avg_last{len(found)}")


def trained_experiment(argv):
    """For the recipes that use a trained run: parse SpeechBrain's command line
    (``HPARAMS [--run_opts] [--overrides]``), build the experiment and restore its latest
    checkpoint, refusing one of another configuration or label encoder (``CheckpointMismatch``).
    Returns (experiment, hparams file, overrides)."""

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams = load_hparams(hparams_file, overrides)
    exp = Experiment(hparams, run_opts)
    exp.recover()
    return exp, hparams_file, overrides
