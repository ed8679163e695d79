"""The SpeechBrain Brain that trains an embedder with any ltspk head.

Resuming is exact in a single process with ``num_workers: 0``: a run resumed from any
checkpoint logs the same losses and ends with the same weights as the uninterrupted run
(the random state is checkpointed by ``ltspk.rng``, which says what is not guaranteed).

What the hparams may add, each off unless its key is set:

- ``wav_augment`` (SpeechBrain's key; ``augment`` is read too): an ``Augmenter`` applied to
  each training batch; its copies keep their labels through ``replicate_labels``.
- ``compute_cost``: the loss, ``compute_cost(logits, labels)``; without it the loss named by
  ``loss`` (``ltspk.losses.build_loss``), attached by ``ltspk.experiment``.
- ``lr_annealing``: any SpeechBrain scheduler. Per-step ones (``on_batch_end(opt)`` as
  ``CyclicLRScheduler``, ``__call__(opt)`` as ``WarmAndExpDecayLRSchedule``/``NoamScheduler``,
  ``__call__(opt, num_updates)``) are called before every optimiser step; per-epoch ones
  (``__call__(epoch)``) at the end of every epoch; ``NewBobScheduler`` and ``ReduceLROnPlateau``
  at the end of every epoch on the validation loss (``ltspk.schedulers.schedule_kind``). One with
  checkpoint hooks is in every checkpoint (``ltspk.experiment``), so a resumed run continues
  its curve.
- ``margin_schedule``: ``ltspk.heads.aam.MarginScheduler``, the head's margin before every step,
  computed from the epoch and step counters (which every checkpoint holds).
- a validation set given to ``fit``: each epoch, the loss and speaker-ID accuracy by shot group
  on it, in ``train_log.txt`` and on the progress bar; the end-of-epoch checkpoint is then saved
  after validation with these figures in its meta, and ``ckpt_min_key`` / ``ckpt_max_key``
  keep the best one as SpeechBrain does (``save_and_keep_only(min_keys=...)``);
  ``ckpt_average_last: N`` keeps the last N epochs' checkpoints for averaging. Validation draws
  nothing from the random generators training uses (``kept_rng_state``): the same run with and
  without it trains the same model.
- ``tensorboard`` (``True`` or a folder; ``ltspk.experiment.tensorboard_logger``): SpeechBrain's
  ``TensorboardLogger``, given each epoch what ``train_log.txt`` is given (lr, training loss,
  validation figures), at the epoch number as its step.
- ``pretrained_embedder`` (``ltspk.pretrained``): the embedding model's parameters in their own
  optimiser group(s), at ``embedder_lr_scale`` times the learning rate of the rest; the scale is
  re-applied after every schedule update (SpeechBrain's schedulers set every group to one value).
"""

import logging
import random
from contextlib import contextmanager

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import mark_as_loader, register_checkpoint_hooks

from ltspk import pretrained
from ltspk import schedulers as sched_kinds
from ltspk.hparams import HparamsError, hparam

log = logging.getLogger(__name__)

VALID_STATS = ("loss", "error", "acc", "acc_many", "acc_medium", "acc_few")  # as valid_<name> in checkpoint meta


@contextmanager
def kept_rng_state():
    """Put the global torch (CPU and CUDA), numpy and Python generators back as they were on leaving:
    what runs inside (validation: its loader draws its base seed from torch's generator) changes
    nothing that training draws afterwards."""
    cpu, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        np.random.set_state(np_state)
        random.setstate(py_state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def unwrap(module):
    """The module inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)


def augmenter_of(hparams):
    """The training Augmenter: ``wav_augment`` (SpeechBrain's key) or ``augment`` (older files)."""
    new, old = hparam(hparams, "wav_augment"), hparam(hparams, "augment")
    if new is not None and old is not None:
        raise HparamsError("both wav_augment and augment are set: keep one (wav_augment, SpeechBrain's name)")
    return new if new is not None else old


def checkpoint_key(hparams):
    """('min' | 'max', meta key) that selects the best checkpoint, or None."""
    low, high = hparam(hparams, "ckpt_min_key"), hparam(hparams, "ckpt_max_key")
    if low and high:
        raise HparamsError(f"ckpt_min_key ({low}) and ckpt_max_key ({high}) are both set: keep one")
    return ("min", low) if low else ("max", high) if high else None


@register_checkpoint_hooks
class SpeakerBrain(sb.core.Brain):
    """Fbank -> mean/var norm -> embedder -> head; the loss sees the head's training logits."""

    steps_per_epoch = None  # set when the training loader is made
    class_groups = None     # shot group of every class index (validation accuracy by group)
    validating = False      # a VALID stage follows every TRAIN stage
    tensorboard_logger = None  # SpeechBrain's TensorboardLogger when the hparams ask for one (ltspk.experiment)
    _lr_kind = None
    loss_fn = None

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
        augment = augmenter_of(self.hparams)
        if stage == sb.Stage.TRAIN and augment is not None:
            # Every utterance of the batch is copied the same number of times and each copy keeps its
            # label, so the label distribution of the augmented batch is the batch's own: the class
            # priors (from the training counts, ltspk.experiment) stay right, and CausalNorm's moving
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
        options = pretrained.finetune_options(self.hparams)
        return None if options is None else options[1]

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
        for schedule in (self.lr_schedule, getattr(self.hparams, "margin_schedule", None)):
            if schedule is not None and hasattr(schedule, "set_steps_per_epoch") and self.steps_per_epoch:
                schedule.set_steps_per_epoch(self.steps_per_epoch)
        from speechbrain.augment.time_domain import SpeedPerturb

        augment = augmenter_of(self.hparams)
        for a in getattr(augment, "augmentations", {}).values():
            if isinstance(a, SpeedPerturb):
                a.device = self.device  # SpeechBrain's SpeedPerturb resamples on its own device (cpu by default)

    def on_fit_batch_start(self, batch, should_step):
        margins = getattr(self.hparams, "margin_schedule", None)
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
            self._valid_pred, self._valid_true, self._valid_correct, self._valid_seen = [], [], 0, 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self._train_loss = stage_loss
            if not self.validating:
                self._end_epoch(epoch, stage_loss, None)
        elif stage == sb.Stage.VALID:
            self._end_epoch(epoch, self._train_loss, self.valid_stats(stage_loss))

    def valid_stats(self, loss):
        """{loss, error, acc, acc_many, acc_medium, acc_few} on the validation set (accuracy and error
        in %; a shot group without validation utterances is left out)."""
        from ltspk.metrics import shot_group_accuracy

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
        if getattr(self.hparams, "margin_schedule", None) is not None:
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
        """Save the end-of-epoch checkpoint and delete the ones no longer needed: without a selection
        key or averaging, all but the 2 most recent (as every earlier run); with ``ckpt_min_key`` /
        ``ckpt_max_key``, all but the best by that key and the most recent (SpeechBrain's
        ``save_and_keep_only``); with ``ckpt_average_last: N`` > 1, also the last N epochs'."""
        key = checkpoint_key(self.hparams)
        n_avg = int(hparam(self.hparams, "ckpt_average_last") or 0)
        ckpt = self.checkpointer
        if key is None and n_avg <= 1:
            return ckpt.save_and_keep_only(meta=meta, num_to_keep=2)
        by = {"min_keys": [key[1]]} if key and key[0] == "min" else {"max_keys": [key[1]]} if key else {}
        if n_avg <= 1:
            return ckpt.save_and_keep_only(meta=meta, num_to_keep=1, **by)
        ckpt.save_checkpoint(meta=meta)
        keep = {c.path for c in epoch_checkpoints(ckpt)[:n_avg]}
        if key:
            best = ckpt.find_checkpoint(**{f"{key[0]}_key": key[1]})
            if best is not None:
                keep.add(best.path)
        ckpt.delete_checkpoints(num_to_keep=0, ckpt_predicate=lambda c: c.path not in keep)

    def _fit_valid(self, valid_set, epoch, enable):
        """SpeechBrain's validation loop, with the running loss and accuracy on the progress bar. The
        random generators are put back as training left them before the epoch ends (``kept_rng_state``),
        so the end-of-epoch checkpoint holds the state the next epoch draws from."""
        if valid_set is None:
            return
        from tqdm import tqdm

        self.on_stage_start(sb.Stage.VALID, epoch)
        self.modules.eval()
        avg_valid_loss = 0.0
        with torch.no_grad(), kept_rng_state():
            with tqdm(valid_set, dynamic_ncols=True, disable=not enable, colour=self.tqdm_barcolor["valid"]) as t:
                for batch in t:
                    self.step += 1
                    loss = self.evaluate_batch(batch, stage=sb.Stage.VALID)
                    avg_valid_loss = self.update_average(loss, avg_valid_loss)
                    t.set_postfix(valid_loss=avg_valid_loss,
                                  valid_acc=100.0 * self._valid_correct / max(self._valid_seen, 1))
                    if self.debug and self.step == self.debug_batches:
                        break
        self.step = 0
        with torch.no_grad():
            self.on_stage_end(sb.Stage.VALID, avg_valid_loss, epoch)

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

    @torch.inference_mode()
    def embeddings(self, dataset, batch_size=16, num_workers=0, progress=True):
        """(ids, float32 [N, D] array) for every item of ``dataset``, batched by length."""
        import numpy as np
        from tqdm.auto import tqdm

        self.modules.eval()
        loader = sb.dataio.dataloader.make_dataloader(dataset, batch_size=batch_size, num_workers=num_workers)
        ids, chunks = [], []
        quiet = not progress or self.noprogressbar or not sb.utils.distributed.if_main_process()
        for batch in tqdm(loader, desc="embeddings", disable=quiet):
            batch = batch.to(self.device)
            wavs, lens = batch.sig
            with torch.autocast(device_type=self.device.split(":")[0], enabled=False):
                chunks.append(self.embed(wavs, lens, unwrapped=True).float().cpu().numpy())
            ids.extend(batch.id)
        return ids, np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def epoch_checkpoints(checkpointer):
    """End-of-epoch checkpoints (those whose meta holds the epoch), the latest epoch first."""
    found = [c for c in checkpointer.list_checkpoints() if "epoch" in c.meta]
    return sorted(found, key=lambda c: (c.meta["epoch"], c.meta.get("unixtime", 0)), reverse=True)


def evaluation_checkpoints(checkpointer, hparams):
    """The checkpoint(s) a run's evaluation takes its model from: ``("average", the last
    ckpt_average_last epoch checkpoints)`` when that is > 1, else ``("best", [the best by
    ckpt_min_key / ckpt_max_key])``, else ``("latest", [the latest])`` (``[]`` when there is none),
    with what they are in words. ``Experiment.recover`` restores them; identification and fine-tuning
    read a run's model from them (``ltspk.embedders.run_checkpoints``)."""
    n_avg, key = int(hparam(hparams, "ckpt_average_last") or 0), checkpoint_key(hparams)
    if n_avg > 1:
        found = epoch_checkpoints(checkpointer)[:n_avg]
        if found:
            if len(found) < n_avg:
                log.warning("ckpt_average_last is %d but only %d epoch checkpoint(s) are kept: averaging those",
                            n_avg, len(found))
            epochs = [c.meta["epoch"] for c in found]
            return "average", found, f"mean of the last {len(found)} epoch checkpoints (epochs {epochs})"
    if key is not None:
        best = checkpointer.find_checkpoint(**{f"{key[0]}_key": key[1]})
        if best is not None:
            return "best", [best], (f"best checkpoint by {'lowest' if key[0] == 'min' else 'highest'} {key[1]} "
                                    f"({best.path.name}, epoch {best.meta.get('epoch')}, {key[1]} {best.meta.get(key[1])})")
        log.warning("no checkpoint holds %s: the latest is used", key[1])
    latest = checkpointer.find_checkpoint()
    return "latest", [latest] if latest is not None else [], f"latest checkpoint ({latest.path.name if latest else '-'})"
