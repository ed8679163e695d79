"""The SpeechBrain Brain that trains an embedder with any ltspk head.

Resuming is exact in a single process with ``num_workers: 0``: a run resumed from any
checkpoint logs the same losses and ends with the same weights as the uninterrupted run
(the random state is checkpointed by ``ltspk.runtime.rng``, which says what is not guaranteed).

What the hparams may add, each off unless its key is set:

- ``wav_augment`` (SpeechBrain's key; ``augment`` is read too): an ``Augmenter`` applied to
  each training batch; its copies keep their labels through ``replicate_labels``.
- ``compute_cost``: the loss, ``compute_cost(logits, labels)``; without it the loss named by
  ``loss`` (``ltspk.train.losses.build_loss``), attached by ``ltspk.train.experiment``.
- ``lr_annealing``: any SpeechBrain scheduler. Per-step ones (``on_batch_end(opt)`` as
  ``CyclicLRScheduler``, ``__call__(opt)`` as ``WarmAndExpDecayLRSchedule``/``NoamScheduler``,
  ``__call__(opt, num_updates)``) are called before every optimiser step; per-epoch ones
  (``__call__(epoch)``) at the end of every epoch; ``NewBobScheduler`` and ``ReduceLROnPlateau``
  at the end of every epoch on the validation loss (``ltspk.train.schedulers.schedule_kind``). One with
  checkpoint hooks is in every checkpoint (``ltspk.train.experiment``), so a resumed run continues
  its curve.
- ``margin_schedule``: ``ltspk.heads.aam.MarginScheduler``, the head's margin before every step,
  computed from the epoch and step counters (which every checkpoint holds).
- a validation set given to ``fit``: each epoch, the loss and speaker-ID accuracy by shot group
  on it, in ``train_log.txt`` and on the progress bar; the end-of-epoch checkpoint is then saved
  after validation with these figures in its meta, and ``ckpt_min_key`` / ``ckpt_max_key``
  keep the best one as SpeechBrain does (``save_and_keep_only(min_keys=...)``);
  ``ckpt_average_last: N`` keeps the last N epochs' checkpoints for averaging. Validation draws
  nothing from the random generators training uses (the generators are put back when it ends): the same run with and
  without it trains the same model.
- ``tensorboard`` (``True`` or a folder; ``ltspk.train.experiment.tensorboard_logger``): SpeechBrain's
  ``TensorboardLogger``, given each epoch what ``train_log.txt`` is given (lr, training loss,
  validation figures), at the epoch number as its step.
- ``pretrained_embedder`` (``ltspk.train.pretrained``): the embedding model's parameters in their own
  optimiser group(s), at ``embedder_lr_scale`` times the learning rate of the rest; the scale is
  re-applied after every schedule update (SpeechBrain's schedulers set every group to one value).
"""

import logging

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import mark_as_loader, register_checkpoint_hooks

from ltspk.embedding.embedders import unwrap
from ltspk.evaluation.metrics import shot_group_accuracy
from ltspk.runtime.errors import HparamsError
from ltspk.runtime.rng import host_rng_state, set_host_rng_state
from ltspk.train import pretrained
from ltspk.train import schedulers as sched_kinds
from ltspk.train.options import TrainOptions

log = logging.getLogger(__name__)

@register_checkpoint_hooks
class SpeakerBrain(sb.core.Brain):
    """Fbank -> mean/var norm -> embedder -> head; the loss sees the head's training logits."""

    steps_per_epoch = None  # set when the training loader is made
    validating = False      # a VALID stage follows every TRAIN stage
    tensorboard_logger = None  # SpeechBrain's TensorboardLogger when the hparams ask for one (ltspk.train.experiment)
    _lr_kind = None

    def __init__(self, *args, options=None, loss_fn=None, class_groups=None, **kwargs):
        """SpeechBrain's Brain, with what ltspk adds: ``options`` (``ltspk.train.options.TrainOptions``,
        read once from the hparams), ``loss_fn`` (the loss when the hparams have no ``compute_cost``) and
        ``class_groups`` (the shot group of every class index, for validation accuracy by group)."""
        self.options = options if options is not None else TrainOptions()
        self.loss_fn = loss_fn
        self.class_groups = class_groups
        super().__init__(*args, **kwargs)

    @mark_as_loader
    def _recover(self, path, end_of_epoch):
        """SpeechBrain saves the end-of-epoch checkpoint before it resets ``step`` and the running
        loss; a new epoch starts from zero (``optimizer_step`` is kept)."""
        super()._recover(path, end_of_epoch)
        if end_of_epoch:
            self.step, self.avg_train_loss = 0, 0.0

    def embed(self, wavs, lens, unwrapped=False):
        """Embeddings [B, D]; ``unwrapped`` bypasses DDP wrappers (single-process inference)."""
        def mod(name):
            return unwrap(self.modules[name]) if unwrapped else self.modules[name]

        feats = mod("compute_features")(wavs)
        feats = mod("mean_var_norm")(feats, lens)
        emb = mod("embedding_model")(feats, lens)
        return emb.reshape(emb.shape[0], -1)

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        labels = batch.spk_id_encoded.data.reshape(-1)
        augment = self.options.augment
        if stage == sb.Stage.TRAIN and augment is not None:
            # Every utterance of the batch is copied the same number of times and each copy keeps its
            # label, so the label distribution of the augmented batch is the batch's own: the class
            # priors (from the training counts, ltspk.train.experiment) stay right, and CausalNorm's moving
            # average sees the augmented batch, as SpeechBrain's training feeds it to the classifier.
            wavs, lens = augment(wavs, lens)
            labels = augment.replicate_labels(labels)
        emb = self.embed(wavs, lens)
        if stage == sb.Stage.TRAIN:
            return self.modules.classifier(emb, labels), labels
        if stage == sb.Stage.VALID:
            # the loss on the training objective (margin, logit adjustment; no state update in eval
            # mode), as SpeechBrain's compute_cost at VALID; accuracy on the plain logits
            return self.modules.classifier(emb, labels), labels, self.modules.classifier(emb)
        return self.modules.classifier(emb), labels

    @property
    def cost(self):
        cost = getattr(self.hparams, "compute_cost", None)
        return cost if cost is not None else self.loss_fn

    def compute_objectives(self, predictions, batch, stage):
        logits, labels = predictions[0], predictions[1]
        if stage == sb.Stage.VALID and len(predictions) > 2:
            pred = predictions[2].argmax(-1)
            self._valid_pred.append(pred.cpu())
            self._valid_true.append(labels.cpu())
            self._valid_correct += int((pred == labels).sum())
            self._valid_seen += int(labels.numel())
        return self.cost(logits, labels)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        sampler = loader_kwargs.get("sampler")
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)
        if stage == sb.Stage.TRAIN:
            if self.train_sampler is None and sampler is not None:
                self.train_sampler = sampler  # so Brain calls set_epoch() every epoch
            self.steps_per_epoch = len(loader)
        return loader

    def fit(self, epoch_counter, train_set, valid_set=None, *args, **kwargs):
        self.validating = valid_set is not None
        return super().fit(epoch_counter, train_set, valid_set, *args, **kwargs)

    # ---- schedules ----------------------------------------------------------------------------

    @property
    def lr_schedule(self):
        return getattr(self.hparams, "lr_annealing", None)

    @property
    def embedder_lr_scale(self):
        """The embedding model's share of the learning rate when fine-tuning, else None (one group)."""
        return None if self.options.finetune is None else self.options.finetune.lr_scale

    def init_optimizers(self):
        """SpeechBrain's single optimiser over every parameter; when fine-tuning a pretrained
        embedder, with the embedding model's parameters in their own group(s) at its lr scale."""
        scale = self.embedder_lr_scale
        if scale is None or self.opt_class is None:
            return super().init_optimizers()
        groups = pretrained.param_groups(self.modules, self.modules["embedding_model"], scale,
                                         split_vectors=self.remove_vector_weight_decay)
        self.optimizer = self.opt_class(groups)
        pretrained.apply_lr_scales(self.optimizer)
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def _rescale_lr(self):
        """Re-apply the embedder's lr scale after the schedule set every group to one lr."""
        if self.embedder_lr_scale is not None:
            pretrained.apply_lr_scales(self.optimizer)

    def on_fit_start(self):
        try:
            super().on_fit_start()  # wraps, makes the optimiser, recovers the latest checkpoint
        except ValueError as e:
            if "parameter group" not in str(e):
                raise
            raise HparamsError(
                f"the latest checkpoint's optimiser has other parameter groups than this run's ({e}): a run started "
                "with pretrained_embedder (the embedder in its own group) resumes only with it set, one started "
                "without it only without it; keep the setting the run started with, or use another output_folder"
            ) from None
        scale = self.embedder_lr_scale
        if scale is not None and self.optimizer is not None:
            pretrained.set_lr_scale(self.optimizer, scale)  # the configured scale over a checkpoint's
            pretrained.apply_lr_scales(self.optimizer)
        self._lr_kind = sched_kinds.schedule_kind(self.lr_schedule)
        for schedule in (self.lr_schedule, self.options.margin_schedule):
            if schedule is not None and hasattr(schedule, "set_steps_per_epoch") and self.steps_per_epoch:
                schedule.set_steps_per_epoch(self.steps_per_epoch)
        from speechbrain.augment.time_domain import SpeedPerturb

        for a in getattr(self.options.augment, "augmentations", {}).values():
            if isinstance(a, SpeedPerturb):
                a.device = self.device  # SpeechBrain's SpeedPerturb resamples on its own device (cpu by default)

    def on_fit_batch_start(self, batch, should_step):
        margins = self.options.margin_schedule
        if margins is not None:
            step = (self.hparams.epoch_counter.current - 1) * self.steps_per_epoch + self.step - 1
            self.head.margin = margins.margin_at(step, self.steps_per_epoch)
        schedule, kind = self.lr_schedule, self._lr_kind
        if not should_step or not sched_kinds.per_step(kind):
            return
        if kind == sched_kinds.STEP_ON_BATCH_END:
            schedule.on_batch_end(self.optimizer)  # SpeechBrain's VoxCeleb recipe: before each step
        elif kind == sched_kinds.STEP_WITH_COUNT:
            schedule(self.optimizer, self.optimizer_step)
        else:
            schedule(self.optimizer)
        self._rescale_lr()

    # ---- stages -------------------------------------------------------------------------------

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN and self.optimizer is not None:
            self.head.set_learning_rate(self.optimizer.param_groups[0]["lr"])  # e.g. CausalNorm's lr-tied mu
        if stage == sb.Stage.VALID:
            # validation draws nothing training draws: the generators are put back when it ends (its
            # loader draws its base seed from torch's), before the end-of-epoch checkpoint holds them
            self._rng_before_valid = host_rng_state()
            self._valid_pred, self._valid_true, self._valid_correct, self._valid_seen = [], [], 0, 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self._train_loss = stage_loss
            if not self.validating:
                self._end_epoch(epoch, stage_loss, None)
        elif stage == sb.Stage.VALID:
            set_host_rng_state(self._rng_before_valid)
            self._end_epoch(epoch, self._train_loss, self.valid_stats(stage_loss))

    def valid_stats(self, loss):
        """{loss, error, acc, acc_many, acc_medium, acc_few} on the validation set (accuracy and error
        in %; a shot group without validation utterances is left out)."""

        true = torch.cat(self._valid_true).numpy() if self._valid_true else []
        pred = torch.cat(self._valid_pred).numpy() if self._valid_pred else []
        groups = [self.class_groups[t] if self.class_groups else "" for t in true]
        acc = shot_group_accuracy(pred, true, groups)
        stats = {"loss": float(loss), "error": None if acc["overall"] is None else 100.0 - acc["overall"],
                 "acc": acc["overall"], "acc_many": acc["many"], "acc_medium": acc["medium"], "acc_few": acc["few"]}
        return {k: v for k, v in stats.items() if v is not None}

    def _end_epoch(self, epoch, train_loss, valid):
        """Per-epoch schedule, train_log line and end-of-epoch checkpoint. Without validation and
        extra keys this is exactly what every earlier ltspk run did."""
        schedule, kind = self.lr_schedule, self._lr_kind  # set by on_fit_start
        if kind in (sched_kinds.VALID_METRIC, sched_kinds.PLATEAU) and valid is None:
            raise HparamsError(f"{type(schedule).__name__} anneals on the validation loss: set valid_during_training")
        if kind == sched_kinds.EPOCH:
            old_lr, new_lr = schedule(epoch)
        elif kind == sched_kinds.VALID_METRIC:
            old_lr, new_lr = schedule(valid["loss"])
        elif kind == sched_kinds.PLATEAU:
            old_lr, new_lr = schedule([self.optimizer], epoch, valid["loss"])
        else:  # per step, or none: the lr the last step used
            old_lr = new_lr = self.optimizer.param_groups[0]["lr"]
        if kind in (sched_kinds.EPOCH, sched_kinds.VALID_METRIC, sched_kinds.PLATEAU):
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self._rescale_lr()
        meta = {"epoch": epoch, "lr": old_lr}
        if self.embedder_lr_scale is not None:
            meta["lr_embedder"] = old_lr * self.embedder_lr_scale
        if self.options.margin_schedule is not None:
            meta["margin"] = self.head.margin
        self.hparams.train_logger.log_stats(stats_meta=meta, train_stats={"loss": train_loss}, valid_stats=valid)
        self.log_tensorboard(epoch, meta, {"loss": train_loss}, valid)
        if self.checkpointer is not None:
            ckpt_meta = {"epoch": epoch, "loss": train_loss, **{f"valid_{k}": v for k, v in (valid or {}).items()}}
            self.save_epoch_checkpoint(ckpt_meta)

    def log_tensorboard(self, epoch, meta, train, valid):
        """The epoch's figures to TensorBoard, at step ``epoch`` (SpeechBrain's logger counts its own
        steps from 1 in each process: set to the epoch, a resumed run continues its curves)."""
        tb = self.tensorboard_logger
        if tb is None or not sb.utils.distributed.if_main_process():
            return
        tb.global_step["meta"] = epoch - 1
        for split, stats in (("train", train), ("valid", valid or {})):
            for name in stats:
                tb.global_step[split][name] = epoch - 1
        tb.log_stats(stats_meta={k: v for k, v in meta.items() if k != "epoch"}, train_stats=train, valid_stats=valid)
        tb.writer.flush()

    def save_epoch_checkpoint(self, meta):
        """Save the end-of-epoch checkpoint; keep those the checkpoint policy needs
        (``ltspk.runtime.checkpoint_policy``)."""
        return self.options.checkpoints.save(self.checkpointer, meta)

    def _wrap_distributed(self):
        """SpeechBrain converts BatchNorm to SyncBatchNorm, which only runs on GPUs; on CPU
        (gloo) wrap in DDP with per-process BatchNorm instead."""
        if not (self.distributed_launch and str(self.device).startswith("cpu")):
            return super()._wrap_distributed()
        from torch.nn.parallel import DistributedDataParallel as DDP

        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DDP(module, device_ids=None, find_unused_parameters=self.find_unused_parameters)

    @property
    def head(self):
        return unwrap(self.modules.classifier)
