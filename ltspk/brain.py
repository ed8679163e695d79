"""The SpeechBrain Brain that trains an embedder with any ltspk head.

Resuming is exact in a single process with ``num_workers: 0``: a run resumed from any
checkpoint logs the same losses and ends with the same weights as the uninterrupted run
(the random state is checkpointed by ``ltspk.rng``, which says what is not guaranteed).
"""

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import mark_as_loader, register_checkpoint_hooks


def unwrap(module):
    """The module inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)


@register_checkpoint_hooks
class SpeakerBrain(sb.core.Brain):
    """Fbank -> mean/var norm -> embedder -> head; the loss sees the head's training logits."""

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
        augment = getattr(self.hparams, "augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
            labels = augment.replicate_labels(labels)
        emb = self.embed(wavs, lens)
        if stage == sb.Stage.TRAIN:
            return self.modules.classifier(emb, labels), labels
        return self.modules.classifier(emb), labels

    def compute_objectives(self, predictions, batch, stage):
        logits, labels = predictions
        return self.loss_fn(logits, labels)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        sampler = loader_kwargs.get("sampler")
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)
        if stage == sb.Stage.TRAIN and self.train_sampler is None and sampler is not None:
            self.train_sampler = sampler  # so Brain calls set_epoch() every epoch
        return loader

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN and self.optimizer is not None:
            self.head.set_learning_rate(self.optimizer.param_groups[0]["lr"])  # e.g. CausalNorm's lr-tied mu

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage != sb.Stage.TRAIN:
            return
        old_lr, new_lr = self.hparams.lr_annealing(epoch)
        sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
        self.hparams.train_logger.log_stats(stats_meta={"epoch": epoch, "lr": old_lr},
                                            train_stats={"loss": stage_loss})
        if self.checkpointer is not None:
            self.checkpointer.save_and_keep_only(meta={"epoch": epoch, "loss": stage_loss}, num_to_keep=2)

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
        for batch in tqdm(loader, desc="embeddings", disable=not progress or not sb.utils.distributed.if_main_process()):
            batch = batch.to(self.device)
            wavs, lens = batch.sig
            with torch.autocast(device_type=self.device.split(":")[0], enabled=False):
                chunks.append(self.embed(wavs, lens, unwrapped=True).float().cpu().numpy())
            ids.extend(batch.id)
        return ids, np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
